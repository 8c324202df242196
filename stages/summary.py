"""Stage summary: every model against the baseline, as JSON, Markdown tables and charts."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnstudy.files import save_figure, write_json, write_text  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402

HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
BARS = (  # (row key, chart title, y label, file stem, number format)
    ("test_accuracy", "Test accuracy", "test accuracy", "test_accuracy", "{:.2%}"),
    ("val_accuracy", "Validation accuracy (last epoch)", "val accuracy", "val_accuracy", "{:.2%}"),
    ("train_accuracy", "Training accuracy (last epoch)", "train accuracy", "train_accuracy", "{:.2%}"),
    ("train_time_s", "Training time", "seconds", "train_time", "{:.1f}"),
    ("test_time_s", "Test time (whole test split)", "seconds", "test_time", "{:.3f}"),
    ("model_file_mb", "Model file size (.keras, incl. optimizer state)", "MB", "model_size", "{:.2f}"),
)


def main() -> None:
    from cnnstudy import charts, summary

    params = load_params()
    rows = summary.load_rows(params.models)
    write_json("metrics/summary.json", {row["model"]: {k: v for k, v in row.items() if k != "model"} for row in rows})
    text = ["# Model comparison (test split)", "", summary.markdown_table(rows), "",
            "## Configurations (changed value in bold)", "", summary.config_table(params.models), "",
            "## Observations", "", *[f"- {line}" for line in summary.observations(rows)], ""]
    write_text("metrics/summary.md", "\n".join(text))

    names = [row["model"] for row in rows]
    for key, title, ylabel, stem, fmt in BARS:
        save_figure(charts.bar_figure(names, [row[key] for row in rows], title, ylabel, fmt=fmt),
                    Path("plots/summary") / f"{stem}.png")
    histories = {name: summary.read_history(Path("dvclive") / name) for name in names}
    for metric in HISTORY_METRICS:
        write_text(Path("plots/history") / f"{metric}.csv", summary.long_history_csv(histories, metric))
    save_figure(charts.curves_figure(histories, "val_accuracy", "Validation accuracy per epoch"),
                "plots/summary/curves_val_accuracy.png")
    save_figure(charts.curves_figure(histories, "val_loss", "Validation loss per epoch"),
                "plots/summary/curves_val_loss.png")
    print(summary.markdown_table(rows))


if __name__ == "__main__":
    run(main)
