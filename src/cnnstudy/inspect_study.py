"""Every model of the study inspected in one process (stage inspect_models): the variants and the
tuned model from their files, the standard architectures from compare's, then the
across-model recall and confusions. inspect_outputs decides what each model gets.

A model whose inputs have not changed since its plots/inspect/<model>/ was written is
kept, not redrawn: the stage's output persists between runs, and each summary.json
records the SHA-256 of everything its figures came from (model file, training log, test
split, outlier folder, the code the stage runs and the library versions). So `dvc exp run -S
variants.lr_high.lr=0.02` redraws lr_high (and the across-model part), not all thirteen.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Mapping

from cnnstudy import code_closure, runtime
from cnnstudy.errors import DataError
from cnnstudy.files import read_json, read_stage_json
from cnnstudy.inspect_report import PLOTS_DIR

INPUTS_KEY = "inputs_sha256"
LIBRARIES = ("keras", "tensorflow", "jax", "numpy", "matplotlib")
COMPARE_DETAILS = Path("metrics/compare/details.json")  # compare's outputs (named here: importing
COMPARE_PREDICTIONS = Path("metrics/compare/predictions.json")  # compare.py would mean training)
COMPARE_FIX = "run `dvc repro compare`"


@dataclass(frozen=True)
class Inspection:
    """One model to inspect: what its figures are computed from, and how to draw them."""
    name: str
    inputs: tuple[Path, ...]
    settings: Mapping
    draw: Callable[[Path], dict]   # writes the figures into the folder, returns summary.json's numbers


def _file_sha256(file: Path) -> bytes:
    with open(file, "rb") as fh:  # streamed: a bring-your-own dataset may be large
        return hashlib.file_digest(fh, "sha256").digest()


def _hash_paths(h, paths: Iterable[Path]) -> None:
    """Names and bytes of each file (a folder: of every file in it). Names relative to the
    folder given, a file by its own name: the digest is the same in every clone."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = [(f.relative_to(path).as_posix(), f) for f in sorted(path.rglob("*")) if f.is_file()]
        else:
            files = [(path.name, path)]
        h.update(f"{len(files)} in {path.name}".encode())
        for label, file in files:
            h.update(label.encode() + b"\0")
            h.update(_file_sha256(file) if file.is_file() else b"missing")


def shared_digest(data_dir: Path, outliers_dir: Path, script: Path, src: Path = code_closure.SRC) -> str:
    """What every model's figures depend on: the prepared data, the outlier folder, the code the
    stage's script can run (the script and every module of the package it imports: what
    dvc.yaml lists as its deps; a change there redraws everything) and the library versions."""
    h = hashlib.sha256()
    code = sorted(code_closure.closure(script, src), key=lambda f: f.relative_to(src).as_posix())
    _hash_paths(h, [data_dir, outliers_dir, script])
    for file in code:  # by path inside src/: two __init__.py must not pass for each other
        h.update(file.relative_to(src).as_posix().encode() + b"\0" + _file_sha256(file))
    for library in LIBRARIES:
        try:
            h.update(f"{library}={metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{library}=none".encode())
    return h.hexdigest()


def inputs_digest(item: Inspection, shared: str) -> str:
    h = hashlib.sha256(shared.encode())
    h.update(json.dumps({"name": item.name, **item.settings}, sort_keys=True, default=str).encode())
    _hash_paths(h, item.inputs)
    return h.hexdigest()


def current_summary(out_dir: Path, digest: str) -> dict | None:
    """The summary.json of out_dir if it holds a complete inspection drawn from exactly these inputs."""
    try:
        summary = read_json(out_dir / "summary.json")
    except (OSError, ValueError, DataError):
        return None
    files = summary.get("files") if isinstance(summary, dict) else None
    if (summary.get(INPUTS_KEY) == digest and isinstance(files, list)
            and all((out_dir / str(f)).is_file() for f in files)):
        return summary
    return None


def inspect_all(items: list[Inspection], shared: str, plots_dir: Path = PLOTS_DIR,
                say: Callable[[str], None] = print) -> dict[str, dict]:
    """Draw each model whose inputs changed, keep the others, remove folders of models no
    longer in the study. Returns each model's summary."""
    from cnnstudy.inspect_outputs import write_model

    summaries = {}
    for item in items:
        out = plots_dir / item.name
        digest = inputs_digest(item, shared)
        kept = current_summary(out, digest)
        if kept is not None:
            summaries[item.name] = kept
            say(f"inspect_models: {item.name}: inputs unchanged, kept")
            continue
        shutil.rmtree(out, ignore_errors=True)
        runtime.clear_session()
        summary = item.draw(out)
        files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        summary = {**summary, "files": files, INPUTS_KEY: digest}
        write_model(summary, out)
        summaries[item.name] = summary
        say(said(item.name, summary))
    wanted = {item.name for item in items}
    for stale in sorted(p for p in plots_dir.glob("*") if p.is_dir() and p.name not in wanted):
        shutil.rmtree(stale)
        say(f"inspect_models: {stale.name}: no longer a model of the study, its folder removed")
    return summaries


def said(name: str, summary: dict) -> str:
    """One line per model drawn."""
    line = f"inspect_models: {name}: {summary['mistakes']} mistakes of {summary['test_images']}"
    if "saliency" in summary:
        line += f"; integrated-gradients completeness gap {summary['saliency']['max_completeness_gap']:.2e}"
    return line


# ------------------------------------------------------------------ the two kinds of model
def trained_model(name: str, seed: int, data, outlier_images, fix: str,
                  models_dir: Path = Path("models"), logs_dir: Path = Path("dvclive")) -> Inspection:
    """A variant or the tuned model: models/<name>.keras and its dvclive/<name> log
    (the tuned model's has no validation curve: the refit holds no data out)."""
    model_file, log_dir = Path(models_dir) / f"{name}.keras", Path(logs_dir) / name

    def draw(out: Path) -> dict:
        from cnnstudy import inspect_outputs
        from cnnstudy.model_files import load_model
        from cnnstudy.summary import read_history

        runtime.seed_everything(seed)
        model = load_model(model_file, fix=fix, compile=False)
        return inspect_outputs.inspect_model(model, name, data.test, data.class_names, out,
                                             outlier_images=outlier_images, history=read_history(log_dir))

    return Inspection(name, (model_file, log_dir), {"seed": seed}, draw)


def standard_model(name: str, input_size: int, data, outlier_images,
                   models_dir: Path = Path("models/compare")) -> Inspection:
    """A standard architecture: layer table, errors and curves always; with its kept model file
    also the kernels, and for LeNet-5 (which sees the 28x28 digit) feature maps and saliency."""
    model_file = Path(models_dir) / f"{name}.keras"

    def draw(out: Path) -> dict:
        import numpy as np

        from cnnstudy import inspect_outputs, standard_models
        from cnnstudy.model_files import load_model

        record = read_stage_json(COMPARE_DETAILS, COMPARE_FIX).get(name)
        predictions = read_stage_json(COMPARE_PREDICTIONS, COMPARE_FIX)["test_predictions"].get(name)
        if record is None or predictions is None:
            raise DataError(f"{COMPARE_DETAILS} has no results for {name}; {COMPARE_FIX}")
        if model_file.exists():
            model = load_model(model_file, fix=COMPARE_FIX, compile=False)
            summary = inspect_outputs.inspect_model(
                model, name, data.test, data.class_names, out, outlier_images=outlier_images,
                history=record.get("history"),
                model_input=lambda x: standard_models.model_input(name, x, input_size))
        else:  # not kept (compare.keep_models; resnet50 is 284 MB): the architecture and the recorded predictions
            model = standard_models.build_standard(name, input_size, num_classes=data.num_classes)
            summary = inspect_outputs.inspect_predictions(model, name, data.test, data.class_names, out,
                                                          np.asarray(predictions), history=record.get("history"))
        return {**summary, "model_file_kept": model_file.exists()}

    return Inspection(name, (model_file, COMPARE_DETAILS, COMPARE_PREDICTIONS), {"input_size": input_size}, draw)


# ------------------------------------------------------------------ across models
def across_study(models: Iterable[str], standard: Iterable[str], data) -> dict:
    """Per-class recall side by side and the most confused pairs, over the models stage
    evaluate recorded (variants, tuned) and the standard architectures compare did."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from cnnstudy.inspect_outputs import across_models
    from cnnstudy.predictions import predictions_file, read_predictions

    classes = list(range(len(data.class_names)))
    confusions = {}
    for name in models:
        recorded = read_predictions(predictions_file(name), name)
        if not np.array_equal(recorded.labels, data.test[1]):
            raise DataError(f"{predictions_file(name)} is for other test images than data/prepared; run `dvc repro`")
        confusions[name] = confusion_matrix(recorded.labels, recorded.predicted, labels=classes)
    standard = list(standard)
    recorded = read_stage_json(COMPARE_PREDICTIONS, COMPARE_FIX)["test_predictions"] if standard else {}
    for name in standard:
        if name not in recorded:
            raise DataError(f"{COMPARE_PREDICTIONS} has no results for {name}; {COMPARE_FIX}")
        confusions[name] = confusion_matrix(data.test[1], np.asarray(recorded[name]), labels=classes)
    return across_models(confusions, data.class_names)
