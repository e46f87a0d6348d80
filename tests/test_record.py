"""Recording metrics and comparing them with baselines."""
from __future__ import annotations

import json

import nbformat
import pytest

from kbench.errors import BaselineError, InputError
from kbench.record import MIMETYPE, compare, load_baseline, metrics_from_notebook, record, updated_baseline


def test_record_writes_the_sidecar(tmp_path, monkeypatch):
    sidecar = tmp_path / "m.json"
    monkeypatch.setenv("KBENCH_RECORD_FILE", str(sidecar))
    assert record("kbert_test_accuracy", 0.75) == 0.75
    record("bert_test_accuracy", 0.25)
    assert json.loads(sidecar.read_text()) == {"bert_test_accuracy": 0.25, "kbert_test_accuracy": 0.75}


@pytest.mark.parametrize("name,value", [("has space", 1.0), ("", 1.0), ("ok", "high"), ("ok", float("nan")),
                                        ("ok", None)])
def test_record_rejects_bad_metrics(name, value):
    with pytest.raises(InputError):
        record(name, value)


def test_metrics_from_notebook_outputs():
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={MIMETYPE: {"name": "a", "value": 0.5}}),
                    nbformat.v4.new_output("display_data", data={MIMETYPE: {"name": "a", "value": 0.6}})]
    assert metrics_from_notebook(nbformat.v4.new_notebook(cells=[cell])) == {"a": 0.6}


def test_compare_verdicts():
    baseline = {"a": {"value": 0.5, "abs": 0.05}, "b": {"value": 10.0, "rel": 0.1}, "c": {"value": 1.0, "abs": 0}}
    verdicts = {v.name: v for v in compare({"a": 0.54, "b": 11.5, "d": 3.0}, baseline)}
    assert verdicts["a"].ok and verdicts["a"].verdict == "ok"
    assert not verdicts["b"].ok and verdicts["b"].verdict == "OUTSIDE"
    assert not verdicts["c"].ok and verdicts["c"].verdict == "MISSING"
    assert not verdicts["d"].ok and verdicts["d"].verdict.startswith("new")
    unchecked = compare({"a": 0.1}, None)
    assert [(v.name, v.ok, v.verdict) for v in unchecked] == [("a", True, "unchecked (no baseline file)")]


def test_update_keeps_tolerances_and_malformed_baselines_fail(tmp_path):
    doc = updated_baseline({"a": 0.61, "n": 1.0}, {"a": {"value": 0.5, "rel": 0.2, "abs": 0.01}})
    assert doc["metrics"]["a"] == {"value": 0.61, "rel": 0.2, "abs": 0.01}
    assert doc["metrics"]["n"]["abs"] > 0
    path = tmp_path / "b.json"
    path.write_text('{"metrics": {"a": {"rel": 1}}}')
    with pytest.raises(BaselineError, match="malformed"):
        load_baseline(path)
    assert load_baseline(tmp_path / "absent.json") == {}
