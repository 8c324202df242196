"""The `cnnstudy` console script (installed by `make setup`) and its `params` subcommand."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cnnstudy.cli import main
from cnnstudy.params import PARAMS_FILE

SCRIPT = Path(sys.executable).parent / "cnnstudy"


def test_console_script_is_installed_and_explains_itself():
    out = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "params" in out and "dvc repro" in out
    out = subprocess.run([str(SCRIPT), "params", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--check" in out and "--write" in out


def test_params_check_accepts_the_repo_file(capsys):
    assert main(["params", "--check", "--file", str(PARAMS_FILE)]) == 0
    assert "valid; models: baseline, sgd," in capsys.readouterr().out


def test_params_prints_resolved_values(capsys):
    assert main(["params", "--file", str(PARAMS_FILE)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["models"]["lr_high"]["lr"] == 0.01 and data["models"]["lr_high"]["optimizer"] == "adam"
    assert data["train"]["filters"] == [32, 64, 128]


def test_params_refuses_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text(PARAMS_FILE.read_text().replace("dropout: 0.25", "dropuot: 0.25"))
    proc = subprocess.run([str(SCRIPT), "params", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "error: params.yaml: unknown key train.dropuot; also: missing key train.dropout\n"


def test_params_write_makes_one_file_per_section_and_model(tmp_path):
    shutil.copy(PARAMS_FILE, tmp_path / "params.yaml")
    assert main(["params", "--file", str(tmp_path / "params.yaml"), "--write", str(tmp_path / "out")]) == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json"))
    assert "fetch.json" in written and "models/baseline.json" in written and len(written) == 7 + 10  # 7 sections (tuned too), 10 models
    assert json.loads((tmp_path / "out/models/kernel_5.json").read_text())["kernel_size"] == 5
