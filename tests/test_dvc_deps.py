"""dvc.yaml declares what each stage depends on: every project module its script imports
(transitively, inside src/cnnstudy, function-level imports included) is in the stage's
`deps`, and no stage that trains imports a module that renders (matplotlib, Markdown).

Otherwise editing an undeclared module leaves `dvc repro` answering "up to date" over
stale results, and rewording a table column retrains a model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cnnstudy.code_closure import PACKAGE, SRC, closure, imported_modules
from cnnstudy.params import REPO_ROOT

# Importing these means training a model: the study's CNN sequence and the standard models'.
TRAINING_MODULES = {"src/cnnstudy/train_cnn.py", "src/cnnstudy/compare.py"}
RENDERING_IMPORTS = ("matplotlib", "cnnstudy.figures", "cnnstudy.tables")


def renders(path: Path) -> bool:
    return path.is_relative_to(SRC / PACKAGE / "figures") or path == SRC / PACKAGE / "tables.py" or any(
        name == prefix or name.startswith(prefix + ".") for name in imported_modules(path)
        for prefix in RENDERING_IMPORTS)


def rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def stages() -> dict[str, dict]:
    """Stage name -> its definition; a foreach stage's `do` template stands for all its instances."""
    raw = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: body.get("do", body) for name, body in raw.items()}


def script_of(stage: dict) -> Path:
    match = re.search(r"\bstages/\w+\.py\b", stage["cmd"])
    assert match, f"no stages/<name>.py in cmd {stage['cmd']!r}"
    return REPO_ROOT / match.group(0)


def covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


STAGES = stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_imported_module_is_a_dependency(name):
    stage = STAGES[name]
    deps = [dep if isinstance(dep, str) else next(iter(dep)) for dep in stage.get("deps", [])]
    script = script_of(stage)
    assert rel(script) in deps, f"{name}: its script {rel(script)} is not in deps"
    missing = sorted(rel(f) for f in closure(script) if not covered(rel(f), deps))
    assert not missing, f"{name} imports modules missing from its deps in dvc.yaml: {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_no_stage_that_trains_imports_a_renderer(name):
    files = closure(script_of(STAGES[name]))
    if not {rel(f) for f in files} & TRAINING_MODULES:
        return
    rendering = sorted(rel(f) for f in files if renders(f))
    assert not rendering, f"{name} trains but imports modules that render: {', '.join(rendering)}"


def test_the_checks_see_what_they_should():
    """The closure follows function-level and from-imports; a renderer is recognised as one."""
    files = {rel(f) for f in closure(REPO_ROOT / "stages" / "train.py")}
    assert {"src/cnnstudy/train_cnn.py", "src/cnnstudy/models.py", "src/cnnstudy/params.py",
            "src/cnnstudy/__init__.py", "src/cnnstudy/runtime.py"} <= files
    assert renders(SRC / PACKAGE / "summary.py") and renders(SRC / PACKAGE / "figures" / "results.py")
    assert not renders(SRC / PACKAGE / "training.py")
    assert not covered("src/cnnstudy/models.py", ["src/cnnstudy/model"])
    assert covered("src/cnnstudy/figures/data.py", ["src/cnnstudy/figures"])


def test_the_params_guard_imports_no_backend():
    """The `params` stage only validates params.yaml: nothing in its closure imports a backend
    (before, it went through cli.py and so imported `cnnstudy predict`'s chain)."""
    files = closure(REPO_ROOT / "stages" / "params.py")
    assert {"src/cnnstudy/params.py", "src/cnnstudy/resolved.py"} <= {rel(f) for f in files}
    backends = sorted({name for f in files for name in imported_modules(f)
                       if name.split(".")[0] in ("keras", "tensorflow", "jax")})
    assert not backends, f"stages/params.py imports {', '.join(backends)}"


def test_undeclared_dependency_is_reported(tmp_path):
    """A script importing a module its stage does not declare fails the check."""
    script = tmp_path / "s.py"
    script.write_text("def main():\n    from cnnstudy import kfold\n")
    files = {rel(f) for f in closure(script)}
    assert "src/cnnstudy/kfold.py" in files and "src/cnnstudy/epochs.py" in files
    assert not covered("src/cnnstudy/epochs.py", ["src/cnnstudy/kfold.py"])
