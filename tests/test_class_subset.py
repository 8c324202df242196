"""prepare.classes: a subset of the classes, renumbered, with source indices kept."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cnnstudy import class_subset as C
from cnnstudy.data import load_prepared
from cnnstudy.errors import DataError
from cnnstudy.idx import read_pair
from cnnstudy.params import REPO_ROOT, PrepareParams, SplitParams
from cnnstudy.prepare import run_prepare

BUNDLED = REPO_ROOT / "data" / "bundled" / "mnist-sample"
DIGITS = tuple("0123456789")


def test_resolve_classes():
    assert C.resolve_classes("all", DIGITS) == tuple(range(10))
    assert C.resolve_classes(None, DIGITS) == tuple(range(10))
    assert C.resolve_classes([3, "8", 0], DIGITS) == (3, 8, 0)
    names = ("T-shirt/top", "Trouser", "Pullover")
    assert C.resolve_classes(["Trouser", 0], names) == (1, 0)
    for bad, message in (([1, 1], "listed twice"), ([4], "at least two"), ([0, 10], "10 is not a class"),
                         (["x", 1], "'x' is not a class"), ("0,1", "expected 'all' or a list"),
                         ([True, 1], "True is not a class")):
        with pytest.raises(DataError, match=message):
            C.resolve_classes(bad, DIGITS)


def test_remap_labels():
    labels = np.array([0, 3, 8, 5, 3], dtype=np.uint8)
    np.testing.assert_array_equal(C.remap_labels(labels, (3, 8, 0)), [2, 0, 1, C.EXCLUDED, 0])


def prepared_dir(tmp_path, classes, pool=True):
    raw = tmp_path / "raw"
    raw.mkdir()
    for gz in BUNDLED.glob("*.gz"):
        shutil.copyfile(gz, raw / gz.name)
    (raw / "manifest.json").write_text(json.dumps({"dataset": "mnist-sample", "files": {}}))
    params = PrepareParams(pool=pool, per_class=50, split=SplitParams(0.6, 0.2, 0.2), seed=42)
    out = tmp_path / "prepared"
    info = run_prepare(params, raw, out, tmp_path / "data.json", tmp_path / "plots", classes=classes)
    return info, out


@pytest.mark.parametrize("pool", [True, False])
def test_prepare_keeps_only_the_chosen_classes(tmp_path, pool):
    info, out = prepared_dir(tmp_path, [1, 7, 4], pool=pool)
    assert info["class_names"] == ["1", "7", "4"] and info["raw_classes"] == [1, 7, 4]
    data = load_prepared(out)
    assert data.num_classes == 3
    train_images, train_labels = read_pair(BUNDLED / "train-images-idx3-ubyte.gz",
                                           BUNDLED / "train-labels-idx1-ubyte.gz")
    test_images, test_labels = read_pair(BUNDLED / "t10k-images-idx3-ubyte.gz", BUNDLED / "t10k-labels-idx1-ubyte.gz")
    all_images = np.concatenate([train_images, test_images])
    all_labels = np.concatenate([train_labels, test_labels])
    for split in ("train", "val", "test"):
        with np.load(out / f"{split}.npz") as npz:
            images, labels, source = npz["images"], npz["labels"], npz["source"]
        assert set(np.unique(labels)) == {0, 1, 2}
        # Source indices still point at the raw files, and the labels map back to 1, 7, 4.
        np.testing.assert_array_equal(images, all_images[source])
        np.testing.assert_array_equal(np.array([1, 7, 4])[labels], all_labels[source])
    if not pool:  # all of t10k's 1s, 7s and 4s, in file order
        with np.load(out / "test.npz") as npz:
            assert len(npz["labels"]) == int(np.isin(test_labels, [1, 7, 4]).sum())
    per_class = 30 if pool else 38  # pool: false divides 50 as train:val = 0.6:0.2
    assert json.loads((tmp_path / "data" / "details.json").read_text())["train"]["per_class"] == {"1": per_class, "7": per_class, "4": per_class}


def test_all_classes_leave_info_unchanged(tmp_path):
    info, _ = prepared_dir(tmp_path, "all")
    assert "raw_classes" not in info and info["class_names"] == list(DIGITS)


@pytest.mark.parametrize("value, match", [
    ([3], "at least two distinct classes"), ([3, 3], "at least two distinct classes"),
    ([1, True], "class indices"), ([-1, 2], "class indices"), ("some", "'all' or a list"), (5, "'all' or a list"),
])
def test_params_check_prepare_classes_by_its_dotted_key(value, match):
    from cnnstudy.params import ParamsError, parse_params
    import yaml

    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["prepare"]["classes"] = value
    with pytest.raises(ParamsError, match=rf"prepare\.classes.*{match}"):
        parse_params(raw)
    raw["prepare"]["classes"] = [3, "5", 8]
    assert parse_params(raw).prepare.classes == (3, "5", 8)
    del raw["prepare"]["classes"]
    assert parse_params(raw).prepare.classes == "all"
