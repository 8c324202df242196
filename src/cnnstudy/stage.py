"""What every stage script shares: one line on stderr and a non-zero exit for any fault
the user can act on (bad input, full or read-only disk, Ctrl-C), never a traceback.

Outputs are written atomically (cnnstudy.files), so a stage stopped by any of these
leaves each final path as it was: the last good result, or nothing.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Callable

from cnnstudy.errors import InterruptedRun, StudyError, describe_os_error

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
# Python's collector runs after every 700 new container objects by default. A stage imports a few
# hundred thousand long-lived ones (SciPy, matplotlib, Ray, TensorFlow) and makes few cycles, so
# rarer collections cost little memory and save import time (stage summary: 7.9 -> 6.9 s here, 3 alternated pairs).
GC_THRESHOLDS = (100_000, 20, 10)


def quiet_backends() -> None:
    """Silence TensorFlow's C++ start-up log before anything imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def model_argument() -> str:
    """The one argument of a per-model stage (train@<model>: `python stages/train.py <model>`)."""
    if len(sys.argv) != 2:
        raise StudyError(f"usage: python {sys.argv[0]} <model name from params.yaml variants>")
    return sys.argv[1]


def _stage_name() -> str:
    script = os.path.splitext(os.path.basename(sys.argv[0] or "stage"))[0]
    return "@".join([script, *sys.argv[1:2]])


def _terminate(signum, frame) -> None:
    # SIGTERM (dvc, a batch system) unwinds like Ctrl-C, so temp files are removed.
    raise KeyboardInterrupt


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    try:
        sys.stdout.flush()
    except OSError:
        pass
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); every fault the user can act on becomes one line and a non-zero exit."""
    from cnnstudy.files import target_of_temp

    quiet_backends()
    gc.set_threshold(*GC_THRESHOLDS)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
        gc.freeze()  # the process ends here: its last collection would only walk what exit frees anyway
    except InterruptedRun as exc:  # stopped part-way, what it finished kept: say what, exit as Ctrl-C does
        _fail(str(exc), EXIT_INTERRUPTED)
    except StudyError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail(f"{_stage_name()} interrupted; nothing was written at the final paths (each output is the "
              f"previous result, or absent); run the stage again", EXIT_INTERRUPTED)
    except MemoryError:
        _fail(f"{_stage_name()} ran out of memory; use smaller sizes in params.yaml (batch_size, dense, "
              f"per_class) or a machine with more memory")
    except OSError as exc:
        if exc.filename is not None:  # name the output, not its temp file
            exc.filename = str(target_of_temp(exc.filename))
            if exc.filename2 is not None and str(exc.filename2) == exc.filename:
                exc.filename2 = None
        _fail(describe_os_error(exc))
