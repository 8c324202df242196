"""Data-parallel training (runtime.distribution_scope) against single-device training.

A machine without GPUs tests the mirrored path by splitting its CPU into two logical
devices. That must happen before TensorFlow starts, so it runs in a fresh process.
Dropout is 0 here: a dropout mask is drawn per replica, so with dropout the two runs
differ by design. Each global batch of 32 is split 16 + 16 across the replicas and the
gradients are summed, which is the single-device step up to float rounding.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from cnnstudy import runtime
from cnnstudy.idx import read_pair
from cnnstudy.params import REPO_ROOT, load_params

runtime.select_device("cpu")

from cnnstudy.train_cnn import train_cnn  # noqa: E402

BUNDLED = REPO_ROOT / "data" / "bundled" / "mnist-sample"
EPOCHS = 2

# Runs in a fresh interpreter: argv[1] = number of logical CPUs (1: no split).
CHILD = r"""
import dataclasses, json, sys
from cnnstudy import runtime
runtime.select_device("cpu")
import keras
if int(sys.argv[1]) > 1:
    runtime.split_cpu(int(sys.argv[1]))
from cnnstudy.idx import read_pair
from cnnstudy.kfold import select_epochs
from cnnstudy.params import KFoldParams, REPO_ROOT, load_params
from cnnstudy.train_cnn import train_cnn
B = REPO_ROOT / "data" / "bundled" / "mnist-sample"
x, y = read_pair(B / "train-images-idx3-ubyte.gz", B / "train-labels-idx1-ubyte.gz")
cfg = dataclasses.replace(load_params().train, filters=(4, 8), dense=(16,), batch_size=32, dropout=0.0)
device = runtime.describe_device("cpu")
runtime.set_precision("float32")
with runtime.distribution_scope(device) as parallel:
    model, result = train_cnn(cfg, (x[:320], y[:320]), (x[320:400], y[320:400]), %(epochs)d)
    kfold = select_epochs(cfg, KFoldParams(folds=2, max_epochs=1, patience=1), x[:60], y[:60], log=lambda _: None)
    import tensorflow as tf
    after_kfold = tf.distribute.get_strategy().num_replicas_in_sync  # clear_session per fold kept the scope
print("RESULT " + json.dumps({"parallel": parallel, "history": result.history, "kfold": kfold["best_epochs"],
                              "after_kfold": after_kfold, "steps_per_execution": result.extra["steps_per_execution"],
                              "weights": [float(abs(w).sum()) for w in model.get_weights()]}))
""" % {"epochs": EPOCHS}


def child(replicas: int, extra_env: dict | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env.update(PYTHONPATH=str(REPO_ROOT / "src"), TF_CPP_MIN_LOG_LEVEL="3", **(extra_env or {}))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(replicas)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.fixture(scope="module")
def single():
    """The same training in this process: one CPU device, the default strategy."""
    images, labels = read_pair(BUNDLED / "train-images-idx3-ubyte.gz", BUNDLED / "train-labels-idx1-ubyte.gz")
    cfg = dataclasses.replace(load_params().train, filters=(4, 8), dense=(16,), batch_size=32, dropout=0.0)
    with runtime.distribution_scope(runtime.describe_device("cpu")) as parallel:
        model, result = train_cnn(cfg, (images[:320], labels[:320]), (images[320:400], labels[320:400]), EPOCHS)
    return {"parallel": parallel, "history": result.history,
            "weights": [float(np.abs(w).sum()) for w in model.get_weights()]}


def assert_same_training(a: dict, b: dict) -> None:
    for metric in ("loss", "val_loss"):
        np.testing.assert_allclose(a["history"][metric], b["history"][metric], atol=1e-3, err_msg=metric)
    np.testing.assert_allclose(a["weights"], b["weights"], rtol=1e-3)


def test_one_device_uses_the_default_strategy(single):
    assert single["parallel"] == {"strategy": "default", "replicas": 1}


def test_mirrored_over_two_logical_cpus_matches_one_device(single):
    mirrored = child(2)
    assert mirrored["parallel"] == {"strategy": "MirroredStrategy", "replicas": 2}
    assert_same_training(mirrored, single)
    assert len(mirrored["kfold"]) == 2 and mirrored["after_kfold"] == 2  # the kfold stage's loop stays mirrored
    assert mirrored["steps_per_execution"] == 1  # keras-team/keras#19246: multi-step calls fail when mirrored


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_tf_config_selects_multi_worker_mirrored(single):
    config = {"cluster": {"worker": [f"localhost:{free_port()}"]}, "task": {"type": "worker", "index": 0}}
    multi = child(1, {"TF_CONFIG": json.dumps(config)})  # a one-worker cluster
    assert multi["parallel"] == {"strategy": "MultiWorkerMirroredStrategy", "replicas": 1}
    assert_same_training(multi, single)
