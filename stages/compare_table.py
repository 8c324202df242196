"""Stage compare_table: the standard architectures beside the baseline and the variants
(Markdown table with McNemar's test against the baseline, bar charts)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnstudy import runtime  # noqa: E402
from cnnstudy.errors import DataError  # noqa: E402
from cnnstudy.files import read_json, write_text  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402


def main() -> None:
    params = load_params()
    runtime.select_device(params.train.device)  # cnnstudy.compare imports Keras
    import numpy as np

    from cnnstudy import compare
    from cnnstudy.data import load_prepared

    data = load_prepared()
    try:
        records = read_json("metrics/compare.json")
        saved = read_json(compare.PREDICTIONS_JSON)
    except (OSError, ValueError) as exc:
        raise DataError(f"the compare stage's results cannot be read ({exc}); run `dvc repro compare`") from None
    rows = compare.study_rows(compare.SUMMARY_JSON, train_images=len(data.train[1]))
    baseline_predictions = compare.read_baseline_predictions()
    for name, record in records.items():
        rows.append(compare.standard_row(name, record, np.asarray(saved["test_predictions"][name]), data.test[1],
                                         baseline_predictions, data.class_names, rows[0]["test_accuracy"]))
    write_text("metrics/compare.md", compare.report_markdown(rows, records, params.compare, saved["stage_seconds"]))
    compare.save_charts(rows, records)
    print(f"compare_table: {len(rows)} models in metrics/compare.md")


if __name__ == "__main__":
    run(main)
