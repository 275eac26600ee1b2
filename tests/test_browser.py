"""The notebooks' interactive parts in a real JupyterLab, in headless Chromium.

What a new user does: JupyterLab from this environment, notebook 08 opened, Run All,
then the engine-comparison widget's Run button clicked twice with different engines.
The test reads the page: each bar's base and top against the y-axis ticks, its label,
the results table, the progress bar, the cell outputs. It also opens notebook 07's
executed copy and checks that its charts are drawn. Screenshots go to
``outputs/browser/``.

Chromium comes from the system (Debian: ``apt-get install chromium``; or set
``YOLOTUT_CHROMIUM`` to a Chrome/Chromium binary): Playwright drives it through
``executable_path`` and never downloads a browser. Without one the tests skip and say
so. Notebook 08 needs the models earlier notebooks made: when this session runs the
notebook tests, their quick run (``quick_run``) is reused; else the output folder named
by ``YOLOTUT_EXECUTED_OUTPUTS`` (an earlier ``yolotut reproduce --output DIR``); else
notebook 07 alone is run first (quick profile, a minute or two).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from yolotut.reproduce import runner
from yolotut.ui.widgets import DOM_CLASSES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "outputs" / "browser"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
NOTEBOOK_07 = "07_yolov5n_hardswish.ipynb"
NOTEBOOK_08 = "08_engine_comparison.ipynb"
RUN_ALL_TIMEOUT_S = 600
CLICK_TIMEOUT_S = 300


def find_chromium() -> str | None:
    """A Chrome/Chromium binary: ``YOLOTUT_CHROMIUM``, else the first of the usual names on PATH."""
    chosen = os.environ.get("YOLOTUT_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).is_file() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (it is in the dev extra)")
    path = find_chromium()
    if path is None:
        where = os.environ.get("YOLOTUT_CHROMIUM")
        pytest.skip(f"YOLOTUT_CHROMIUM={where} is not a file" if where else
                    "no Chromium found (Debian/Ubuntu: sudo apt-get install chromium; or set YOLOTUT_CHROMIUM "
                    "to a Chrome/Chromium binary)")
    return path


# --- the notebooks' inputs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def executed_outputs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output folder holding notebook 07's executed copy and a manifest with its models."""
    uses_quick_run = any(item.get_closest_marker("notebooks") and "quick_run" in item.fixturenames
                         for item in request.session.items)
    if uses_quick_run:  # the notebook tests run every notebook anyway: reuse their run
        _, out = request.getfixturevalue("quick_run")
        return out
    given = os.environ.get("YOLOTUT_EXECUTED_OUTPUTS")
    if given:  # an earlier `yolotut reproduce --output DIR` (07 at least), to rerun this test quickly
        if not (Path(given) / "notebooks" / NOTEBOOK_07).is_file():
            raise FileNotFoundError(f"YOLOTUT_EXECUTED_OUTPUTS={given} holds no notebooks/{NOTEBOOK_07}; "
                                    "run `yolotut reproduce --only 07 --output DIR` or unset it")
        return Path(given).resolve()
    if not (Path(os.environ.get("YOLOTUT_MIRROR", "")) / "companion").is_dir():
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR)")
    out = tmp_path_factory.mktemp("browser-outputs")
    notebook = runner.default_notebooks_dir() / NOTEBOOK_07
    runner.run_notebook(notebook, out / "notebooks" / NOTEBOOK_07, runner.notebook_parameters("quick", out))
    return out


def _lab_copy(source: Path, target: Path, kernel: str, parameters: dict[str, Any] | None = None) -> Path:
    """A notebook copy for the lab: parameters injected like papermill does, the jupytext
    pairing dropped (so saving writes no .py beside it), the kernel that has yolotut."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(source))
    if parameters:
        nb = parameterize_notebook(nb, parameters)
    nb.metadata.pop("jupytext", None)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"]["name"] = kernel
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


# --- JupyterLab ---------------------------------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def tree(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?token={self.token}"

    def wait_for_kernel(self, relative: str, timeout_s: float = 120) -> None:
        """Until the server has the notebook's kernel started, idle and connected to a page."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/api/sessions?token={self.token}", timeout=10) as answer:
                sessions = json.load(answer)
            kernels = [s["kernel"] for s in sessions if s.get("path") == relative and s.get("kernel")]
            if any(k.get("execution_state") == "idle" and k.get("connections", 0) > 0 for k in kernels):
                return
            time.sleep(0.5)
        raise TimeoutError(f"no idle, connected kernel for {relative} after {timeout_s:.0f} s: {sessions}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_lab_settings(settings_dir: Path) -> None:
    # Render every cell (no windowing: charts below the fold are drawn too); no news
    # or update pop-ups covering the page.
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                       "autoStartDefaultKernel": True},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_serving(url: str, token: str, server: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer on {url} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(chromium: str, executed_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab from this environment on a free local port with a one-off token, serving
    a folder with notebook 08 (parameters injected) and notebook 07's executed copy."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, state = base / "root", base / "state"
    kernel = runner.resolve_kernel()
    out = base / "outputs"
    parameters = {**runner.notebook_parameters("quick", out),
                  "manifest_path": str(executed_outputs / "manifest.json"), "sparsity_search": False}
    _lab_copy(runner.default_notebooks_dir() / NOTEBOOK_08, root / "notebooks" / NOTEBOOK_08, kernel, parameters)
    _lab_copy(executed_outputs / "notebooks" / NOTEBOOK_07, root / "notebooks" / NOTEBOOK_07, kernel)
    _write_lab_settings(state / "settings")

    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    }
    log = base / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--allow-root"]  # CI containers run as root
    with log.open("w") as log_file:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(url, token, server, log)
        yield Lab(url, token, root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1900})
    failed_before = request.session.testsfailed
    try:
        opened = context.new_page()
        yield opened
        if request.session.testsfailed > failed_before:  # this test failed: keep what the page showed
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            opened.screenshot(path=str(SCREENSHOTS / f"failed-{request.node.name}.png"))
    finally:
        context.close()


# --- reading the page ------------------------------------------------------------------------------


def _open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Open a notebook and wait until its kernel runs and the page is connected to it
    (the toolbar says "idle" before the kernel has even started)."""
    page.goto(lab.tree(f"notebooks/{name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    lab.wait_for_kernel(f"notebooks/{name}")
    page.wait_for_selector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=120_000)


def _run_all(page: Any) -> None:
    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
    # Done when every code cell shows an execution count ("[7]:"), none "[*]:".
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
        }""",
        timeout=RUN_ALL_TIMEOUT_S * 1000,
    )


def _page_errors(page: Any) -> list[str]:
    """Error tracebacks and widget failures shown anywhere in the notebook."""
    return page.evaluate(
        """() => {
            const texts = [...document.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText);
            const failure = /Traceback \\(most recent call last\\)|Error displaying widget|Failed to load model class/;
            return texts.filter(t => failure.test(t)).map(t => t.slice(0, 2000));
        }"""
    )


def _table_rows(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        f"""() => {{
            const table = document.querySelector('.{DOM_CLASSES["table"]} table');
            if (!table) return [];
            const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
            return [...table.querySelectorAll('tbody tr')].map(tr =>
                Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.textContent.trim()])));
        }}"""
    )


def _drawn_bars(page: Any, chart_selector: str) -> dict[str, Any]:
    """Every bar of a plotly chart as drawn: its series (legend text), engine (nearest x
    tick), label, and base and top in data units, read off the y-axis ticks' positions."""
    return page.evaluate(
        """(selector) => {
            const plot = document.querySelector(selector);
            if (!plot) return {error: 'no chart at ' + selector};
            const centerY = el => { const r = el.getBoundingClientRect(); return r.top + r.height / 2; };
            const centerX = el => { const r = el.getBoundingClientRect(); return r.left + r.width / 2; };
            const ticks = [...plot.querySelectorAll('.yaxislayer-above .ytick text')]
                .map(t => ({y: centerY(t), value: parseFloat(t.textContent.replace(/[\\u2212]/g, '-').replace(/,/g, ''))}))
                .filter(t => Number.isFinite(t.value));
            const xticks = [...plot.querySelectorAll('.xaxislayer-above .xtick text')]
                .map(t => ({x: centerX(t), label: t.textContent.trim()}));
            const legend = [...plot.querySelectorAll('.legend .traces .legendtext')].map(t => t.textContent.trim());
            if (ticks.length < 2) return {error: 'fewer than two y-axis ticks', legend};
            // least squares: value = a + b * pixel_y
            const n = ticks.length, my = ticks.reduce((s, t) => s + t.y, 0) / n,
                  mv = ticks.reduce((s, t) => s + t.value, 0) / n;
            const b = ticks.reduce((s, t) => s + (t.y - my) * (t.value - mv), 0) /
                      ticks.reduce((s, t) => s + (t.y - my) ** 2, 0);
            const toValue = y => mv + b * (y - my);
            const traces = [...plot.querySelectorAll('.barlayer .trace')].map((trace, series) =>
                [...trace.querySelectorAll('.point')].map(point => {
                    const r = point.querySelector('path').getBoundingClientRect();
                    const x = r.left + r.width / 2;
                    const tick = xticks.reduce((best, t) => Math.abs(t.x - x) < Math.abs(best.x - x) ? t : best);
                    const text = point.querySelector('.bartext');
                    return {series, engine: tick.label, base: toValue(r.bottom), top: toValue(r.top),
                            label: text ? text.textContent.trim() : null, width: r.width};
                }));
            return {legend, bars: traces.flat(), value_per_pixel: Math.abs(b)};
        }""",
        chart_selector,
    )


def _progress_percent(page: Any) -> float:
    return page.evaluate(
        f"""() => parseFloat(document.querySelector('.{DOM_CLASSES["progress"]} .progress-bar').style.width)"""
    )


def _choose_engines_and_run(page: Any, engines: list[str]) -> None:
    rows_before = len(_table_rows(page))
    page.select_option(f'.{DOM_CLASSES["engines"]} select', label=engines)
    page.click(f'.{DOM_CLASSES["run"]} >> nth=0')
    page.wait_for_function(
        f"""(n) => document.querySelectorAll('.{DOM_CLASSES["table"]} table tbody tr').length >= n""",
        arg=rows_before + len(engines), timeout=CLICK_TIMEOUT_S * 1000,
    )
    page.wait_for_function(f"""() => !document.querySelector('.{DOM_CLASSES["run"]}').disabled""")


def _check_bars_match_table(page: Any) -> None:
    rows = _table_rows(page)
    measured = {(int(r["run"]), r["engine"]): float(r["items/sec"]) for r in rows if r["items/sec"] != "-"}
    runs = sorted({int(r["run"]) for r in rows})
    # the chart redraws when the kernel's update arrives: give it until the series are all there
    # the live chart's element is the plotly div itself; the fallback's sits in an Output
    chart = f'.{DOM_CLASSES["chart"]}.js-plotly-plot, .{DOM_CLASSES["chart"]} .js-plotly-plot'
    deadline = time.monotonic() + 15
    while True:
        drawn = _drawn_bars(page, chart)
        if (len(drawn.get("bars", ())) == len(measured) and len(drawn.get("legend", ())) == len(runs)) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "error" not in drawn, drawn
    assert len(drawn["legend"]) == len(runs), f"the chart shows {drawn['legend']}, the table has runs {runs}"
    series_run = [int(re.match(r"run (\d+):", name).group(1)) for name in drawn["legend"]]
    tolerance = 2.5 * drawn["value_per_pixel"]  # a bar edge is placed to about a pixel
    seen = []
    for bar in drawn["bars"]:
        key = (series_run[bar["series"]], bar["engine"])
        assert key in measured, f"a bar for run {key[0]}, {key[1]} that the table does not have: {bar}"
        value = measured[key]
        assert abs(bar["base"]) <= tolerance, f"run {key[0]} {key[1]}: bar starts at {bar['base']:.1f}, not 0 (stacked?)"
        assert abs(bar["top"] - value) <= tolerance, (
            f"run {key[0]} {key[1]}: bar reaches {bar['top']:.1f}, the table says {value}")
        assert bar["label"] is not None and abs(float(bar["label"]) - value) <= 0.051, (bar, value)
        seen.append(key)
    assert sorted(seen) == sorted(measured), f"bars drawn for {sorted(seen)}, the table measured {sorted(measured)}"


def test_engine_comparison_widget_in_jupyterlab(lab: Lab, page: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _open_notebook(page, lab, NOTEBOOK_08)
    _run_all(page)
    widget = page.locator(f'.{DOM_CLASSES["widget"]}')
    widget.wait_for(timeout=60_000)
    assert _page_errors(page) == []
    assert len(_table_rows(page)) >= 1, "the notebook's own Run (the cell after the widget) added no row"

    for engines in (["deepsparse"], ["onnxruntime", "deepsparse"]):
        _choose_engines_and_run(page, engines)
        assert _progress_percent(page) == 100.0
        status = page.inner_text(f'.{DOM_CLASSES["status"]}')
        assert status.startswith("done"), status
        rows = _table_rows(page)
        latest = [r for r in rows if int(r["run"]) == max(int(r["run"]) for r in rows)]
        assert [r["engine"] for r in latest] == engines
        assert any(r["items/sec"] != "-" for r in latest), f"every engine was skipped: {latest}"
        _check_bars_match_table(page)

    widget.screenshot(path=str(SCREENSHOTS / "08_engine_comparison_widget.png"))
    assert _page_errors(page) == []


def test_executed_notebook_07_draws_its_charts(lab: Lab, page: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(lab.root / "notebooks" / NOTEBOOK_07, as_version=4)
    charts = sum("application/vnd.plotly.v1+json" in output.get("data", {})
                 for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)
    assert charts >= 1, "notebook 07's executed copy holds no plotly chart"
    _open_notebook(page, lab, NOTEBOOK_07)
    # JupyterLab's plotly renderer makes the output element itself the plot (one element, both classes).
    plot_selector = ".jp-OutputArea-output.js-plotly-plot, .jp-OutputArea-output .js-plotly-plot"
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length >= n",
                           arg=[plot_selector, charts], timeout=60_000)
    plots = page.locator(plot_selector)
    assert plots.count() == charts
    for i in range(charts):
        plot = plots.nth(i)
        box = plot.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100
        # bars, markers, or a line trace's path (a line chart has no points)
        drawn = plot.evaluate("""el => [...el.querySelectorAll('.barlayer .point path, .scatterlayer .point, .scatterlayer .js-line')]
                                       .filter(p => { const r = p.getBoundingClientRect(); return r.height > 0 || r.width > 0; })
                                       .length""")
        assert drawn > 0, f"chart {i} of notebook 07 draws no bar, point or line"
        plot.screenshot(path=str(SCREENSHOTS / f"07_chart_{i}.png"))
    assert _page_errors(page) == []
