"""Stage report: the whole study in one Markdown file, reports/study.md, with its figures."""

from pathlib import Path

from cnnstudy.files import read_json, write_text
from cnnstudy.params import load_params
from cnnstudy.stage import run

REPORT = Path("reports/study.md")
ENVIRONMENT_JSON = Path("metrics/environment.json")


def read_environment() -> dict | None:
    """metrics/environment.json (the summary stage's), or None when an older run did not write it."""
    return read_json(ENVIRONMENT_JSON) if ENVIRONMENT_JSON.exists() else None


def main() -> None:
    from cnnstudy.inspect_report import inspect_section
    from cnnstudy.report import build_report, embedded_markdown
    from cnnstudy.summary import load_rows, read_retrained
    from cnnstudy.tuned import study_models

    params = load_params()
    rows = load_rows(params.models)
    report_dir = REPORT.parent
    outliers = embedded_markdown(Path("metrics/outliers.md"), "8. Out-of-distribution images", [
        (Path("plots/outliers/preprocessing.png"), "outliers: original and what the model sees"),
        (Path("plots/outliers/probabilities.png"), "outliers: probabilities per setting"),
        (Path("plots/outliers/roc.png"), "ROC curves, test digits vs outliers"),
    ], report_dir)
    compare = embedded_markdown(Path("metrics/compare.md"), "9. Standard architectures", [
        (png, f"standard models: {png.stem.replace('_', ' ')}") for png in sorted(Path("plots/compare").glob("*.png"))
    ], report_dir)
    # the tuned model once its stage has run, as in summary and inspect_summary
    inspected = inspect_section([*study_models(params.models, params.train), *params.compare.models], report_dir)
    write_text(REPORT, build_report(params, rows, report_file=REPORT, extra_sections=[outliers, compare, inspected],
                                     retrained=read_retrained(), environment=read_environment()))
    print(f"report: wrote {REPORT}")


if __name__ == "__main__":
    run(main)
