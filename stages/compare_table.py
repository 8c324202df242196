"""Stage compare_table: the standard architectures beside the baseline and the variants
(Markdown table with McNemar's test against the baseline, bar charts). Trains nothing."""

from cnnstudy.errors import DataError
from cnnstudy.files import read_json, write_text
from cnnstudy.params import load_params
from cnnstudy.stage import run

COMPARE_DETAILS = "metrics/compare/details.json"
COMPARE_PREDICTIONS = "metrics/compare/predictions.json"


def main() -> None:
    import numpy as np

    from cnnstudy import compare_table
    from cnnstudy.data import load_prepared

    params = load_params()
    data = load_prepared()
    try:
        records = read_json(COMPARE_DETAILS)
        saved = read_json(COMPARE_PREDICTIONS)
    except (OSError, ValueError) as exc:
        raise DataError(f"the compare stage's results cannot be read ({exc}); run `dvc repro compare`") from None
    rows = compare_table.study_rows(compare_table.SUMMARY_JSON, train_images=len(data.train[1]),
                                    refit_images=len(data.train[1]) + len(data.val[1]))
    baseline_predictions = compare_table.read_baseline_predictions()
    for name, record in records.items():
        rows.append(compare_table.standard_row(name, record, np.asarray(saved["test_predictions"][name]),
                                               data.test[1], baseline_predictions, rows[0]["test_accuracy"]))
    write_text("metrics/compare.md",
               compare_table.report_markdown(rows, records, params.compare, saved["stage_seconds"]))
    compare_table.save_charts(rows, records)
    print(f"compare_table: {len(rows)} models in metrics/compare.md")


if __name__ == "__main__":
    run(main)
