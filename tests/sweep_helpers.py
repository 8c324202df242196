"""Shared by the sweep tests: a tiny prepared-data directory (train and val only) and sweep settings."""

import dataclasses
import json

from cnnstudy.files import write_npz
from cnnstudy.params import parse_sweep


def write_prepared(directory, images, labels):
    """train.npz, val.npz and info.json as the prepare stage writes them; deliberately no test.npz."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", slice(0, 240)), ("val", slice(240, 360))):
        write_npz(directory / f"{name}.npz", images=images[part], labels=labels[part],
                  source=list(range(part.start, part.stop)))
    (directory / "info.json").write_text(json.dumps({"dataset": "mnist-sample",
                                                     "class_names": [str(i) for i in range(10)]}))
    return directory


def tiny_train(tiny):
    return dataclasses.replace(tiny, epochs=1, device="cpu", precision="float32")


def sweep_params(train, space, search="grid", trials=2, address="", scheduler="none", epochs=1):
    raw = {"space": space, "search": search, "trials": trials, "epochs": epochs, "scheduler": scheduler,
           "resources": {"cpu": 1, "gpu": 0}, "address": address, "heatmap": list(space)[:2]}
    if len(space) < 2:
        raw["heatmap"] = ["optimizer", "lr"]
        raw["space"] = {"optimizer": ["adam"], **space}
    return parse_sweep(raw, train)
