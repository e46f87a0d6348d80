"""The results report: baselines and latest runs read into entries, every problem a named line, an offline page."""
from __future__ import annotations

import json
import os
import re

import nbformat
import pytest

from kbench.cli import main
from kbench.record import MIMETYPE
from kbench.report import collect, render, spread_svg, write_report

GOOD = {"metrics": {"acc": {"value": 0.8, "abs": 0.05, "rel": 0.0}, "base_acc": {"value": 0.6, "abs": 0.05, "rel": 0.0}},
        "lessons": [{"claim": "knowledge helps", "left": "acc", "right": "base_acc", "min_difference": 0.1}],
        "recorded_on": "CPU, 2 cores",
        "spread": {"seeds": [0, 1, 2], "on": "CPU", "metrics": {"acc": [0.8, 0.75, 0.62], "base_acc": [0.6, 0.6, 0.6]}}}


def make_tree(tmp_path):
    notebooks = tmp_path / "notebooks"
    (notebooks / "baselines").mkdir(parents=True)
    for name in ("01_good", "02_corrupt", "03_missing"):
        nbformat.write(nbformat.v4.new_notebook(), notebooks / f"{name}.ipynb")
    (notebooks / "baselines" / "01_good.smoke.json").write_text(json.dumps(GOOD))
    (notebooks / "baselines" / "02_corrupt.smoke.json").write_text('{"metrics": {"acc": {"val')
    runs = tmp_path / "runs"
    runs.mkdir()
    return notebooks, runs


def executed(path, metrics: dict, profile="smoke", when: float | None = None, **parameters):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("kbench.record(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={MIMETYPE: {"name": k, "value": v}, "text/plain": k})
                    for k, v in metrics.items()]
    notebook.cells = [cell]
    notebook.metadata["papermill"] = {"parameters": {**parameters, "profile": profile}}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    if when is not None:
        os.utime(path, (when, when))
    return path


def by_name(entries):
    return {(e.notebook, e.profile): e for e in entries}


def test_the_latest_comparable_run_is_checked_against_its_baseline(tmp_path):
    notebooks, runs = make_tree(tmp_path)
    now = os.stat(notebooks / "01_good.ipynb").st_mtime + 100
    executed(runs / "a-smoke" / "01_good.ipynb", {"acc": 0.5, "base_acc": 0.6}, when=now)          # older, failing
    newest = executed(runs / "b-smoke" / "01_good.ipynb", {"acc": 0.82, "base_acc": 0.61}, when=now + 10)
    executed(runs / "c-seeds" / "seed3" / "01_good.ipynb", {"acc": 0.1, "base_acc": 0.6}, when=now + 20, seed=3)
    entries, unreadable = collect(notebooks, [runs], ("smoke", "full"))
    good = by_name(entries)[("01_good", "smoke")]
    assert good.run == newest and good.metrics == {"acc": 0.82, "base_acc": 0.61}
    assert good.status == "ok" and not good.problems and unreadable == []
    assert [v.ok for v in good.verdicts] == [True, True] and good.lessons[0].ok
    assert by_name(entries)[("01_good", "full")].problems[0].startswith("missing baseline: 01_good.full.json")


def test_a_failing_metric_or_lesson_fails_the_entry(tmp_path):
    notebooks, runs = make_tree(tmp_path)
    later = os.stat(notebooks / "01_good.ipynb").st_mtime + 100
    executed(runs / "r" / "01_good.ipynb", {"acc": 0.7, "base_acc": 0.65}, when=later)
    good = by_name(collect(notebooks, [runs], ("smoke",))[0])[("01_good", "smoke")]
    assert good.status == "fails"
    assert [v.verdict for v in good.verdicts] == ["OUTSIDE", "ok"] and not good.lessons[0].ok


def test_missing_corrupt_stale_and_unreadable_are_named_lines_not_crashes(tmp_path):
    notebooks, runs = make_tree(tmp_path)
    later = os.stat(notebooks / "01_good.ipynb").st_mtime + 100
    executed(runs / "r" / "01_good.ipynb", {"acc": 0.8, "base_acc": 0.6, "new_metric": 1.0}, when=later)
    executed(runs / "r" / "02_corrupt.ipynb", {"acc": 0.8}, when=later)
    (runs / "r" / "03_missing.ipynb").write_text("{not a notebook")
    entries, unreadable = collect(notebooks, [runs], ("smoke",))
    entries = by_name(entries)
    assert entries[("01_good", "smoke")].problems == [
        "stale baseline: the latest run records new_metric, which the baseline lacks"]
    assert entries[("01_good", "smoke")].status == "fails"           # a new metric fails the run, as in `kbench run`
    corrupt = entries[("02_corrupt", "smoke")]
    assert corrupt.problems[0].startswith("corrupt baseline:") and "02_corrupt.smoke.json" in corrupt.problems[0]
    assert corrupt.baseline is None and corrupt.run is not None and corrupt.status == "no baseline"
    assert entries[("03_missing", "smoke")].status == "no baseline"   # red on the page, as `kbench run` fails
    assert entries[("03_missing", "smoke")].problems[0].startswith("missing baseline: 03_missing.smoke.json")
    assert len(unreadable) == 1 and "03_missing.ipynb: unreadable run" in unreadable[0]
    os.utime(notebooks / "01_good.ipynb", (later + 50, later + 50))
    problems = by_name(collect(notebooks, [runs], ("smoke",))[0])[("01_good", "smoke")].problems
    assert "stale run: the notebook changed after its latest run" in problems


def test_the_page_shows_verdicts_lessons_seed_counts_and_loads_nothing(tmp_path):
    notebooks, runs = make_tree(tmp_path)
    later = os.stat(notebooks / "01_good.ipynb").st_mtime + 100
    executed(runs / "r" / "01_good.ipynb", {"acc": 0.82, "base_acc": 0.6}, when=later)
    page = render(*collect(notebooks, [runs], ("smoke", "full")))
    assert "knowledge helps" in page and "holds: acc - base_acc = +0.220" in page
    assert "recorded seeds: 2/3 seeds" in page            # seed 2: 0.62 - 0.60 < 0.1
    assert "corrupt baseline" in page and "missing baseline: 03_missing.smoke.json" in page
    assert page.count("<svg") == 2 and "CPU, 2 cores" in page
    assert not re.search(r"<script|<link|https?://|src=", page)
    out = write_report(tmp_path / "out" / "report.html", notebooks, [runs], ("smoke",))
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_badge_says_why(tmp_path):
    """"no run" names the parameters a run needs and the runs found with others; "no baseline" is red."""
    notebooks, runs = make_tree(tmp_path)
    executed(runs / "seeds" / "seed3" / "01_good.ipynb", {"acc": 0.1, "base_acc": 0.6}, seed=3)
    entries = by_name(collect(notebooks, [runs], ("smoke",))[0])
    good = entries[("01_good", "smoke")]
    assert good.status == "no run" and good.other_runs == [{"seed": 3}]
    assert "the baseline's parameters (the defaults)" in good.why and "seed=3" in good.why
    assert "kbench run --only 01_good --profile smoke" in good.why
    page = render(list(entries.values()))
    assert f'<span class="norun" title="{good.why}">no run</span>' in page.replace("&#x27;", "'")
    assert '<span class="fails" title="no readable baseline' in page
    assert "no baseline</span>: the baseline file is missing or unreadable" in page    # the legend


def test_names_are_escaped():
    from kbench.report import Entry

    page = render([Entry("01_<b>x</b>", "smoke", problems=["missing baseline: <script>"])])
    assert "<b>x</b>" not in page and "&lt;script&gt;" in page


def test_the_spread_strip_places_seeds_band_and_latest_value():
    svg = spread_svg([0.0, 1.0], centre=0.5, tolerance=0.25, got=0.5, width=108)
    dots = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', svg)]
    assert dots == [4.0, 104.0]                                   # the seeds span the strip
    assert 'x="29.0" y="3" width="50.0"' in svg                     # the band: 0.25..0.75
    assert 'x="52.5"' in svg                                        # the latest value's bar, centred on 0.5
    from kbench.report import spread_cell

    cell = spread_cell([0.0, 1.0], centre=0.5, tolerance=0.25, got=0.5)   # the strip's scale: its two ends
    assert re.sub(r"<span[^>]*>|</span>", "", re.sub(r"<svg.*</svg>", "SVG", cell)) == "0 SVG 1"


def test_the_report_command_writes_the_page_of_every_notebook(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--runs", str(tmp_path / "no-runs"), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "01_k_bert" in page and "10_sensebert" in page and "no run" in page
    assert str(out) in capsys.readouterr().out
