"""Run a sweep on Ray Tune: the cache first, then only the trials it lacks, on a local Ray or a cluster.

`sweep.address` empty: a local Ray is started here (no dashboard, a bounded object store,
quiet) and shut down afterwards. Otherwise `ray.init(address=...)` attaches to an existing
cluster (`ray start --head` elsewhere, KubeRay, Slurm); the package's code travels to its
workers as a Ray runtime-env module, so every node needs only the pinned requirements.
The train and validation arrays are put in Ray's object store once and read by every trial.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnstudy.errors import InterruptedRun, StudyError
from cnnstudy.params import TrainParams
from cnnstudy.sweep_cache import TrialCache, data_hash, trial_key
from cnnstudy.sweep_space import METRIC, MODE, Range, SweepParams, explicit_overrides, to_json, trial_config
from cnnstudy.sweep_trial import RESULT_KEYS, decode_overrides, encode_overrides, tune_trial

PACKAGE_DIR = Path(__file__).resolve().parent
# A local Ray's object store: the default is 30% of RAM; the sweep puts two small arrays there.
OBJECT_STORE_BYTES = 256 * 1024**2


@dataclass
class SweepOutcome:
    rows: list[dict]      # one per trial, in the order of the grid (or of Optuna's proposals)
    trained: int
    cached: int
    seconds: float
    nodes: list[str] = field(default_factory=list)


def key_context(sweep: SweepParams) -> dict:
    """What besides the config and the data decides a trial's result."""
    return {"backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "scheduler": sweep.scheduler}


def run_sweep(sweep: SweepParams, train: TrainParams, data_dir: str | Path, cache: TrialCache,
              log=print) -> SweepOutcome:
    from cnnstudy.data import load_splits

    started = time.perf_counter()
    digest = data_hash(data_dir)
    context = key_context(sweep)
    _, splits = load_splits(data_dir, ("train", "val"))  # never the test split
    setup = {"base": to_json(train), "epochs": sweep.epochs, "data_hash": digest, "context": context,
             "cached": {}, "threads": max(1, int(sweep.cpu))}
    cut_off: list[str] = []
    failed: list[str] = []
    if sweep.search == "optuna":
        # Optuna proposes as it learns, so cached configurations are answered inside the trial.
        setup["cached"] = cache.load_every()
        rows, cut_off, failed = _tune(sweep, train, splits, setup, None, cache)
    else:
        todo, rows_by_key, order = [], {}, []
        for overrides in explicit_overrides(sweep, train.seed):
            key = trial_key(trial_config(train, overrides, sweep.epochs), digest, context)
            if key in order:
                continue  # a random search may draw one configuration twice
            order.append(key)
            hit = cache.get(key)
            if hit is not None:
                rows_by_key[key] = {**hit, "cached": True}
            else:
                todo.append(overrides)
        log(f"sweep: {len(order)} trials, {len(order) - len(todo)} from the cache, {len(todo)} to train")
        fresh, cut_off, failed = _tune(sweep, train, splits, setup, todo, cache) if todo else ([], [], [])
        rows_by_key.update((row["key"], row) for row in fresh)
        rows = [rows_by_key[key] for key in order if key in rows_by_key]
    for row in rows:
        row["overrides_dict"] = decode_overrides(json.loads(row["overrides"]))
    if cut_off or failed:  # the finished trials are cached already: a re-run trains only the missing ones
        raise (StudyError if failed else InterruptedRun)(failure_message(cut_off, failed, finished=len(rows)))
    trained = sum(not row["cached"] for row in rows)
    nodes = sorted({row["node_id"] for row in rows if not row["cached"]})
    return SweepOutcome(rows=rows, trained=trained, cached=len(rows) - trained,
                        seconds=time.perf_counter() - started, nodes=nodes)


def sort_results(grid, completed: set[str]) -> tuple[list[dict], list[str], list[str]]:
    """Tune's results as (rows of the trials that completed, trials cut off, trials that raised).

    `completed`: the ids of the trials Tune ended normally (the last epoch, or an ASHA stop).
    A Ctrl-C makes Tune return normally too, with the trials it never started empty and the
    running ones holding their last epoch's report: those are cut off, not results."""
    rows, cut_off, failed = [], [], []
    for result in grid:
        metrics = result.metrics or {}
        if result.error is not None:
            failed.append(f"{result.config}: {result.error}")
        elif "key" in metrics and metrics.get("trial_id") in completed:
            rows.append({k: v for k, v in metrics.items() if k in RESULT_KEYS})
        else:
            cut_off.append(f"{result.config}: " + (f"stopped after epoch {metrics['epochs_run']}" if "epochs_run" in metrics
                                                   else "not run"))
    return rows, cut_off, failed


def failure_message(cut_off: list[str], failed: list[str], finished: int) -> str:
    """One line for a sweep with trials that did not finish: interrupted (none raised) or failed."""
    kept = f"{finished} trial(s) finished and are cached"
    if not failed:
        return f"sweep interrupted: {kept}, {len(cut_off)} not finished; run the stage again to train only those"
    return (f"{len(failed)} sweep trial(s) failed, {len(cut_off)} not finished ({kept}; "
            f"a re-run trains only the missing ones); first failure: {failed[0]}")


def _cache_entry(row: dict) -> dict:
    return {k: v for k, v in row.items() if k in RESULT_KEYS and k != "cached"}


def _tune(sweep: SweepParams, train: TrainParams, splits: dict, setup: dict,
          explicit: list[dict] | None, cache: TrialCache) -> tuple[list[dict], list[str], list[str]]:
    """Run the trials on Ray; `sort_results` of what they did. Each trial is cached as it
    finishes, so a sweep cut off keeps what it trained."""
    import ray
    from ray import tune

    started_here = connect(sweep.address)
    try:
        gpu = sweep.gpu
        if gpu == "auto":
            gpu = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 and train.device != "cpu" else 0.0
        trainable = tune.with_resources(tune.with_parameters(tune_trial, data=splits, setup=setup),
                                        {"cpu": sweep.cpu, "gpu": gpu})
        if explicit is not None:
            space = {"combo": tune.grid_search([encode_overrides(o) for o in explicit])}
            samples, search_alg = 1, None
        else:
            from ray.tune.search.optuna import OptunaSearch

            space = {name: _tune_domain(spec) for name, spec in encode_space(sweep).items()}
            samples, search_alg = sweep.trials, OptunaSearch(metric=METRIC, mode=MODE, seed=train.seed)
        scheduler = None
        if sweep.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=sweep.epochs, grace_period=1)
        finished = _CacheFinished(cache)
        with tempfile.TemporaryDirectory(prefix="cnnstudy-sweep-") as storage:
            tuner = tune.Tuner(
                trainable, param_space=space,
                tune_config=tune.TuneConfig(metric=METRIC, mode=MODE, num_samples=samples, search_alg=search_alg,
                                            scheduler=scheduler, reuse_actors=True),
                run_config=tune.RunConfig(name="sweep", storage_path=storage, verbose=0,
                                          failure_config=tune.FailureConfig(max_failures=0),
                                          callbacks=[finished]))
            grid = tuner.fit()
        return sort_results(grid, finished.completed)
    finally:
        if started_here:
            ray.shutdown()


def _CacheFinished(cache: TrialCache):
    from ray import tune

    class CacheFinished(tune.Callback):
        """In the driver: a trial's last result goes to the cache the moment the trial ends (ASHA's
        early stops included), not when the whole sweep returns. A sweep cut off by Ctrl-C, a
        lost node or the end of a batch job keeps every trial it finished. `completed`: their ids
        (a Ctrl-C stops the running trials without this call)."""

        def __init__(self) -> None:
            self.completed: set[str] = set()

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.completed.add(trial.trial_id)
            result = trial.last_result or {}
            if "key" in result and not result.get("cached"):
                cache.put(result["key"], _cache_entry(result))

    return CacheFinished()


def encode_space(sweep: SweepParams) -> dict:
    return {name: spec if isinstance(spec, Range) else [encode_overrides({name: v})[name] for v in spec]
            for name, spec in sweep.space.items()}


def _tune_domain(spec):
    from ray import tune

    if isinstance(spec, list):
        return tune.choice(spec)
    if spec.kind is int:
        return (tune.lograndint if spec.log else tune.randint)(int(spec.low), int(spec.high) + 1)
    return (tune.loguniform if spec.log else tune.uniform)(spec.low, spec.high)


def connect(address: str) -> bool:
    """Attach to `address`, or start a local Ray when it is empty. True when this call started it."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    runtime_env = {"py_modules": [str(PACKAGE_DIR)],
                   "env_vars": {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
                                "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}}
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no progress tables on stdout
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "runtime_env": runtime_env}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise StudyError(f"sweep.address: cannot reach a Ray cluster at {address!r} ({exc}); "
                             "start one with `ray start --head` or set sweep.address to '' for a local Ray") from None
    else:
        # "local": always a new Ray of our own; without it ray.init joins the latest cluster that
        # `ray start` left on this machine (and RAY_ADDRESS), which is what sweep.address is for.
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 object_store_memory=OBJECT_STORE_BYTES, **quiet)
    return True
