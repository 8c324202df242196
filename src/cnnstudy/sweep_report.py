"""The report's section on the sweep and the tuned model: how the search was set, its best
trials (validation only), its figures, then the tuned model against the baseline.

Built from what the sweep, sweep_plots, tuned, evaluate and summary stages wrote
(metrics/sweep.json, plots/sweep/, metrics/train/tuned.json, the report's rows); the report
stage adds it with one call, `sweep_section(...)`. Markdown only: a rendering module.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

from cnnstudy.conclusions import SIGNIFICANCE
from cnnstudy.params import BASELINE, TUNED, TrainParams
from cnnstudy.sweep_params import SweepParams
from cnnstudy.tables import grid, image_link, markdown_table
from cnnstudy.tuned import SMOOTHING

TITLE = "11. The sweep and the tuned model"
SWEEP_JSON = Path("metrics/sweep.json")
TUNED_JSON = Path("metrics/train") / f"{TUNED}.json"
PLOTS_DIR = Path("plots/sweep")
SEARCHES = {"grid": "a grid search (every combination once)", "random": "a random search",
            "optuna": "Optuna's TPE search"}


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def space_text(space: Mapping[str, Any]) -> str:
    """`lr` ∈ {0.001, 0.003}; `dropout` from 0.1 to 0.5 (log scale) ... (a list or a range per key)."""
    parts = []
    for key, spec in space.items():
        if isinstance(spec, (list, tuple)):
            parts.append(f"`{key}` ∈ {{{', '.join(_value(v) for v in spec)}}}")
        else:  # a sweep_params.Range
            parts.append(f"`{key}` from {_value(spec.low)} to {_value(spec.high)}" + (" (log scale)" if spec.log else ""))
    return "; ".join(parts)


def search_lines(summary: Mapping, settings: SweepParams) -> list[str]:
    """How the search was set, and how many trials ran now or came from the cache."""
    search = SEARCHES.get(summary["search"], summary["search"])
    asked = "" if summary["search"] == "grid" else f" ({settings.trials} trials asked)"
    scheduler = ("ASHA stopped weak trials early on validation accuracy" if settings.scheduler == "asha"
                 else "no trial was stopped early")
    rate = summary.get("trials_per_minute")
    epochs = summary["epochs_per_trial"]
    return [
        f"Ray Tune ran {search}{asked} over {len(summary['factors'])} keys of `train`: {space_text(settings.space)}; "
        "every other key as in the baseline. Each trial trained on the train split for at most "
        f"{epochs} epoch{'s' if epochs != 1 else ''} ({scheduler}) and was ranked on validation accuracy (ties: lower "
        "validation loss); the test split played no part.", "",
        f"**{summary['trials']} trials**: {summary['trained']} trained in this run, {summary['cached']} taken from the "
        "cache of earlier runs (cache/sweep, keyed by each trial's full configuration and the data), on "
        f"{summary['nodes']} node{'s' if summary['nodes'] != 1 else ''} in {summary['seconds']:,} s"
        + (f" ({rate} trained trials per minute)." if rate else "."), "",
    ]


def top_table(summary: Mapping) -> str:
    """The best trials (metrics/sweep.json's top), validation figures only: no trial saw test."""
    factors = list(summary["factors"])
    rows = [{"rank": rank, **trial["config"], **trial} for rank, trial in enumerate(summary["top"], start=1)]
    return markdown_table(rows, [("rank", "rank", "{}"), *((f, f, _value) for f in factors),
                                 ("val_accuracy", "val acc", "{:.2%}"), ("val_loss", "val loss", "{:.4f}"),
                                 ("train_accuracy", "train acc", "{:.2%}"), ("epochs_run", "epochs run", "{}")])


def figure_lines(settings: SweepParams, report_dir: Path, plots_dir: Path = PLOTS_DIR) -> list[str]:
    rows, cols = settings.heatmap
    figures = (("parallel_coordinates.png", "parallel coordinates: every trial through each factor to its "
                "validation accuracy"),
               ("main_effects.png", "main effect of each factor: mean validation accuracy per value, with its spread"),
               ("heatmap.png", f"mean validation accuracy per {rows} x {cols}"))
    return [(image_link(plots_dir / png, report_dir, alt) if (plots_dir / png).exists()
             else f"*({(plots_dir / png).as_posix()} not produced: run `dvc repro sweep_plots`)*") + "\n"
            for png, alt in figures]


def changes_table(changes: Mapping[str, Any], train: TrainParams, base_row: Mapping) -> str:
    """The keys of `train` the tuned model changes: the baseline's value beside the tuned one."""
    baseline = dataclasses.asdict(train)
    rows = []
    for key, value in changes.items():
        before = baseline.get(key)
        if key == "epochs" and before == "auto":
            before = f"{base_row.get('epochs')} (auto: k-fold)"
        rows.append([f"`{key}`", _value(before), f"**{_value(value)}**"])
    return grid(["key", "baseline", "tuned"], rows)


def epochs_text(selection: Mapping, schedule: str = "constant") -> str:
    """How the tuned model's epochs were chosen (metrics/train/tuned.json's epoch_selection);
    `schedule`: the tuned model's lr_schedule."""
    budget = selection["max_epochs"]
    if selection["select"] == "fixed":
        return f"Epochs: fixed at {budget} in params (tuned.select: fixed); no fit chose them."
    chosen = selection["chosen_epochs"]
    fit = (f"the best sweep trial (this configuration, trained on the train split alone for {budget} epochs)"
           if selection["select"] == "sweep" else f"a fit of this configuration on the train split alone for {budget} epochs")
    text = (f"Epochs: {fit} had its lowest validation loss, averaged over {SMOOTHING} neighbouring "
            f"epochs, around epoch {chosen} (that epoch: {selection['val_loss'][chosen - 1]:.4f}, validation accuracy "
            f"{selection['val_accuracy'][chosen - 1]:.2%}); the final model was refit on train + validation for "
            f"**{chosen} epochs**. The test split was read once, by stage evaluate.")
    knob = "sweep.epochs" if selection["select"] == "sweep" else "tuned.epochs"
    if chosen == budget and schedule == "cosine":
        text += (f" The full budget, as a cosine schedule tends to give: it anneals the learning rate to zero at its "
                 f"last epoch. A longer budget is another schedule, for another sweep ({knob}).")
    elif chosen == budget:
        text += (f" **Capped:** the validation loss was lowest at the last epoch allowed ({budget}), so the count is a "
                 f"cap, not a choice (raise {knob}).")
    return text


def reading(tuned: Mapping, spread: Mapping | None) -> str:
    """One honest line: better than the baseline by more than noise, or not."""
    delta = tuned["delta_vs_baseline"]
    holm = f"Holm-corrected McNemar p = {tuned['mcnemar_p_holm']:.2g}"
    inside = spread is not None and spread["test_min"] <= tuned["test_accuracy"] <= spread["test_max"]
    seeds = (f"the baseline itself spans {spread['test_min']:.2%}–{spread['test_max']:.2%} across "
             f"{spread['runs']} seeds" if spread else "")
    if tuned["significant"] and delta > 0:
        if inside:
            return (f"**Reading:** significantly better by McNemar ({holm}), yet inside the range {seeds}: part of "
                    f"the {delta:+.2f} points may be seed luck. It also trained on the validation split.")
        return (f"**Reading:** better than the baseline by more than noise: {delta:+.2f} points, {holm} < "
                f"{SIGNIFICANCE}" + (f", and above every seed of the baseline ({seeds})" if spread else "")
                + ". Part of it may be the refit's extra data (the validation split).")
    if tuned["significant"]:
        return f"**Reading:** worse than the baseline, and by more than noise: {delta:+.2f} points, {holm}."
    return (f"**Reading:** not better than the baseline by more than noise: {delta:+.2f} points on "
            f"{tuned['test_images']:,} test images, {holm}" + (f"; {seeds}" if spread else "") + ".")


def tuned_lines(record: Mapping, rows: Sequence[Mapping], spread: Mapping | None, train: TrainParams) -> list[str]:
    base = next(r for r in rows if r["model"] == BASELINE)
    tuned = next(r for r in rows if r["model"] == TUNED)
    family = sum(1 for r in rows if r.get("mcnemar_p") is not None)
    mcnemar = tuned["mcnemar"]
    changes = record.get("config") or {}
    return [
        "### The tuned model", "",
        "The best trial's configuration applied to `train`, its epochs chosen without the test split, refit on "
        "train + validation (as the k-fold studies do for their final model). Its changes against the baseline:", "",
        changes_table(changes, train, base) if changes else "*(none: the sweep's best is the baseline's configuration)*",
        "", epochs_text(record["epoch_selection"], changes.get("lr_schedule", train.lr_schedule)), "",
        f"On the test split: **{tuned['test_accuracy']:.2%}** against the baseline's {base['test_accuracy']:.2%} "
        f"(Δ {tuned['delta_vs_baseline']:+.2f} points). McNemar's exact test on the same {tuned['test_images']:,} "
        f"test images: only the baseline right on {mcnemar['only_baseline_right']}, only the tuned model right on "
        f"{mcnemar['only_model_right']}; p = {tuned['mcnemar_p']:.2g}, {tuned['mcnemar_p_holm']:.2g} after Holm's "
        f"correction over the {family} comparisons with the baseline.", "",
        reading(tuned, spread), "",
    ]


def sweep_section(summary: Mapping | None, record: Mapping | None, rows: Sequence[Mapping], spread: Mapping | None,
                  settings: SweepParams, train: TrainParams, report_dir: Path, plots_dir: Path = PLOTS_DIR,
                  title: str = TITLE) -> list[str]:
    """The section. summary: metrics/sweep.json; record: metrics/train/tuned.json; rows: the
    report's comparison rows (the tuned model's among them once evaluated); either file None
    when its stage has not run."""
    lines = [f"## {title}", ""]
    if summary is None:
        lines += [f"*({SWEEP_JSON.as_posix()} not produced: run `dvc repro sweep`)*", ""]
    else:
        lines += [*search_lines(summary, settings),
                  f"The best {len(summary['top'])} trials (validation split):", "", top_table(summary), "",
                  *figure_lines(settings, report_dir, plots_dir)]
    if record is None or not any(r["model"] == TUNED for r in rows):
        lines += ["*(the tuned model is not evaluated yet: run `dvc repro evaluate`)*", ""]
    else:
        lines += tuned_lines(record, rows, spread, train)
    return lines
