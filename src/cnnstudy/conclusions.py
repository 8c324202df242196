"""What the comparison may conclude, in sentences a person would write.

Rules: a model is chosen on the validation split, never on the test split; the variants'
McNemar tests against the baseline are a family, so conclusions use Holm-corrected p-values;
and a difference the baseline itself shows between seeds (the retrain stage) is no finding.
"""

from __future__ import annotations

import math
from typing import Sequence

from cnnstudy.params import BASELINE

SIGNIFICANCE = 0.05


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (family-wise error control)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def wilson(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion measured on `n` items."""
    if n <= 0:
        return (0.0, 1.0)
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def seed_spread(base_row: dict, retrained: dict | None) -> dict | None:
    """The baseline's accuracy range over its seeds: train.seed's run plus the retrain stage's
    (metrics/retrained.json); None when no other seed was trained."""
    if not retrained:
        return None
    runs = [{"test_accuracy": base_row["test_accuracy"], "val_accuracy": base_row["val_accuracy"]},
            *retrained.values()]
    test = [r["test_accuracy"] for r in runs]
    val = [r["val_accuracy"] for r in runs]
    return {"runs": len(runs), "test_min": min(test), "test_max": max(test), "val_min": min(val), "val_max": max(val)}


def within_spread(row: dict, spread: dict | None) -> bool | None:
    if spread is None:
        return None
    return spread["test_min"] <= row["test_accuracy"] <= spread["test_max"]


def chosen_on_validation(rows: list[dict]) -> dict:
    """The model with the best validation accuracy (the baseline on a tie). A model without one
    (the tuned model: refit on train + validation, chosen on validation by the sweep) is not a candidate."""
    candidates = [r for r in rows if r["val_accuracy"] is not None]
    return max(candidates, key=lambda r: (r["val_accuracy"], r["model"] == BASELINE))


def _points(delta: float) -> str:
    return f"{abs(delta):.2f} point" + ("" if round(abs(delta), 2) == 1 else "s")


def _p_text(row: dict) -> str:
    return f"McNemar p = {row['mcnemar_p']:.2g}, {row['mcnemar_p_holm']:.2g} after Holm's correction"


def headline(rows: list[dict], spread: dict | None) -> str:
    """The report's opening sentences: which model validation chose, and what the test split says."""
    base = next(r for r in rows if r["model"] == BASELINE)
    chosen = chosen_on_validation(rows)
    variants = [r for r in rows if r["model"] != BASELINE]
    if chosen is base:
        text = f"On the validation split no variant beat the baseline ({base['val_accuracy']:.2%})."
    else:
        text = (f"On the validation split **{chosen['model']}** ({chosen['change']}) did best with "
                f"{chosen['val_accuracy']:.2%} against the baseline's {base['val_accuracy']:.2%}; on the test split "
                f"it scored {chosen['test_accuracy']:.2%} against {base['test_accuracy']:.2%}.")
    better = [r["model"] for r in variants if r["significant"] and r["delta_vs_baseline"] > 0]
    worse = [r["model"] for r in variants if r["significant"] and r["delta_vs_baseline"] < 0]
    if not better:
        text += (f" **No significant winner**: no variant is significantly better than the baseline "
                 f"({base['test_accuracy']:.2%} on test) after Holm's correction for {len(variants)} comparisons.")
    else:
        text += f" Significantly better than the baseline on test (Holm-corrected): {', '.join(better)}."
    if worse:
        text += f" Significantly worse: {', '.join(worse)}."
    if spread is not None:
        text += (f" Across {spread['runs']} seeds the baseline itself scored {spread['test_min']:.2%}–"
                 f"{spread['test_max']:.2%} on test.")
    return text


def observation(row: dict, base: dict, spread: dict | None) -> str:
    """One variant against the baseline, as a person would put it."""
    delta = row["delta_vs_baseline"]
    if round(delta, 2) == 0:
        result = f"{row['test_accuracy']:.2%} on test, the same as the baseline"
    else:
        result = (f"{row['test_accuracy']:.2%} on test, {_points(delta)} {'above' if delta > 0 else 'below'} "
                  f"the baseline's {base['test_accuracy']:.2%}")
    if row["significant"]:
        verdict = f"a significant difference ({_p_text(row)})"
    else:
        verdict = f"not a significant difference ({_p_text(row)})"
    seeds = within_spread(row, spread)
    if seeds is True:
        verdict += "; it lies within the range the baseline spans across seeds"
    elif seeds is False and round(delta, 2) != 0:
        verdict += (f"; outside the baseline's seed range ({spread['test_min']:.2%}–{spread['test_max']:.2%})")
    ratio = row["train_time_s"] / base["train_time_s"] if base["train_time_s"] else float("nan")
    if math.isfinite(ratio) and abs(ratio - 1) >= 0.1:
        cost = f" Training took {ratio:.1f}× as long as the baseline's."
    else:
        cost = " Training took about as long as the baseline's."
    return f"**{row['model']}** ({row['change']}): {result}; {verdict}.{cost}"


def observations(rows: list[dict], spread: dict | None = None) -> list[str]:
    base = next((r for r in rows if r["model"] == BASELINE), None)
    if base is None:
        return []
    return [observation(r, base, spread) for r in rows if r["model"] != BASELINE]
