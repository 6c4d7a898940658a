"""``dvc plots show`` renders without internet: the HTML template in .dvc/config carries Vega itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from dvc_render import VegaRenderer, render_html

REPO = Path(__file__).resolve().parents[1]


def configured_template() -> Path:
    """Where ``dvc plots show`` takes its page from: plots.html_template, relative to .dvc/ as DVC resolves it."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        value = repo.config["plots"]["html_template"]
        return Path(repo.dvc_dir) / value


def render(tmp_path: Path) -> Path:
    datapoints = [{"step": i, "loss": 1 / (i + 1)} for i in range(20)]
    renderer = VegaRenderer(datapoints, "reports/demo/loss.tsv", x="step", y="loss")
    out = tmp_path / "index.html"
    render_html([renderer], out, html_template=configured_template())
    return out


def test_template_is_configured_and_loads_nothing_from_the_network(tmp_path):
    template = configured_template()
    assert template.is_file(), template
    page = render(tmp_path).read_text(encoding="utf-8")
    assert "<script src=" not in page and "cdn.jsdelivr" not in page  # DVC's {scripts} are CDN tags
    for package in ("vega@5", "vega-lite@5", "vega-embed@6"):
        assert f"/* {package}" in page, package
    assert "vegaEmbed('#reports_demo_loss_tsv'" in page


def test_page_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if browser is None:
        pytest.skip("no headless Chromium (apt-get install chromium; .ci/run installs it)")
    page = render(tmp_path)
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout
    # vega-embed replaced the empty div by the chart: a canvas of marks inside a vega-embed container
    assert 'class="vega-embed' in dom and '<canvas' in dom and 'class="marks"' in dom, dom[-2000:]
