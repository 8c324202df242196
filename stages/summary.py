"""Stage summary: every model against the baseline, as JSON, Markdown tables and charts."""

from pathlib import Path

from cnnstudy.files import long_format, write_csv, write_json, write_text
from cnnstudy.params import load_params
from cnnstudy.stage import run

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
    from cnnstudy import figures, summary
    from cnnstudy.figures.results import bar_figure, curves_figure
    from cnnstudy.tables import markdown_table

    from cnnstudy.tuned import study_models

    params = load_params()
    models = study_models(params.models, params.train)  # + the tuned model once its stage has run
    rows = summary.load_rows(models)
    write_json("metrics/summary.json", {row["model"]: {k: v for k, v in row.items() if k != "model"} for row in rows})
    write_json("metrics/models.json", {row["model"]: summary.headline(row) for row in rows})
    table = markdown_table(rows, summary.COLUMNS)
    text = ["# Model comparison (test split)", "", table, "",
            "## Configurations (changed value in bold)", "", summary.config_table(models), "",
            "## Observations", "", *[f"- {line}" for line in summary.observations(rows)], ""]
    write_text("metrics/summary.md", "\n".join(text))

    names = [row["model"] for row in rows]
    for key, title, ylabel, stem, fmt in BARS:
        figures.save(bar_figure(names, [row[key] for row in rows], title, ylabel, fmt=fmt),
                     Path("plots/summary") / f"{stem}.png")
    histories = {name: summary.read_history(Path("dvclive") / name) for name in names}
    for metric in HISTORY_METRICS:
        curves = {name: {"epoch": range(1, len(h.get(metric, [])) + 1), metric: h.get(metric, [])}
                  for name, h in histories.items()}
        write_csv(Path("plots/history") / f"{metric}.csv", long_format(curves), ["series", "epoch", metric])
    figures.save(curves_figure(histories, "val_accuracy", "Validation accuracy per epoch"),
                 "plots/summary/curves_val_accuracy.png")
    figures.save(curves_figure(histories, "val_loss", "Validation loss per epoch"),
                 "plots/summary/curves_val_loss.png")
    print(table)


if __name__ == "__main__":
    run(main)
