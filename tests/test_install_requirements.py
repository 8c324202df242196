"""install_requirements.py: pip's package sources reach uv; bad usage is one line."""

import importlib.util
import subprocess
import sys

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("install_requirements", REPO_ROOT / "install_requirements.py")
install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install)


def test_pips_configured_sources_become_uv_options(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = file:///srv/index\nextra-index-url = file:///srv/a file:///srv/b\n"
                    "[install]\nfind-links = /srv/wheels\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///srv/a file:///srv/c")
    options = install.pip_sources()
    pairs = list(zip(options[::2], options[1::2]))
    for pair in [("--index-url", "file:///srv/index"), ("--extra-index-url", "file:///srv/a"),
                 ("--extra-index-url", "file:///srv/b"), ("--extra-index-url", "file:///srv/c"),
                 ("--find-links", "/srv/wheels")]:
        assert pair in pairs
    assert options.count("file:///srv/a") == 1  # from the file and the variable: given once


def test_wrong_usage_is_one_line():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "install_requirements.py")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == ("Usage: python install_requirements.py requirements.txt [PACKAGE_DIR]    "
                                   "(stdlib only: runs before anything is installed)")
