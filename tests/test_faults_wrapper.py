"""The stage wrapper (cnnstudy.stage.run) on real faults, in subprocesses without Keras:
each ends in one line on stderr and a non-zero exit, and leaves the final path as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnnstudy.params import REPO_ROOT
from proc_helpers import communicate_or_explain

PRELUDE = f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'src')!r})\nfrom cnnstudy.stage import run\n"


def run_stage_code(body: str, cwd: Path, argv0: str = "stages/demo.py", **kw) -> subprocess.CompletedProcess:
    code = PRELUDE + f"sys.argv = [{argv0!r}]\n" + body
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60, **kw)


def one_line(proc, *needles, code=1) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_out_of_memory_is_one_line(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = run_stage_code("def main():\n    bytearray(4 << 30)\nrun(main)\n", tmp_path, preexec_fn=limit)
    one_line(proc, "demo ran out of memory", "smaller sizes in params.yaml")


def test_a_run_stopped_part_way_exits_as_ctrl_c_does_with_its_own_line(tmp_path):
    """A stage that keeps what it finished (the sweep, whose Tune run swallows the Ctrl-C) says so."""
    proc = run_stage_code("from cnnstudy.errors import InterruptedRun\n"
                          "def main():\n    raise InterruptedRun('sweep interrupted: 3 trial(s) finished and are cached')\n"
                          "run(main)\n", tmp_path)
    assert one_line(proc, code=130) == "error: sweep interrupted: 3 trial(s) finished and are cached"


def test_a_file_where_the_output_folder_should_be(tmp_path):
    (tmp_path / "metrics").write_text("I am a file")
    proc = run_stage_code("from cnnstudy.files import write_json\n"
                          "run(lambda: write_json('metrics/eval/x.json', {'a': 1}))\n", tmp_path)
    one_line(proc, "metrics/eval: Not a directory", "a file where a folder is expected")
    assert (tmp_path / "metrics").read_text() == "I am a file"


def test_write_error_names_the_output_not_its_temp_file(tmp_path):
    target = tmp_path / "out.json"
    target.mkdir()  # os.replace(temp, target) fails: a folder is in the way
    proc = run_stage_code("from cnnstudy.files import write_json\nrun(lambda: write_json('out.json', {}))\n", tmp_path)
    err = one_line(proc, "out.json: Is a directory", "a folder stands where a file is expected")
    assert ".tmp" not in err and os.listdir(tmp_path) == ["out.json"]


def test_sigterm_is_one_line_and_removes_the_temp_file(tmp_path):
    body = ("import time\nfrom cnnstudy.files import atomic_path\n"
            "def main():\n"
            "    with atomic_path('result.txt') as tmp:\n"
            "        tmp.write_text('half')\n"
            "        print('writing', flush=True)\n"
            "        time.sleep(600)\n"
            "run(main)\n")
    (tmp_path / "result.txt").write_text("previous good result")
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE + "sys.argv = ['stages/slow.py', 'm1']\n" + body],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    _, err = communicate_or_explain(proc, timeout=120)
    one_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", err), "slow@m1 interrupted", code=130)
    assert (tmp_path / "result.txt").read_text() == "previous good result"
    assert sorted(os.listdir(tmp_path)) == ["result.txt"]


def test_fetch_stage_with_a_file_where_data_raw_goes(tmp_path):
    """The real fetch stage in a copy of the repo: data/raw is a file."""
    import shutil

    for folder in ("stages", "src"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "data" / "bundled", tmp_path / "data" / "bundled")
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "data" / "raw").write_text("not a folder")
    proc = subprocess.run([sys.executable, "stages/fetch.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    one_line(proc, "data/raw", "a file stands where a folder is expected")
    assert (tmp_path / "data" / "raw").read_text() == "not a folder"


def test_broken_json_from_another_stage_names_the_file(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "kfold.json").write_text('{"chosen_epochs": ')
    proc = run_stage_code("from cnnstudy.files import read_json\nrun(lambda: read_json('metrics/kfold.json'))\n",
                          tmp_path)
    one_line(proc, "metrics/kfold.json: broken JSON (Expecting value at line 1, column 19)", "dvc repro --force")


def test_non_utf8_json_names_the_file(tmp_path):
    (tmp_path / "x.json").write_bytes(b'{"a": "\xff\xfe"}')
    proc = run_stage_code("from cnnstudy.files import read_json\nrun(lambda: read_json('x.json'))\n", tmp_path)
    one_line(proc, "x.json: not UTF-8 text")
