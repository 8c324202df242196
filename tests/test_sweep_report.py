"""The report's sweep and tuned-model section, built from small hand-written stage outputs
(metrics/sweep.json, metrics/train/tuned.json, comparison rows): no DVC, no training. And how
the sweep reads Tune's results when trials did not finish (Ctrl-C, a trial that raised)."""

import dataclasses
import re

import pytest

from cnnstudy import sweep_report
from cnnstudy.params import load_params
from cnnstudy.sweep_params import Range


@pytest.fixture(scope="module")
def params():
    return load_params()


def trial(lr, batch_norm, val_accuracy, val_loss):
    return {"config": {"lr": lr, "batch_norm": batch_norm}, "val_accuracy": val_accuracy, "val_loss": val_loss,
            "train_accuracy": 0.97, "train_loss": 0.1, "epochs_run": 6, "key": f"k{lr}{batch_norm}"}


def sweep_json():
    top = [trial(0.003, True, 0.9875, 0.041), trial(0.001, True, 0.9850, 0.052), trial(0.003, False, 0.9800, 0.06)]
    return {"search": "grid", "metric": "val_accuracy", "split": "val", "epochs_per_trial": 6,
            "factors": ["lr", "batch_norm"], "trials": 4, "trained": 1, "cached": 3, "nodes": 2, "seconds": 93.5,
            "trials_per_minute": 0.64, "best": top[0], "top": top}


def tuned_json(select="validation", chosen=7, budget=10):
    selection = {"select": select, "max_epochs": budget}
    if select != "fixed":
        losses = [0.3 - 0.02 * i for i in range(budget)]
        losses[chosen - 1] = 0.0312
        selection.update(val_loss=losses, val_accuracy=[0.9 + 0.005 * i for i in range(budget)], chosen_epochs=chosen)
    return {"model": "tuned", "config": {"lr": 0.003, "batch_norm": True, "epochs": chosen}, "epoch_selection": selection}


def rows(tuned_accuracy=0.9925, p=0.004, p_holm=0.012, significant=True):
    base = {"model": "baseline", "test_accuracy": 0.9825, "delta_vs_baseline": 0.0, "epochs": 12, "test_images": 1200,
            "mcnemar_p": None, "mcnemar_p_holm": None, "significant": False, "mcnemar": None}
    variant = {"model": "lr_high", "test_accuracy": 0.97, "delta_vs_baseline": -1.25, "test_images": 1200,
               "mcnemar_p": 0.01, "mcnemar_p_holm": 0.02, "significant": True,
               "mcnemar": {"only_baseline_right": 20, "only_model_right": 5, "p_value": 0.01}}
    tuned = {"model": "tuned", "test_accuracy": tuned_accuracy,
             "delta_vs_baseline": round((tuned_accuracy - 0.9825) * 100, 3), "test_images": 1200,
             "mcnemar_p": p, "mcnemar_p_holm": p_holm, "significant": significant,
             "mcnemar": {"only_baseline_right": 3, "only_model_right": 15, "p_value": p}}
    return [base, variant, tuned]


SPREAD = {"runs": 3, "test_min": 0.9800, "test_max": 0.9850, "val_min": 0.975, "val_max": 0.98}


def section(params, tmp_path, **kw):
    settings = dataclasses.replace(params.sweep, space={"lr": (0.001, 0.003), "batch_norm": (False, True)},
                                   heatmap=("lr", "batch_norm"))
    args = {"summary": sweep_json(), "record": tuned_json(), "rows": rows(), "spread": SPREAD, **kw}
    return "\n".join(sweep_report.sweep_section(args["summary"], args["record"], args["rows"], args["spread"],
                                                settings, params.train, tmp_path / "reports",
                                                plots_dir=tmp_path / "plots" / "sweep"))


def test_how_the_search_was_set_and_its_top_trials(params, tmp_path):
    text = section(params, tmp_path)
    assert text.startswith("## 11. The sweep and the tuned model")
    assert "a grid search (every combination once) over 2 keys of `train`: `lr` ∈ {0.001, 0.003}; " \
           "`batch_norm` ∈ {False, True}" in text
    assert "at most 6 epochs (no trial was stopped early)" in text
    assert "**4 trials**: 1 trained in this run, 3 taken from the cache" in text and "on 2 nodes in 93.5 s" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == "| rank | lr | batch_norm | val acc | val loss | train acc | epochs run |"
    assert table[1] == "| 1 | 0.003 | True | 98.75% | 0.0410 | 97.00% | 6 |"
    assert table[3] == "| 3 | 0.003 | False | 98.00% | 0.0600 | 97.00% | 6 |"
    assert "test" not in "\n".join(table[:4]).lower()  # trials are ranked on validation only


def test_figures_are_linked_when_drawn(params, tmp_path):
    missing = section(params, tmp_path)
    assert missing.count("not produced: run `dvc repro sweep_plots`") == 3
    plots = tmp_path / "plots" / "sweep"
    plots.mkdir(parents=True)
    for png in ("parallel_coordinates.png", "main_effects.png", "heatmap.png"):
        (plots / png).write_bytes(b"png")
    text = section(params, tmp_path)
    links = re.findall(r"!\[([^]]*)\]\(([^)]+)\)", text)
    assert [target for _, target in links] == ["../plots/sweep/parallel_coordinates.png",
                                               "../plots/sweep/main_effects.png", "../plots/sweep/heatmap.png"]
    assert "mean validation accuracy per lr x batch_norm" in links[2][0]


def test_tuned_model_changes_epochs_and_test_result(params, tmp_path):
    text = section(params, tmp_path)
    assert "| `lr` | 0.001 | **0.003** |" in text
    assert "| `batch_norm` | False | **True** |" in text
    assert "| `epochs` | 12 (auto: k-fold) | **7** |" in text  # the baseline's resolved epochs, not "auto"
    assert ("a fit of this configuration on the train split alone for 10 epochs had its lowest validation loss, "
            "averaged over 3 neighbouring epochs, around epoch 7 (that epoch: 0.0312, validation accuracy 93.00%)"
            ) in text and "refit on train + validation for **7 epochs**" in text
    assert "Capped" not in text
    assert "**99.25%** against the baseline's 98.25% (Δ +1.00 points)" in text
    assert ("only the baseline right on 3, only the tuned model right on 15; p = 0.004, 0.012 after Holm's "
            "correction over the 2 comparisons") in text
    assert "**Reading:** better than the baseline by more than noise: +1.00 points" in text
    assert "above every seed of the baseline (the baseline itself spans 98.00%–98.50% across 3 seeds)" in text


def test_reading_says_noise_when_it_is(params, tmp_path):
    text = section(params, tmp_path, rows=rows(tuned_accuracy=0.985, p=0.45, p_holm=0.45, significant=False))
    assert "**Reading:** not better than the baseline by more than noise: +0.25 points on 1,200 test images, " \
           "Holm-corrected McNemar p = 0.45" in text
    inside = sweep_report.reading(rows(tuned_accuracy=0.9850)[2], SPREAD)
    assert "significantly better by McNemar" in inside and "seed luck" in inside
    worse = sweep_report.reading(rows(tuned_accuracy=0.97)[2], None)
    assert worse.startswith("**Reading:** worse than the baseline") and "-1.25 points" in worse


def test_epochs_capped_or_fixed():
    capped = sweep_report.epochs_text(tuned_json(chosen=10, budget=10)["epoch_selection"])
    assert "around epoch 10" in capped and "**Capped:**" in capped and "raise tuned.epochs" in capped
    from_sweep = sweep_report.epochs_text(tuned_json(select="sweep", chosen=10, budget=10)["epoch_selection"])
    assert from_sweep.startswith("Epochs: the best sweep trial (this configuration, trained on the train split "
                                 "alone for 10 epochs) had") and "raise sweep.epochs" in from_sweep
    cosine = sweep_report.epochs_text(tuned_json(select="sweep", chosen=10, budget=10)["epoch_selection"], "cosine")
    assert "Capped" not in cosine and "anneals the learning rate to zero at its last epoch" in cosine
    fixed = sweep_report.epochs_text(tuned_json(select="fixed", budget=12)["epoch_selection"])
    assert fixed == "Epochs: fixed at 12 in params (tuned.select: fixed); no fit chose them."


def test_ranges_and_a_random_search(params):
    space = {"lr": Range(low=1e-4, high=1e-2, log=True, kind=float), "optimizer": ("adam", "sgd")}
    assert sweep_report.space_text(space) == "`lr` from 0.0001 to 0.01 (log scale); `optimizer` ∈ {adam, sgd}"
    settings = dataclasses.replace(params.sweep, space=space, search="random", trials=20, scheduler="asha")
    text = "\n".join(sweep_report.search_lines({**sweep_json(), "search": "random", "factors": ["lr", "optimizer"]},
                                               settings))
    assert "a random search (20 trials asked)" in text and "ASHA stopped weak trials early" in text
    one = "\n".join(sweep_report.search_lines({**sweep_json(), "epochs_per_trial": 1}, settings))
    assert "for at most 1 epoch (ASHA" in one


def test_missing_stages_are_said_not_crashed(params, tmp_path):
    text = section(params, tmp_path, summary=None, record=None, rows=rows()[:2])
    assert "metrics/sweep.json not produced: run `dvc repro sweep`" in text
    assert "the tuned model is not evaluated yet" in text and "**Reading:**" not in text


# ------------------------------------------------------------------ trials that did not finish
def _result(config: dict, metrics: dict | None = None, error: Exception | None = None):
    from ray.tune import Result

    return Result(metrics={**(metrics or {}), "config": config}, checkpoint=None, error=error, path="")


def test_a_ctrl_c_leaves_trials_not_run_and_cut_off_and_the_sweep_reads_as_interrupted():
    from cnnstudy.sweep_run import failure_message, sort_results

    done = _result({"combo": "a"}, {"key": "k1", "val_accuracy": 0.9, "epochs_run": 12, "trial_id": "t1"})
    # Still training when Ctrl-C came: its last epoch's report looks like a result, but Tune never completed it.
    running = _result({"combo": "b"}, {"key": "k2", "val_accuracy": 0.5, "epochs_run": 3, "trial_id": "t2"})
    rows, cut_off, failed = sort_results([done, running, _result({"combo": "c"})], completed={"t1"})
    assert rows == [{"key": "k1", "val_accuracy": 0.9, "epochs_run": 12}]  # only RESULT_KEYS travel
    assert cut_off == ["{'combo': 'b'}: stopped after epoch 3", "{'combo': 'c'}: not run"]
    assert failed == []
    message = failure_message(cut_off, failed, finished=28)
    assert message.startswith("sweep interrupted: 28 trial(s) finished and are cached, 2 not finished")
    assert "failed" not in message


def test_a_trial_that_raised_is_named_as_the_first_failure():
    from cnnstudy.sweep_run import failure_message, sort_results

    rows, cut_off, failed = sort_results([_result({"combo": "b"}),
                                          _result({"combo": "c"}, error=ValueError("dense: bad width"))], completed=set())
    assert rows == []
    message = failure_message(cut_off, failed, finished=3)
    assert message.startswith("1 sweep trial(s) failed, 1 not finished (3 trial(s) finished and are cached")
    assert message.endswith("first failure: {'combo': 'c'}: dense: bad width")
