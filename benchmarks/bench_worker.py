"""One benchmark run (path A or B, see bench.py), in a process of its own:
`python benchmarks/bench_worker.py '<spec as JSON>'` prints `RESULT <figures as JSON>`."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def worker(spec: dict) -> dict:
    """Train once (spec["path"]: A or B) and return the figures; runs in a subprocess."""
    for key, value in spec.get("env", {}).items():
        os.environ[key] = str(value)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from cnnstudy import runtime
    from cnnstudy.params import load_params

    cfg = load_params().train
    # A keeps TensorFlow's own oneDNN default (off on AVX2), so B/A measures the project's path
    # (which turns oneDNN on) against a plain fit.
    runtime.select_device(cfg.device, onednn=spec["path"] != "A")
    knobs = spec.get("knobs", {})
    if "threads" in knobs:
        import tensorflow as tf

        intra, inter = knobs["threads"]
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras

    with np.load(spec["data"]) as npz:
        data = {k: npz[k] for k in npz.files}
    train = (data["train_images"], data["train_labels"])
    val = (data["val_images"], data["val_labels"]) if "val_images" in data else None
    test = (data["test_images"], data["test_labels"])
    timer = bench_timer(keras, batch_times=spec.get("batch_timer", False))
    rss = {"rss_before_fit_mb": (_status_kb("VmRSS") or 0) / 1024}
    out: dict = {}
    if spec["path"] == "A":
        keras.utils.set_random_seed(cfg.seed)
        model = reference_model(keras, cfg)
        from cnnstudy.training import OPTIMIZERS

        # Plain compile on purpose (the reference), with the project's one optimizer table.
        model.compile(optimizer=OPTIMIZERS[cfg.optimizer](learning_rate=cfg.lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])

        def as_float(images):  # the reports' preprocessing: float32 in [0, 1], channel axis
            return (images.astype("float32") / 255.0)[..., None]

        x_train, x_test = as_float(train[0]), as_float(test[0])
        validation = None if val is None else (as_float(val[0]), val[1])
        rss["rss_before_fit_mb"] = (_status_kb("VmRSS") or 0) / 1024
        reset = _reset_peak_rss()
        start = time.perf_counter()
        model.fit(x_train, train[1], batch_size=cfg.batch_size, epochs=spec["epochs"], validation_data=validation,
                  callbacks=[timer], verbose=0)
        fit_s = time.perf_counter() - start
        peak = _status_kb("VmHWM")
        loss, accuracy = model.evaluate(x_test, test[1], verbose=0)
        out.update(precision="float32", steps_per_execution=1, validation_batch_size=cfg.batch_size)
    else:
        from cnnstudy import training
        from cnnstudy.train_cnn import new_cnn

        if "steps_per_execution" in knobs:
            training.STEPS_PER_EXECUTION = knobs["steps_per_execution"]
        if "validation_batch" in knobs:
            training.VALIDATION_BATCH = knobs["validation_batch"]
        device = runtime.describe_device(cfg.device)
        precision = runtime.resolve_precision(knobs.get("precision", cfg.precision), device["device"])
        runtime.set_precision(precision)
        if knobs.get("float_input"):  # uint8 converted up front instead of inside the model
            train = (train[0].astype("float32"), train[1])
            val = None if val is None else (val[0].astype("float32"), val[1])
        with runtime.distribution_scope(device) as parallel:
            model = new_cnn(cfg)  # the train stage's sequence: seed, build, compile
            if knobs.get("jit_compile"):
                model.jit_compile = True
            rss["rss_before_fit_mb"] = (_status_kb("VmRSS") or 0) / 1024
            reset = _reset_peak_rss()
            start = time.perf_counter()
            result = training.fit(model, train, val, spec["epochs"], cfg.batch_size, callbacks=[timer])
            fit_s = time.perf_counter() - start
            peak = _status_kb("VmHWM")
            loss, accuracy = model.evaluate(training.as_model_input(test[0]), test[1], verbose=0)
        out.update(precision=precision, **result.extra, **parallel)
    out["onednn"] = runtime.onednn_enabled()
    images = len(train[1])
    wall, cpu = timer.wall, timer.cpu
    out.update(
        path=spec["path"], epochs=len(wall), images=images, fit_s=fit_s,
        epoch_s=wall, epoch_cpu_s=cpu, first_epoch_s=wall[0],
        images_per_s=images * (len(wall) - 1) / sum(wall[1:]) if len(wall) > 1 else timer.steady(images, cfg.batch_size),
        cpu_images_per_s=(images * (len(cpu) - 1) / sum(cpu[1:]) if len(cpu) > 1
                          else timer.steady(images, cfg.batch_size, cpu=True)),
        whole_run_images_per_s=images * len(wall) / sum(wall),
        best_epoch_images_per_s=images / min(wall[1:]) if len(wall) > 1 else None,
        test_accuracy=float(accuracy), test_loss=float(loss),
        peak_rss_fit_mb=(peak / 1024) if (reset and peak) else None,
        ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        peak_measure="VmHWM over fit (clear_refs)" if reset and peak else "ru_maxrss (whole process)",
        **rss,
    )
    if len(wall) == 1:
        out["steady_note"] = "one epoch: images/s over the epoch after its first 10% of batches"
    return out


def bench_timer(keras, batch_times: bool = False):
    """A callback with wall and CPU seconds per epoch and, if asked, the time of every batch end."""

    class BenchTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu, self.batches = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._wall, self._cpu = time.perf_counter(), time.process_time()
            self.batches = []

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._wall)
            self.cpu.append(time.process_time() - self._cpu)

        def steady(self, images: int, batch_size: int, cpu: bool = False) -> float | None:
            """Images/s (wall or CPU time) within the last epoch after its first 10% of batches
            (batch_times only)."""
            marks = self.batches
            if len(marks) < 3:
                return None
            steps = marks[-1][0] + 1
            start = next(m for m in marks if m[0] + 1 >= 0.1 * steps)
            if start is marks[-1]:
                return None
            done = lambda step: min(images, (step + 1) * batch_size)  # noqa: E731
            clock = 2 if cpu else 1
            return (done(marks[-1][0]) - done(start[0])) / (marks[-1][clock] - start[clock])

    class BatchTimer(BenchTimer):
        def on_train_batch_end(self, batch, logs=None):  # with several steps per call: the call's last step
            self.batches.append((batch, time.perf_counter(), time.process_time()))

    return BatchTimer() if batch_times else BenchTimer()


def reference_model(keras, cfg):
    if cfg.batch_norm or cfg.augment:
        raise SystemExit("bench: the reference A mirrors the plain baseline; set train.batch_norm and "
                         "train.augment to false")
    layers = [keras.Input((28, 28, 1))]
    for filters in cfg.filters:
        layers += [keras.layers.Conv2D(filters, cfg.kernel_size, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D(2)]
    layers.append(keras.layers.Flatten())
    for units in cfg.dense:
        layers += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(cfg.dropout)]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def run_worker(spec: dict, label: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), json.dumps(spec)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench: run {label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["load_avg_1min_after"] = os.getloadavg()[0]
    return result


if __name__ == "__main__":
    print("RESULT " + json.dumps(worker(json.loads(sys.argv[1]))))
