"""The sentence-tree explorer in a live JupyterLab, driven in headless Chromium: typing changes the view."""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import nbformat
import pytest

from kbench.cli import lab_command
from kbench.runner import ensure_kernel

EXPLORER = """from kbench.kg import KnowledgeGraph
from kbench.viz.widgets import tree_explorer
kg = KnowledgeGraph.from_triples([("Tim Cook", "CEO", "Apple"), ("Beijing", "capital", "China")])
tree_explorer({"figure 2": kg}, str.split, "[CLS] Tim Cook is visiting Beijing now", max_length=16)"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab started by the same command as ``make lab`` (as root too), on a folder with one notebook."""
    ensure_kernel()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(EXPLORER)])
    notebook.metadata["kernelspec"] = {"name": "kbench", "display_name": "Python (kbench)", "language": "python"}
    nbformat.write(notebook, tmp_path / "explorer.ipynb")
    port = free_port()
    command = lab_command(port=port, notebook_dir=str(tmp_path)) + [
        "--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited ({server.returncode}): {server.stdout.read()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not answer within 90 s")
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


VIEW = "document.querySelector('.widget-html .widget-html-content')?.innerText || ''"


def test_typing_a_sentence_changes_the_tree_view(browser, lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab}/lab/tree/explorer.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=60_000)
    for attempt in range(12):   # a key press before the notebook panel is ready is lost: press again
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(f"() => ({VIEW}).includes('CEO Apple')", timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 11:
                page.screenshot(path="explorer-failure.png")
                raise
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
