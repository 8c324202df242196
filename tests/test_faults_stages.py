"""Fault injection for the real stage scripts, run as subprocesses in a tiny workspace.

Every case must end with ONE line on stderr that names the file and says what to do,
a non-zero exit status, no traceback, and the previous good result still in place.
Disk full and read-only folders are real: a tiny tmpfs mounted over the output
folder where the system allows it (root in a container), else RLIMIT_FSIZE.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from cnnstudy.params import REPO_ROOT
from proc_helpers import communicate_or_explain

# "baseline: epoch 1/1 done in 2 s, accuracy ...; 2 s elapsed" and the like
PROGRESS_LINE = re.compile(r"^([\w@.-]+: )?(epoch|fold) ")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}


def tiny_params(epochs: int = 1) -> dict:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["prepare"]["per_class"] = 20
    params["train"].update(filters=[4, 8], dense=[16], batch_size=32, epochs=epochs)
    params["variants"] = {"baseline": {}}
    return params


def make_workspace(root: Path, epochs: int = 1) -> Path:
    for folder in ("stages", "src"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "data" / "bundled", root / "data" / "bundled")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(epochs), sort_keys=False))
    return root


def stage(root: Path, *args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"stages/{args[0]}.py", *args[1:]], cwd=root, env=ENV,
                          capture_output=True, text=True, timeout=timeout, **kw)


def assert_one_line_error(proc, *needles, code=1):
    # Training progress lines (cnnstudy.progress) share stderr; the failure is one line, the last.
    lines = [line for line in proc.stderr.strip().splitlines() if not PROGRESS_LINE.match(line)]
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    err = lines[0]
    assert err.startswith("error: ") and proc.stderr.strip().endswith(err), proc.stderr
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """fetch, prepare, train@baseline and evaluate (of the baseline) done once: the good results."""
    root = make_workspace(tmp_path_factory.mktemp("faults"))
    for args in (("fetch",), ("prepare",), ("train", "baseline"), ("evaluate", "baseline")):
        proc = stage(root, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.fixture
def ws(workspace):
    """The workspace; the good model and train metrics are restored after each test."""
    saved = {p: p.read_bytes() for p in (workspace / "models/baseline.keras",
                                         workspace / "metrics/train/baseline.json")}
    yield workspace
    for path, data in saved.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def rewrite_zip(src: Path, dest: Path, edit) -> None:
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    edit(members)
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _with_foreign_module(members):
    config = json.loads(members["config.json"])
    config["config"]["layers"].append({"module": "os", "class_name": "system",
                                       "config": {"command": "touch PWNED"}, "registered_name": "system"})
    members["config.json"] = json.dumps(config).encode()


def _lambda_model(path: Path) -> None:
    import keras

    inputs = keras.Input((28, 28))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path.with_suffix(".tmp.keras"))
    path.with_suffix(".tmp.keras").replace(path)


def _flip_a_byte(path: Path) -> None:
    """Bit rot: one byte in the middle of the archive changes, its CRC no longer matches."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                  ["not a Keras model file", "truncated"]),
    "empty": (lambda p: p.write_bytes(b""), ["not a Keras model file (0 bytes"]),
    "random": (lambda p: p.write_bytes(os.urandom(3000)), ["not a Keras model file"]),
    "module-os": (lambda p: rewrite_zip(p, p, _with_foreign_module), ["names module 'os'", "do not load model files"]),
    "lambda": (_lambda_model, ["refused by Keras safe mode", "do not load model files"]),
    "no-config": (lambda p: rewrite_zip(p, p, lambda m: m.pop("config.json")), ["no config.json"]),
    "flipped-byte": (_flip_a_byte, ["models/baseline.keras: c"]),  # corrupt ... / cannot be loaded ...
    "directory": (lambda p: (p.unlink(), p.mkdir()), ["is not a file"]),
}


@pytest.mark.parametrize("case", DAMAGES)
def test_load_model_with_a_bad_file(ws, case):
    """In process (fast): every damage is one DataError naming the file and the fix."""
    from cnnstudy.errors import DataError
    from cnnstudy.model_files import load_model

    model = ws / "models/baseline.keras"
    damage, needles = DAMAGES[case]
    damage(model)
    try:
        with pytest.raises(DataError) as info:
            load_model(model, fix="run `dvc repro --force train@baseline`", compile=False)
    finally:
        if model.is_dir():
            model.rmdir()
    message = str(info.value)
    assert message.startswith(f"{model}:") and message.endswith("run `dvc repro --force train@baseline`")
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert not (Path.cwd() / "PWNED").exists() and not (ws / "PWNED").exists()


@pytest.mark.parametrize("case", ["truncated", "module-os", "lambda"])
def test_evaluate_with_a_bad_model_file(ws, case):
    """Through the real stage: one line, exit 1, the last good evaluation kept."""
    model = ws / "models/baseline.keras"
    good_metrics = (ws / "metrics/eval/baseline.json").read_bytes()
    damage, needles = DAMAGES[case]
    damage(model)
    proc = stage(ws, "evaluate", "baseline")
    assert_one_line_error(proc, "models/baseline.keras", *needles, "dvc repro --force train@baseline")
    assert not (ws / "PWNED").exists()
    assert (ws / "metrics/eval/baseline.json").read_bytes() == good_metrics


def test_evaluate_with_broken_train_metrics_json(ws):
    (ws / "metrics/train/baseline.json").write_text('{"weight_bytes": 12')
    proc = stage(ws, "evaluate", "baseline")
    assert_one_line_error(proc, "metrics/train/baseline.json: broken JSON", "dvc repro")


def test_evaluate_with_train_metrics_missing_a_key(ws):
    (ws / "metrics/train/baseline.json").write_text("{}\n")
    proc = stage(ws, "evaluate", "baseline")
    assert_one_line_error(proc, "metrics/train/baseline.json", "weight_bytes", "dvc repro")


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A tmpfs over `path` holding a copy of its files; skipped where mount is not allowed."""
    saved = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} if path.is_dir() else {}
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        for name, data in saved.items():
            (path / name).write_bytes(data)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_disk_full_while_saving_the_model_keeps_the_old_one(ws):
    models = ws / "models"
    good = (models / "baseline.keras").read_bytes()
    # Room for the previous model and a bit, not for a second copy: the new file cannot be written.
    with tmpfs(models, size=f"{len(good) + 16 * 1024}"):
        proc = stage(ws, "train", "baseline")
        assert_one_line_error(proc, "models/baseline.keras", "No space left on device", "free some space")
        assert (models / "baseline.keras").read_bytes() == good
        assert os.listdir(models) == ["baseline.keras"]  # no temp file left


def test_file_size_limit_while_saving_is_one_line(ws):
    """RLIMIT_FSIZE (works without mount rights): a write past it fails with EFBIG."""
    good = (ws / "models/baseline.keras").read_bytes()

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(good) // 2, len(good) // 2))

    proc = stage(ws, "train", "baseline", preexec_fn=limit)
    assert_one_line_error(proc, "File too large")
    assert (ws / "models/baseline.keras").read_bytes() == good
    assert not list((ws / "models").glob(".*tmp*"))


def test_read_only_output_folder(ws):
    metrics = ws / "metrics/eval"
    good = (metrics / "baseline.json").read_bytes()
    with tmpfs(metrics, size="1m", read_only=True):
        proc = stage(ws, "evaluate", "baseline")
        assert_one_line_error(proc, "metrics/eval/baseline.json", "Read-only file system", "writable")
        assert (metrics / "baseline.json").read_bytes() == good


def test_ctrl_c_during_training_is_one_line_and_keeps_the_old_model(ws):
    params = ws / "params.yaml"
    original = params.read_text()
    params.write_text(yaml.safe_dump(tiny_params(epochs=200), sort_keys=False))
    good = (ws / "models/baseline.keras").read_bytes()
    try:
        # A shell that starts pytest in the background (`cmd &`, nohup, some CI runners) leaves
        # SIGINT ignored, children inherit that and Python then installs no KeyboardInterrupt:
        # the training ran all its epochs through five Ctrl-Cs. A terminal's Ctrl-C arrives
        # with the default disposition, which is what the child gets here.
        proc = subprocess.Popen([sys.executable, "stages/train.py", "baseline"], cwd=ws, env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the epochs run (progress lines are on stderr)
            line = proc.stderr.readline()
            if "epoch 2/" in line or not line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = communicate_or_explain(proc, timeout=120)
    finally:
        params.write_text(original)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_line_error(result, "train@baseline interrupted", "run the stage again", code=130)
    assert (ws / "models/baseline.keras").read_bytes() == good
    assert not list((ws / "models").glob(".*tmp*"))


def test_missing_model_file(ws):
    (ws / "models/baseline.keras").unlink()
    proc = stage(ws, "evaluate", "baseline")
    assert_one_line_error(proc, "models/baseline.keras", "dvc repro")


def test_unknown_model_name_is_one_line(ws):
    proc = stage(ws, "evaluate", "nosuchmodel")
    assert_one_line_error(proc, "nosuchmodel")


def test_prepared_split_replaced_by_a_directory(ws):
    target = ws / "data/prepared/test.npz"
    saved = target.read_bytes()
    target.unlink()
    target.mkdir()
    try:
        proc = stage(ws, "evaluate", "baseline")
    finally:
        target.rmdir()
        target.write_bytes(saved)
    assert_one_line_error(proc, "data/prepared/test.npz", "dvc repro prepare")


def test_output_path_blocked_by_a_directory(ws):
    """A folder where evaluate's output file goes: one line, nothing else changed."""
    target = ws / "metrics/eval/baseline.json"
    saved = target.read_bytes()
    target.unlink()
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    try:
        proc = stage(ws, "evaluate", "baseline")
        assert_one_line_error(proc, "metrics/eval/baseline.json", "folder stands where a file is expected")
        assert (target / "keep.txt").read_text() == "mine"
    finally:
        shutil.rmtree(target)
        target.write_bytes(saved)


@pytest.mark.parametrize("path, edit, needles", [
    ("metrics/eval/baseline.json",
     lambda b: json.dumps({k: v for k, v in json.loads(b).items() if k != "accuracy"}).encode(),
     ["metrics/eval/baseline.json", "has no 'accuracy' entry"]),
    ("metrics/eval/baseline/predictions.npz", lambda b: b[: len(b) // 2],
     ["metrics/eval/baseline/predictions.npz: unreadable"]),
    ("metrics/eval/baseline.json", lambda b: b[: len(b) // 2], ["metrics/eval/baseline.json: broken JSON"]),
], ids=["missing-key", "cut-predictions", "cut-json"])
def test_summary_with_hand_edited_results(ws, path, edit, needles):
    target = ws / path
    saved = target.read_bytes()
    target.write_bytes(edit(saved))
    try:
        proc = stage(ws, "summary")
    finally:
        target.write_bytes(saved)
    assert_one_line_error(proc, *needles, "dvc repro")
