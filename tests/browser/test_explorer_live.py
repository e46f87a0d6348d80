"""Views in a live JupyterLab, driven in headless Chromium: typing changes the sentence-tree explorer's view; the
overview's map renders with its links and no script error."""
from __future__ import annotations

import nbformat
import pytest

from live_lab import lab_server

EXPLORER = """from kbench.kg import KnowledgeGraph
from kbench.viz.widgets import tree_explorer
kg = KnowledgeGraph.from_triples([("Tim Cook", "CEO", "Apple"), ("Beijing", "capital", "China")])
tree_explorer({"figure 2": kg}, str.split, "[CLS] Tim Cook is visiting Beijing now", max_length=16)"""
MAP = """from IPython.display import HTML
from kbench.taxonomy import taxonomy_html
HTML(taxonomy_html(link_prefix=""))"""


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a folder with two notebooks: the explorer widget and the overview's map."""
    for name, source in (("explorer", EXPLORER), ("map", MAP)):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        notebook.metadata["kernelspec"] = {"name": "kbench", "display_name": "Python (kbench)", "language": "python"}
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
    (tmp_path / "settings").mkdir()
    with lab_server(tmp_path, tmp_path / "settings") as url:
        yield url


VIEW = "document.querySelector('.widget-html .widget-html-content')?.innerText || ''"


def run_first_cell(page, done: str, name: str) -> None:
    """Run the notebook's first cell until the JavaScript condition ``done`` holds."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    editor = ".jp-Notebook .jp-Cell .jp-InputArea-editor >> visible=true"
    page.wait_for_selector(editor, timeout=60_000)
    for attempt in range(12):   # a key press before the notebook panel is ready is lost: press again
        page.locator(editor).first.click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(f"() => {done}", timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 11:
                page.screenshot(path=f"{name}-failure.png")
                raise


def test_the_map_renders_with_its_links_and_no_script_error(browser, lab):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab}/lab/tree/map.ipynb?reset")   # ?reset: no notebook left open by an earlier run
    run_first_cell(page, "document.querySelectorAll('.jp-OutputArea-output svg rect').length > 10", "map")
    output = page.locator(".jp-OutputArea >> visible=true").first.inner_text()
    assert "Javascript Error" not in output and "K-BERT" in output
    assert page.locator(".jp-OutputArea-output a[href*='01_k_bert.ipynb']").count() == 1
    page.close()


def test_typing_a_sentence_changes_the_tree_view(browser, lab):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab}/lab/tree/explorer.ipynb?reset")
    run_first_cell(page, f"({VIEW}).includes('CEO Apple')", "explorer")
    assert "capital China" in page.evaluate(VIEW)

    sentence = page.locator(".widget-text input").first
    sentence.fill("[CLS] Tim Cook is tired")
    sentence.press("Enter")
    page.wait_for_function(f"() => !({VIEW}).includes('capital China')", timeout=30_000)
    assert "CEO Apple" in page.evaluate(VIEW)

    slider = page.locator(".widget-hslider").filter(has_text="max_length")
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => ({VIEW}).includes('cut at max_length=5')", timeout=30_000)
    page.close()
