"""The shared charts drawn in Chromium with the hardest inputs the notebooks give them: long model names, many bars,
seed spreads, reference lines, long titles, losses far above 1: no text overlaps, none runs out, no value is cut."""
from __future__ import annotations

import plotly.io
import pytest

from chart_geometry import chart_problems
from kbench.viz.charts import accuracy_bars, attention_bars, dev_curves

SEVEN = {"general base (no further pretraining)": 6.66, "DAPT (domain text)": 6.32, "TAPT (the task's train text)": 6.32,
         "DAPT + TAPT (TAPT after DAPT)": 6.35, "kNN-TAPT (task + nearest domain text)": 6.43,
         "RAND-TAPT (task + random domain text)": 6.67, "DAPT on an irrelevant domain": 6.69}
CHARTS = {
    "seven losses with spreads": accuracy_bars(
        SEVEN, runs={name: [v - 0.2, v, v + 0.25, v + 0.1, v - 0.05] for name, v in SEVEN.items()}, metric="MLM loss",
        title="science glosses: MLM loss on the test texts (lower is better; bars: seed 0; dots: recorded seeds)"),
    "four MRRs and a line": accuracy_bars(
        {"untrained encoder": 0.365, "MLM only": 0.137, "MLM + descriptions": 0.145, "KEPLER": 0.352},
        runs={"untrained encoder": [0.30, 0.36, 0.31, 0.33, 0.35], "MLM only": [0.08, 0.15, 0.1, 0.12, 0.14],
              "MLM + descriptions": [0.12, 0.19, 0.15, 0.14, 0.13], "KEPLER": [0.33, 0.43, 0.4, 0.35, 0.36]},
        lines={"answer prior": 0.21}, metric="MRR",
        title="inductive MRR, all inductive triples (bars: seed 0; dots: recorded seeds)"),
    "accuracies with majority and chance": accuracy_bars(
        {"BERT": 0.427, "BERT + metadata": 0.427, "BERT + metadata + author KG": 0.61, "base alone (frozen)": 0.667,
         "+ factual adapter, untrained": 0.58, "+ both adapters (concatenated)": 0.6},
        runs={"BERT": [0.24, 0.51, 0.4, 0.45, 0.43, 0.3, 0.35, 0.47, 0.5, 0.41]}, majority=0.22, chance=0.25),
    "three bars under a long title": accuracy_bars(
        {"general base": 0.41, "SciBERT-style (science text)": 0.45, "same-budget control": 0.40},
        runs={"general base": [0.38, 0.41, 0.44, 0.40, 0.43]}, metric="macro-F1",
        title="WordNet science definition -> lexicographer file: test macro-F1 (bars: seed 0; dots: recorded seeds)"),
    "dev curves": dev_curves({"BERT": [0.2, 0.4, 0.5], "K-BERT": [0.3, 0.5, 0.6]}),
    "attention": attention_bars(["[CLS]", "tim", "cook", "is", "ceo", "apple", "visiting"],
                                {"BERT": [0.1] * 7, "K-BERT": [0.2] * 7}, "attention from [CLS]",
                                knowledge=[False, False, False, False, True, True, False]),
}


@pytest.mark.parametrize("name", CHARTS)
def test_a_shared_chart_has_no_overlapping_text_and_no_value_off_its_axis(browser, tmp_path, name):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    path = tmp_path / "chart.html"
    plotly.io.write_html(CHARTS[name], str(path), include_plotlyjs=True, full_html=True)
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg")
    problems = chart_problems(page)
    page.screenshot(path=str(tmp_path / "chart.png"))
    page.close()
    assert problems == [], problems


def test_the_check_finds_overlapping_labels_and_a_cut_value(browser, tmp_path):
    """The check can fail: a narrow chart with long labels, and a loss on a 0-1 axis."""
    figure = accuracy_bars(SEVEN, metric="MLM loss")
    figure.update_layout(width=300, yaxis=dict(range=[0, 1.05]))
    path = tmp_path / "bad.html"
    plotly.io.write_html(figure, str(path), include_plotlyjs=True, full_html=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg")
    problems = chart_problems(page)
    page.close()
    assert any("overlaps" in p for p in problems) and any("outside the axis range" in p for p in problems)
