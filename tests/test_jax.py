"""The tiny pipeline's train and evaluate stages on the JAX backend, as on TensorFlow.

Each backend runs the real stage scripts in a subprocess (KERAS_BACKEND is fixed per process)
on the same prepared split; the JAX run must learn, write the same metric keys as the
TensorFlow run, and leave a model file that loads.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnstudy.params import PARAMS_FILE, REPO_ROOT, load_params
from cnnstudy.prepare import run_prepare

BUNDLED = REPO_ROOT / "data" / "bundled" / "mnist-sample"
pytestmark = pytest.mark.slow


def tiny_repo(root: Path) -> Path:
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["prepare"]["per_class"] = 40
    raw["train"].update(filters=[8, 16], dense=[32], batch_size=32, epochs=3, lr=0.005, device="cpu", precision="float32")
    raw["variants"] = {"baseline": {}}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (root / "data" / "raw").mkdir(parents=True)
    for gz in BUNDLED.glob("*.gz"):
        shutil.copyfile(gz, root / "data" / "raw" / gz.name)
    (root / "data" / "raw" / "manifest.json").write_text(json.dumps({"dataset": "mnist-sample", "files": {}}))
    run_prepare(load_params(root / "params.yaml").prepare, root / "data/raw", root / "data/prepared",
                root / "metrics/data.json", root / "plots/data")
    return root


def train_and_evaluate(root: Path, backend: str) -> tuple[dict, dict]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    for stage in ("train", "evaluate"):
        proc = subprocess.run([sys.executable, f"stages/{stage}.py", "baseline"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{stage} on {backend}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return (json.loads((root / "metrics/train/baseline.json").read_text()),
            json.loads((root / "metrics/eval/baseline.json").read_text()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    results = {}
    for backend in ("tensorflow", "jax"):
        root = tiny_repo(tmp_path_factory.mktemp(backend))
        results[backend] = (root, *train_and_evaluate(root, backend))
    return results


def test_jax_trains_and_evaluates_like_tensorflow(runs):
    root, train, evaluation = runs["jax"]
    _, tf_train, tf_evaluation = runs["tensorflow"]
    assert train["backend"] == "jax" and tf_train["backend"] == "tensorflow"
    assert train["precision"] == "float32" and train["strategy"] == "default"
    assert set(train) == set(tf_train) and set(evaluation) == set(tf_evaluation)
    assert train["epochs"] == 3 and train["parameters"] == tf_train["parameters"]
    assert evaluation["accuracy"] > 0.3  # 10 classes: chance is 0.1
    print(f"test accuracy: jax {evaluation['accuracy']:.3f}, tensorflow {tf_evaluation['accuracy']:.3f}")
    assert abs(evaluation["accuracy"] - tf_evaluation["accuracy"]) < 0.25


def test_the_jax_model_file_loads_on_tensorflow_and_predicts_the_same(runs):
    """The .keras file is backend-neutral: this process runs TensorFlow."""
    import keras

    root, _, evaluation = runs["jax"]
    model = keras.models.load_model(root / "models/baseline.keras")
    test = np.load(root / "data/prepared/test.npz")
    predicted = model.predict(test["images"], verbose=0).argmax(axis=1)
    assert np.mean(predicted == test["labels"]) == pytest.approx(evaluation["accuracy"], abs=1e-6)


DISTRIBUTED = """
import dataclasses, sys
import numpy as np
from cnnstudy import runtime
runtime.select_device("auto")
import keras
from cnnstudy.train_cnn import new_cnn
from cnnstudy.params import load_params
from cnnstudy.training import fit
cfg = dataclasses.replace(load_params(sys.argv[1]).train, filters=(4, 8), dense=(16,), batch_size=32, epochs=1)
device = runtime.describe_device("auto")
runtime.set_precision("mixed_bfloat16")
runtime.seed_everything(1)
rng = np.random.default_rng(0)
x, y = rng.integers(0, 255, (128, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 128)
with runtime.distribution_scope(device) as parallel:
    model = new_cnn(cfg)
    fit(model, (x, y), (x[:32], y[:32]), 1, cfg.batch_size)
    runtime.clear_session()  # must keep the precision and the distribution
    print(device["backend"], parallel["strategy"], parallel["replicas"], model.get_layer("conv1").compute_dtype,
          keras.config.dtype_policy().name, type(keras.distribution.distribution()).__name__)
"""


def test_jax_data_parallel_and_bf16_survive_clear_session():
    """runtime's JAX path: DataParallel over two (forced) CPU devices, mixed bfloat16."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": str(REPO_ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(PARAMS_FILE)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[-2].split() == ["jax", "DataParallel", "2", "bfloat16", "mixed_bfloat16",
                                                   "DataParallel"]
