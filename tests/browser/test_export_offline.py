"""Opening an exported notebook requests nothing from any other host (recorded in headless Chromium)."""
from __future__ import annotations

import nbformat
import pytest

from kbench.runner import export_html, run_notebook

LOCAL = ("file:", "data:", "blob:", "about:")


def widget_notebook(path):
    """A notebook with what broke the export before: a widget, tqdm bars, a plotly chart, and an SVG view."""
    cells = ['profile = "smoke"',
             "import ipywidgets\nipywidgets.IntSlider(value=3, description='a widget')",
             "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='bar'):\n    pass",
             "import plotly.graph_objects as go\nfrom kbench.viz import show\nshow(go.Figure(go.Bar(x=['a'], y=[1])))",
             "from IPython.display import HTML\nHTML('<svg width=\"10\" height=\"10\"><rect width=\"5\" height=\"5\"/></svg>')",
             "$x^2$ is math"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells[:-1]]
                                        + [nbformat.v4.new_markdown_cell(cells[-1])])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {"name": "kbench", "display_name": "Python (kbench)", "language": "python"}
    nbformat.write(notebook, path)


def requests_made(browser, path) -> tuple[list[str], int]:
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(1500)   # scripts that build URLs run after load
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
        .filter(e => e.getBoundingClientRect().height === 0 && !e.innerText.trim()).length""")
    page.close()
    return [url for url in requests if not url.startswith(LOCAL)], boxes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The widget notebook run by the runner: its result (executed notebook and HTML export)."""
    from kbench.runner import ensure_kernel

    ensure_kernel()
    directory = tmp_path_factory.mktemp("export")
    (directory / "baselines").mkdir()
    source = directory / "97_widgets.ipynb"
    widget_notebook(source)
    result = run_notebook(source, "smoke", directory / "out")
    assert result.error is None, result.error
    return result


def test_export_requests_nothing_from_another_host(browser, exported, tmp_path):
    executed = nbformat.read(exported.executed, as_version=4)
    assert "widgets" in executed.metadata      # the executed notebook does carry widget state
    remote, empty_boxes = requests_made(browser, exported.html)
    assert remote == [] and empty_boxes == 0
    # the plain lab export of the same notebook does reach out (this is what the test guards against)
    from nbconvert import HTMLExporter

    plain = tmp_path / "plain.html"
    plain.write_text(HTMLExporter(template_name="lab").from_notebook_node(executed)[0], encoding="utf-8")
    remote, _ = requests_made(browser, plain)
    assert any("unpkg.com" in url or "cdnjs" in url for url in remote)


def test_the_export_still_shows_the_static_views(browser, exported, tmp_path):
    page = browser.new_page()
    page.goto(exported.html.as_uri(), wait_until="load")
    assert page.locator(".js-plotly-plot").count() == 1 and page.locator("svg rect").count() >= 1
    page.close()
    export_html(nbformat.read(exported.executed, as_version=4), tmp_path / "again.html")
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == exported.html.read_text(encoding="utf-8")
