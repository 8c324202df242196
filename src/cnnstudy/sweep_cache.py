"""Per-trial result cache: one JSON file per trial, named by the hash of what decides its result.

The key hashes the trial's full resolved train configuration (every key of `train`, with the
trial's epochs), the hash of the data it trains and validates on (the train and validation
splits and info.json: never the test split), the Keras backend, the scheduler (ASHA may stop a
trial early) and CACHE_VERSION. Adding a value to a grid therefore trains only the new
combinations. The directory is a `persist: true` output of the sweep stage, so DVC neither
deletes it before a run nor loses it: it is cached and pushed like any output, and machines
sharing a DVC remote share trial results.

Bump CACHE_VERSION when the trial function changes what a trial computes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cnnstudy.errors import DataError
from cnnstudy.files import write_json

CACHE_VERSION = 2  # 2: entries hold the validation curves (val_loss_curve, val_accuracy_curve)
# The files the sweep reads; hashing only these keeps the test split out of the sweep entirely.
DATA_FILES = ("info.json", "train.npz", "val.npz")


def data_hash(directory: str | Path) -> str:
    """sha256 over the bytes of the files the sweep reads (names included)."""
    digest = hashlib.sha256()
    for name in DATA_FILES:
        path = Path(directory) / name
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro prepare`")
        digest.update(name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def trial_key(config: dict, data: str, context: dict[str, Any]) -> str:
    """A stable hash of a resolved trial config, the data hash and whatever else decides the result."""
    payload = {"version": CACHE_VERSION, "config": config, "data": data, **context}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class TrialCache:
    """Finished trials, one `<key>.json` per trial (written atomically)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a damaged entry is a miss: the trial is trained again and the file rewritten
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, key: str, result: dict) -> None:
        write_json(self._path(key), {**result, "key": key})

    def load_every(self) -> dict[str, dict]:
        """Every readable entry, by key (what an Optuna sweep's trials look up)."""
        found = {path.stem: self.get(path.stem) for path in sorted(self.directory.glob("*.json"))}
        return {key: entry for key, entry in found.items() if entry is not None}
