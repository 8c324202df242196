"""The sweep section and its search space: parsing, validation (bad keys named), trial configs, cache keys."""

import copy
import json

import pytest
import yaml

from cnnstudy.params import PARAMS_FILE, ParamsError, parse_params
from cnnstudy.sweep_cache import TrialCache, data_hash, trial_key
from cnnstudy.sweep_space import SEQUENCE_KEYS, Range, explicit_overrides, from_json, trial_config
from cnnstudy.sweep_trial import decode_overrides, encode_overrides


@pytest.fixture
def raw():
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["sweep"].update(space={"optimizer": ["adam", "sgd"], "lr": [0.001, 0.01, 0.1]}, search="grid",
                        heatmap=["optimizer", "lr"])
    return raw


def sweep_of(raw):
    return parse_params(raw).sweep


def fails(raw, match):
    with pytest.raises(ParamsError, match=match):
        parse_params(raw)


def test_grid_parses_with_values_checked_like_train(raw):
    raw["sweep"]["space"]["filters"] = [[8, 16], [16, 32, 64]]
    sweep = sweep_of(raw)
    assert sweep.space == {"optimizer": ("adam", "sgd"), "lr": (0.001, 0.01, 0.1), "filters": ((8, 16), (16, 32, 64))}
    assert sweep.factors == ("optimizer", "lr", "filters")
    assert len(explicit_overrides(sweep, seed=1)) == 2 * 3 * 2
    assert explicit_overrides(sweep, seed=1)[0] == {"optimizer": "adam", "lr": 0.001, "filters": (8, 16)}


@pytest.mark.parametrize("mutate, match", [
    (lambda s: s["space"].update(optimiser=["adam"]), r"unknown key sweep\.space\.optimiser: a sweep varies"),
    (lambda s: s["space"].update(epochs=[1, 2]), r"unknown key sweep\.space\.epochs \(set by sweep\.epochs"),
    (lambda s: s["space"].update(lr=[0.001, -1]), r"sweep\.space\.lr\[1\]: expected a number > 0"),
    (lambda s: s["space"].update(optimizer=["adam", "adamw"]), r"sweep\.space\.optimizer\[1\]: expected one of"),
    (lambda s: s["space"].update(lr=[0.01, 0.01]), r"sweep\.space\.lr: lists a value twice"),
    (lambda s: s["space"].update(lr=[]), r"sweep\.space\.lr: expected a non-empty list"),
    (lambda s: s["space"].update(lr={"low": 1e-4, "high": 1e-1, "log": True}),
     r"sweep\.space\.lr: a range needs search random or optuna"),
    (lambda s: s.update(space={}), r"sweep\.space: expected at least one key"),
    (lambda s: s.update(colour=1), r"unknown key sweep\.colour"),
    (lambda s: s.pop("epochs"), r"missing key sweep\.epochs"),
    (lambda s: s.update(epochs=0), r"sweep\.epochs: expected an integer >= 1"),
    (lambda s: s.update(search="bayes"), r"sweep\.search: expected one of grid, random, optuna"),
    (lambda s: s.update(scheduler="hyperband"), r"sweep\.scheduler: expected one of none, asha"),
    (lambda s: s.update(resources={"cpu": 0, "gpu": 0}), r"sweep\.resources\.cpu: expected a number > 0"),
    (lambda s: s.update(resources={"cpu": 1, "gpu": "some"}), r"sweep\.resources\.gpu: expected a number"),
    (lambda s: s.update(resources={"cpu": 1}), r"missing key sweep\.resources\.gpu"),
    (lambda s: s.update(address=6379), r"sweep\.address: expected a string"),
    (lambda s: s.update(heatmap=["optimizer", "dropout"]), r"sweep\.heatmap: expected two different keys"),
    (lambda s: s["space"].update(filters=[[8, 16, 32, 64, 128, 256]]), r"sweep\.space: the combination filters"),
    (lambda s: s["space"].update(kernel_size=[3, 5], filters=[[8, 16, 32, 64]]),
     r"filters \[8, 16, 32, 64\] with kernel_size 5 does not fit"),
])
def test_bad_sweep_is_named(raw, mutate, match):
    mutate(raw["sweep"])
    fails(raw, match)


def test_ranges_for_random_and_optuna(raw):
    raw["sweep"].update(search="random", trials=12)
    raw["sweep"]["space"].update(lr={"low": 1e-4, "high": 1e-1, "log": True},
                                 kernel_size={"low": 2, "high": 5, "log": False})
    sweep = sweep_of(raw)
    assert sweep.space["lr"] == Range(1e-4, 1e-1, True, float)
    draws = explicit_overrides(sweep, seed=7)
    assert len(draws) == 12
    assert all(1e-4 <= d["lr"] <= 1e-1 and isinstance(d["kernel_size"], int) and 2 <= d["kernel_size"] <= 5
               for d in draws)
    assert draws == explicit_overrides(sweep, seed=7)  # seeded by train.seed: a re-run proposes the same
    assert draws != explicit_overrides(sweep, seed=8)
    longer = explicit_overrides(sweep_of({**raw, "sweep": {**raw["sweep"], "trials": 20}}), seed=7)
    assert longer[:12] == draws  # more trials extend the list: the first ones come from the cache


@pytest.mark.parametrize("name, spec, match", [
    ("optimizer", {"low": 0, "high": 1, "log": False}, r"sweep\.space\.optimizer: a range is only for"),
    ("lr", {"low": 0.1, "high": 0.01, "log": False}, r"sweep\.space\.lr: expected low < high"),
    ("lr", {"low": 0, "high": 0.1, "log": True}, r"sweep\.space\.lr: a log range needs low > 0"),
    ("lr", {"low": 0.001, "high": 0.1}, r"missing key sweep\.space\.lr\.log"),
    ("dropout", {"low": 0.1, "high": 1.0, "log": False}, r"sweep\.space\.dropout\.high: dropout must stay below 1"),
    ("batch_size", {"low": 0.5, "high": 64, "log": False}, r"sweep\.space\.batch_size\.low: expected an integer"),
])
def test_bad_ranges_are_named(raw, name, spec, match):
    raw["sweep"]["search"] = "optuna"
    raw["sweep"]["space"][name] = spec
    fails(raw, match)


def test_gpu_device_needs_gpu_resources(raw):
    raw["train"]["device"] = "gpu"
    raw["sweep"]["resources"] = {"cpu": 1, "gpu": 0}
    fails(raw, r"sweep\.resources\.gpu: train\.device is 'gpu'")


def test_trial_config_is_train_with_the_overrides_and_sweep_epochs(raw):
    params = parse_params(raw)
    config = trial_config(params.train, {"lr": 0.01, "filters": (8, 16), "dense": (64, 32)}, epochs=3)
    assert config == {**json.loads(json.dumps(trial_config(params.train, {}, 3))), "lr": 0.01, "filters": [8, 16],
                      "dense": [64, 32]}
    assert config["epochs"] == 3 and config["optimizer"] == params.train.optimizer
    assert (from_json(config).filters, from_json(config).dense) == ((8, 16), (64, 32))
    json.dumps(config)  # plain JSON: it travels to Ray workers and into the cache key


def test_overrides_survive_tune_encoding():
    # every sequence key of train (the 216-model grid sweeps filters and dense)
    assert SEQUENCE_KEYS == {"filters", "dense"}
    overrides = {"filters": (8, 16), "dense": (128, 128, 128), "lr": 0.01, "optimizer": "sgd"}
    encoded = encode_overrides(overrides)
    assert encoded["filters"] == "[8, 16]" and encoded["dense"] == "[128, 128, 128]"  # Optuna's choices: scalars
    assert decode_overrides(encoded) == overrides
    assert decode_overrides({"combo": encoded}) == overrides


def test_trial_key_depends_on_config_data_and_context(raw):
    train = parse_params(raw).train
    config = trial_config(train, {"lr": 0.01}, 2)
    key = trial_key(config, "data1", {"backend": "tensorflow"})
    assert key == trial_key(copy.deepcopy(config), "data1", {"backend": "tensorflow"})
    assert key != trial_key(trial_config(train, {"lr": 0.02}, 2), "data1", {"backend": "tensorflow"})
    assert key != trial_key(trial_config(train, {"lr": 0.01}, 3), "data1", {"backend": "tensorflow"})
    assert key != trial_key(config, "data2", {"backend": "tensorflow"})
    assert key != trial_key(config, "data1", {"backend": "jax"})


def test_data_hash_reads_train_and_val_only(tmp_path):
    for name in ("info.json", "train.npz", "val.npz"):
        (tmp_path / name).write_bytes(name.encode())
    first = data_hash(tmp_path)
    (tmp_path / "test.npz").write_bytes(b"the test split")
    assert data_hash(tmp_path) == first  # the test split plays no part
    (tmp_path / "val.npz").write_bytes(b"other")
    assert data_hash(tmp_path) != first


def test_cache_round_trip_and_damaged_entry_is_a_miss(tmp_path):
    cache = TrialCache(tmp_path / "c")
    assert cache.get("abc") is None
    cache.put("abc", {"val_accuracy": 0.5})
    assert cache.get("abc") == {"val_accuracy": 0.5, "key": "abc"}
    assert cache.load_every() == {"abc": {"val_accuracy": 0.5, "key": "abc"}}
    (tmp_path / "c" / "abc.json").write_text("{not json")
    assert cache.get("abc") is None and cache.load_every() == {}
