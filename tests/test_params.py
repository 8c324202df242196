"""params.yaml loading: every mistake fails at load with the key's dotted name."""

import copy
import dataclasses

import pytest
import yaml

from cnnstudy.params import PARAMS_FILE, ParamsError, load_params, parse_params


@pytest.fixture
def raw():
    return yaml.safe_load(PARAMS_FILE.read_text())


def fails(raw, match):
    with pytest.raises(ParamsError, match=match):
        parse_params(raw)


def test_repo_params_load_with_baseline_and_nine_variants():
    params = load_params()
    assert list(params.models)[0] == "baseline"
    assert len(params.models) == 10
    assert params.models["baseline"] == params.train
    assert params.models["lr_high"].lr == 0.01 and params.models["lr_high"].optimizer == params.train.optimizer
    assert params.models["epochs_double"].epoch_multiplier() == 2.0
    assert params.prepare.per_class == 600


def test_unknown_key_is_named(raw):
    raw["train"]["learning_rate"] = 0.1
    fails(raw, r"unknown key train\.learning_rate")


def test_unknown_top_level_section_is_named(raw):
    raw["trian"] = {}
    fails(raw, r"unknown key trian")


def test_missing_key_is_named(raw):
    del raw["prepare"]["seed"]
    fails(raw, r"missing key prepare\.seed")


@pytest.mark.parametrize("section,key,value,match", [
    ("train", "lr", "fast", r"train\.lr: expected a number"),
    ("train", "batch_size", 12.5, r"train\.batch_size: expected an integer"),
    ("train", "epochs", True, r"train\.epochs: expected an integer"),
    ("train", "batch_norm", "yes", r"train\.batch_norm: expected true or false"),
    ("train", "filters", "32,64", r"train\.filters: expected a list"),
    ("prepare", "per_class", "many", r"prepare\.per_class: expected a positive integer or 'all'"),
    ("fetch", "mirrors", "http://x", r"fetch\.mirrors: expected a list"),
])
def test_wrong_type_is_named(raw, section, key, value, match):
    raw[section][key] = value
    fails(raw, match)


@pytest.mark.parametrize("key,value,match", [
    ("optimizer", "adamw", r"train\.optimizer: expected one of adam, sgd, rmsprop, adamax, adagrad, adadelta, nadam"),
    ("loss", "hinge", r"train\.loss: expected one of crossentropy, mse, mae; got 'hinge'"),
    ("activation", "gelu", r"train\.activation: expected one of relu, leaky_relu, elu, tanh, sigmoid"),
    ("lr_schedule", "step", r"train\.lr_schedule: expected one of constant, plateau, cosine"),
    ("momentum", 1.0, r"train\.momentum: expected a number < 1"),
    ("nesterov", "yes", r"train\.nesterov: expected true or false"),
    ("early_stopping", 0, r"train\.early_stopping: expected an integer >= 1"),
    ("dense", [], r"train\.dense: expected a non-empty list"),
    ("dense", [128, 0], r"train\.dense\[1\]: expected an integer >= 1"),
    ("lr", 0, r"train\.lr: expected a number > 0"),
    ("lr", -0.1, r"train\.lr"),
    ("batch_size", 0, r"train\.batch_size: expected an integer >= 1"),
    ("epochs", 0, r"train\.epochs: expected an integer >= 1"),
    ("epochs", -3, r"train\.epochs"),
    ("dropout", 1.0, r"train\.dropout: expected a number < 1"),
    ("dropout", -0.1, r"train\.dropout: expected a number >= 0"),
    ("filters", [], r"train\.filters: expected a non-empty list"),
    ("filters", [32, 0], r"train\.filters\[1\]: expected an integer >= 1"),
    ("kernel_size", 9, r"train\.kernel_size: a 9x9 kernel is larger than the 7x7 feature map"),
    ("filters", [8, 8, 8, 8, 8], r"train\.kernel_size: a 3x3 kernel is larger than the 1x1 feature map"),
    ("device", "tpu", r"train\.device: expected one of auto, cpu, gpu"),
])
def test_bad_train_values_are_named(raw, key, value, match):
    raw["train"][key] = value
    fails(raw, match)


def test_too_many_blocks_shrink_the_image_to_nothing(raw):
    raw["train"]["kernel_size"] = 1
    raw["train"]["filters"] = [8] * 6
    fails(raw, r"train\.filters: 6 conv blocks with 2x2 pooling shrink a 28-pixel image to nothing")


def test_split_must_sum_to_one(raw):
    raw["prepare"]["split"] = {"train": 0.6, "val": 0.3, "test": 0.2}
    fails(raw, r"prepare\.split: train \+ val \+ test must sum to 1")


@pytest.mark.parametrize("override,match", [
    ({}, r"variants\.v: a variant changes at least one key of train, got none"),
    ({"lr": 0.1, "momentum": 1.5}, r"variants\.v\.momentum: expected a number < 1"),
    ({"momentum_": 0.9}, r"unknown key variants\.v\.momentum_"),
    ({"optimizer": "adamw"}, r"variants\.v\.optimizer: expected one of"),
    ({"kernel_size": 11}, r"variants\.v\.kernel_size: a 11x11 kernel is larger"),
    ({"epochs": "double"}, r"variants\.v\.epochs: expected a positive integer, 'auto' or a multiple"),
])
def test_bad_variants_are_named(raw, override, match):
    raw["variants"]["v"] = override
    fails(raw, match)


def test_a_variant_equal_to_the_baseline_only_warns(raw, capsys):
    raw["train"]["lr"] = 0.01  # what `dvc exp run -S train.lr=0.01` does: lr_high is lr 0.01 too
    params = parse_params(raw)
    assert params.models["lr_high"] == params.train
    assert "variants.lr_high sets lr=0.01 to the baseline's values" in capsys.readouterr().err


def test_baseline_entry_must_exist_and_stay_empty(raw):
    broken = copy.deepcopy(raw)
    del broken["variants"]["baseline"]
    fails(broken, r"missing key variants\.baseline")
    raw["variants"]["baseline"] = {"lr": 0.1}
    fails(raw, r"variants\.baseline: the baseline is `train` itself")


def test_auto_epochs_in_a_variant_need_auto_baseline(raw):
    raw["train"]["epochs"] = 5
    raw["variants"]["v"] = {"epochs": "auto"}
    fails(raw, r"variants\.v\.epochs: auto needs train\.epochs: auto")


def test_compare_rejects_unknown_model(raw):
    raw["compare"]["models"] = ["lenet6"]
    fails(raw, r"compare\.models\[0\]: expected one of")


def test_a_variant_inherits_everything_else(raw):
    raw["train"]["lr"] = 0.01
    params = parse_params(raw)
    assert all(m.lr == 0.01 for n, m in params.models.items() if n != "sgd") and params.models["sgd"].lr == 0.05
    assert all(m.momentum == 0.0 for n, m in params.models.items() if n != "sgd")  # sgd brings its own


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


# ---------------------------------------------------------------- strict types (pydantic)
@pytest.mark.parametrize("section,key,value,match", [
    ("train", "lr", True, r"^train\.lr: expected a number, got True \(bool\)$"),
    ("train", "lr", "1e-3", r"train\.lr: expected a number, got '1e-3'"),
    ("train", "dense", [64.0], r"train\.dense\[0\]: expected an integer, got 64\.0"),
    ("train", "augment", 1, r"train\.augment: expected true or false, got 1"),
    ("kfold", "folds", "5", r"kfold\.folds: expected an integer"),
    ("outliers", "seeds", [1, True], r"outliers\.seeds\[1\]: expected an integer"),
])
def test_strict_types_refuse_what_python_would_coerce(raw, section, key, value, match):
    raw[section][key] = value
    fails(raw, match)


def test_an_integer_is_a_valid_number(raw):
    raw["train"]["lr"] = 1
    assert parse_params(raw).train.lr == 1.0


def test_a_multiplier_is_for_variants_only(raw):
    raw["train"]["epochs"] = "2x"
    fails(raw, r"train\.epochs: a multiple such as '2x' is for variants only")


def test_the_typed_view_revalidates_on_replace():
    with pytest.raises(ValueError, match="lr"):
        dataclasses.replace(load_params().train, lr=-1.0)


# ---------------------------------------------------------------- read as DVC reads (YAML 1.2)
def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_yaml12_reads_what_dvc_reads(tmp_path):
    """PyYAML (YAML 1.1) reads `1e-3` as a string and `on` as true; DVC, and so this, does not."""
    from dvc.utils.serialize import parse_yaml

    text = PARAMS_FILE.read_text().replace("lr: 0.001", "lr: 1e-3")
    params = load_params(write(tmp_path, text))
    assert params.train.lr == 0.001
    assert parse_yaml(text, "params.yaml")["train"]["lr"] == params.raw["train"]["lr"]
    assert yaml.safe_load(text)["train"]["lr"] == "1e-3"  # what the stages used to see


def test_yaml12_on_is_a_string_and_refused_for_a_bool(tmp_path):
    text = PARAMS_FILE.read_text().replace("batch_norm: false", "batch_norm: on")
    with pytest.raises(ParamsError, match=r"train\.batch_norm: expected true or false, got 'on'"):
        load_params(write(tmp_path, text))


def test_a_boolean_where_dvc_sees_one_is_refused_with_the_key(tmp_path):
    text = PARAMS_FILE.read_text().replace("epochs: auto", "epochs: true")
    with pytest.raises(ParamsError, match=r"params\.yaml: train\.epochs: expected an integer, got True"):
        load_params(write(tmp_path, text))


def test_a_duplicated_key_is_refused_with_its_name_and_line(tmp_path):
    text = PARAMS_FILE.read_text().replace("  lr: 0.001\n", "  lr: 0.001\n  lr: 0.1\n")
    line = text.splitlines().index("  lr: 0.1") + 1
    with pytest.raises(ParamsError, match=rf"duplicate key 'lr' at line {line}\b"):
        load_params(write(tmp_path, text))


def test_errors_are_one_line_naming_the_file(tmp_path):
    text = PARAMS_FILE.read_text().replace("dropout: 0.25", "dropout: 1.0")
    with pytest.raises(ParamsError) as info:
        load_params(write(tmp_path, text))
    assert str(info.value) == f"{tmp_path / 'params.yaml'}: train.dropout: expected a number < 1.0, got 1.0"


# ---------------------------------------------------------------- sizes that cannot work
def test_parameter_estimate_matches_keras():
    from cnnstudy import sizes
    from cnnstudy.models import build_cnn

    for cfg in (load_params().train, dataclasses.replace(load_params().train, filters=(8, 16), batch_norm=True,
                                                         kernel_size=5, dense=(40, 20, 10), activation="elu")):
        assert sum(sizes.parameter_counts(cfg.filters, cfg.kernel_size, cfg.dense, cfg.batch_norm)) \
            == build_cnn(cfg).count_params()


@pytest.mark.parametrize("key,value,match", [
    ("dense", [1_000_000_000], r"train\.dense: the model would have [\d,]+ parameters; the limit is"),
    ("filters", [100_000], r"train\.filters: the model would have"),
    ("filters", [32, 64, 100_000], r"train\.filters: the model would have"),
    ("batch_size", 1_000_000_000, r"train\.batch_size: training batches of 1,000,000,000 images would need"),
    ("batch_size", 3601, r"train\.batch_size: 3,601 is larger than the train split \(3,600 images"),
])
def test_sizes_that_cannot_train_are_refused(raw, key, value, match):
    raw["train"][key] = value
    fails(raw, match)


def test_a_variant_too_large_is_named(raw):
    raw["variants"]["huge"] = {"dense": [10**9]}
    fails(raw, r"variants\.huge\.dense: the model would have")


def test_a_variant_may_change_several_keys(raw):
    raw["variants"]["sgd_tuned"] = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}
    cfg = parse_params(raw).models["sgd_tuned"]
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.nesterov) == ("sgd", 0.05, 0.9, True)
    assert cfg.dense == parse_params(raw).train.dense  # the rest is the baseline's


def test_batch_limit_follows_the_split(raw):
    raw["train"]["batch_size"] = 3600  # 600 per class x 0.6 x 10 classes: one full batch is allowed
    assert parse_params(raw).train.batch_size == 3600
    raw["prepare"]["per_class"] = "all"  # unknown split size: only the memory limit applies
    raw["train"]["batch_size"] = 5000
    assert parse_params(raw).train.batch_size == 5000
