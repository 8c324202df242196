"""The code a stage can run (cnnstudy.code_closure) and inspect_models' digest over it: editing
a module the stage imports, at any depth, redraws every model's figures; editing one it never
imports keeps them."""

from pathlib import Path

from cnnstudy.code_closure import closure
from cnnstudy.inspect_study import shared_digest
from cnnstudy.params import REPO_ROOT


def tiny_package(root: Path) -> tuple[Path, Path]:
    """src/cnnstudy: the script imports a (at module level) and, inside a function, sub.c;
    a imports b; d is imported by nobody."""
    pkg = root / "src" / "cnnstudy"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "", "a.py": "from cnnstudy import b\n", "b.py": "X = 1\n", "d.py": "Y = 2\n",
             "sub/__init__.py": "", "sub/c.py": "import json\n"}
    for name, text in files.items():
        (pkg / name).write_text(text)
    script = root / "stage.py"
    script.write_text("import os\nfrom cnnstudy.a import b\n\ndef main():\n    import cnnstudy.sub.c\n")
    return root / "src", script


def test_closure_follows_nested_and_function_level_imports(tmp_path):
    src, script = tiny_package(tmp_path)
    found = {f.relative_to(src).as_posix() for f in closure(script, src)}
    assert found == {"cnnstudy/__init__.py", "cnnstudy/a.py", "cnnstudy/b.py", "cnnstudy/sub/__init__.py",
                     "cnnstudy/sub/c.py"}


def test_the_inspect_stage_closure_leaves_out_what_it_never_runs():
    found = {f.relative_to(REPO_ROOT).as_posix() for f in closure(REPO_ROOT / "stages" / "inspect_models.py")}
    assert {"src/cnnstudy/inspect_study.py", "src/cnnstudy/inspect_outputs.py", "src/cnnstudy/saliency.py",
            "src/cnnstudy/code_closure.py"} <= found
    assert not {"src/cnnstudy/sweep_run.py", "src/cnnstudy/kfold.py", "src/cnnstudy/train_cnn.py"} & found


def test_shared_digest_moves_with_the_code_the_stage_runs_only(tmp_path):
    src, script = tiny_package(tmp_path)
    data, outliers = tmp_path / "data", tmp_path / "outliers"
    data.mkdir(), outliers.mkdir()
    (data / "test.npz").write_bytes(b"digits")
    (outliers / "cat.png").write_bytes(b"cat")

    def digest():
        return shared_digest(data, outliers, script, src)

    first = digest()
    assert digest() == first
    (src / "cnnstudy" / "d.py").write_text("Y = 3\n")  # imported by nobody
    assert digest() == first
    for edited in ("b.py", "sub/c.py"):  # through a, and inside a function
        before = digest()
        (src / "cnnstudy" / edited).write_text((src / "cnnstudy" / edited).read_text() + "# edited\n")
        assert digest() != before, edited
    before = digest()
    script.write_text(script.read_text() + "# edited\n")
    assert digest() != before
    before = digest()
    (outliers / "cat.png").write_bytes(b"dog")
    assert digest() != before
