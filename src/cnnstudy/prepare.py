"""The prepare stage's work: read data/raw, draw stratified splits, describe them.

No DVC here: `run_prepare` takes paths and a PrepareParams, so tests call it on
a temp directory. All randomness comes from one numpy Generator seeded with
`prepare.seed`, consumed in a fixed order, so a seed fixes every split exactly.

Every image is tracked by its source index: its position in the train files,
or len(train files) + its position in the t10k files. Splits are disjoint
because their source indices are, and `source` is saved with each split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cnnstudy import class_subset
from cnnstudy.data import INFO_FILE, SPLITS
from cnnstudy.registry import DATASETS, DIGITS, FILENAMES
from cnnstudy.errors import DataError
from cnnstudy.files import read_stage_json, write_csv, write_json, write_npz
from cnnstudy.idx import IMAGE_SHAPE, read_pair
from cnnstudy.params import PrepareParams, SplitParams

MANIFEST = "manifest.json"
DISTRIBUTION_CSV = "class_distribution.csv"
DISTRIBUTION_PNG = "class_distribution.png"
SAMPLES_PNG = "samples.png"


@dataclass(frozen=True)
class RawData:
    """The four arrays of data/raw and the data set they came from."""

    dataset: str
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) uint8
    source: np.ndarray  # (N,) int64: index in the train files, then len(train) + index in t10k


# ---------------------------------------------------------------- reading
def read_manifest(directory: Path) -> str:
    """The data set named by the fetch stage's manifest.json."""
    path = directory / MANIFEST
    manifest = read_stage_json(path, "run `dvc repro fetch`")
    name = manifest.get("dataset") if isinstance(manifest, dict) else None
    if name not in DATASETS:
        raise DataError(f"{path}: 'dataset' is {name!r}, expected one of {', '.join(DATASETS)}; "
                        f"run `dvc repro fetch`")
    return name


def load_raw(directory: str | Path = Path("data/raw")) -> RawData:
    """Read and validate the four IDX files in `directory` (see cnnstudy.idx)."""
    directory = Path(directory)
    name = read_manifest(directory)
    class_names = DATASETS[name].class_names
    train = read_pair(directory / FILENAMES["train_images"], directory / FILENAMES["train_labels"], len(class_names))
    test = read_pair(directory / FILENAMES["test_images"], directory / FILENAMES["test_labels"], len(class_names))
    return RawData(name, class_names, *train, *test)


def select_classes(raw: RawData, kept: Sequence[int]) -> RawData:
    """The raw data with only the classes `kept` (indices), renumbered 0..k-1 (see class_subset)."""
    return RawData(raw.dataset, class_subset.subset_names(raw.class_names, kept), raw.train_images,
                   class_subset.remap_labels(raw.train_labels, kept), raw.test_images,
                   class_subset.remap_labels(raw.test_labels, kept))


# ---------------------------------------------------------------- splitting
def split_counts(n: int, split: SplitParams) -> tuple[int, int, int]:
    """How n images of one class divide into train/val/test: rounded, and summing to n."""
    n_train = round(n * split.train)
    n_val = min(round(n * split.val), n - n_train)
    return n_train, n_val, n - n_train - n_val


def _class_size(params: PrepareParams, available: int, class_name: str, where: str) -> int:
    if params.per_class is None:
        return available
    if params.per_class > available:
        raise DataError(f"prepare.per_class is {params.per_class}, but class {class_name!r} has only "
                        f"{available} images {where}; lower prepare.per_class or set it to 'all'")
    return params.per_class


def _class_split(k: int, params: PrepareParams) -> tuple[int, int, int]:
    """train/val/test counts for the k images drawn of one class."""
    if params.pool:
        return split_counts(k, params.split)
    # The test set is t10k itself, so the drawn images divide into train and val only.
    n_train = round(k * params.split.train / (params.split.train + params.split.val))
    return n_train, k - n_train, 0


def split_dataset(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                  test_labels: np.ndarray, params: PrepareParams,
                  class_names: Sequence[str] = DIGITS) -> dict[str, Split]:
    """Draw the train/val/test splits, stratified by class.

    pool: true  -- train and t10k files are pooled; per class, `per_class` images
                   (all of them if None) are drawn and divided by split_counts(),
                   so every class gets exactly round(k*train) / round(k*val) / rest.
    pool: false -- the official t10k files stay the test set, ALL of them, in file
                   order, so results compare with published MNIST numbers. Per
                   class, `per_class` images (or all) are drawn from the train files
                   only and divided between train and val in the ratio
                   train : val (prepare.split.test is not used).

    Each drawn split is then shuffled so batches and folds mix the classes.
    """
    rng = np.random.default_rng(params.seed)
    if params.pool:
        candidates = np.concatenate([train_labels, test_labels])
        where = "in the train and t10k files together"
    else:
        candidates = train_labels
        where = "in the train files (pool: false keeps t10k whole as the test set)"

    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for c, class_name in enumerate(class_names):
        members = np.flatnonzero(candidates == c)
        k = _class_size(params, len(members), class_name, where)
        chosen = rng.permutation(members)[:k]
        n_train, n_val, _ = _class_split(k, params)
        parts["train"].append(chosen[:n_train])
        parts["val"].append(chosen[n_train:n_train + n_val])
        parts["test"].append(chosen[n_train + n_val:])  # empty unless pooled

    sources = {name: rng.permutation(np.concatenate(parts[name])) for name in SPLITS}
    if not params.pool:
        # All of t10k in file order, less the classes prepare.classes leaves out.
        sources["test"] = len(train_labels) + np.flatnonzero(test_labels < len(class_names))
    for name, src in sources.items():
        if len(src) == 0:
            raise DataError(f"prepare: the {name} split gets no images with prepare.per_class = "
                            f"{params.per_class}; raise prepare.per_class or prepare.split.{name}")

    # One pooled copy of the pixels (55 MB for full MNIST) makes the gather a single take().
    images = np.concatenate([train_images, test_images])
    labels = np.concatenate([train_labels, test_labels])
    return {name: Split(images[src], labels[src], src.astype(np.int64)) for name, src in sources.items()}


# ---------------------------------------------------------------- describing
def class_counts(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(counts[c]) for c, name in enumerate(class_names)}


def data_headline(dataset: str, splits: Mapping[str, Split]) -> dict:
    """metrics/data.json, a DVC metric: the data set and the images per split."""
    return {"dataset": dataset, "images": {name: len(split.labels) for name, split in splits.items()}}


def data_metrics(dataset: str, splits: Mapping[str, Split], class_names: Sequence[str]) -> dict:
    """metrics/data/details.json: size and class balance of each split. MB = 10^6 bytes of raw pixels."""
    h, w = IMAGE_SHAPE
    metrics: dict = {"dataset": dataset}
    for name, split in splits.items():
        metrics[name] = {
            "images": len(split.labels),
            "per_class": class_counts(split.labels, class_names),
            "resolution": f"{h}x{w}",
            "bytes_per_image": h * w * split.images.itemsize,
            "total_mb": round(split.images.nbytes / 1e6, 3),
        }
    return metrics


def distribution_rows(splits: Mapping[str, Split], class_names: Sequence[str]) -> list[dict]:
    """One row per split and class: split, class, count."""
    return [{"split": name, "class": class_name, "count": count}
            for name, split in splits.items() for class_name, count in class_counts(split.labels, class_names).items()]


def info(raw: RawData, params: PrepareParams, splits: Mapping[str, Split],
         classes: Sequence[int] | None = None) -> dict:
    subset = {} if classes is None else {"raw_classes": list(classes)}  # labels in the raw files
    return {
        "dataset": raw.dataset,
        "class_names": list(raw.class_names),
        **subset,
        "image_shape": list(IMAGE_SHAPE),
        "pool": params.pool,
        "per_class": "all" if params.per_class is None else params.per_class,
        "split": {"train": params.split.train, "val": params.split.val, "test": params.split.test},
        "seed": params.seed,
        "counts": {name: len(split.labels) for name, split in splits.items()},
    }


# ---------------------------------------------------------------- the stage
def run_prepare(params: PrepareParams, raw_dir: str | Path = Path("data/raw"),
                prepared_dir: str | Path = Path("data/prepared"),
                metrics_file: str | Path = Path("metrics/data.json"),
                plots_dir: str | Path = Path("plots/data"), classes=None) -> dict:
    """Read raw_dir, write the splits, metrics (the headline in metrics_file, the per-class
    details in <metrics_file without .json>/details.json) and plots; return info.json's content.

    classes: prepare.classes ('all' or None: every class; else a list of class indices or names).
    """
    from cnnstudy import figures
    from cnnstudy.figures.data import class_distribution_figure, samples_figure

    prepared_dir, plots_dir = Path(prepared_dir), Path(plots_dir)
    raw = load_raw(raw_dir)
    kept = class_subset.resolve_classes(classes, raw.class_names)
    subset = kept != tuple(range(len(raw.class_names)))
    if subset:
        raw = select_classes(raw, kept)
    splits = split_dataset(raw.train_images, raw.train_labels, raw.test_images, raw.test_labels,
                           params, raw.class_names)
    for name, split in splits.items():
        write_npz(prepared_dir / f"{name}.npz", images=split.images, labels=split.labels, source=split.source)
    summary = info(raw, params, splits, kept if subset else None)
    write_json(prepared_dir / INFO_FILE, summary)
    write_json(metrics_file, data_headline(raw.dataset, splits))
    write_json(Path(metrics_file).with_suffix("") / "details.json", data_metrics(raw.dataset, splits, raw.class_names))
    write_csv(plots_dir / DISTRIBUTION_CSV, distribution_rows(splits, raw.class_names))
    figures.save(class_distribution_figure({name: class_counts(s.labels, raw.class_names)
                                            for name, s in splits.items()}), plots_dir / DISTRIBUTION_PNG)
    figures.save(samples_figure({name: (s.images, s.labels) for name, s in splits.items()}, raw.class_names),
                 plots_dir / SAMPLES_PNG)
    return summary
