"""Per-epoch wall and CPU seconds of the baseline's fit, and the time of each call into the
backend, to see the epochs that begin with an idle stall (FINDINGS-avx2.md, "tf.data stalls").

Usage, from the repository root after `make repro` (it reads data/prepared):
  python benchmarks/experiments/epoch_stalls.py arrays      # fit on the arrays, as Keras does it
  python benchmarks/experiments/epoch_stalls.py autotune-off  # Keras's own pipeline, autotuning off
Options: --epochs N (default 8), --no-validation.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.train_cnn import new_cnn  # noqa: E402
from cnnstudy.training import STEPS_PER_EXECUTION, training_inputs  # noqa: E402


class CallTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.wall, self.cpu, self.calls = time.perf_counter(), time.process_time(), []
        self.last = self.wall

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.calls.append(round(now - self.last, 2))
        self.last = now

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        print(f"epoch {epoch + 1}: wall {wall:.2f} s, cpu {cpu:.2f} s ({cpu / wall:.2f} cores), "
              f"calls {self.calls}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=["arrays", "autotune-off"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--no-validation", action="store_true")
    args = parser.parse_args()
    cfg = load_params().train
    with np.load("data/prepared/train.npz") as train, np.load("data/prepared/val.npz") as val:
        x, y = train["images"][..., None], train["labels"]
        validation = None if args.no_validation else (val["images"][..., None], val["labels"])
    model = new_cnn(cfg)
    model.steps_per_execution = STEPS_PER_EXECUTION
    data = ({"x": x, "y": y, "batch_size": cfg.batch_size, "shuffle": True} if args.path == "arrays"
            else training_inputs(model, x, y, cfg.batch_size))
    model.fit(**data, epochs=args.epochs, validation_data=validation, callbacks=[CallTimes()], verbose=0)


if __name__ == "__main__":
    main()
