"""Comparison helpers: McNemar's test, tables, observations, history files."""


import numpy as np
import pytest

from cnnstudy.params import load_params
from cnnstudy.report import embedded_markdown
from cnnstudy.files import long_format, write_csv
from cnnstudy.predictions import read_predictions, write_predictions
from cnnstudy.summary import config_table, describe_change, mcnemar, read_history
from cnnstudy.tables import markdown_table


def test_mcnemar_counts_only_discordant_pairs():
    a = np.array([True] * 90 + [False] * 10)
    assert mcnemar(a, a) == {"only_baseline_right": 0, "only_model_right": 0, "p_value": 1.0}
    b = a.copy()
    b[90:] = True  # the model also gets the baseline's 10 mistakes right
    result = mcnemar(a, b)
    assert result["only_model_right"] == 10 and result["only_baseline_right"] == 0
    assert result["p_value"] == pytest.approx(2 * 0.5 ** 10)  # exact two-sided binomial


def test_mcnemar_balanced_disagreement_is_not_significant():
    a = np.array([True, False] * 50)
    b = np.array([False, True] * 50)
    assert mcnemar(a, b)["p_value"] > 0.9


def test_describe_change_names_the_one_key():
    params = load_params()
    assert describe_change(params.models["filters_wide"], params.train) == "filters=[64, 128, 256]"
    assert describe_change(params.train, params.train) == "—"


def test_config_table_bolds_only_the_changed_cell():
    table = config_table(load_params().models)
    lr_row = next(line for line in table.splitlines() if line.startswith("| lr_high |"))
    assert lr_row.count("**") == 2 and "**0.01**" in lr_row


def rows():
    base = {"model": "baseline", "change": "—", "test_accuracy": 0.95, "train_time_s": 10.0,
            "delta_vs_baseline": 0.0, "mcnemar_p": None, "significant": False}
    better = {**base, "model": "wide", "change": "filters=[64]", "test_accuracy": 0.97, "train_time_s": 30.0,
              "delta_vs_baseline": 2.0, "mcnemar_p": 0.001, "significant": True}
    same = {**base, "model": "drop", "change": "dropout=0.4", "test_accuracy": 0.945, "train_time_s": 10.0,
            "delta_vs_baseline": -0.5, "mcnemar_p": 0.6, "significant": False}
    return [base, better, same]


def test_markdown_table_formats_and_dashes_missing_values():
    table = markdown_table(rows(), columns=(("model", "model", "{}"), ("mcnemar_p", "p", "{:.3g}"),
                                            ("change", "change", "{}")))
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    assert cells[0] == ["model", "p", "change"]
    assert set(cells[1][0]) <= set("-:")
    assert cells[2][:2] == ["baseline", "—"]
    assert cells[3][:2] == ["wide", "0.001"]


def test_markdown_table_keeps_cells_as_text_and_escapes_pipes():
    table = markdown_table([{"a": "0.950", "b": "x|y"}], (("a", "a", "{}"), ("b", "b", "{}")))
    assert "0.950" in table and "x\\|y" in table


def test_history_round_trip_from_dvclive_files(tmp_path):
    from dvclive import Live

    live = Live(str(tmp_path / "m"), dvcyaml=None, save_dvc_exp=False)
    for step, (loss, val) in enumerate([(1.0, 0.5), (0.5, 0.7)], start=1):
        live.step = step
        live.log_metric("train/loss", loss)
        live.log_metric("val/accuracy", val)
        live.next_step()
    live.end()
    history = read_history(tmp_path / "m")
    assert history == {"loss": [1.0, 0.5], "val_accuracy": [0.5, 0.7]}
    curves = {"m": {"epoch": range(1, 3), "val_accuracy": history["val_accuracy"]}}
    write_csv(tmp_path / "h.csv", long_format(curves), ["series", "epoch", "val_accuracy"])
    assert (tmp_path / "h.csv").read_text().splitlines() == ["series,epoch,val_accuracy", "m,1,0.5", "m,2,0.7"]
    write_csv(tmp_path / "empty.csv", long_format({}), ["series", "epoch", "val_accuracy"])
    assert (tmp_path / "empty.csv").read_text() == "series,epoch,val_accuracy\n"


def test_predictions_round_trip_and_bad_files(tmp_path):
    from cnnstudy.errors import DataError

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    write_predictions(tmp_path / "p.npz", np.array([0, 1, 1]), probabilities, ("a", "b"))
    p = read_predictions(tmp_path / "p.npz")
    assert p.predicted.tolist() == [0, 1, 0] and p.correct.tolist() == [True, True, False]
    assert p.class_names == ("a", "b") and p.probabilities.dtype == np.float32
    with pytest.raises(DataError, match="missing; run `dvc repro evaluate`"):
        read_predictions(tmp_path / "absent.npz", "m")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz: unreadable"):
        read_predictions(tmp_path / "bad.npz")


def test_embedded_markdown_demotes_headings(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("# Title\n\ntext\n\n## Part\n")
    lines = embedded_markdown(md, "8. Section", [], tmp_path)
    assert lines[0] == "## 8. Section" and "# Title" not in lines and "### Part" in lines
    missing = embedded_markdown(tmp_path / "none.md", "9. Other", [], tmp_path)
    assert "not produced" in missing[-1]


def test_headline_figures_have_the_same_names_for_every_model():
    """metrics/models.json (summary) and metrics/compare.json (evaluation.headline) share their keys,
    so the study's models and the standard ones read alike in `dvc metrics show`."""
    from cnnstudy.evaluation import HEADLINE
    from cnnstudy.summary import headline

    row = {"test_accuracy": 0.9, "test_loss": 0.3, "f1_macro": 0.89, "train_time_s": 12.0, "model_file_mb": 2.9}
    assert headline(row) == {"accuracy": 0.9, "loss": 0.3, "f1_macro": 0.89, "train_time_s": 12.0,
                             "model_file_mb": 2.9}
    assert tuple(headline(row)) == HEADLINE
