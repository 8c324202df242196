"""The outliers stage's library: MNIST-style preprocessing of any image file, the three
repeated-query settings (inference, MC dropout, other models) and the OOD metrics."""

from __future__ import annotations

import dataclasses

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnstudy import detection as det
from cnnstudy import image_prep as prep
from cnnstudy import outlier_report as report
from cnnstudy import outliers as O
from cnnstudy import queries as Q
from cnnstudy import runtime
from cnnstudy.errors import DataError, StudyError
from cnnstudy.idx import read_images
from cnnstudy.params import REPO_ROOT, TrainParams

runtime.select_device("cpu")

import keras  # noqa: E402

from cnnstudy.evaluation import predict_proba  # noqa: E402
from cnnstudy.models import build_cnn  # noqa: E402

BUNDLED = REPO_ROOT / "data" / "bundled" / "mnist-sample"


# ------------------------------------------------------------------ helpers
def ink_box(pixels: np.ndarray) -> tuple[int, int]:
    """(height, width) of the bounding box of the non-zero pixels."""
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(pixels.shape)
    mass = pixels.astype(float).sum()
    return float((ys * pixels).sum() / mass), float((xs * pixels).sum() / mass)


def blob(height: int, width: int, ink: float = 1.0, background: float = 0.0,
         centre: tuple[float, float] | None = None, radii: tuple[float, float] | None = None) -> np.ndarray:
    """A filled ellipse (digit-like blob) as floats in [0, 1]."""
    cy, cx = centre or ((height - 1) / 2, (width - 1) / 2)
    ry, rx = radii or (height * 0.3, width * 0.2)
    ys, xs = np.indices((height, width))
    inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
    return np.where(inside, ink, background)


def l_shape(height: int = 45, width: int = 33) -> np.ndarray:
    """An asymmetric glyph (an L with a thick foot): its centre of mass is far from its box centre."""
    image = np.zeros((height, width))
    image[5:40, 6:11] = 1.0
    image[32:40, 6:28] = 1.0
    return image


def save(path, array01: np.ndarray, mode: str = "L") -> None:
    Image.fromarray(np.round(array01 * 255).astype(np.uint8)).convert(mode).save(path)


def good_folder(tmp_path, count: int):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(count):
        save(folder / f"img{i:02d}.png", blob(30 + i, 25, centre=(12 + i % 5, 12)))
    return folder


# ------------------------------------------------------------------ preprocessing
def test_dark_blob_on_light_background_is_inverted():
    grey = blob(60, 40, ink=0.1, background=0.9, centre=(25, 18))
    pixels, info = prep.mnist_style(grey)
    assert info == {"inverted": True, "blank": False}
    assert pixels.dtype == np.uint8 and pixels.shape == (28, 28)
    assert pixels[0, 0] == 0 and pixels[-1, -1] == 0          # white on black, as MNIST
    assert pixels.max() == 255                                # the ink is stretched to full white
    assert max(ink_box(pixels)) == 20                         # fitted into 20x20


def test_light_ink_on_dark_background_is_not_inverted():
    pixels, info = prep.mnist_style(blob(40, 40, ink=0.8, background=0.15))
    assert not info["inverted"]
    assert pixels[0, 0] == 0 and pixels.max() == 255


def test_wide_bar_keeps_its_aspect_ratio():
    grey = np.zeros((50, 120))
    grey[20:30, 10:110] = 1.0                                 # 100 x 10: aspect 10:1
    pixels, _ = prep.mnist_style(grey)
    assert ink_box(pixels) == (2, 20)                         # 20 x 2, not stretched to 20 x 20
    tall = np.zeros((90, 40))
    tall[5:85, 10:30] = 1.0                                   # 20 x 80: aspect 1:4
    assert ink_box(prep.mnist_style(tall)[0]) == (20, 5)


@pytest.mark.parametrize("grey", [l_shape(), blob(70, 50, centre=(10, 40), radii=(8, 6)),
                                  np.rot90(l_shape(), 2)], ids=["L-shape", "off-centre blob", "rotated L"])
def test_result_is_centred_by_centre_of_mass(grey):
    pixels, _ = prep.mnist_style(grey)
    cy, cx = centre_of_mass(pixels)
    assert abs(cy - prep.CENTRE) <= 0.5 and abs(cx - prep.CENTRE) <= 0.5
    box_h, box_w = ink_box(pixels)
    rows = np.flatnonzero(pixels.any(axis=1))
    # For the L, centring by mass is not centring the box: the box sits off-centre.
    if grey.shape == (45, 33):
        assert rows[0] + (box_h - 1) / 2 != pytest.approx(13.5, abs=0.6)


def test_mnist_digits_come_through_nearly_unchanged():
    """MNIST was made this way, so its own digits are (almost) a fixed point."""
    digits = read_images(BUNDLED / "t10k-images-idx3-ubyte.gz")[:200]
    out = np.stack([prep.mnist_style(d / 255.0)[0] for d in digits])
    assert np.mean([np.array_equal(a, b) for a, b in zip(out, digits)]) > 0.8
    assert np.abs(out.astype(float) - digits).mean() / 255 < 0.001


def test_blank_image_gives_black_input():
    pixels, info = prep.mnist_style(np.full((30, 30), 0.7))
    assert info["blank"] and not pixels.any()


def _mode_image(mode: str, size: tuple[int, int]) -> Image.Image:
    """The same dark L-ish glyph on a light background, in `mode`, `size` = (width, height)."""
    width, height = size
    grey = np.full((height, width), 0.92)
    grey[height // 6:height * 5 // 6, width // 4:width // 4 + max(2, width // 8)] = 0.05
    grey[height * 2 // 3:height * 5 // 6, width // 4:width * 3 // 4] = 0.05
    if mode == "I;16":
        return Image.fromarray(np.round(grey * 65535).astype(np.uint16))
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32))
    base = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    if mode == "RGB":
        rgb = np.stack([np.round(grey * 255)] * 3, axis=-1).astype(np.uint8)
        rgb[..., 0] = np.where(grey < 0.5, 40, 250)           # coloured: reddish paper, dark ink
        return Image.fromarray(rgb)
    if mode == "RGBA":  # dark ink on a fully transparent background
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[..., 3] = np.where(grey < 0.5, 255, 0)
        return Image.fromarray(rgba)
    return base.convert(mode)


@pytest.mark.parametrize("mode,suffix,size", [
    ("L", ".png", (28, 28)), ("RGB", ".jpg", (37, 53)), ("RGBA", ".png", (41, 23)),
    ("LA", ".png", (30, 61)), ("P", ".gif", (45, 45)), ("1", ".bmp", (64, 31)),
    ("I;16", ".png", (61, 29)), ("F", ".tif", (33, 47)), ("CMYK", ".tif", (50, 40)),
])
def test_any_mode_and_odd_size_reads_into_a_centred_mnist_image(tmp_path, mode, suffix, size):
    path = tmp_path / f"glyph{suffix}"
    _mode_image(mode, size).save(path)
    image = prep.read_image(path)
    assert image.pixels.shape == (28, 28) and image.pixels.dtype == np.uint8
    assert image.size == size
    assert image.pixels[0].max() == 0 and image.pixels[:, 0].max() == 0   # black background
    assert image.pixels.max() >= 200                                       # white ink
    assert max(ink_box(image.pixels)) in (20, 21)                          # 20 + a resampling fringe
    cy, cx = centre_of_mass(image.pixels)
    assert abs(cy - prep.CENTRE) <= 0.5 and abs(cx - prep.CENTRE) <= 0.5
    # the transparent RGBA has no light background to invert: its ink goes onto white, then inverts
    assert image.inverted


def test_light_ink_on_transparency_stays_visible():
    rgba = np.zeros((40, 30, 4), np.uint8)
    rgba[8:32, 12:18] = (255, 255, 255, 255)                   # white stroke, transparent elsewhere
    pixels = prep.preprocess_image(Image.fromarray(rgba), "white.png").pixels
    assert pixels.max() == 255 and pixels[0, 0] == 0 and max(ink_box(pixels)) == 20


def test_16_bit_uses_the_full_depth():
    grey = np.zeros((40, 40), np.uint16)
    grey[10:30, 18:22] = 1000                                 # dim ink: 1000 of 65535
    image = prep.preprocess_image(Image.fromarray(grey), "dim16.png")
    assert image.mode == "I;16" and image.pixels.max() == 255 and not image.inverted


def test_unreadable_files_are_skipped_with_a_warning(tmp_path, capsys):
    folder = good_folder(tmp_path, 10)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    full = folder / "img00.png"
    (folder / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + full.read_bytes()[:50])
    (folder / "data.bin").write_bytes(b"not an image at all")
    (folder / "README.md").write_text("# licences\n")
    (folder / "notes.txt").write_text("notes\n")
    (folder / "LICENSE").write_text("CC0\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "sub").mkdir()
    save(folder / "sub" / "nested.png", blob(30, 30))
    images, skipped = prep.load_folder(folder)
    assert [i.name for i in images] == [f"img{i:02d}.png" for i in range(10)]
    assert sorted(name for name, _ in skipped) == ["broken.png", "data.bin", "truncated.jpg"]
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "skipped 3 file(s)" in err
    for name in ("broken.png", "truncated.jpg", "data.bin"):
        assert name in err
    for name in ("README.md", "notes.txt", "LICENSE", ".DS_Store", "nested.png"):
        assert name not in err


def test_fewer_than_ten_usable_images_is_a_clear_error(tmp_path):
    folder = good_folder(tmp_path, 9)
    (folder / "broken.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError) as info:
        prep.load_folder(folder, warn=lambda message: None)
    message = str(info.value)
    assert str(folder) in message and "only 9 usable image(s)" in message and "at least 10" in message
    assert "1 unreadable file(s) skipped" in message


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prep.load_folder(tmp_path / "nope")


def test_the_repository_outliers_all_load():
    images, skipped = prep.load_folder(REPO_ROOT / "data" / "outliers")
    assert len(images) == 23 and skipped == []
    assert all(i.pixels.shape == (28, 28) and i.pixels.dtype == np.uint8 and not i.blank for i in images)


# ------------------------------------------------------------------ repeated queries
def tiny_params(**changes) -> TrainParams:
    cfg = TrainParams(optimizer="adam", lr=0.001, momentum=0.0, nesterov=False, loss="crossentropy", filters=(4,),
                      kernel_size=3, activation="relu", dense=(8,), dropout=0.5, batch_size=16, epochs=1,
                      lr_schedule="constant", early_stopping=None, batch_norm=False, augment=False, seed=3,
                      device="cpu", precision="float32")
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def images():
    digits = read_images(BUNDLED / "t10k-images-idx3-ubyte.gz")[:20]
    return np.concatenate([digits, np.stack([prep.mnist_style(l_shape())[0]] * 2)])


@pytest.fixture(scope="module")
def dropout_model():
    keras.utils.set_random_seed(0)
    return build_cnn(tiny_params(), name="tiny_dropout")


def test_inference_mode_answers_identically(dropout_model, images):
    samples = Q.inference_repeats(dropout_model, images, repeats=3)
    assert samples.shape == (3, len(images), 10)
    assert Q.max_abs_difference(samples) == 0.0


def test_mc_dropout_answers_vary_and_are_reproducible(dropout_model, images):
    generator = dropout_model.get_layer("dropout").seed_generator
    state = np.array(generator.state.numpy())
    first = Q.mc_dropout_repeats(dropout_model, images, repeats=3, seed=7)
    assert Q.max_abs_difference(first) > 1e-3                   # passes differ from each other
    assert np.allclose(first.sum(axis=-1), 1.0, atol=1e-5)
    again = Q.mc_dropout_repeats(dropout_model, images, repeats=3, seed=7)
    assert np.array_equal(first, again)                          # same seeds, same masks
    other = Q.mc_dropout_repeats(dropout_model, images, repeats=3, seed=8)
    assert not np.array_equal(first, other)
    assert np.array_equal(generator.state.numpy(), state)  # generator restored
    assert Q.max_abs_difference(Q.inference_repeats(dropout_model, images, 2)) == 0.0  # inference unaffected


def test_mc_dropout_leaves_batch_norm_and_augmentation_in_inference_mode(images):
    keras.utils.set_random_seed(1)
    model = build_cnn(tiny_params(dropout=0.0, batch_norm=True, augment=True), name="tiny_bn_aug")
    bn = model.get_layer("bn1")
    # Moving statistics far from the batch's own: training-mode BN would give other outputs.
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 0.3, np.float32))
    bn.moving_variance.assign(np.full(bn.moving_variance.shape, 4.0, np.float32))
    inference = predict_proba(model, images)
    mc = Q.mc_dropout_proba(model, images, seed=5)
    np.testing.assert_allclose(mc, inference, atol=1e-6)
    # The check has teeth: with every layer in training mode the answers move.
    x = keras.ops.convert_to_tensor(images[..., None].astype("float32"))
    for layer in Q.chain_layers(model):
        x = layer(x, training=True)
    assert np.abs(keras.ops.convert_to_numpy(x) - inference).max() > 1e-3


def test_non_chain_models_are_refused():
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    merged = keras.layers.Add()([keras.layers.Dense(10)(flat), keras.layers.Dense(10)(flat)])
    with pytest.raises(StudyError, match="not a linear chain"):
        Q.chain_layers(keras.Model(inputs, keras.layers.Softmax()(merged)))


def test_query_model_and_study_outputs(tmp_path, monkeypatch, dropout_model, images):
    """Two tiny models through the whole study: summaries, tables, ROC CSV, figures, JSON."""
    from scipy.special import logsumexp

    from cnnstudy.ood_stats import logits as ood_logits

    keras.utils.set_random_seed(2)
    other = build_cnn(tiny_params(seed=4), name="tiny_other")
    outliers, test = images[-2:], images[:-2]
    labels = np.zeros(len(test), np.uint8)
    queries = {name: Q.query_model(model, name, outliers, test, repeats=3, seed=11, test_labels=labels)
               for name, model in (("baseline", dropout_model), ("baseline_seed1", other))}
    q = queries["baseline"]
    assert q.repeats_out.shape == (3, 2, 10) and q.mc_in.shape == (3, 20, 10) and q.dropout == 0.5
    files = [prep.OutlierImage(name=f"o{i}.png", pixels=p, original=np.stack([p] * 3, -1), mode="L",
                            size=(28, 28), inverted=False, blank=False) for i, p in enumerate(outliers)]
    study = O.Study(images=files, skipped=[("bad.png", "x")], class_names=tuple("0123456789"),
                    queries=queries, variants=["baseline"], seed_models={"baseline_seed1": 1}, repeats=3,
                    mc_seed=11)
    monkeypatch.chdir(tmp_path)
    metrics = report.write_outputs(study)
    settings = metrics["settings"]
    assert settings["inference"]["max_abs_diff"] == 0.0 and settings["inference"]["identical"]
    assert settings["mc_dropout"]["max_abs_diff"] > 0 and settings["mc_dropout"]["seeds"] == [11, 12, 13]
    assert settings["models"]["all"]["models"] == ["baseline", "baseline_seed1"]
    assert set(metrics["detection"]) == {"baseline", "baseline_seed1"}
    assert 0.0 <= metrics["detection"]["baseline"]["msp"]["auroc"] <= 1.0
    rows = study.per_image()
    assert len(rows) == 2 * 3 and {r["setting"] for r in rows} == set(O.SETTINGS)
    assert all(len(r["top3"].split(", ")) == 3 for r in rows)
    header = (tmp_path / report.ROC_CSV["msp"]).read_text().splitlines()[0]
    assert header == "series,fpr,tpr"
    for path in (report.DETAILS_JSON, report.TABLE_MD, report.TABLE_CSV, report.PREPROCESSING_PNG,
                 report.PROBABILITIES_PNG, report.ROC_PNG):
        assert (tmp_path / path).stat().st_size > 0
    assert "| o0.png |" in (tmp_path / report.TABLE_MD).read_text()
    # The DVC metric holds max softmax's and energy's AUROC; everything else is in details.json.
    stats = metrics["ood_stats"]
    headline = json.loads((tmp_path / report.METRICS_JSON).read_text())
    assert headline == {name: {"auroc_msp": metrics["detection"][name]["msp"]["auroc"],
                               "auroc_energy": stats["detectors"][f"{name}/energy"]["auroc"]["estimate"]}
                        for name in queries}
    # threshold95 keeps 95% of the test digits: the 19th highest of 20 max probabilities.
    assert metrics["detection"]["baseline"]["msp"]["threshold95"] == pytest.approx(np.sort(q.inference_in.max(1))[1])
    # Energy from the exact logits, two ensembles (the seed one, the accurate one), all with intervals.
    np.testing.assert_allclose(q.extra["energy"][0], logsumexp(ood_logits(dropout_model, test), axis=1))
    accurate = study.ensembles()["accurate_ensemble"]  # an ensemble of one model is no ensemble
    assert set(stats["detectors"]) == {f"{m}/{s}" for m in queries for s in ("msp", "mc_entropy", "energy")} | {
        "seed_ensemble/msp", *(["accurate_ensemble/msp"] if len(accurate) > 1 else [])}
    assert stats["reference"] == "baseline/msp" and stats["bootstrap"]["rounds"] == O.BOOTSTRAP_ROUNDS
    for row in stats["detectors"].values():
        assert row["auroc"]["low"] <= row["auroc"]["estimate"] <= row["auroc"]["high"]
    assert "Best: **" in (tmp_path / report.TABLE_MD).read_text()
    # The words follow the dataset: MNIST's literature figures only for digits.
    text = (tmp_path / report.TABLE_MD).read_text()
    assert text.startswith("# Outliers: images that are not digits") and "Hendrycks" in text
    fashion = {**metrics, "in_distribution": {**metrics["in_distribution"], "items": "clothing images"}}
    text = report.markdown_report(study, fashion)
    assert text.startswith("# Outliers: images that are not clothing images")
    assert "20 test clothing images against 2 outliers" in text
    assert "digit" not in text and "Hendrycks" not in text


# ------------------------------------------------------------------ detection metrics
def test_auroc_of_a_perfect_score_is_one_and_of_a_useless_one_a_half():
    assert det.auroc([0.9, 0.8, 0.99], [0.1, 0.5]) == 1.0
    assert det.auroc([0.1, 0.5], [0.9, 0.8, 0.99]) == 0.0
    assert det.auroc([0.7] * 50, [0.7] * 30) == 0.5
    rng = np.random.default_rng(0)
    assert det.auroc(rng.random(4000), rng.random(4000)) == pytest.approx(0.5, abs=0.03)


def test_fpr_at_95_tpr_hand_computed():
    # 20 positives 1..20: keeping 95% (19 of 20) allows a threshold of at most 2, so
    # outliers scoring >= 2 pass: 2, 3 and 25 of the five = 0.6.
    positives = np.arange(1, 21, dtype=float)
    negatives = [0.5, 1.5, 2.0, 3.0, 25.0]
    assert det.fpr_at_95_tpr(positives, negatives) == 0.6
    # 10 positives: 95% needs ceil(9.5) = 10, all of them: threshold 1 -> 1.5, 2, 3, 25 pass.
    assert det.fpr_at_95_tpr(np.arange(1, 11, dtype=float), negatives) == 0.8
    assert det.fpr_at_95_tpr([5, 6, 7], [1, 2]) == 0.0           # perfect separation
    # 0.55 * 100 is 55.00000000000001 in floating point; 55 positives kept is enough: threshold 46.
    assert det.fpr_at_tpr(np.arange(1, 101, dtype=float), [45.5, 46.0, 46.5], level=0.55) == pytest.approx(2 / 3)
    assert det.fpr_at_95_tpr([1, 2], [5, 6, 7]) == 1.0           # reversed


def test_fpr_at_95_tpr_matches_the_full_roc_curve():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(1)
    for trial in range(20):
        pos = np.round(rng.normal(1.0, 1.0, 37 + trial), 1)     # rounding makes ties
        neg = np.round(rng.normal(0.0, 1.0, 23), 1)
        labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        fpr, tpr, _ = roc_curve(labels, np.r_[pos, neg], drop_intermediate=False)
        assert det.fpr_at_95_tpr(pos, neg) == pytest.approx(fpr[tpr >= 0.95].min())


def test_roc_csv_is_long_format_by_series(tmp_path):
    from cnnstudy.files import long_format, write_csv

    curves = {"a": (np.array([0, 0.5, 1]), np.array([0, 1, 1])), "b": (np.array([0, 1]), np.array([0, 1]))}
    write_csv(tmp_path / "roc.csv", long_format({n: {"fpr": f, "tpr": t} for n, (f, t) in curves.items()}))
    lines = (tmp_path / "roc.csv").read_text().splitlines()
    assert lines[0] == "series,fpr,tpr" and lines[1] == "a,0,0" and lines[-1] == "b,1,1" and len(lines) == 6


def test_entropy_and_top_k():
    assert Q.entropy(np.full(10, 0.1)) == pytest.approx(np.log(10))
    assert Q.entropy(np.eye(10)[3]) == pytest.approx(0.0, abs=1e-9)
    assert Q.top_k(np.array([0.1, 0.6, 0.0, 0.3])) == [(1, 0.6), (3, 0.3), (0, 0.1)]


# ------------------------------------------------------------------ the stage in dvc.yaml
def _entries(items) -> list[str]:
    return [next(iter(item)) if isinstance(item, dict) else item for item in items]


def test_dvc_stage_runs_after_every_model_and_declares_every_output():
    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["outliers"]
    # summary.json, written after stage evaluate, stands for all models (fixed or added).
    assert "metrics/summary.json" in stage["deps"]
    # The study's models come through summary.json; only the retrain stage's folder is named.
    assert [dep for dep in stage["deps"] if dep.startswith("models/")] == ["models/retrained"]
    declared = set(_entries(stage["outs"]) + _entries(stage["metrics"]) + _entries(stage["plots"]))
    written = {report.METRICS_JSON, report.DETAILS_JSON.parent, report.TABLE_MD, report.TABLE_CSV,
               report.PREPROCESSING_PNG, report.PROBABILITIES_PNG, report.ROC_PNG, *report.ROC_CSV.values()}
    assert {str(path) for path in written} == declared
    for path in report.ROC_CSV.values():
        spec = next(item[str(path)] for item in stage["plots"] if str(path) in item)
        assert spec["template"] == "series" and spec["x"] == "fpr" and spec["y"] == "tpr"
