"""Waiting on a signalled child process in tests: a hung child fails with its kernel state."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def communicate_or_explain(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """proc.communicate; if the child has not exited in time, fail with its kernel state (once in
    a full suite a child was still running 30 s after SIGTERM: was the signal blocked, pending,
    or the process stuck in I/O?) instead of a bare TimeoutExpired."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            lines = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            state = "; ".join(line for line in lines if line.startswith(("State", "Sig", "Shd", "Threads")))
            state += "; wchan " + Path(f"/proc/{proc.pid}/wchan").read_text()
        except OSError as exc:
            state = f"/proc unreadable: {exc}"
        proc.kill()
        proc.communicate()
        pytest.fail(f"the child had not exited {timeout} s after the signal: {state}")
