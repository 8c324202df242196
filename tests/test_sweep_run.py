"""The sweep on a real local Ray: only uncached trials train, the cache answers the rest (grid and
Optuna), results are ranked on validation, the test split is never read (there is none), and a Ctrl-C
keeps every finished trial."""

import dataclasses

import pytest

from cnnstudy.sweep_cache import TrialCache
from cnnstudy.sweep_results import summary, table
from cnnstudy.sweep_run import connect, run_sweep
from sweep_helpers import sweep_params, tiny_train, write_prepared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    import ray

    assert connect("")  # a local Ray for the whole module: one start-up
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, digits):
    return write_prepared(tmp_path_factory.mktemp("prepared"), *digits)


def test_adding_a_grid_value_trains_only_the_new_trial(local_ray, prepared, tiny, tmp_path):
    train, cache = tiny_train(tiny), TrialCache(tmp_path / "cache")
    first = run_sweep(sweep_params(train, {"optimizer": ["adam"], "lr": [0.001, 0.01]}), train, prepared, cache)
    assert (first.trained, first.cached) == (2, 0)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    for row in first.rows:
        assert 0.0 <= row["val_accuracy"] <= 1.0 and row["epochs_run"] == 1 and row["parameters"] > 0
        assert row["val_loss_curve"] == [row["val_loss"]] and row["val_accuracy_curve"] == [row["val_accuracy"]]
        assert row["node_id"] and row["pid"] > 0 and not row["cached"]
    assert not (prepared / "test.npz").exists()  # nothing to read: the sweep ran without a test split

    sweep = sweep_params(train, {"optimizer": ["adam"], "lr": [0.001, 0.01, 0.1]})
    second = run_sweep(sweep, train, prepared, cache)
    assert (second.trained, second.cached) == (1, 2)
    assert [r["overrides_dict"]["lr"] for r in second.rows] == [0.001, 0.01, 0.1]  # grid order
    assert [r["cached"] for r in second.rows] == [True, True, False]
    assert second.rows[0]["val_accuracy"] == first.rows[0]["val_accuracy"]
    counts = summary(second.rows, sweep, second.trained, second.cached, second.seconds, second.nodes)
    assert (counts["trials"], counts["trained"], counts["cached"]) == (3, 1, 2)
    records = table(second.rows, sweep.factors)
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert records[0]["val_accuracy"] == max(r["val_accuracy"] for r in second.rows)
    assert counts["best"]["config"] == {"optimizer": "adam", "lr": records[0]["lr"]}
    # The best trial's curves travel to metrics/sweep.json (the tuned stage picks epochs on them),
    # also when the trial came from the cache; the table keeps one row of scalars per trial.
    assert counts["best"]["val_loss_curve"] == [counts["best"]["val_loss"]]
    assert "val_loss_curve" not in counts["top"][0] and "val_loss_curve" not in records[0]


def test_optuna_proposals_are_answered_from_the_cache_on_a_rerun(local_ray, prepared, tiny, tmp_path):
    train, cache = tiny_train(tiny), TrialCache(tmp_path / "cache")
    sweep = sweep_params(train, {"optimizer": ["adam", "sgd"], "lr": {"low": 1e-3, "high": 1e-1, "log": True}},
                         search="optuna", trials=2)
    first = run_sweep(sweep, train, prepared, cache)
    assert (first.trained, first.cached) == (2, 0)
    assert all(1e-3 <= r["overrides_dict"]["lr"] <= 1e-1 for r in first.rows)
    again = run_sweep(sweep, train, prepared, cache)  # TPE seeded by train.seed proposes the same two
    assert (again.trained, again.cached) == (0, 2)
    assert sorted(r["key"] for r in again.rows) == sorted(r["key"] for r in first.rows)


def test_asha_stops_or_finishes_every_trial_and_caches_it(local_ray, prepared, tiny, tmp_path):
    train, cache = tiny_train(tiny), TrialCache(tmp_path / "cache")
    # dense is a list-valued key, like filters: it travels through Tune as JSON text
    sweep = sweep_params(train, {"optimizer": ["adam", "sgd"], "dense": [[16], [16, 16]]}, scheduler="asha", epochs=2)
    outcome = run_sweep(sweep, train, prepared, cache)
    assert (outcome.trained, outcome.cached) == (4, 0)
    assert sorted(r["overrides_dict"]["dense"] for r in outcome.rows) == [(16,), (16,), (16, 16), (16, 16)]
    # ASHA may end a trial after its first epoch; its last report is the row, with everything in it
    assert all(r["epochs_run"] in (1, 2) and 0.0 <= r["val_accuracy"] <= 1.0 and r["node_id"] for r in outcome.rows)
    assert max(r["epochs_run"] for r in outcome.rows) == 2
    assert len(list((tmp_path / "cache").glob("*.json"))) == 4


def test_ctrl_c_keeps_the_finished_trials_and_a_rerun_trains_only_the_rest(local_ray, prepared, tiny, tmp_path):
    import os
    import signal
    import threading
    import time

    from cnnstudy.errors import InterruptedRun

    train, cache_dir = dataclasses.replace(tiny_train(tiny), epochs=15), tmp_path / "cache"
    sweep = sweep_params(train, {"optimizer": ["adam"], "lr": [0.001, 0.002, 0.003, 0.004]}, epochs=15)

    def ctrl_c_after_the_first_trial():  # as a user would: Tune's own SIGINT handler in the main thread
        deadline = time.monotonic() + 300
        while not any(cache_dir.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_after_the_first_trial, daemon=True).start()
    with pytest.raises(InterruptedRun, match=r"^sweep interrupted: [1-3] trial\(s\) finished and are cached, "
                                         r"[1-3] not finished; run the stage again") as interrupted:
        run_sweep(sweep, train, prepared, TrialCache(cache_dir))
    kept = len(list(cache_dir.glob("*.json")))
    assert f"{kept} trial(s) finished" in str(interrupted.value)  # the trials cut off were not cached
    again = run_sweep(sweep, train, prepared, TrialCache(cache_dir))
    assert (again.trained, again.cached) == (4 - kept, kept)
    assert all(r["epochs_run"] == 15 for r in again.rows)
