"""Every notebook as a reader meets it: opened in JupyterLab, Run All, then every control of every view changed.

Checked for each notebook: no error output and no "Javascript Error" anywhere; in every chart no text box
overlaps another or runs outside the chart and every value lies inside its axis (:mod:`chart_geometry`); each view (an ipywidgets box of
controls over an HTML view) re-renders when any of its controls changes; the run meets its smoke baseline and
lessons exactly as ``kbench run`` judges it (:func:`kbench.runner.judge` reads the notebook JupyterLab saved).
Screenshots of each notebook and of each view with a control changed are saved under ``runs/live/`` (replaced by
each run) with the executed notebooks, their HTML exports and ``report.html``: ``make test`` judges those runs
instead of executing the notebooks again when ``KBENCH_EXECUTED`` names that folder (``.ci/run`` does so: one
execution serves both checks).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from kbench.runner import NOTEBOOK_DIR, NotebookResult, judge, notebooks, report
from chart_geometry import chart_problems
from live_lab import lab_server

ROOT = Path(__file__).resolve().parents[2]
PER_NOTEBOOK_S = int(os.environ.get("KBENCH_LIVE_TIMEOUT", "300"))
NOTEBOOK = "window.jupyterapp?.shell.currentWidget"
READY = f"""() => {{ const w = {NOTEBOOK};
    return !!(w && w.content && w.content.widgets && w.content.widgets.length && w.sessionContext
              && w.sessionContext.session && w.sessionContext.session.kernel
              && w.sessionContext.session.kernel.status === 'idle'); }}"""
STATE = f"""() => {{ const w = {NOTEBOOK};
    const cells = w.content.widgets.filter(c => c.model.type === 'code');
    const ran = cells.filter(c => c.model.executionCount !== null).length;
    let errors = 0;
    for (const c of cells) {{ const o = c.model.outputs; for (let i = 0; i < o.length; i++)
        if (o.get(i).type === 'error') errors += 1; }}
    const busy = cells.some(c => c.node.querySelector('.jp-InputPrompt').textContent.includes('*'));
    return {{ran, total: cells.length, errors, busy, kernel: w.sessionContext.session.kernel.status}}; }}"""
VIEWS = ".jp-OutputArea-output .widget-vbox:not(.widget-vbox .widget-vbox)"


@pytest.fixture(scope="module")
def live_dir():
    out = ROOT / "runs" / "live"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    yield out
    from kbench.report import write_report

    write_report(out / "report.html", runs_dirs=[out])


@pytest.fixture(scope="module")
def lab(tmp_path_factory, live_dir):
    """JupyterLab on a copy of ``notebooks/`` (baselines included), so that saving leaves the project's alone."""
    directory = tmp_path_factory.mktemp("live")
    shutil.copytree(NOTEBOOK_DIR, directory / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (directory / "settings").mkdir()
    with lab_server(directory / "notebooks", directory / "settings") as url:
        yield url, directory / "notebooks"


def run_all(page, name: str, shots: Path) -> dict:
    """Run every cell of the open notebook; return its final state once the kernel is idle again."""
    page.wait_for_function(READY, timeout=120_000)
    page.evaluate(f"() => {{ window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; "
                  f"window.jupyterapp.commands.execute('notebook:run-all-cells'); }}")
    deadline = time.time() + PER_NOTEBOOK_S
    state = page.evaluate(STATE)
    while time.time() < deadline:
        time.sleep(1)
        state = page.evaluate(STATE)
        if state["kernel"] == "idle" and not state["busy"] and (state["ran"] == state["total"] or state["errors"]):
            return state
    page.screenshot(path=str(shots / f"{name}-timeout.png"))
    pytest.fail(f"{name}: Run All had not finished after {PER_NOTEBOOK_S} s ({state})")


def kind_of(control) -> str:
    return control.evaluate("e => e.classList.contains('widget-hslider') ? 'slider' : e.multiple ? 'multiple' "
                            ": e.tagName === 'SELECT' ? 'dropdown' : e.type")


def current(control, kind: str):
    """The control's value, in the form :func:`set_value` takes back."""
    if kind == "dropdown":
        return control.evaluate("e => e.selectedIndex")
    if kind == "multiple":
        return control.evaluate("e => Array.from(e.options).filter(o => o.selected).map(o => o.value)")
    if kind == "checkbox":
        return control.is_checked()
    if kind == "slider":
        return int(float(control.locator(".noUi-handle").first.get_attribute("aria-valuenow")))
    return control.input_value()


def another(control, kind: str, value):
    """A value other than ``value`` that the control accepts."""
    if kind == "dropdown":
        return control.locator("option").count() - 1 if value == 0 else 0
    if kind == "multiple":
        return control.evaluate("e => Array.from(e.options).filter(o => !o.selected).map(o => o.value)")[:1]
    if kind == "checkbox":
        return not value
    if kind == "slider":
        low = int(float(control.locator(".noUi-handle").first.get_attribute("aria-valuemin")))
        return low if value != low else low + 1
    return value.rsplit(" ", 1)[0] if " " in value else value + " again"


def set_value(page, control, kind: str, value) -> None:
    if kind == "dropdown":
        control.select_option(index=value)
    elif kind == "multiple":
        control.select_option(value=value)
    elif kind == "checkbox":
        control.set_checked(value)
    elif kind == "slider":
        control.locator(".widget-readout").click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(value))
        page.keyboard.press("Enter")
    else:
        control.fill(value)
        control.press("Enter")


def change_each_control(page, view, name: str, number: int, shots: Path) -> list[str]:
    """Change every control of ``view`` alone (then set it back); return those that did not re-render its view."""
    content = view.locator(".widget-html-content").last
    stuck = []
    controls = view.locator(".widget-dropdown select, .widget-select-multiple select, .widget-text input, "
                            ".widget-checkbox input, .widget-hslider")
    for index in range(controls.count()):
        control = controls.nth(index)
        kind = kind_of(control)
        was = current(control, kind)
        for value in (another(control, kind, was), was):
            before = content.inner_html()
            set_value(page, control, kind, value)
            try:
                page.wait_for_function("([e, before]) => e.innerHTML !== before",
                                       arg=[content.element_handle(), before], timeout=30_000)
            except Exception:   # playwright's TimeoutError: the view did not change
                stuck.append(f"view {number}, {kind} {index + 1} set to {value!r}")
                break
        if index == 0:
            set_value(page, control, kind, another(control, kind, was))
            page.wait_for_timeout(1500)
            view.screenshot(path=str(shots / f"{name}-view{number}-changed.png"))
            set_value(page, control, kind, was)
            page.wait_for_timeout(1500)
    return stuck


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_live_with_no_error_and_every_view_responds(browser, lab, live_dir, path):
    url, directory = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    start = time.perf_counter()
    page.goto(f"{url}/lab/tree/{path.name}?reset")
    state = run_all(page, path.stem, live_dir)
    seconds = time.perf_counter() - start
    page.evaluate(f"() => {NOTEBOOK}.context.save()")
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    height = page.evaluate(f"() => Math.max(...Array.from({NOTEBOOK}.content.node.querySelectorAll('*'), "
                           "e => e.scrollHeight))")
    page.set_viewport_size({"width": 1400, "height": min(max(height + 150, 1000), 30_000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(live_dir / f"{path.stem}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})

    text = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").inner_text()
    assert "Javascript Error" not in text and "Error displaying widget" not in text
    charts = chart_problems(page, ".jp-NotebookPanel:not(.lm-mod-hidden)")
    views = page.locator(VIEWS)
    stuck = [s for n in range(views.count())
             for s in change_each_control(page, views.nth(n), path.stem, n + 1, live_dir)]
    page.evaluate(f"() => {NOTEBOOK}.sessionContext.shutdown()")
    page.close()

    executed = nbformat.read(directory / path.name, as_version=4)
    executed.metadata["kbench"] = {"parameters": {"profile": "smoke"}, "executed_in": "JupyterLab, Run All"}
    nbformat.write(executed, live_dir / path.name)
    result = judge(NotebookResult(path.stem, executed=live_dir / path.name, seconds=seconds), directory / path.name,
                   "smoke")
    noise = [output.text[:200] for cell in executed.cells for output in cell.get("outputs", [])
             if output.get("name") == "stderr" and any(w in output.text for w in ("Traceback", "Error", "Warning"))]
    assert result.error is None and state["errors"] == 0, result.error
    assert noise == [], f"{path.stem} writes errors or warnings to the reader: {noise}"
    assert stuck == [], f"{path.stem}: a control changed and its view did not re-render: {stuck}"
    assert charts == [], f"{path.stem}: charts with overlapping text or values off their axis: {charts}"
    assert script_errors == [], script_errors
    assert result.ok, report([result])
