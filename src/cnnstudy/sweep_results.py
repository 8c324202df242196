"""The sweep's tables: metrics/sweep.csv (one row per trial) and metrics/sweep.json (best, top 5, counts).

Trials are ranked on validation accuracy (ties: lower validation loss); the test split plays no
part. No plotting here: the figures are drawn by cnnstudy.sweep_charts in a stage of their own.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cnnstudy.files import write_json, write_text
from cnnstudy.sweep_space import METRIC, SweepParams, json_value

TOP = 5
MEASURES = ("val_accuracy", "val_loss", "train_accuracy", "train_loss", "epochs_run", "train_time_s",
            "trial_time_s", "parameters")
WHERE = ("device", "backend", "precision", "host", "node_ip", "node_id", "pid", "cached", "key")


def ranked(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (-float(r["val_accuracy"]), float(r["val_loss"])))


def table(rows: list[dict], factors: tuple[str, ...]) -> list[dict]:
    """One flat record per trial, best first: rank, every swept value, the measures, where it ran."""
    records = []
    for rank, row in enumerate(ranked(rows), start=1):
        values = {f: _cell(json_value(row["overrides_dict"][f])) for f in factors}
        records.append({"rank": rank, **values, **{m: row.get(m) for m in MEASURES},
                        **{w: row.get(w) for w in WHERE}})
    return records


def _cell(value):
    # filters as "32-64-128": one readable token per CSV cell, still parseable
    return "-".join(map(str, value)) if isinstance(value, list) else value


def write_csv(path: str | Path, records: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["rank"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    write_text(path, out.getvalue())


def summary(rows: list[dict], sweep: SweepParams, trained: int, cached: int, seconds: float,
            nodes: list[str]) -> dict:
    best = ranked(rows)[:TOP]
    factors = sweep.factors
    return {
        "search": sweep.search,
        "metric": METRIC,
        "split": "val",
        "epochs_per_trial": sweep.epochs,
        "factors": list(sweep.factors),
        "trials": len(rows),
        "trained": trained,
        "cached": cached,
        "nodes": len(nodes),
        "seconds": round(seconds, 1),
        "trials_per_minute": round(trained / seconds * 60, 2) if trained and seconds else None,
        "best": best_brief(best[0], factors) if best else None,
        "top": [_brief(r, factors) for r in best],
    }


def _brief(row: dict, factors: tuple[str, ...]) -> dict:
    return {"config": {f: json_value(row["overrides_dict"][f]) for f in factors},
            **{m: row.get(m) for m in ("val_accuracy", "val_loss", "train_accuracy", "train_loss", "epochs_run")},
            "key": row["key"]}


def best_brief(row: dict, factors: tuple[str, ...]) -> dict:
    """The best trial's brief with its validation curves: the tuned stage chooses epochs on them."""
    return {**_brief(row, factors), **{c: row.get(c) for c in ("val_loss_curve", "val_accuracy_curve")}}


def write_summary(path: str | Path, data: dict) -> None:
    write_json(path, data)
