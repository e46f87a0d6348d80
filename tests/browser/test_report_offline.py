"""The results report opens in headless Chromium requesting nothing from any other host."""
from __future__ import annotations

from kbench.report import write_report

LOCAL = ("file:", "data:", "blob:", "about:")


def test_the_report_requests_nothing_and_draws_its_strips(browser, tmp_path):
    page_path = write_report(tmp_path / "report.html", runs_dirs=[tmp_path / "no-runs"])
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_path.as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    strips = page.evaluate("() => Array.from(document.querySelectorAll('svg')).filter("
                           "s => s.getBoundingClientRect().width > 100).length")
    headings = page.evaluate("() => document.querySelectorAll('h2').length")
    page.close()
    assert [url for url in requests if not url.startswith(LOCAL)] == []
    assert headings >= 10 and strips >= 10
