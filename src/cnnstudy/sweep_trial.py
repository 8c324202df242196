"""One sweep trial: a resolved train configuration in, a trained-and-validated result out.

`run_trial` is plain Python (a dict of train keys, the train and validation arrays, a
`report` callback) and builds through the project's own models and training code, so any
key `train` learns later (loss, activation, schedules...) is swept without a change here.
`tune_trial` adapts it to Ray Tune: it runs in a Ray worker, on any node of the cluster,
reports every epoch (so ASHA can stop it) and answers from the cache passed in when the
configuration was trained before (the path Optuna's proposals take; grid and random
configurations are filtered by the driver before any trial starts).

Only train and validation data reach a trial: the test split is never loaded by the sweep.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from typing import Any, Callable

from cnnstudy.sweep_cache import trial_key
from cnnstudy.sweep_space import SEQUENCE_KEYS, from_json, trial_config

Report = Callable[[dict], None]
# What a trial reports (Ray adds fields of its own to each result; these are ours).
RESULT_KEYS = ("key", "overrides", "cached", "node_id", "node_ip", "host", "pid", "cpu", "device", "backend",
               "precision", "parameters", "epochs_run", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "val_loss_curve", "val_accuracy_curve", "train_time_s", "trial_time_s")


def where() -> dict:
    """The node, host and process a trial ran in (node_id is Ray's, when under Ray)."""
    node_id = ip = ""
    try:
        import ray

        if ray.is_initialized():
            node_id = ray.get_runtime_context().get_node_id()
            # The address the node registered with (ray start --node-ip-address), not a guess.
            ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), "")
    except ImportError:  # pragma: no cover - ray is a pinned dependency
        pass
    return {"node_id": node_id, "node_ip": ip, "host": socket.gethostname(), "pid": os.getpid(),
            "cpu": platform.processor() or platform.machine()}


def run_trial(config: dict, train: tuple, val: tuple, report: Report, use_gpu: bool = True,
              threads: int | None = None) -> dict:
    """Train the configuration `config` (every key of train, epochs included) on `train`,
    validate on `val` after every epoch, call `report` with the running result each epoch,
    and return the final result."""
    from cnnstudy import runtime

    cfg = from_json(config)
    device = cfg.device if use_gpu else "cpu"
    runtime.select_device(device)
    if threads:
        _limit_threads(threads)
    from cnnstudy.sizes import parameter_counts
    from cnnstudy.train_cnn import train_cnn

    started = time.perf_counter()
    info, precision = runtime.set_up(device, cfg.precision)
    runtime.clear_session()  # a reused worker starts each trial from a fresh Keras state
    fixed = {**where(), "device": info["device"], "backend": info["backend"], "precision": precision,
             "parameters": sum(parameter_counts(cfg.filters, cfg.kernel_size, cfg.dense, cfg.batch_norm))}
    # The train stage's sequence (seed, build, compile, schedule, early stopping, fit).
    classes = int(max(train[1].max(), val[1].max())) + 1  # prepare.classes keeps k classes, labelled 0..k-1
    _, result = train_cnn(cfg, train, val, cfg.epochs, name="trial", callbacks=[_EpochReport(report, fixed, started)],
                          num_classes=classes)
    return {**fixed, **_epoch_metrics(result.history, len(result.epoch_seconds)),
            "train_time_s": round(result.train_time_s, 3),
            "trial_time_s": round(time.perf_counter() - started, 3)}


def _limit_threads(threads: int) -> None:
    """At most `threads` CPU threads per op (TensorFlow; Ray sets OMP_NUM_THREADS for the rest), so
    trials sharing a machine do not oversubscribe its cores. Only before TensorFlow's runtime starts;
    in a reused worker the first setting stays, which is the same number. (Kept here, not in
    runtime.py, which every training stage depends on.)"""
    from cnnstudy import runtime

    if runtime.backend_name() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass


def _epoch_metrics(history: dict[str, list[float]], epochs_run: int) -> dict:
    """The last epoch's figures, and the validation curves so far (the tuned stage chooses the
    best trial's epochs on them instead of fitting it again)."""
    last = {name: float(values[-1]) for name, values in history.items() if values}
    return {"epochs_run": epochs_run,
            "train_loss": last.get("loss"), "train_accuracy": last.get("accuracy"),
            "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
            "val_loss_curve": [float(v) for v in history.get("val_loss", [])],
            "val_accuracy_curve": [float(v) for v in history.get("val_accuracy", [])]}


def _EpochReport(report: Report, fixed: dict, started: float):
    import keras

    class EpochReport(keras.callbacks.Callback):
        """Report after every epoch: an early-stopping scheduler may end the trial at any report,
        so each one carries everything the sweep table needs."""

        def __init__(self) -> None:
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.train_time = self.epoch_start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.train_time += time.perf_counter() - self.epoch_start
            for name, value in (logs or {}).items():
                self.history.setdefault(name, []).append(float(value))
            elapsed = time.perf_counter() - started
            report({**fixed, **_epoch_metrics(self.history, epoch + 1), "trial_time_s": round(elapsed, 3),
                    "train_time_s": round(self.train_time, 3)})

    return EpochReport()


def tune_trial(config: dict, *, data: dict, setup: dict) -> None:
    """Ray Tune function trainable. `config`: the swept keys (filters, dense as JSON text, since
    Optuna's choices must be scalars); `data`: {"train": pair, "val": pair}; `setup`: the base
    train config, epochs, data hash, key context, cached results and threads per trial."""
    import ray
    from ray import tune

    overrides = decode_overrides(config)
    resolved = trial_config(from_json(setup["base"]), overrides, setup["epochs"])
    key = trial_key(resolved, setup["data_hash"], setup["context"])
    extra = {"key": key, "overrides": json.dumps(overrides, sort_keys=True)}
    hit = setup["cached"].get(key)
    if hit is not None:
        tune.report({**hit, **extra, "cached": True})
        return
    run_trial(resolved, data["train"], data["val"], lambda metrics: tune.report({**metrics, **extra, "cached": False}),
              use_gpu=bool(ray.get_gpu_ids()), threads=setup["threads"])


def encode_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(list(v)) if isinstance(v, (tuple, list)) else v for k, v in overrides.items()}


def decode_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """Tune's config -> train overrides. Grid/random pass the driver's own list as `combo`."""
    config = config.get("combo", config)
    return {k: tuple(json.loads(v)) if k in SEQUENCE_KEYS and isinstance(v, str) else
            tuple(v) if isinstance(v, list) else v for k, v in config.items()}
