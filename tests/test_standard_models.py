"""Standard architectures for the compare stage: builders, data pipeline, recipes, params, report.

Fast (well under 90 s on two cores): the big models train one step eagerly (graph tracing
of ResNet50/DenseNet121 alone takes 15-40 s), on a handful of images.
"""

import json
import re

import keras
import numpy as np
import pytest
import yaml

from cnnstudy import compare, compare_table, standard_models
from cnnstudy.evaluation import predict_proba
from cnnstudy.predictions import read_predictions, write_predictions
from cnnstudy.training import compile_model
from cnnstudy.params import PARAMS_FILE, STANDARD_MODELS, ParamsError, parse_params
from cnnstudy.recipes import DESCRIPTIONS, RECIPES
from cnnstudy.standard_models import bn_momenta, build_standard, model_input

SIZE = 32  # the smallest input keras.applications accepts (and the default compare.input_size)


@pytest.fixture
def raw():
    return yaml.safe_load(PARAMS_FILE.read_text())


def digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


# ---------------------------------------------------------------- builders
@pytest.mark.parametrize("name", STANDARD_MODELS)
def test_each_model_builds_for_28x28_digits_and_trains_one_step(name):
    images, labels = digits(4)
    x = model_input(name, images, SIZE)
    recipe = RECIPES[name]
    model = build_standard(name, SIZE, bn_momentum=recipe.bn_momentum)
    assert model.input_shape[1:] == x.shape[1:]
    assert x.dtype == np.uint8  # raw pixels 0..255: the model rescales them itself
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    # The recipe's BatchNorm momentum is on every BN layer, and only models with BN have one.
    assert bn_momenta(model) == ([] if recipe.bn_momentum is None else [recipe.bn_momentum])
    compile_model(model, "adam", compare.learning_rate(recipe, 1, 1), jit_compile=False, run_eagerly=True)
    before = [w.copy() for w in model.get_weights()[:2]]
    history = model.fit(x, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()[:2]))
    probabilities = predict_proba(model, x)  # the evaluation code's own entry point
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)


def test_lenet5_is_the_published_shape():
    model = build_standard("lenet5")
    assert model.input_shape == (None, 28, 28, 1)
    assert model.count_params() == 61_706  # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.AveragePooling2D)] == ["s2", "s4"]


def test_application_models_refuse_inputs_below_32():
    with pytest.raises(ValueError, match="at least 32x32"):
        build_standard("resnet50", 28)
    with pytest.raises(ValueError, match="unknown standard model"):
        build_standard("lenet6")


def test_bn_momentum_survives_save_and_load(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.BatchNormalization()(inputs)))
    assert standard_models.set_bn_momentum(model, 0.9) == 1
    model.save(tmp_path / "m.keras")
    assert bn_momenta(keras.models.load_model(tmp_path / "m.keras")) == [0.9]


# ---------------------------------------------------------------- data pipeline
def test_model_input_resizes_and_replicates_grey_channel():
    images, _ = digits(3)
    images[0] = 200  # a flat image stays flat through a bilinear resize
    out = model_input("resnet50", images, 40, chunk=2)  # chunk < N: the chunking joins up
    assert out.shape == (3, 40, 40, 3) and out.dtype == np.uint8
    assert np.all(out[0] == 200)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert np.array_equal(model_input("alexnet", images, 28)[..., 0], images)  # no resize at 28: identity
    assert model_input("lenet5", images, 40).shape == (3, 28, 28, 1)  # LeNet-5 sees the digits as stored


def test_train_subset_is_seeded_capped_and_ordered():
    images, labels = digits(50)
    x, y = compare.train_subset(images, labels, 20, seed=1)
    x2, _ = compare.train_subset(images, labels, 20, seed=1)
    assert len(x) == 20 and np.array_equal(x, x2)
    assert compare.train_subset(images, labels, None, 1)[0] is images
    assert compare.train_subset(images, labels, 500, 1)[0] is images


# ---------------------------------------------------------------- recipes
def test_recipe_table_covers_every_standard_model():
    assert set(RECIPES) == set(STANDARD_MODELS) == set(DESCRIPTIONS)
    for name, recipe in RECIPES.items():
        assert 0 < recipe.lr < 0.1 and recipe.epochs >= 1 and recipe.batch_size >= 1, name
        assert 0 <= recipe.warmup_epochs < recipe.epochs, name
        assert recipe.bn_momentum is None or 0 < recipe.bn_momentum < 0.99, name
        assert recipe.why, name
        json.dumps(recipe.as_dict())  # recorded in metrics/compare.json


def test_schedule_warms_up_then_decays_to_zero():
    recipe = RECIPES["resnet50"]
    schedule = compare.learning_rate(recipe, steps_per_epoch=10, epochs=recipe.epochs)
    warm = recipe.warmup_epochs * 10
    lr = [float(schedule(step)) for step in (0, warm, recipe.epochs * 10)]
    assert lr[0] == pytest.approx(0.0) and lr[1] == pytest.approx(recipe.lr) and lr[2] == pytest.approx(0.0, abs=1e-9)
    no_warmup = compare.learning_rate(RECIPES["lenet5"], 10, 3)
    assert float(no_warmup(0)) == pytest.approx(RECIPES["lenet5"].lr)


def test_compare_epochs_overrides_the_recipe(raw):
    raw["compare"]["epochs"] = 1
    settings = parse_params(raw).compare
    recipe = compare.resolve_recipe("resnet50", settings)
    assert recipe.epochs == 1 and recipe.warmup_epochs == 0 and recipe.lr == RECIPES["resnet50"].lr
    raw["compare"]["epochs"] = None
    assert compare.resolve_recipe("resnet50", parse_params(raw).compare) == RECIPES["resnet50"]


# ---------------------------------------------------------------- params
def test_unknown_model_name_is_rejected_with_its_key(raw):
    raw["compare"]["models"] = ["resnet51"]
    with pytest.raises(ParamsError, match=r"compare\.models\[0\]: expected one of lenet5"):
        parse_params(raw)


@pytest.mark.parametrize("key,value,match", [
    ("keep_models", ["lenet5", "vgg19"], r"compare\.keep_models\[1\]: expected one of"),
    ("keep_models", "lenet5", r"compare\.keep_models: expected a list"),
    ("input_size", 28, r"compare\.input_size: expected an integer >= 32"),
    ("models", ["lenet5", "lenet5"], r"compare\.models: lists a model twice"),
])
def test_bad_compare_values_are_named(raw, key, value, match):
    raw["compare"][key] = value
    with pytest.raises(ParamsError, match=match):
        parse_params(raw)


def test_missing_keep_models_is_named(raw):
    del raw["compare"]["keep_models"]
    with pytest.raises(ParamsError, match=r"missing key compare\.keep_models"):
        parse_params(raw)


def test_repo_default_is_lenet5_and_make_repro_full_adds_the_big_models(raw):
    # DenseNet121 and ResNet50 are opt-in: 320 + 356 s of training on a 2-core CPU without
    # AVX-512 for the study's two largest models (README, "Speed"); `make repro-full` brings them back
    assert parse_params(raw).compare.models == ("lenet5",)
    makefile = (PARAMS_FILE.resolve().parent / "Makefile").read_text()
    line = next(row for row in makefile.splitlines() if row.startswith("FULL_STUDY :="))
    overrides = re.findall(r"-S '([a-z_.]+)=([^']*)'", line)
    assert len(overrides) == line.count("-S "), f"unparsed -S in {line!r}"
    for key, value in overrides:  # as `dvc exp run -S` applies them: the value is YAML
        section, name = key.split(".")
        raw[section][name] = yaml.safe_load(value)
    full = parse_params(raw).compare
    assert {"lenet5", "densenet121", "resnet50"} <= set(full.models)
    assert set(full.keep_models) <= set(full.models)
    assert "densenet121" in full.keep_models  # inspection draws maps and saliency from the kept file
    assert "resnet50" not in full.keep_models  # its ~284 MB file is measured, not cached


# ---------------------------------------------------------------- one model end to end, and the report
def test_run_model_trains_measures_and_keeps_or_drops_the_file(raw, tmp_path):
    from cnnstudy.data import Prepared

    raw["compare"].update(epochs=2, max_train_images=40)
    params = parse_params(raw)
    images, labels = digits(60)
    data = Prepared("synthetic", tuple("0123456789"), (images, labels), (images[:20], labels[:20]),
                    (images[:30], labels[:30]))
    device = {"backend": "tensorflow", "device": "cpu"}
    record, predicted = compare.run_model("lenet5", params.compare, params.train, data, keep=True,
                                          device=device, precision="float32", models_dir=tmp_path)
    assert (tmp_path / "lenet5.keras").stat().st_size / 1e6 == pytest.approx(record["model_file_mb"], abs=1e-3)
    assert record["train_images"] == 40 and record["epochs"] == 2 and len(record["history"]["val_accuracy"]) == 2
    assert record["parameters"] == 61_706 and record["recipe"]["epochs"] == 2
    assert 0 <= record["train_accuracy_inference"] <= 1 and 0 <= record["test_accuracy"] <= 1
    assert predicted.shape == (30,)
    json.dumps(record)

    record2, _ = compare.run_model("lenet5", params.compare, params.train, data, keep=False,
                                   device=device, precision="float32", models_dir=tmp_path / "dropped")
    assert not (tmp_path / "dropped").exists() and record2["model_file_mb"] > 0  # measured on a temp file

    # The combined table and charts, with a fake summary of two study models.
    summary = {name: {"change": "—" if name == "baseline" else "lr=0.01", "epochs": 3, "train_time_s": 10.0,
                      "train_accuracy": 0.99, "val_accuracy": 0.97, "test_time_s": 0.1, "test_accuracy": acc,
                      "delta_vs_baseline": 0.0, "mcnemar_p": None, "parameters": 1000, "model_file_mb": 0.1,
                      "weight_mb": 0.01} for name, acc in (("lr_high", 0.5), ("baseline", 0.9))}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    rows = compare_table.study_rows(tmp_path / "summary.json", train_images=60)
    assert [r["model"] for r in rows] == ["baseline", "lr_high"]
    always_right = np.eye(10)[labels[:30]]  # a baseline that is always right
    write_predictions(tmp_path / "baseline.npz", labels[:30], always_right, data.class_names)
    baseline_predictions = read_predictions(tmp_path / "baseline.npz")
    rows.append(compare_table.standard_row("lenet5", record, predicted, labels[:30], baseline_predictions, 0.9))
    assert rows[-1]["delta_vs_baseline"] == pytest.approx((record["test_accuracy"] - 0.9) * 100, abs=1e-3)
    assert 0 <= rows[-1]["mcnemar_p"] <= 1
    text = compare_table.report_markdown(rows, {"lenet5": record}, params.compare, 12.0)
    assert "| lenet5 |" in text and "| baseline |" in text and "From-scratch recipes" in text
    compare_table.save_charts(rows, {"lenet5": record}, tmp_path / "plots")
    assert {p.stem for p in (tmp_path / "plots").glob("*.png")} >= {
        "test_accuracy", "train_time", "test_time", "model_size", "parameters"}


def test_missing_summary_says_which_stage_to_run(tmp_path):
    from cnnstudy.errors import DataError

    with pytest.raises(DataError, match="dvc repro summary"):
        compare_table.study_rows(tmp_path / "summary.json")


def test_the_tuned_row_counts_the_images_it_was_refit_on(tmp_path):
    row = {"change": "lr=0.003", "epochs": 3, "train_time_s": 1.0, "test_accuracy": 0.9}
    (tmp_path / "summary.json").write_text(json.dumps({"baseline": {**row, "change": "—"}, "tuned": row}))
    rows = compare_table.study_rows(tmp_path / "summary.json", train_images=60, refit_images=80)
    assert [(r["model"], r["train_images"]) for r in rows] == [("baseline", 60), ("tuned", 80)]
