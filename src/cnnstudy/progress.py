"""Progress of long work: a Keras callback and a stage-level clock, both with an estimate of what is left.

On a terminal the current epoch's progress is one line rewritten in place; in a log (no
terminal: CI, `dvc exp run --queue`) a line every `interval_s` seconds instead, so a slow
first epoch (381 s of ResNet50 here) is never silence. Every epoch ends with a line of its own.
Lines go to stderr: stdout stays the stage's results. training.fit adds it to every fit, so
stages pass verbose=0 to Keras (its own lines would repeat these, without the time left).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import keras

LOG_INTERVAL_S = 30.0
TTY_INTERVAL_S = 0.25  # redraws per second on a terminal: cheap beside a training step


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Clock:
    """Elapsed time of `total` units of work (folds, models) and the time left at the mean pace."""

    def __init__(self, total: int) -> None:
        self.total, self.start = total, time.perf_counter()

    def status(self, done: int) -> str:
        elapsed = time.perf_counter() - self.start
        if done <= 0 or done >= self.total:
            return f"{duration(elapsed)} elapsed"
        return f"{duration(elapsed)} elapsed, about {duration(elapsed / done * (self.total - done))} left"


class Progress(keras.callbacks.Callback):
    """Per-batch progress on a terminal (or a periodic line in a log) and one line per epoch."""

    def __init__(self, epochs: int, label: str = "", stream: TextIO | None = None, tty: bool | None = None,
                 interval_s: float | None = None) -> None:
        super().__init__()
        self.epochs, self.label = epochs, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s if interval_s is not None else TTY_INTERVAL_S if self.tty else LOG_INTERVAL_S
        self._start = self._epoch_start = self._last_line = 0.0
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_start = epoch, time.perf_counter()
        self._last_line = self._epoch_start

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self._last_line < self.interval_s:
            return
        self._last_line = now
        steps = (self.params or {}).get("steps")
        done = (batch + 1) / steps if steps else None
        where = f"batch {batch + 1}/{steps}" if steps else f"batch {batch + 1}"
        line = f"{self._prefix()} {where}{_loss(logs)}, {self._times(now, done)}"
        self._write(line, final=False)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        logs = logs or {}
        scores = "".join(f", {k} {float(v):.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy"))
        self._write(f"{self._prefix()} done in {duration(now - self._epoch_start)}{scores}; "
                    f"{self._times(now, 1.0)}", final=True)

    def _prefix(self) -> str:
        return f"{self.label + ': ' if self.label else ''}epoch {self._epoch + 1}/{self.epochs}"

    def _times(self, now: float, epoch_fraction: float | None) -> str:
        """Elapsed since fit began and the time left at the pace so far (early stopping may end sooner)."""
        elapsed = now - self._start
        if not epoch_fraction:
            return f"{duration(elapsed)} elapsed"
        done = self._epoch + epoch_fraction
        left = elapsed / done * (self.epochs - done)
        return f"{duration(elapsed)} elapsed" + (f", about {duration(left)} left" if left >= 0.5 else "")

    def _write(self, line: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _loss(logs) -> str:
    try:
        return f", loss {float((logs or {})['loss']):.4f}"
    except (KeyError, TypeError, ValueError):
        return ""


def capped_warning(best_epochs: list[int], max_epochs: int) -> str | None:
    """The warning when every fold's best epoch is the last allowed: the choice is then capped, not chosen."""
    if best_epochs and all(epoch >= max_epochs for epoch in best_epochs):
        return (f"warning: every fold's best epoch is kfold.max_epochs ({max_epochs}): the validation loss was "
                "still falling, so the chosen epoch count is capped, not chosen; raise kfold.max_epochs")
    return None
