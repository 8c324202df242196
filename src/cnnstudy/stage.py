"""What every stage script shares: a clean exit on errors the user can fix."""

from __future__ import annotations

import os
import sys
from typing import Callable

from cnnstudy.errors import StudyError


def quiet_backends() -> None:
    """Silence TensorFlow's C++ start-up log before anything imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); a StudyError becomes one line on stderr and exit status 1."""
    quiet_backends()
    try:
        main()
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
