"""Recording metrics and comparing them with baselines."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from kbench.errors import BaselineError, InputError
from kbench.record import (MIMETYPE, Baseline, Lesson, check_lessons, compare, load_baseline, metrics_from_notebook,
                           record, updated_baseline, write_json_atomic)


def test_record_displays_under_the_kbench_mimetype(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda data, raw: shown.append(data))
    assert record("kbert_test_accuracy", 0.75) is None   # no Out[] echo
    # quiet: the runner reads the mimetype; the reader sees nothing (no `name = value` line between the views)
    assert shown == [{MIMETYPE: {"name": "kbert_test_accuracy", "value": 0.75}, "text/html": ""}]


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


def baseline(metrics, lessons=(), tmp=Path("b.json")):
    return Baseline(tmp, metrics, [Lesson(**lesson) for lesson in lessons])


def test_compare_verdicts():
    base = baseline({"a": {"value": 0.5, "abs": 0.05}, "b": {"value": 10.0, "rel": 0.1}, "c": {"value": 1.0, "abs": 0}})
    verdicts = {v.name: v for v in compare({"a": 0.54, "b": 11.5, "d": 3.0}, base)}
    assert verdicts["a"].ok and verdicts["a"].verdict == "ok"
    assert not verdicts["b"].ok and verdicts["b"].verdict == "OUTSIDE"
    assert not verdicts["c"].ok and verdicts["c"].verdict == "MISSING"
    assert not verdicts["d"].ok and verdicts["d"].verdict.startswith("new")


def test_a_missing_baseline_fails():
    [verdict] = compare({"a": 0.1}, None)
    assert not verdict.ok and "update-baselines" in verdict.verdict


def test_lessons_hold_or_fail_and_say_by_how_much():
    lessons = [{"claim": "K beats B", "left": "k", "right": "b", "min_difference": 0.3},
               {"claim": "VM is no worse", "left": "vm", "right": "k", "min_difference": -0.05, "max_difference": 0.1}]
    base = baseline({name: {"value": 0.5} for name in ("k", "b", "vm")}, lessons)
    verdicts = check_lessons({"k": 0.9, "b": 0.25, "vm": 0.87}, base)
    assert [v.ok for v in verdicts] == [True, True]
    assert verdicts[0].verdict == "holds: k - b = +0.650 (needs >= +0.300)"
    failing = check_lessons({"k": 0.5, "b": 0.25, "vm": 0.7}, base)
    assert [v.ok for v in failing] == [False, False] and failing[1].verdict.startswith("FAILS: vm - k = +0.200")
    missing = check_lessons({"k": 0.5}, base)
    assert not missing[0].ok and "MISSING b" in missing[0].verdict
    assert check_lessons({"k": 1.0}, None) == []


def test_update_keeps_tolerances_lessons_and_parameters(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"metrics": {"a": {"value": 0.5, "rel": 0.2, "abs": 0.01}, "b": {"value": 0.1}},
                                "lessons": [{"claim": "a over b", "left": "a", "right": "b", "min_difference": 0.1}],
                                "parameters": {"limit": 40}, "recorded_on": "CPU"}))
    updated = updated_baseline({"a": 0.61, "b": 0.2, "n": 1.0}, load_baseline(path), path)
    write_json_atomic(path, updated.document())
    again = load_baseline(path)
    assert again.metrics["a"] == {"value": 0.61, "rel": 0.2, "abs": 0.01} and again.metrics["n"]["abs"] > 0
    assert again.lessons[0].claim == "a over b" and again.parameters == {"limit": 40} and again.recorded_on == "CPU"
    assert load_baseline(tmp_path / "absent.json") is None


@pytest.mark.parametrize("document,problem", [
    ({"metrics": {"a": {"rel": 1}}}, "value"),
    ({"metrics": {"a": {"value": 1}}, "lessons": [{"claim": "x", "left": "a", "right": "z", "min_difference": 0}]},
     "'z', which is not among the metrics"),
    ({"metrics": {"a": {"value": 1}}, "lessons": [{"claim": "x", "left": "a", "right": "a"}]}, "neither"),
    ({"metrics": {"a": {"value": 1}}, "lessons": [{"claim": "x", "left": "a", "rihgt": "a"}]}, "rihgt"),
])
def test_malformed_baselines_fail_with_the_reason(tmp_path, document, problem):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(document))
    with pytest.raises(BaselineError, match="malformed") as error:
        load_baseline(path)
    assert problem in str(error.value)


def test_a_spread_round_trips_and_notebooks_read_it(tmp_path):
    from kbench.record import recorded_spread, with_spread

    path = tmp_path / "05_x.smoke.json"
    base = Baseline(path, {"a": {"value": 0.5, "rel": 0.0, "abs": 0.1}})
    write_json_atomic(path, with_spread(base, [0, 1, 2], [{"a": 0.4, "b": 1.0}, {"a": 0.5}, {"a": 0.61}],
                                       "CPU").document())
    loaded = load_baseline(path)
    assert loaded.spread == {"seeds": [0, 1, 2], "on": "CPU", "metrics": {"a": [0.4, 0.5, 0.61]}}   # b: one seed only
    assert recorded_spread("05_x", "smoke", tmp_path) == {"a": [0.4, 0.5, 0.61]}
    assert recorded_spread("05_x", "full", tmp_path) == {}
    assert updated_baseline({"a": 0.45}, loaded, path).spread == loaded.spread     # re-recording keeps it
    with pytest.raises(InputError, match="2 runs for 3 seeds"):
        with_spread(base, [0, 1, 2], [{"a": 1.0}] * 2, "CPU")


def test_a_malformed_spread_is_named(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"metrics": {"a": {"value": 1}}, "spread": {"seeds": [0, 1], "metrics": {"a": [0.5]}}}')
    with pytest.raises(BaselineError, match="one finite value for each of the 2 seeds"):
        load_baseline(path)
