"""Progress lines: per epoch always, within the epoch on a terminal (or periodically in a log), the capped warning."""

import io
import time

import keras
import numpy as np

from cnnstudy.progress import Clock, Progress, capped_warning, duration
from cnnstudy.training import compile_model, fit


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def tiny_model():
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")], name="tiny")
    return compile_model(model, "adam", 0.01)


def data(n=64):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


def run_progress(stream, tty, interval_s, epochs=2):
    images, labels = data()
    progress = Progress(epochs, label="tiny", stream=stream, tty=tty, interval_s=interval_s)
    # Each epoch lasts at least 0.6 s, so the time left after the first is worth printing (under
    # 0.5 s it is left out) on a CPU that runs this tiny model's epoch in a few milliseconds.
    pace = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: time.sleep(0.6))
    tiny_model().fit(images[..., None], labels, epochs=epochs, batch_size=8, callbacks=[progress, pace], verbose=0)
    return stream.getvalue()


def test_log_gets_one_line_per_epoch_and_no_redraws():
    text = run_progress(io.StringIO(), tty=False, interval_s=3600)
    lines = text.splitlines()
    assert len(lines) == 2 and "\r" not in text
    assert lines[0].startswith("tiny: epoch 1/2 done in ") and "about" in lines[0] and "left" in lines[0]
    assert lines[1].startswith("tiny: epoch 2/2 done in ") and "left" not in lines[1]


def test_log_gets_periodic_lines_within_an_epoch():
    lines = run_progress(io.StringIO(), tty=False, interval_s=0.0, epochs=1).splitlines()
    within = [line for line in lines if "batch" in line]
    assert within and within[0].startswith("tiny: epoch 1/1 batch ") and "/8" in within[0] and "loss" in within[0]


def test_terminal_redraws_one_line_in_place():
    text = run_progress(FakeTTY(), tty=None, interval_s=0.0, epochs=1)
    assert text.count("\r\033[K") > 1 and text.endswith("\n") and text.count("\n") == 1


def test_fit_reports_progress_by_model_name(capsys):
    images, labels = data()
    fit(tiny_model(), (images, labels), None, 1, 16)
    assert "tiny: epoch 1/1 done in" in capsys.readouterr().err


def test_duration_and_clock_estimate():
    assert [duration(s) for s in (4.4, 185, 3720)] == ["4 s", "3 min 05 s", "1 h 02 min"]
    clock = Clock(4)
    clock.start -= 30  # one of four folds took 30 s
    assert clock.status(1) == "30 s elapsed, about 1 min 30 s left" and clock.status(4) == "30 s elapsed"


def test_capped_warning_only_when_every_fold_hits_the_cap():
    assert capped_warning([5, 5, 5], 5) and "kfold.max_epochs (5)" in capped_warning([5, 5, 5], 5)
    assert capped_warning([5, 4, 5], 5) is None and capped_warning([], 5) is None
