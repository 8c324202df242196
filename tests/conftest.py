"""Fixtures shared by the training tests: real digits and a tiny model configuration."""

import dataclasses

import pytest

from cnnstudy.idx import read_pair
from cnnstudy.params import REPO_ROOT, load_params

BUNDLED = REPO_ROOT / "data" / "bundled" / "mnist-sample"


@pytest.fixture(scope="module")
def digits():
    """400 real MNIST digits from the bundled sample: (images uint8, labels)."""
    images, labels = read_pair(BUNDLED / "train-images-idx3-ubyte.gz", BUNDLED / "train-labels-idx1-ubyte.gz")
    return images[:400], labels[:400]


@pytest.fixture(scope="module")
def tiny():
    """The baseline shrunk to train in about a second."""
    return dataclasses.replace(load_params().train, filters=(4, 8), dense=(16,), batch_size=32, epochs=2)
