"""What Python's cyclic garbage collector costs a stage's process: the time to import Keras (and
TensorFlow), a short fit, and the time from the last line of the script to the end of the process
(FINDINGS-avx2.md, "Start-up and exit").

Usage: python benchmarks/experiments/gc_startup.py [--rounds 2]
Each round runs a fresh interpreter per setting, alternating:
  default  the collector as Python sets it
  paused   the import with the collector off, then gc.freeze() (devices.collector_paused)
Prints one line per run: import s, first fit s, later fits s, exit s, generation-2 collections.
"""

import argparse
import os
import subprocess
import sys
import time

CHILD = r"""
import gc, sys, time
paused = sys.argv[1] == "paused"
t0 = time.time()
if paused:
    gc.disable()
import numpy as np, keras
if paused:
    gc.freeze(); gc.enable()
t1 = time.time()
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3), keras.layers.Conv2D(64, 3),
                          keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
x = np.random.default_rng(0).random((3600, 28, 28, 1), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 10, 3600)
model.fit(x, y, epochs=1, verbose=0)
t2 = time.time()
model.fit(x, y, epochs=3, verbose=0)
t3 = time.time()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f} {gc.get_stats()[2]['collections']} {t3:.3f}", flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"}
    print("setting  import_s  first_fit_s  later_fits_s  exit_s  gen2_collections")
    for _ in range(args.rounds):
        for setting in ("default", "paused"):
            done = subprocess.run([sys.executable, "-c", CHILD, setting], env=env, capture_output=True, text=True)
            ended = time.time()
            if done.returncode != 0:
                sys.exit(done.stderr)
            imported, first, later, gen2, last_line = done.stdout.split()
            print(f"{setting:8s} {imported:>8s} {first:>12s} {later:>13s} {ended - float(last_line):7.2f}  {gen2}")


if __name__ == "__main__":
    main()
