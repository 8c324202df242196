"""Load and save .keras model files with errors that name the file and the fix.

Keras reports a truncated or corrupt .keras as "File not found" and a file its safe
mode refuses (a Lambda layer, a config naming a module such as `os`) as a long
traceback. Here each becomes one DataError. Safe mode stays on: a model file is
data, and must never run code stored in it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from cnnstudy.errors import DataError, output_error

_SAFE_MODE_HINTS = ("safe_mode", "Lambda", "arbitrary code", "not allowed", "unsafe")


def load_model(path: str | Path, fix: str, compile: bool = True):
    """keras.saving.load_model(path) in safe mode; any failure is a DataError ending in `fix`."""
    import keras

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: missing; {fix}")
    if not path.is_file():
        raise DataError(f"{path}: is not a file; remove it and {fix}")
    size = path.stat().st_size
    if size == 0 or not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a Keras model file ({size:,} bytes, not a .keras zip archive: "
                        f"truncated or corrupt); {fix}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # CRC of every member: catches bytes changed inside the archive
            if bad is not None:
                raise DataError(f"{path}: corrupt (member {bad} fails its checksum); {fix}")
            _refuse_foreign_modules(path, archive, fix)
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary where Keras' many error types end
        message = " ".join(str(exc).split())
        if any(hint in message for hint in _SAFE_MODE_HINTS):
            raise DataError(f"{path}: refused by Keras safe mode, it would run code stored in the file "
                            f"({_first_sentence(message)}); do not load model files you did not make; "
                            f"{fix}") from None
        cause = message.split("Exception encountered:")[-1].strip()
        raise DataError(f"{path}: cannot be loaded ({type(exc).__name__}: {_first_sentence(cause)}); "
                        f"{fix}") from None


def _refuse_foreign_modules(path: Path, archive: zipfile.ZipFile, fix: str) -> None:
    """Refuse a config that names a module outside Keras (`os`, `subprocess`, ...): Keras would
    try to import it; our models only ever use Keras' own classes."""
    import json

    try:
        config = json.loads(archive.read("config.json"))
    except KeyError:
        raise DataError(f"{path}: not a Keras model file (no config.json in the archive); {fix}") from None
    except ValueError as exc:
        raise DataError(f"{path}: its config.json is not valid JSON ({exc}); {fix}") from None
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
                raise DataError(f"{path}: refused: its config names module {module!r} (class "
                                f"{node.get('class_name')!r}), which is not part of Keras, and loading it could "
                                f"run code; do not load model files you did not make; {fix}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def save_model(model, target: str | Path) -> None:
    """model.save() atomically: the file at `target` is the new model, or stays the previous one."""
    from cnnstudy.files import atomic_path

    target = Path(target)
    with atomic_path(target) as tmp:
        try:
            model.save(tmp)
            canonical_keras_file(tmp)
        except OSError as exc:
            raise output_error(target, exc) from None


# A .keras archive from the same weights differs run to run in three places: metadata.json's
# date_saved, the Python object ids Keras writes as shared_object_id in config.json, and each
# zip entry's timestamp. With them fixed, equal weights give an equal file, so a re-training
# that reproduced its model leaves the model's hash in dvc.lock as it was.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_keras_file(path: str | Path) -> None:
    """Rewrite the .keras archive at `path` in place without what varies between saves of
    the same model: no date_saved, shared_object_id numbered 1, 2, ... in order of first
    appearance, every entry dated 1980-01-01. Keras loads the result as before."""
    import json

    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
            archive.writestr(entry, data)


def _renumber_shared_objects(node, numbers: dict):
    if isinstance(node, dict):
        return {key: numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id"
                else _renumber_shared_objects(value, numbers) for key, value in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_objects(value, numbers) for value in node]
    return node


def _first_sentence(message: str, limit: int = 200) -> str:
    end = message.find(". ")
    text = message if end < 0 else message[:end]
    return text if len(text) <= limit else text[:limit] + "..."
