"""Stage report: the whole study in one Markdown file, reports/study.md, with its figures."""

from pathlib import Path

from cnnstudy.files import interpreting, read_json, read_stage_json, write_text
from cnnstudy.params import BASELINE, load_params
from cnnstudy.stage import run

REPORT = Path("reports/study.md")
ENVIRONMENT_JSON = Path("metrics/environment.json")


def read_environment() -> dict | None:
    """metrics/environment.json (the summary stage's), or None when an older run did not write it."""
    return read_json(ENVIRONMENT_JSON) if ENVIRONMENT_JSON.exists() else None


def read_if_there(path: Path, fix: str) -> dict | None:
    """Another stage's JSON, or None when that stage has not run (the report says so)."""
    return read_stage_json(path, fix) if path.exists() else None


def main() -> None:
    from cnnstudy.conclusions import seed_spread
    from cnnstudy.inspect_report import inspect_section
    from cnnstudy.report import build_report, embedded_markdown
    from cnnstudy.summary import load_rows, read_retrained
    from cnnstudy.sweep_report import SWEEP_JSON, TUNED_JSON, sweep_section
    from cnnstudy.tuned import study_models

    params = load_params()
    models = study_models(params.models, params.train)  # + the tuned model once its stage has run, as in summary
    rows = load_rows(models)
    retrained = read_retrained()
    report_dir = REPORT.parent
    outliers = embedded_markdown(Path("metrics/outliers.md"), "8. Out-of-distribution images", [
        (Path("plots/outliers/preprocessing.png"), "outliers: original and what the model sees"),
        (Path("plots/outliers/probabilities.png"), "outliers: probabilities per setting"),
        (Path("plots/outliers/roc.png"), "ROC curves, test digits vs outliers"),
    ], report_dir)
    compare = embedded_markdown(Path("metrics/compare.md"), "9. Standard architectures", [
        (png, f"standard models: {png.stem.replace('_', ' ')}") for png in sorted(Path("plots/compare").glob("*.png"))
    ], report_dir)
    inspected = inspect_section([*models, *params.compare.models], report_dir)
    sweep = read_if_there(SWEEP_JSON, "run `dvc repro sweep`")
    record = read_if_there(TUNED_JSON, "run `dvc repro tuned`")
    with interpreting(f"{SWEEP_JSON} or {TUNED_JSON}", "run `dvc repro --force sweep tuned`"):
        swept = sweep_section(sweep, record, rows, seed_spread(next(r for r in rows if r["model"] == BASELINE), retrained),
                              params.sweep, params.train, report_dir)
    write_text(REPORT, build_report(params, rows, models=models, report_file=REPORT,
                                     extra_sections=[outliers, compare, inspected, swept],
                                     retrained=retrained, environment=read_environment()))
    print(f"report: wrote {REPORT}")


if __name__ == "__main__":
    run(main)
