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


def test_full_profile_path_runs_on_real_data(real_data, mirror, tmp_path):
    """The full profile's code path (real dataset, HowNet, Chinese vocab) on a few sentences and a tiny BERT."""
    from kbench.runner import NOTEBOOK_DIR, ensure_kernel, run_notebook

    ensure_kernel()
    from kbench.data import fetch

    for split in ("train", "dev", "test"):
        for dataset in ("chnsenticorp", "medical_ner"):
            fetch(f"kbert/datasets/{dataset}/{split}.tsv", real_data, mirror, progress=False)
    result = run_notebook(NOTEBOOK_DIR / "01_k_bert.ipynb", "full", tmp_path,
                          parameters={"base_model": "tiny", "limit": 24, "data_dir": str(real_data)})
    assert result.error is None, result.error
    assert result.ok  # no full-profile baseline is recorded yet: metrics are reported, unchecked
    got = {v.name: v.got for v in result.verdicts}
    assert set(got) == {f"{variant}_test_accuracy" for variant in ("bert", "kbert", "kbert_no_vm")} | {
        f"ner_{variant}_test_f1" for variant in ("bert", "kbert", "kbert_no_vm")}
    assert all(0.0 <= value <= 1.0 for value in got.values())
