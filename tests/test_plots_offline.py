"""`dvc plots show` works offline: the configured HTML template inlines vega,
vega-lite and vega-embed instead of loading them from a CDN (treeverse/dvc#5679).
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from configobj import ConfigObj

ROOT = Path(__file__).resolve().parents[1]
DVC_DIR = ROOT / ".dvc"
VENDOR = DVC_DIR / "plots" / "vendor"
BUNDLES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
REMOTE_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(https?:)?//""", re.I)


def configured_template() -> str:
    """plots.html_template from the committed .dvc/config (relative to .dvc/, as DVC resolves it)."""
    value = ConfigObj(str(DVC_DIR / "config")).get("plots", {}).get("html_template")
    assert value, ".dvc/config has no plots.html_template"
    return value


def template_path() -> Path:
    value = configured_template()
    return Path(value) if os.path.isabs(value) else DVC_DIR / value


def load_builder():
    spec = importlib.util.spec_from_file_location("build_offline_html", VENDOR / "build_offline_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configured_template_is_offline():
    path = template_path()
    assert path.is_file(), path
    html = path.read_text(encoding="utf-8")
    assert "{plot_divs}" in html
    # `{scripts}` is where DVC would insert its CDN <script src> tags.
    assert "{scripts}" not in html
    assert not REMOTE_SCRIPT.search(html)
    assert "cdn.jsdelivr.net" not in html


def test_template_is_built_from_vendored_bundles():
    builder = load_builder()
    assert tuple(builder.BUNDLES) == BUNDLES
    for name in BUNDLES:
        assert (VENDOR / name).stat().st_size > 10_000, name
    # Regenerate in memory: the committed template must be exactly the build output.
    assert template_path().read_text(encoding="utf-8") == builder.build(), (
        "offline.html is stale: run python .dvc/plots/vendor/build_offline_html.py"
    )


def test_dvc_plots_show_writes_self_contained_html(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "global"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "system"),
        "DVC_SITE_CACHE_DIR": str(tmp_path / "site"),
    }

    def run(*cmd):
        return subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, text=True, timeout=60)

    def dvc(*args):
        return run(sys.executable, "-m", "dvc", *args)

    run("git", "init", "-q")
    dvc("init", "-q")
    value = configured_template()
    dest = Path(value) if os.path.isabs(value) else repo / ".dvc" / value
    if not os.path.isabs(value):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_path(), dest)
    dvc("config", "plots.html_template", value)
    (repo / "loss.csv").write_text("step,loss\n0,1.0\n1,0.6\n2,0.4\n3,0.3\n")

    dvc("plots", "show", "loss.csv", "-x", "step", "-y", "loss", "-o", "out")

    html = (repo / "out" / "index.html").read_text(encoding="utf-8")
    assert "vegaEmbed('#loss_csv'" in html  # the plot itself
    assert '"loss": "1.0"' in html or '"loss": 1.0' in html
    assert "{plot_divs}" not in html and "{refresh_tag}" not in html
    assert not REMOTE_SCRIPT.search(html)
    assert "cdn.jsdelivr.net" not in html
    builder = load_builder()
    for name in BUNDLES:
        assert builder.inline_code(name) in html, f"{name} not inlined"
    # Libraries load before the plot scripts that call vegaEmbed.
    assert html.index(builder.inline_code("vega-embed.min.js")) < html.index("vegaEmbed('#loss_csv'")
