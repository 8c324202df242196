"""Stage summary: every model against the baseline, as JSON, Markdown tables and charts."""

from pathlib import Path

from cnnstudy.files import long_format, read_json, write_csv, write_json, write_text
from cnnstudy.params import load_params
from cnnstudy.stage import run

DATA_JSON = Path("metrics/data.json")
ENVIRONMENT_JSON = Path("metrics/environment.json")  # what the run ran on: CPU, instruction sets, versions
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
ACCURACY_BARS = (  # (row key, chart title, y label, file stem)
    ("test_accuracy", "Test accuracy", "test accuracy", "test_accuracy"),
    ("val_accuracy", "Validation accuracy (last epoch)", "val accuracy", "val_accuracy"),
    ("train_accuracy", "Training accuracy (last epoch, training mode)", "train accuracy", "train_accuracy"),
)
BARS = (  # (row key, chart title, y label, file stem, number format)
    ("train_time_s", "Training time", "seconds", "train_time", "{:.1f}"),
    ("test_time_s", "Test time (whole test split)", "seconds", "test_time", "{:.3f}"),
    ("model_file_mb", "Model file size (.keras, incl. optimizer state)", "MB", "model_size", "{:.2f}"),
)


def main() -> None:
    from cnnstudy import environment, figures, summary
    from cnnstudy.conclusions import headline, observations, seed_spread
    from cnnstudy.figures.results import accuracy_figure, bar_figure, curves_figure
    from cnnstudy.tables import markdown_table
    from cnnstudy.tuned import study_models

    params = load_params()
    models = study_models(params.models, params.train)  # + the tuned model once its stage has run
    rows = summary.load_rows(models)
    write_json("metrics/summary.json", {row["model"]: {k: v for k, v in row.items() if k != "model"} for row in rows})
    write_json("metrics/models.json", {row["model"]: summary.headline(row) for row in rows})
    write_json(ENVIRONMENT_JSON, environment.describe([r["device"] for r in rows], [r["precision"] for r in rows],
                                                      [r["backend"] for r in rows]))
    table = markdown_table(rows, summary.COLUMNS)
    spread = seed_spread(rows[0], summary.read_retrained())
    text = ["# Model comparison (test split)", "", headline(rows, spread), "", table, "",
            "## Configurations (changed value in bold)", "", summary.config_table(models), "",
            "## Observations", "", *[f"- {line}" for line in observations(rows, spread)], ""]
    write_text("metrics/summary.md", "\n".join(text))

    names = [row["model"] for row in rows]
    marks = {r["model"]: "better" if r["delta_vs_baseline"] > 0 else "worse" for r in rows if r["significant"]}
    images = {"test_accuracy": [r["test_images"] for r in rows], "val_accuracy": [val_images()] * len(rows),
              "train_accuracy": [None] * len(rows)}
    for key, title, ylabel, stem in ACCURACY_BARS:
        caption = ("▲/▼: McNemar's test against the baseline on the same test images, Holm-corrected over the "
                   "variants" if key == "test_accuracy" else "")
        # the tuned model, refit on train + validation, has no validation accuracy of its own
        shown = [i for i, row in enumerate(rows) if row[key] is not None]
        figures.save(accuracy_figure([names[i] for i in shown], [rows[i][key] for i in shown],
                                     [images[key][i] for i in shown], title, ylabel,
                                     significant=marks if key == "test_accuracy" else None, caption=caption),
                     Path("plots/summary") / f"{stem}.png")
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


def val_images() -> int | None:
    """The validation split's size (prepare's metrics/data.json), for the accuracy intervals."""
    data = read_json(DATA_JSON) if DATA_JSON.exists() else {}
    count = data.get("images", {}).get("val") if isinstance(data, dict) else None
    return count if isinstance(count, int) else None


if __name__ == "__main__":
    run(main)
