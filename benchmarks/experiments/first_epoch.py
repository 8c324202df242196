"""How much of a standard model's first epoch is graph construction (FINDINGS-avx2.md, second phase).

    python benchmarks/experiments/first_epoch.py [default|nometa] [MODEL] [--steps-per-execution N]

Fits MODEL (default densenet121, built as the compare stage builds it) on 1,024 random images of
its input shape for three epochs and prints each epoch's wall and CPU seconds (all threads). `nometa`
turns grappler's meta-optimizer off first. Beside other work, compare the CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="default", choices=["default", "nometa"])
    parser.add_argument("model", nargs="?", default="densenet121")
    parser.add_argument("--steps-per-execution", type=int, default=8)
    args = parser.parse_args()

    import tensorflow as tf

    if args.mode == "nometa":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    import keras
    import numpy as np

    from cnnstudy.standard_models import build_standard, input_shape

    keras.utils.set_random_seed(1)
    model = build_standard(args.model, 32, 1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=args.steps_per_execution)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (1024, *input_shape(args.model, 32)), dtype=np.uint8)
    labels = rng.integers(0, 10, 1024)

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            print(f"{args.model} {args.mode} spe={args.steps_per_execution} epoch {epoch + 1}: "
                  f"wall {time.perf_counter() - self.wall:.1f} s, cpu {time.process_time() - self.cpu:.1f} s",
                  flush=True)

    model.fit(images, labels, batch_size=64, epochs=3, validation_data=(images[:256], labels[:256]),
              verbose=0, callbacks=[EpochClock()])


if __name__ == "__main__":
    main()
