"""Out-of-distribution images: what the models answer, how repeatable it is, and how well
a confidence score tells them from MNIST.

Four parts, used in this order by stages/outliers.py:

1. Reading a folder of images in any format, size and colour mode, and preprocessing
   each the way MNIST itself was made (greyscale, white ink on black, cropped to the
   ink, fitted into 20x20 with the aspect ratio kept, centred by centre of mass in
   28x28, uint8 0..255 since the models rescale themselves).
2. Repeated queries in three settings: (a) the same model in inference mode, which
   must answer identically; (b) the same model with only its Dropout layers in
   training mode (MC dropout), which answers differently each time; (c) different
   models trained on the same data (the variants and the baseline re-trained with
   other seeds).
3. Out-of-distribution detection: AUROC and FPR at 95% TPR of the max softmax
   probability and of the MC-dropout predictive entropy, with the test split as the
   positive (in-distribution) class.
4. Tables and figures of all of that.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from cnnstudy.errors import DataError, StudyError
from cnnstudy.images_io import open_image_bounded

# ------------------------------------------------------------------ constants
MIN_IMAGES = 10
SIDE = 28            # MNIST's field
BOX = 20             # MNIST's digits were fitted into 20x20 ...
CENTRE = 14.0        # ... and shifted so that the centre of mass (pixel-index coordinates) is
#                      nearest the field's centre: MNIST's own lie in [13.5, 14.5].
INK_THRESHOLD = 0.05  # of the stretched 0..1 range: ink for the bounding box (MNIST: 436 of 500 kept exactly)
BLANK_CONTRAST = 0.02  # less contrast than this between background and brightest pixel: no ink
WORKING_SIDE = 512   # larger images are shrunk to this longest side first (the result is 20x20)
THUMBNAIL_SIDE = 96
TPR_LEVEL = 0.95
ACCURATE = 0.9       # setting (c) also reports the models at least this accurate on the test split
TOP_K = 3

# Files that are obviously not images and not worth a warning.
DOC_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst", ".adoc", ".html", ".htm", ".pdf", ".json",
                          ".yaml", ".yml", ".toml", ".ini", ".cfg", ".csv", ".tsv", ".log", ".dvc"})
DOC_STEMS = ("readme", "license", "licence", "copying", "notice", "authors", "changelog", "credits")
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})

# Settings, as named in every output.
INFERENCE, MC_DROPOUT, MODELS = "inference", "mc_dropout", "models"
SETTINGS = (INFERENCE, MC_DROPOUT, MODELS)
SETTING_TITLES = {
    INFERENCE: "(a) same model, inference mode",
    MC_DROPOUT: "(b) same model, MC dropout",
    MODELS: "(c) different models, same data",
}
SCORES = {"msp": "max softmax probability", "mc_entropy": "MC-dropout predictive entropy (negated)"}

# Outputs.
METRICS_JSON = Path("metrics/outliers.json")
TABLE_MD = Path("metrics/outliers.md")
TABLE_CSV = Path("metrics/outliers.csv")
PLOTS_DIR = Path("plots/outliers")
PREPROCESSING_PNG = PLOTS_DIR / "preprocessing.png"
PROBABILITIES_PNG = PLOTS_DIR / "probabilities.png"
ROC_PNG = PLOTS_DIR / "roc.png"
ROC_CSV = {"msp": PLOTS_DIR / "roc_msp.csv", "mc_entropy": PLOTS_DIR / "roc_mc_entropy.csv"}


def warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# ------------------------------------------------------------------ 1. images
@dataclass(frozen=True)
class OutlierImage:
    name: str               # file name inside the folder
    pixels: np.ndarray      # (28, 28) uint8, white on black: what the model sees
    original: np.ndarray    # small RGB(A) or grey thumbnail of the file, for figures
    mode: str               # PIL mode of the file
    size: tuple[int, int]   # (width, height) of the file
    inverted: bool          # the background was light, so the image was inverted
    blank: bool             # no ink found: the model sees an all-black image


def is_ignored(path: Path) -> bool:
    """Docs (README.md, LICENSE, notes.txt) and system files are skipped without a warning."""
    name = path.name.lower()
    return (name.startswith(".") or name in SYSTEM_FILES or path.suffix.lower() in DOC_SUFFIXES
            or any(name == stem or name.startswith(stem + ".") for stem in DOC_STEMS))


def _is_high_depth(mode: str) -> bool:
    return mode in ("I", "F") or mode.startswith("I;16")


def to_grey(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance in [0, 1] (1 = white) as float32, and the alpha channel in [0, 1] or None.

    8-bit modes go through PIL's ITU-R 601 luma. 16- and 32-bit modes (I;16, I, F) are
    scaled by their own range, from min(0, lowest value) to the highest: a 12-bit scan in
    a 16-bit file uses a sixteenth of the nominal range and must not look blank.
    """
    mode = image.mode
    if _is_high_depth(mode):
        values = np.asarray(image).astype(np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        low = min(0.0, float(values.min()))
        high = float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32), None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        la = np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32) / 255.0
        return la[..., 0], la[..., 1]
    grey = image if mode == "L" else image.convert("RGB").convert("L")
    return np.asarray(grey, dtype=np.float32) / 255.0, None


def flatten_alpha(grey: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite onto the background that contrasts with the visible content.

    Dark ink on transparency goes onto white, light ink onto black, so that neither
    vanishes; the inversion step then makes it white on black either way.
    """
    if alpha is None or float(alpha.min()) >= 1.0:
        return grey
    weight = float(alpha.sum())
    if weight <= 0.0:  # fully transparent: nothing to see
        return np.zeros_like(grey)
    content = float((grey * alpha).sum()) / weight
    background = 0.0 if content > 0.5 else 1.0
    return grey * alpha + background * (1.0 - alpha)


def resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased (Lanczos) resize of a float image, clipped back to [0, 1]."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    resized = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def _shrink(grey: np.ndarray, side: int = WORKING_SIDE) -> np.ndarray:
    height, width = grey.shape
    if max(height, width) <= side:
        return grey
    scale = side / max(height, width)
    return resize(grey, max(1, round(width * scale)), max(1, round(height * scale)))


def border_pixels(values: np.ndarray) -> np.ndarray:
    if values.shape[0] <= 2 or values.shape[1] <= 2:
        return values.ravel()
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def mnist_style(grey: np.ndarray) -> tuple[np.ndarray, dict]:
    """A greyscale image (float, 0..1, any size) -> (28, 28) uint8 the way MNIST was made.

    1. invert when the background is light: the median of the border pixels is
       nearer the image's brightest than its darkest value;
    2. stretch so the background is 0 and the brightest ink 1 (MNIST's background is
       exactly 0);
    3. crop to the bounding box of the ink (pixels above INK_THRESHOLD);
    4. fit into 20x20 keeping the aspect ratio (anti-aliased resize);
    5. place in 28x28 so that the centre of mass is nearest the centre (whole-pixel
       shift), never pushing ink out of the field;
    6. uint8 0..255.
    """
    values = np.asarray(grey, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"expected a non-empty 2-D greyscale image, got shape {values.shape}")
    background = float(np.median(border_pixels(values)))
    low, high = float(values.min()), float(values.max())
    inverted = background > (low + high) / 2
    if inverted:
        values, background = 1.0 - values, 1.0 - background
    top = float(values.max())
    info = {"inverted": bool(inverted), "blank": False}
    if top - background < BLANK_CONTRAST:
        info["blank"] = True
        return np.zeros((SIDE, SIDE), np.uint8), info
    values = np.clip((values - background) / (top - background), 0.0, 1.0)
    ink = values > INK_THRESHOLD
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = values[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = crop if (new_w, new_h) == (width, height) else resize(crop, new_w, new_h)
    mass = float(small.sum())
    if mass > 0:
        ys, xs = np.indices(small.shape)
        com_y, com_x = float((ys * small).sum()) / mass, float((xs * small).sum()) / mass
    else:  # pragma: no cover - the crop holds ink above the threshold
        com_y, com_x = (new_h - 1) / 2, (new_w - 1) / 2
    top_row = int(np.clip(math.floor(CENTRE - com_y + 0.5), 0, SIDE - new_h))
    left_col = int(np.clip(math.floor(CENTRE - com_x + 0.5), 0, SIDE - new_w))
    canvas = np.zeros((SIDE, SIDE))
    canvas[top_row:top_row + new_h, left_col:left_col + new_w] = small
    return np.round(canvas * 255.0).astype(np.uint8), info


def _thumbnail(image: Image.Image, grey: np.ndarray) -> np.ndarray:
    if _is_high_depth(image.mode):
        thumb = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    else:
        thumb = image.convert("RGBA")
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(thumb)


def preprocess_image(image: Image.Image, name: str = "") -> OutlierImage:
    grey, alpha = to_grey(image)
    flat = flatten_alpha(grey, alpha)
    pixels, info = mnist_style(_shrink(flat))
    return OutlierImage(name=name, pixels=pixels, original=_thumbnail(image, flat), mode=image.mode,
                        size=image.size, inverted=info["inverted"], blank=info["blank"])


def read_image(path: str | Path) -> OutlierImage:
    """Decode and preprocess one file; any decoder error propagates (the caller skips the file)."""
    path = Path(path)
    upright = open_image_bounded(path)  # bounded decoding; phone photos: the EXIF rotation applied
    return preprocess_image(upright, path.name)


def load_folder(folder: str | Path, warn: Callable[[str], None] = warn_stderr,
                minimum: int = MIN_IMAGES) -> tuple[list[OutlierImage], list[tuple[str, str]]]:
    """Every readable image directly in `folder` (sorted by name), and the skipped files.

    Docs and hidden files are ignored silently, subfolders are not searched; a file
    that fails to decode is listed in one warning. Fewer than `minimum` usable
    images is a DataError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: the outlier image folder does not exist; "
                        f"create it with at least {minimum} images or set outliers.dir in params.yaml")
    images: list[OutlierImage] = []
    skipped: list[tuple[str, str]] = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink() and not path.exists() and not is_ignored(path):
            skipped.append((path.name, "broken symbolic link (its target is missing, or a link loop)"))
        if not path.is_file() or is_ignored(path):  # folders, FIFOs (would block), devices
            continue
        try:
            images.append(read_image(path))
        except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, the file is not a usable image
            reason = f"{type(exc).__name__}: {exc}"
            skipped.append((path.name, reason if len(reason) <= 120 else reason[:117] + "..."))
    if skipped:
        warn(f"{folder}: skipped {len(skipped)} file(s) that are not readable images: "
             + "; ".join(f"{name} ({reason})" for name, reason in skipped))
    blank = [image.name for image in images if image.blank]
    if blank:
        warn(f"{folder}: no ink found in {', '.join(blank)}; the model sees an all-black image")
    if len(images) < minimum:
        raise DataError(f"{folder}: only {len(images)} usable image(s), at least {minimum} are needed"
                        f"{f' ({len(skipped)} unreadable file(s) skipped)' if skipped else ''}; "
                        "add images (png, jpg, ...; subfolders are not searched) or set outliers.dir")
    return images, skipped


# ------------------------------------------------------------------ 2. queries
def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis (0 .. ln 10 = 2.303 for 10 classes)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=-1)


def top_k(probabilities: np.ndarray, k: int = TOP_K) -> list[tuple[int, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(c), float(probabilities[c])) for c in order]


def chain_layers(model) -> list:
    """The layers of a linear-chain model in call order (without the InputLayer).

    MC dropout calls them one by one, so the chain must really be a chain: each
    layer's input is the previous layer's output.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0] if len(model.inputs) == 1 else None
    try:
        for layer in layers:
            if previous is None or layer.input is not previous:
                raise ValueError(layer.name)
            previous = layer.output
        if len(model.outputs) != 1 or previous is not model.outputs[0]:
            raise ValueError("output")
    except (AttributeError, ValueError) as exc:
        raise StudyError(f"model {model.name!r} is not a linear chain of layers (at {exc}); "
                         "MC dropout needs one") from None
    return layers


def mc_dropout_proba(model, images: np.ndarray, seed: int, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities with ONLY the Dropout layers in training mode.

    BatchNormalization keeps its moving statistics and the augmentation layers stay
    off: the layers are called in order, each with training=isinstance(layer, Dropout).
    Reproducible: the global seed and every Dropout layer's seed generator are set
    from `seed` (the generators' state is restored afterwards).
    """
    import keras

    from cnnstudy.training import as_model_input

    layers = chain_layers(model)
    generators = [layer.seed_generator for layer in layers
                  if isinstance(layer, keras.layers.Dropout) and getattr(layer, "seed_generator", None) is not None]
    saved = [np.array(g.state.numpy()) for g in generators]
    keras.utils.set_random_seed(seed)
    for index, generator in enumerate(generators):
        generator.state.assign(np.array([seed, index * 1_000_003], dtype=saved[index].dtype))
    x_all = as_model_input(np.asarray(images)).astype("float32")
    try:
        out = []
        for start in range(0, len(x_all), batch_size):
            x = keras.ops.convert_to_tensor(x_all[start:start + batch_size])
            for layer in layers:
                x = layer(x, training=isinstance(layer, keras.layers.Dropout))
            out.append(np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64))
    finally:
        for generator, state in zip(generators, saved):
            generator.state.assign(state)
    return np.concatenate(out) if out else np.zeros((0, 10))


def inference_repeats(model, images: np.ndarray, repeats: int) -> np.ndarray:
    """(repeats, N, classes): the same images through predict, `repeats` times."""
    from cnnstudy.evaluation import predict_proba

    return np.stack([predict_proba(model, images) for _ in range(repeats)])


def mc_dropout_repeats(model, images: np.ndarray, repeats: int, seed: int) -> np.ndarray:
    """(repeats, N, classes): MC-dropout passes with seeds seed, seed+1, ..."""
    return np.stack([mc_dropout_proba(model, images, seed + r) for r in range(repeats)])


def max_abs_difference(samples: np.ndarray) -> float:
    """Largest |p_r - p_0| over repeats r, images and classes (0.0: identical vectors)."""
    samples = np.asarray(samples)
    return float(np.max(np.abs(samples - samples[:1]))) if samples.size else 0.0


def dropout_rate(model) -> float:
    import keras

    rates = [float(layer.rate) for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    return max(rates, default=0.0)


@dataclass
class ModelQueries:
    """Everything asked of one model: outliers (N) and the in-distribution test split (M)."""

    name: str
    dropout: float
    inference_out: np.ndarray   # (N, C)
    inference_in: np.ndarray    # (M, C)
    repeats_out: np.ndarray     # (R, N, C) setting (a)
    mc_out: np.ndarray          # (R, N, C) setting (b)
    mc_in: np.ndarray           # (R, M, C)
    test_accuracy: float | None = None
    extra: dict = field(default_factory=dict)


def query_model(model, name: str, outliers: np.ndarray, test_images: np.ndarray, repeats: int,
                seed: int, test_labels: np.ndarray | None = None) -> ModelQueries:
    from cnnstudy.evaluation import predict_proba

    repeats_out = inference_repeats(model, outliers, repeats)
    inference_in = predict_proba(model, test_images)
    both = np.concatenate([outliers, test_images])
    mc = mc_dropout_repeats(model, both, repeats, seed)
    accuracy = None if test_labels is None else float(np.mean(inference_in.argmax(1) == test_labels))
    return ModelQueries(name=name, dropout=dropout_rate(model), inference_out=repeats_out[0],
                        inference_in=inference_in, repeats_out=repeats_out, mc_out=mc[:, :len(outliers)],
                        mc_in=mc[:, len(outliers):], test_accuracy=accuracy)


def mc_spread(mc: np.ndarray, inference: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: how much MC-dropout answers vary, against the inference-mode answer."""
    max_prob = mc.max(axis=-1)                          # (R, N)
    classes = mc.argmax(axis=-1)                        # (R, N)
    reference = inference.argmax(axis=-1)               # (N,)
    return {
        "std_max_prob": max_prob.std(axis=0),
        "class_changes": (classes != reference).sum(axis=0),  # repeats whose class differs from inference mode
        "distinct_classes": np.array([len(set(column)) for column in classes.T]),
        "max_abs_diff": np.abs(mc - mc[:1]).max(axis=(0, 2)) if mc.size else np.zeros(0),
    }


def model_agreement(predictions: dict[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Per image: the share of the other models predicting the reference model's class,
    and the number of distinct classes over all models."""
    ref = predictions[reference]
    others = [p for name, p in predictions.items() if name != reference]
    stacked = np.stack(list(predictions.values()))
    return {
        "agreement": np.mean([p == ref for p in others], axis=0) if others else np.ones(len(ref)),
        "distinct_classes": np.array([len(set(column)) for column in stacked.T]),
    }


# ------------------------------------------------------------------ 3. detection
def _scores(in_scores: Sequence[float], out_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(in_scores, dtype=np.float64).ravel()
    neg = np.asarray(out_scores, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("need at least one in-distribution and one outlier score")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg))):
        raise ValueError("scores must be finite")
    return pos, neg


def auroc(in_scores: Sequence[float], out_scores: Sequence[float]) -> float:
    """Area under the ROC curve; in-distribution is the positive class (higher score = more in)."""
    from sklearn.metrics import roc_auc_score

    pos, neg = _scores(in_scores, out_scores)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    return float(roc_auc_score(labels, np.concatenate([pos, neg])))


def fpr_at_tpr(in_scores: Sequence[float], out_scores: Sequence[float], level: float = TPR_LEVEL) -> float:
    """The smallest false-positive rate among thresholds whose true-positive rate is >= `level`.

    A threshold t accepts score >= t as in-distribution. TPR and FPR only fall as t
    rises, so the answer is at the highest t that still keeps `level` of the
    positives: the k-th highest positive score, k = ceil(level * n_pos). Every
    outlier scoring at least that is a false positive (ties count against the
    detector, as they must: no threshold separates tied scores).
    """
    pos, neg = _scores(in_scores, out_scores)
    if not 0.0 < level <= 1.0:
        raise ValueError(f"TPR level must be in (0, 1], got {level}")
    # round() first: e.g. 0.55 * 100 is 55.00000000000001 in binary floating point, which ceil() makes 56.
    k = max(1, math.ceil(round(level * len(pos), 9)))
    threshold = np.sort(pos)[::-1][k - 1]
    return float(np.mean(neg >= threshold))


def fpr_at_95_tpr(in_scores: Sequence[float], out_scores: Sequence[float]) -> float:
    return fpr_at_tpr(in_scores, out_scores, 0.95)


def roc_points(in_scores: Sequence[float], out_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    pos, neg = _scores(in_scores, out_scores)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([pos, neg]))
    return fpr, tpr


def detection_scores(queries: ModelQueries) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Score name -> (in-distribution scores, outlier scores); higher means more in-distribution."""
    return {
        "msp": (queries.inference_in.max(axis=1), queries.inference_out.max(axis=1)),
        "mc_entropy": (-entropy(queries.mc_in.mean(axis=0)), -entropy(queries.mc_out.mean(axis=0))),
    }


def detection_metrics(queries: ModelQueries) -> dict:
    result = {}
    for score, (pos, neg) in detection_scores(queries).items():
        result[score] = {"auroc": auroc(pos, neg), "fpr95": fpr_at_95_tpr(pos, neg),
                         "mean_in": float(np.mean(pos)), "mean_out": float(np.mean(neg))}
    return result


def roc_csv(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """Long format for DVC's `series` template: one row per point, `series` = model."""
    lines = ["series,fpr,tpr"]
    for series, (fpr, tpr) in curves.items():
        lines += [f"{series},{f:.6g},{t:.6g}" for f, t in zip(fpr, tpr)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the study
@dataclass
class Study:
    images: list[OutlierImage]
    skipped: list[tuple[str, str]]
    class_names: tuple[str, ...]
    queries: dict[str, ModelQueries]      # every model, variants first, then the seed re-trainings
    variants: list[str]                   # models of params.models
    seed_models: dict[str, int]           # re-trained baseline name -> seed
    repeats: int
    mc_seed: int
    reference: str = "baseline"
    timings: dict = field(default_factory=dict)

    # -------------------------------------------------------------- per image
    def per_image(self) -> list[dict]:
        """One row per image and setting, the reference model's answers for (a) and (b),
        the mean over all models for (c)."""
        ref = self.queries[self.reference]
        spread = mc_spread(ref.mc_out, ref.inference_out)
        repeat_diff = np.abs(ref.repeats_out - ref.repeats_out[:1]).max(axis=(0, 2))
        predictions = {name: q.inference_out.argmax(1) for name, q in self.queries.items()}
        agree = model_agreement(predictions, self.reference)
        ensemble = np.mean([q.inference_out for q in self.queries.values()], axis=0)
        seeds_agree = model_agreement({n: predictions[n] for n in self._seed_group()}, self.reference)
        rows = []
        for i, image in enumerate(self.images):
            for setting, vector in ((INFERENCE, ref.inference_out[i]), (MC_DROPOUT, ref.mc_out[:, i].mean(0)),
                                    (MODELS, ensemble[i])):
                row = {"image": image.name, "setting": setting, **self._describe(vector)}
                if setting == INFERENCE:
                    row.update(model=self.reference, queries=self.repeats, max_abs_diff=float(repeat_diff[i]))
                elif setting == MC_DROPOUT:
                    row.update(model=self.reference, queries=self.repeats,
                               std_max_prob=float(spread["std_max_prob"][i]),
                               class_changes=int(spread["class_changes"][i]),
                               distinct_classes=int(spread["distinct_classes"][i]),
                               max_abs_diff=float(spread["max_abs_diff"][i]))
                else:
                    votes = [self.class_names[predictions[n][i]] for n in self.queries]
                    row.update(model="mean of all", queries=len(self.queries),
                               reference_class=self.class_names[predictions[self.reference][i]],
                               agreement=float(agree["agreement"][i]),
                               distinct_classes=int(agree["distinct_classes"][i]),
                               seed_agreement=float(seeds_agree["agreement"][i]),
                               votes=" ".join(votes))
                rows.append(row)
        return rows

    def _describe(self, vector: np.ndarray) -> dict:
        top = top_k(vector)
        return {"predicted": self.class_names[top[0][0]], "max_prob": top[0][1],
                "entropy": float(entropy(vector)),
                "top3": ", ".join(f"{self.class_names[c]}: {p:.3f}" for c, p in top)}

    def _seed_group(self) -> list[str]:
        return [self.reference, *self.seed_models]

    # -------------------------------------------------------------- summaries
    def setting_summaries(self) -> dict:
        ref = self.queries[self.reference]
        spread = {name: mc_spread(q.mc_out, q.inference_out) for name, q in self.queries.items()}
        predictions = {name: q.inference_out.argmax(1) for name, q in self.queries.items()}
        test_predictions = {name: q.inference_in.argmax(1) for name, q in self.queries.items()}
        n = len(self.images)

        def agreement_summary(names: list[str]) -> dict:
            group = {k: predictions[k] for k in names}
            agree = model_agreement(group, self.reference)
            test_agree = model_agreement({k: test_predictions[k] for k in names}, self.reference)
            return {
                "models": names,
                "mean_agreement_with_reference": float(agree["agreement"].mean()),
                "images_all_agree": int(np.sum(agree["distinct_classes"] == 1)),
                "mean_distinct_classes": float(agree["distinct_classes"].mean()),
                "max_distinct_classes": int(agree["distinct_classes"].max()),
                "test_mean_agreement_with_reference": float(test_agree["agreement"].mean()),
                "test_images_all_agree_rate": float(np.mean(test_agree["distinct_classes"] == 1)),
            }

        return {
            INFERENCE: {
                "model": self.reference,
                "queries": self.repeats,
                "max_abs_diff": max_abs_difference(ref.repeats_out),
                "identical": bool(max_abs_difference(ref.repeats_out) == 0.0),
                "max_abs_diff_any_model": max(max_abs_difference(q.repeats_out) for q in self.queries.values()),
            },
            MC_DROPOUT: {
                "model": self.reference,
                "queries": self.repeats,
                "seeds": [self.mc_seed + r for r in range(self.repeats)],
                "dropout": ref.dropout,
                "max_abs_diff": max_abs_difference(ref.mc_out),
                "mean_std_max_prob": float(spread[self.reference]["std_max_prob"].mean()),
                "max_std_max_prob": float(spread[self.reference]["std_max_prob"].max()),
                "class_change_rate": float(spread[self.reference]["class_changes"].sum() / (self.repeats * n)),
                "images_with_class_change": int(np.sum(spread[self.reference]["class_changes"] > 0)),
                "per_model": {name: {"dropout": self.queries[name].dropout,
                                     "mean_std_max_prob": float(s["std_max_prob"].mean()),
                                     "class_change_rate": float(s["class_changes"].sum() / (self.repeats * n)),
                                     "images_with_class_change": int(np.sum(s["class_changes"] > 0))}
                              for name, s in spread.items()},
            },
            MODELS: {
                "reference": self.reference,
                "all": agreement_summary(list(self.queries)),
                # A model that is broken on digits (an untrained optimizer, stale BatchNorm
                # statistics) disagrees on everything; this group shows the rest without it.
                "accurate": {**agreement_summary([n for n, q in self.queries.items() if n == self.reference
                                                  or (q.test_accuracy or 0.0) >= ACCURATE]),
                             "min_test_accuracy": ACCURATE},
                "seeds_only": {**agreement_summary(self._seed_group()),
                               "seeds": {name: seed for name, seed in self.seed_models.items()}},
            },
        }

    def detection(self) -> dict:
        result = {}
        for name, q in self.queries.items():
            result[name] = {"test_accuracy": q.test_accuracy, "dropout": q.dropout, **detection_metrics(q)}
            if name in self.seed_models:
                result[name]["retrained_seed"] = self.seed_models[name]
        return result

    def roc_curves(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        curves: dict[str, dict] = {score: {} for score in SCORES}
        for name, q in self.queries.items():
            for score, (pos, neg) in detection_scores(q).items():
                curves[score][name] = roc_points(pos, neg)
        return curves

    def metrics(self) -> dict:
        detection = self.detection()
        variants = {name: detection[name] for name in self.variants}
        return {
            "outliers": len(self.images),
            "skipped": [name for name, _ in self.skipped],
            "inverted": sum(image.inverted for image in self.images),
            "in_distribution": {"split": "test", "images": int(len(self.queries[self.reference].inference_in))},
            "repeats": self.repeats,
            "detection": detection,
            "best": {score: max(variants, key=lambda n: variants[n][score]["auroc"]) for score in SCORES},
            "settings": self.setting_summaries(),
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }


# ------------------------------------------------------------------ 4. tables
def _fmt(value, spec: str = "{:.3f}") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return spec.format(value)
    return str(value)


def _md_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


CSV_COLUMNS = ("image", "setting", "model", "queries", "predicted", "max_prob", "entropy", "top3",
               "max_abs_diff", "std_max_prob", "class_changes", "distinct_classes", "reference_class",
               "agreement", "seed_agreement", "votes")


def per_image_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def markdown_report(study: Study, metrics: dict) -> str:
    settings = metrics["settings"]
    inf, mc, mod = settings[INFERENCE], settings[MC_DROPOUT], settings[MODELS]
    det = metrics["detection"]
    lines = [
        "# Outliers: images that are not digits",
        "",
        f"{metrics['outliers']} images ({metrics['inverted']} inverted from a light background"
        + (f"; skipped as unreadable: {', '.join(metrics['skipped'])}" if metrics["skipped"] else "")
        + f") against the {metrics['in_distribution']['images']} images of the test split. "
        f"Each setting asks {study.repeats} times; probabilities are the reference model "
        f"`{study.reference}`'s, (c) the mean over {len(study.queries)} models.",
        "",
        "## Repeated queries",
        "",
        f"- (a) same model in inference mode: max |difference| between the {inf['queries']} probability "
        f"vectors = **{inf['max_abs_diff']:.1f}** ({'identical' if inf['identical'] else 'NOT identical'}; "
        f"over all {len(study.queries)} models: {inf['max_abs_diff_any_model']:.1f}).",
        f"- (b) MC dropout (rate {mc['dropout']}, only Dropout layers in training mode, seeds {mc['seeds']}): "
        f"max |difference| {mc['max_abs_diff']:.3f}; std of the max probability {mc['mean_std_max_prob']:.3f} "
        f"on average (max {mc['max_std_max_prob']:.3f}); the predicted class differs from inference mode in "
        f"{mc['class_change_rate']:.1%} of the queries, on {mc['images_with_class_change']} of "
        f"{metrics['outliers']} images.",
        f"- (c) {len(mod['all']['models'])} models on the same data: they agree with `{study.reference}` "
        f"on {mod['all']['mean_agreement_with_reference']:.1%} of (model, outlier) pairs, all agree on "
        f"{mod['all']['images_all_agree']} of {metrics['outliers']} outliers, "
        f"{mod['all']['mean_distinct_classes']:.2f} distinct classes per outlier on average "
        f"(max {mod['all']['max_distinct_classes']}); on the test split they agree on "
        f"{mod['all']['test_mean_agreement_with_reference']:.1%}. "
        f"Only the {len(mod['accurate']['models'])} models with test accuracy >= {ACCURATE:.0%}: "
        f"{mod['accurate']['mean_agreement_with_reference']:.1%} on outliers "
        f"({mod['accurate']['mean_distinct_classes']:.2f} distinct classes), "
        f"{mod['accurate']['test_mean_agreement_with_reference']:.1%} on the test split. "
        f"The baseline re-trained with seeds {list(study.seed_models.values())} alone: "
        f"{mod['seeds_only']['mean_agreement_with_reference']:.1%} agreement on outliers, "
        f"{mod['seeds_only']['test_mean_agreement_with_reference']:.1%} on the test split.",
        "",
        "## Out-of-distribution detection (test split = positive class)",
        "",
        "AUROC: 1 separates perfectly, 0.5 is chance. FPR95: the share of outliers taken for digits at the "
        "threshold that keeps 95% of the test digits (lower is better). Hendrycks & Gimpel's MNIST baseline "
        "reports AUROC 0.83 to 0.98 across outlier sets.",
        "",
    ]
    header = ["model", "dropout", "test acc", "AUROC (MSP)", "FPR95 (MSP)", "AUROC (MC entropy)",
              "FPR95 (MC entropy)", "mean MSP test", "mean MSP outliers"]
    rows = []
    for name, d in det.items():
        label = f"{name} (re-trained)" if "retrained_seed" in d else name
        rows.append([label, _fmt(d["dropout"], "{:.2f}"), _fmt(d["test_accuracy"], "{:.2%}"),
                     _fmt(d["msp"]["auroc"]), _fmt(d["msp"]["fpr95"], "{:.1%}"),
                     _fmt(d["mc_entropy"]["auroc"]), _fmt(d["mc_entropy"]["fpr95"], "{:.1%}"),
                     _fmt(d["msp"]["mean_in"]), _fmt(d["msp"]["mean_out"])])
    lines += [_md_table(header, rows), ""]
    rows_by_setting: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for row in study.per_image():
        rows_by_setting[row["setting"]].append(row)
    lines += ["## Per image", ""]
    lines += [f"### {SETTING_TITLES[INFERENCE]}: `{study.reference}`", "",
              _md_table(["image", "predicted", "max prob", "entropy", "top 3", "max abs diff"],
                        [[r["image"], r["predicted"], _fmt(r["max_prob"]), _fmt(r["entropy"]), r["top3"],
                          _fmt(r["max_abs_diff"], "{:.1f}")] for r in rows_by_setting[INFERENCE]]), ""]
    lines += [f"### {SETTING_TITLES[MC_DROPOUT]}: `{study.reference}`, mean of {study.repeats} passes", "",
              _md_table(["image", "predicted", "max prob", "entropy", "top 3", "std of max prob",
                         "class changes", "distinct classes"],
                        [[r["image"], r["predicted"], _fmt(r["max_prob"]), _fmt(r["entropy"]), r["top3"],
                          _fmt(r["std_max_prob"]), f"{r['class_changes']}/{study.repeats}", r["distinct_classes"]]
                         for r in rows_by_setting[MC_DROPOUT]]), ""]
    lines += [f"### {SETTING_TITLES[MODELS]}: mean of {len(study.queries)} models", "",
              f"Votes in the order: {', '.join(study.queries)}.", "",
              _md_table(["image", "predicted (mean)", "max prob", "entropy", "top 3", f"{study.reference} says",
                         "agreement", "seed agreement", "distinct classes", "votes"],
                        [[r["image"], r["predicted"], _fmt(r["max_prob"]), _fmt(r["entropy"]), r["top3"],
                          r["reference_class"], _fmt(r["agreement"], "{:.0%}"), _fmt(r["seed_agreement"], "{:.0%}"),
                          r["distinct_classes"], r["votes"]] for r in rows_by_setting[MODELS]]), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def preprocessing_figure(images: Sequence[OutlierImage], cols: int = 6):
    """Each file as read beside the 28x28 image the model sees."""
    plt = _plt()
    rows = max(1, math.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2 * cols * 1.15, rows * 1.45), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        left, right = axes[r, 2 * c], axes[r, 2 * c + 1]
        left.imshow(image.original, cmap="gray" if image.original.ndim == 2 else None, vmin=0, vmax=255)
        left.set_title(_short(image.name), fontsize=6.5)
        right.imshow(image.pixels, cmap="gray", vmin=0, vmax=255)
        right.set_title("model sees" + (" (inv.)" if image.inverted else ""), fontsize=6.5)
    fig.suptitle("Outliers: file (left) and the MNIST-style 28x28 input (right)", fontsize=10)
    fig.tight_layout()
    return fig


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def probabilities_figure(study: Study, cols: int = 2):
    """Per outlier: the input, then the class probabilities in each setting.

    (a) the reference model's vector (all repeats identical); (b) the mean of the
    MC-dropout passes with each pass as a dot; (c) the mean over models with each
    model's probability as a dot.
    """
    plt = _plt()
    ref = study.queries[study.reference]
    all_models = np.stack([q.inference_out for q in study.queries.values()])  # (K, N, C)
    n = len(study.images)
    rows = max(1, math.ceil(n / cols))
    per = 1 + len(SETTINGS)
    fig, axes = plt.subplots(rows, cols * per, figsize=(cols * per * 1.9, rows * 1.25), squeeze=False,
                             gridspec_kw={"width_ratios": [0.7, 1, 1, 1] * cols})
    for ax in axes.ravel():
        ax.axis("off")
    classes = np.arange(len(study.class_names))
    colours = {INFERENCE: "tab:blue", MC_DROPOUT: "tab:orange", MODELS: "tab:green"}
    for i, image in enumerate(study.images):
        r, c = divmod(i, cols)
        ax = axes[r, c * per]
        ax.imshow(image.pixels, cmap="gray", vmin=0, vmax=255)
        ax.set_title(_short(image.name, 16), fontsize=6.5)
        samples = {INFERENCE: ref.repeats_out[:, i], MC_DROPOUT: ref.mc_out[:, i], MODELS: all_models[:, i]}
        for s, setting in enumerate(SETTINGS):
            ax = axes[r, c * per + 1 + s]
            ax.axis("on")
            mean = samples[setting].mean(axis=0)
            ax.bar(classes, mean, color=colours[setting], alpha=0.75, width=0.8)
            if setting != INFERENCE:
                for sample in samples[setting]:
                    ax.plot(classes, sample, ".", color="black", markersize=2, alpha=0.6)
            ax.set_ylim(0, 1.02)
            ax.set_xticks(classes, study.class_names if len(study.class_names[0]) <= 2 else classes, fontsize=5)
            ax.tick_params(axis="y", labelsize=5)
            if r == 0:
                ax.set_title(SETTING_TITLES[setting], fontsize=6.5)
    fig.suptitle(f"Class probabilities per outlier: (a) {study.reference}, inference mode; (b) {study.reference}, "
                 f"MC dropout ({study.repeats} passes as dots); (c) mean of {len(study.queries)} models "
                 "(each as a dot)", fontsize=9)
    fig.tight_layout()
    return fig


def roc_figure(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], detection: dict):
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(6.2 * len(curves), 5.0), squeeze=False)
    for ax, (score, per_model) in zip(axes[0], curves.items()):
        colours = plt.get_cmap("tab20").colors
        for i, (name, (fpr, tpr)) in enumerate(per_model.items()):
            # Straight segments between the ROC points: tied scores make diagonal steps.
            ax.plot(fpr, tpr, color=colours[(2 * i) % 20 + (i >= 10)], linewidth=2.2 if name == "baseline" else 1.0,
                    linestyle="--" if "retrained_seed" in detection[name] else "-",
                    label=f"{name} ({detection[name][score]['auroc']:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.axhline(TPR_LEVEL, color="grey", linewidth=0.6)
        ax.set_xlabel("false positive rate (outliers taken for digits)")
        ax.set_ylabel("true positive rate (test digits kept)")
        ax.set_title(f"ROC, {SCORES[score]}")
        ax.legend(fontsize=6.5, title="model (AUROC)", title_fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_outputs(study: Study) -> dict:
    """Every output of the stage, each written atomically; returns the metrics."""
    from cnnstudy.files import save_figure, write_json, write_text

    metrics = study.metrics()
    curves = study.roc_curves()
    for score, path in ROC_CSV.items():
        write_text(path, roc_csv(curves[score]))
    write_text(TABLE_CSV, per_image_csv(study.per_image()))
    write_text(TABLE_MD, markdown_report(study, metrics))
    save_figure(preprocessing_figure(study.images), PREPROCESSING_PNG)
    save_figure(probabilities_figure(study), PROBABILITIES_PNG, dpi=100)
    save_figure(roc_figure(curves, metrics["detection"]), ROC_PNG)
    write_json(METRICS_JSON, metrics)
    return metrics


# ------------------------------------------------------------------ re-training
def retrain_baseline(params, seed: int, data, kfold_file: str | Path = Path("metrics/kfold.json"),
                     log: Callable[[str], None] = print):
    """The baseline trained again with another seed, by the train stage's code path
    (the caller has selected the device and precision, as stages/train.py does)."""
    import dataclasses

    from cnnstudy import runtime
    from cnnstudy.kfold import resolve_epochs
    from cnnstudy.models import build_cnn, compile_model
    from cnnstudy.training import fit

    cfg = dataclasses.replace(params.train, seed=seed)
    runtime.seed_everything(cfg.seed)
    epochs = resolve_epochs(params.train, params.train, kfold_file)
    model = compile_model(build_cnn(cfg, name=f"baseline_seed{seed}"), cfg)
    result = fit(model, cfg, data.train, data.val, epochs)
    log(f"  baseline re-trained with seed {seed}: {epochs} epochs in {result.train_time_s:.1f}s, "
        f"val accuracy {result.last('val_accuracy'):.4f}")
    return model
