"""Notebook regression: every notebook runs in the smoke profile and meets its baselines."""
from __future__ import annotations

import re

import pytest

from kbench.runner import notebooks, report, run


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    return run("smoke", out_dir=tmp_path_factory.mktemp("runs"))


def test_smoke_notebooks_meet_baselines(smoke_run):
    assert [r.name for r in smoke_run] == [p.stem for p in notebooks()]
    assert all(r.ok for r in smoke_run), report(smoke_run)


def test_k_bert_beats_bert_by_a_wide_margin(smoke_run):
    metrics = {v.name: v.got for r in smoke_run if r.name == "01_k_bert" for v in r.verdicts}
    assert metrics["kbert_test_accuracy"] - metrics["bert_test_accuracy"] > 0.3
    assert metrics["bert_test_accuracy"] < 0.4  # without knowledge: near chance (0.25 for 4 continents)


def test_html_export_is_self_contained(smoke_run):
    for result in smoke_run:
        html = result.html.read_text(encoding="utf-8")
        assert not re.search(r"""src=["']https?:""", html), f"{result.html} loads a script or image from the network"
        assert "require.min.js" not in html and "<svg" in html
