"""The head-to-head: headlines read from baselines (spread, single run, missing, corrupt), the table, the costs."""
from __future__ import annotations

import html
import json
import re

import pytest

from kbench.comparison import recorded, runtime_costs, table
from kbench.head_to_head import head_to_head_model
from kbench.errors import InputError
from kbench.taxonomy import Declaration, Headline, Place


def declared(notebook="99_x", title="X", where="objective", probe=None, full=None):
    return Declaration("x", title, notebook, Place(title, where, ("KG",), "somehow"),
                       Headline("typing, accuracy", "x_acc", "base_acc", "a KG", probe=probe, full=full))


def write(directory, name, document):
    (directory / name).write_text(json.dumps(document))


def metric(value):
    return {"value": value, "rel": 0.0, "abs": 0.1}


def test_a_spread_gives_per_seed_deltas_and_wins(tmp_path):
    write(tmp_path, "99_x.smoke.json", {
        "metrics": {"x_acc": metric(0.7), "base_acc": metric(0.5), "x_mrr": metric(0.2), "base_mrr": metric(0.1)},
        "spread": {"seeds": [0, 1, 2], "on": "CPU", "metrics": {"x_acc": [0.7, 0.4, 0.9], "base_acc": [0.5, 0.5, 0.5],
                                                                "x_mrr": [0.2, 0.3, 0.1], "base_mrr": [0.1, 0.1, 0.1]}}})
    [row] = recorded("smoke", tmp_path, [declared(probe=("x_mrr", "base_mrr"))])
    assert row.seeds == [0, 1, 2] and row.deltas == pytest.approx([0.2, -0.1, 0.4]) and row.wins == 2
    assert row.probe_deltas == pytest.approx([0.1, 0.2, 0.0]) and "seeds 0, 1, 2" in row.note
    frame = table([row])
    assert frame.loc[0, "higher on"] == "2/3" and frame.loc[0, "Δ mean [min, max]"] == "+0.167 [-0.100, +0.400]"
    assert frame.loc[0, "params added"] == "0 (same network)"


def test_without_a_spread_the_recorded_run_is_one_value(tmp_path):
    write(tmp_path, "99_x.full.json", {"metrics": {"x_f1": metric(0.3), "base_f1": metric(0.4)}, "recorded_on": "CPU"})
    [row] = recorded("full", tmp_path, [declared(full=("x_f1", "base_f1"))])
    assert row.seeds == ["recorded run"] and row.deltas == pytest.approx([-0.1]) and row.wins == 0
    assert row.metrics == ("x_f1", "base_f1")


def test_missing_corrupt_and_incomplete_baselines_are_named_rows(tmp_path):
    items = [declared("97_a", "A"), declared("98_b", "B"), declared("99_c", "C")]
    (tmp_path / "98_b.smoke.json").write_text("{not json")
    write(tmp_path, "99_c.smoke.json", {"metrics": {"x_acc": metric(0.7)}})
    rows = recorded("smoke", tmp_path, items)
    assert [r.deltas for r in rows] == [[], [], []]
    assert "no smoke baseline" in rows[0].note and "unreadable" in rows[1].note and "base_acc" in rows[2].note
    assert list(table(rows)["higher on"]) == ["—"] * 3


def test_a_pair_split_between_spread_and_single_values_is_a_named_row(tmp_path):
    write(tmp_path, "99_x.smoke.json", {       # x_acc only in the spread, base_acc only as a value
        "metrics": {"base_acc": metric(0.5), "y": metric(0.1)},
        "spread": {"seeds": [0, 2], "on": "CPU", "metrics": {"x_acc": [0.7, 0.6]}}})
    [row] = recorded("smoke", tmp_path, [declared(probe=("x_mrr", "base_mrr"))])
    assert row.deltas == [] and "not recorded over the same seeds" in row.note
    write(tmp_path, "99_x.smoke.json", {"metrics": {"x_acc": metric(0.7), "base_acc": metric(0.5)}})
    [row] = recorded("smoke", tmp_path, [declared(probe=("x_mrr", "base_mrr"))])
    assert row.deltas == pytest.approx([0.2]) and "probe x_mrr / base_mrr not recorded" in row.note


def test_a_method_that_changes_the_network_without_a_measured_cost_is_not_shown_as_free():
    from kbench.comparison import Row

    fused, trained = declared("04_doc", "Fused", "fused entity vectors"), declared("08_wklm", "Trained")
    rows = [Row(fused, ("x_acc", "base_acc"), [0], [0.9], [0.5]), Row(trained, ("x_acc", "base_acc"), [0], [0.6], [0.5])]
    frame = table(rows, {})
    assert list(frame["params added"]) == ["not measured", "0 (same network)"]
    assert list(frame["infer speed"]) == ["not measured", "1x"]


def test_the_full_profile_names_its_own_task():
    headline = Headline("definitions, F1", "a", "b", "a corpus", full=("c", "d"), full_task="citations, F1")
    assert headline.task_in("smoke") == "definitions, F1" and headline.task_in("full") == "citations, F1"
    with pytest.raises(InputError, match="full_task needs"):
        Headline("t", "a", "b", "a KG", full_task="other")


def test_a_headline_names_two_metrics_and_what_it_needs():
    with pytest.raises(InputError, match="must differ"):
        Headline("t", "a", "a", "a KG")
    with pytest.raises(InputError, match="two different"):
        Headline("t", "a", "b", "a KG", probe=("p", "p"))
    with pytest.raises(InputError, match="needs"):
        Headline("t", "a", "b", " ")
    headline = Headline("t", "a", "b", "a KG", probe=("p", "q"), full=("c", "d"))
    assert headline.metrics("smoke") == (("a", "b"), ("p", "q"))
    assert headline.metrics("full") == (("c", "d"), ("p", "q"))
    with pytest.raises(InputError, match="survey kind"):
        Place("X", "input", ("KG",), "somehow", survey="gossip")
    with pytest.raises(InputError, match="survey time"):
        Place("X", "input", ("KG",), "somehow", when="never")


def test_every_declared_paper_is_read_from_the_real_baselines():
    rows = recorded("smoke")
    assert len(rows) >= 14 and all(r.deltas for r in rows), [r.note for r in rows if not r.deltas]
    ernie = next(r for r in rows if r.declaration.notebook == "05_ernie_thu")
    assert len(ernie.deltas) == len(ernie.seeds) >= 5


def test_runtime_costs_count_what_each_method_adds():
    from kbench.data import make_linking_world

    world = make_linking_world(seed=0)
    costs = runtime_costs(world, "tiny", None, sentences=4, batch_size=4, entity_dim=8)
    assert costs["01_k_bert"].added == 0                        # K-BERT's cost is its input, not parameters
    n, layer = len(world.labels), dict(layers=None, max_length=32)
    import torch

    entities = sorted({t[0] for t in world.kg} | {t[2] for t in world.kg})
    vectors, ids = torch.randn(len(entities), 8), {e: i for i, e in enumerate(entities)}
    knowbert = head_to_head_model(n, vectors, ids, world.kg, "tiny", "knowbert", **layer)
    assert costs["02_knowbert"].added == sum(p.numel() for p in knowbert.encoder.fuse.parameters())   # the KAR alone
    ernie = head_to_head_model(n, vectors, ids, world.kg, "tiny", "ernie", **layer)
    aggregators = ernie.ernie.encoder.replace
    wrapped = sum(p.numel() for a in aggregators.values() for p in a.layer.parameters())
    assert 0 < costs["05_ernie_thu"].added >= sum(p.numel() for p in aggregators.parameters()) - wrapped
    assert costs["07_bert_mk"] is costs["05_ernie_thu"]       # the same network over other vectors
    adapter = costs["11_k_adapter"]
    assert adapter.added > 0 and adapter.trainable < adapter.parameters    # the base is frozen
    with pytest.raises(InputError, match="at least one sentence"):
        runtime_costs(world, "tiny", None, sentences=0)


def test_the_gain_cost_figure_puts_each_paper_at_its_cost_with_its_seed_range():
    from kbench.comparison import Row
    from kbench.cost import Cost
    from kbench.viz.overview import gain_cost_figure

    fused, trained = declared("05_ernie_thu", "Fused", "fused entity vectors"), declared("08_wklm", "Trained")
    rows = [Row(fused, ("x_acc", "base_acc"), [0, 1], [0.9, 0.7], [0.5, 0.5]),
            Row(trained, ("x_acc", "base_acc"), [0, 1], [0.5, 0.6], [0.5, 0.5]),
            Row(declared("97_none", "Unread"), ("x_acc", "base_acc"), note="no smoke baseline")]
    costs = {"05_ernie_thu": Cost(10, 10, 4, 1.0, 1.0, 0.5, 0.8, (0.45, 0.55), (0.75, 0.85), 5)}
    figure = gain_cost_figure(rows, costs)
    by_name = {trace.name: trace for trace in figure.data}
    assert set(by_name) == {"fused entity vectors", "objective"}               # the unread row is left out
    noisy = {"05_ernie_thu": Cost(10, 10, 4, 1.0, 1.0, 0.5, 0.8, (0.45, 0.55), (0.5, 1.2), 5)}
    unmeasured = gain_cost_figure(rows, noisy)
    assert {trace.name for trace in unmeasured.data} == {"objective"}          # a noisy ratio is not plotted
    assert any("Fused" in a.text and "not measured" in a.text for a in unmeasured.layout.annotations)
    fused_trace = by_name["fused entity vectors"]
    assert fused_trace.x[0] == pytest.approx(1 / 0.8) and fused_trace.y[0] == pytest.approx(0.3)
    assert fused_trace.error_y.array[0] == pytest.approx(0.1) and fused_trace.error_y.arrayminus[0] == pytest.approx(0.1)
    assert by_name["objective"].x[0] == 1.0                                     # same network at run time


def test_the_survey_grouping_places_every_paper_once():
    from kbench.taxonomy import declarations
    from kbench.viz.overview import survey_grouping_html

    items = declarations()
    page = survey_grouping_html(items)
    cells = re.findall(r"<td>(.*?)</td>", page)
    placed = [html.unescape(name) for cell in cells if cell != "—" for name in cell.split("<br>")]
    first = [name for name in placed if not name.endswith(" (also)")]
    assert sorted(first) == sorted(d.title + ("*" if not d.place.in_survey else "") for d in items)
    assert sorted(n[:-len(" (also)")] for n in placed if n.endswith(" (also)")) == sorted(
        d.title for d in items for _ in d.place.also)
    assert "K-BERT" in page.split("added at fine-tuning")[1]              # the survey's example of knowledge at fine-tuning


def test_the_declarations_follow_the_surveys_own_lists():
    """§4.1's lists as the survey reads them, not rebuilt from the declarations: K-Adapter is listed under
    linguistic knowledge only; KnowBert under factual and linguistic; the factual list is exactly these five."""
    from kbench.taxonomy import SURVEY_LISTS, declarations

    kinds = {d.title: {d.place.survey, *d.place.also} for d in declarations() if d.place.in_survey}
    for kind, names in SURVEY_LISTS.items():
        assert all(kind in kinds[name] for name in names), f"§4.1 lists {names} under {kind}"
    assert sorted(t for t, k in kinds.items() if "factual" in k) == sorted(SURVEY_LISTS["factual"])
    assert kinds["K-Adapter"] == {"linguistic"} and kinds["KnowBert"] == {"factual", "linguistic"}
    with pytest.raises(InputError, match="other survey kinds"):
        Place("X", "input", ("KG",), "somehow", survey="factual", also=("factual",))


def test_the_gain_is_taken_against_the_strongest_trivial_baseline_per_seed(tmp_path):
    from kbench.taxonomy import PositiveControl

    headline = Headline("typing, accuracy", "x_acc", "base_acc", "a KG", trivial=("untrained_acc", "prior_acc"),
                        positive=PositiveControl("the facts are in the input", "seen_x_acc", "seen_base_acc", 0.1))
    item = Declaration("x", "X", "99_x", Place("X", "objective", ("KG",), "somehow"), headline)
    write(tmp_path, "99_x.smoke.json", {"metrics": {}, "spread": {"seeds": [0, 1, 2], "on": "CPU", "metrics": {
        "x_acc": [0.7, 0.4, 0.9], "base_acc": [0.3, 0.3, 0.3], "untrained_acc": [0.5, 0.6, 0.2],
        "prior_acc": [0.6, 0.1, 0.1], "seen_x_acc": [0.9, 0.9, 0.9], "seen_base_acc": [0.5, 0.85, 0.5]}}})
    [row] = recorded("smoke", tmp_path, [item])
    assert row.strongest == pytest.approx([0.6, 0.6, 0.2])        # per seed, the higher of the two
    assert row.deltas_vs_strongest == pytest.approx([0.1, -0.2, 0.7]) and row.beats_strongest == 2
    assert row.strongest_name == "untrained_acc"                   # higher on average (0.433 vs 0.267)
    assert row.positive_verdict() == "FAILED on 1 of 3 seeds"      # seed 1: 0.9 − 0.85 < 0.1
    frame = table([row])
    assert frame.loc[0, "above it on"] == "2/3" and frame.loc[0, "Δ vs strongest [min, max]"].startswith("+0.200")
    assert frame.loc[0, "positive control"] == "FAILED on 1 of 3 seeds"


def test_a_positive_control_not_run_says_why_and_an_unrecorded_one_is_named(tmp_path):
    from kbench.taxonomy import PositiveControl

    write(tmp_path, "99_x.smoke.json", {"metrics": {}, "spread": {"seeds": [0], "on": "CPU", "metrics": {
        "x_acc": [0.7], "base_acc": [0.3]}}})
    for control, verdict in ((PositiveControl("facts", reason="no fact can be learned at this size"),
                              "not run: no fact can be learned at this size"),
                             (PositiveControl("facts", "a", "b"), "not recorded"), (None, "not declared")):
        headline = Headline("t", "x_acc", "base_acc", "a KG", trivial=("u",), positive=control)
        [row] = recorded("smoke", tmp_path, [Declaration("x", "X", "99_x", Place("X", "objective", ("KG",), "s"),
                                                         headline)])
        assert row.positive_verdict() == verdict and "trivial baseline u not recorded" in row.note
        assert row.strongest == [] and table([row]).loc[0, "strongest trivial"] == "none recorded"


def test_controls_bad_declarations():
    from kbench.taxonomy import PositiveControl

    with pytest.raises(InputError, match="both metrics"):
        PositiveControl("facts", "a")
    with pytest.raises(InputError, match="say why"):
        PositiveControl("facts")
    failing = PositiveControl("facts", "a", "b", reason="the frozen base cannot use it")
    assert failing.is_run and failing.fails and not PositiveControl("facts", "a", "b").fails
    with pytest.raises(InputError, match="certainly"):
        PositiveControl(" ", "a", "b")
    with pytest.raises(InputError, match="tuple"):
        Headline("t", "a", "b", "a KG", trivial="u")
    with pytest.raises(InputError, match="neither"):
        Headline("t", "a", "b", "a KG", trivial=("b",))
    with pytest.raises(InputError, match="PositiveControl"):
        Headline("t", "a", "b", "a KG", positive=("a", "b"))
    with pytest.raises(InputError, match="same seeds"):
        PositiveControl("facts", "a", "b").verdict([1.0], [])


def test_the_controls_figure_puts_each_seed_against_the_base_and_the_strongest_trivial(tmp_path):
    from kbench.taxonomy import PositiveControl
    from kbench.viz.overview import controls_figure

    headline = Headline("t", "x_acc", "base_acc", "a KG", trivial=("untrained_acc",),
                        positive=PositiveControl("facts given", "seen_x", "seen_base", 0.1))
    item = Declaration("x", "X", "99_x", Place("X", "objective", ("KG",), "somehow"), headline)
    write(tmp_path, "99_x.smoke.json", {"metrics": {}, "spread": {"seeds": [0, 1], "on": "CPU", "metrics": {
        "x_acc": [0.7, 0.4], "base_acc": [0.3, 0.3], "untrained_acc": [0.5, 0.6], "seen_x": [0.9, 0.9],
        "seen_base": [0.5, 0.5]}}})
    [row] = recorded("smoke", tmp_path, [item])
    figure = controls_figure([row])
    against_base, against_trivial = figure.data[0], figure.data[1]
    assert list(against_base.x) == pytest.approx([0.4, 0.1]) and list(against_base.y) == ["X", "X"]
    assert list(against_trivial.x) == pytest.approx([0.2, -0.2])
    assert against_trivial.marker.color == "#2f9e44" and "passed on 2/2" in against_trivial.hovertext[0]
    empty = recorded("smoke", tmp_path, [Declaration("y", "Y", "98_y", item.place, headline)])
    assert len(controls_figure(empty).data) == 4          # a paper without values: legend entries only


def test_a_positive_control_declared_failing_shows_its_reason(tmp_path):
    from kbench.taxonomy import PositiveControl

    write(tmp_path, "99_x.smoke.json", {"metrics": {}, "spread": {"seeds": [0, 1], "on": "CPU", "metrics": {
        "x_acc": [0.7, 0.4], "base_acc": [0.3, 0.3], "seen_x": [0.5, 0.9], "seen_base": [0.6, 0.5]}}})
    control = PositiveControl("facts seen", "seen_x", "seen_base", 0.1, reason="the frozen base cannot use them")
    headline = Headline("t", "x_acc", "base_acc", "a KG", trivial=("base_acc_u",), positive=control)
    [row] = recorded("smoke", tmp_path, [Declaration("x", "X", "99_x", Place("X", "objective", ("KG",), "s"),
                                                     headline)])
    assert row.positive_verdict() == "FAILED on 1 of 2 seeds: the frozen base cannot use them"


def test_a_headline_against_another_method_shows_plain_bert_as_a_second_comparison(tmp_path):
    from kbench.taxonomy import PositiveControl

    headline = Headline("typing (vs ERNIE)", "mk_acc", "ernie_acc", "a KG", trivial=("random_acc",), plain="bert_acc",
                        positive=PositiveControl("facts given", "ernie_acc", "bert_acc", 0.1))
    write(tmp_path, "99_x.smoke.json", {"metrics": {}, "spread": {"seeds": [0, 1], "on": "CPU", "metrics": {
        "mk_acc": [0.6, 0.5], "ernie_acc": [0.7, 0.5], "bert_acc": [0.2, 0.3], "random_acc": [0.25, 0.3]}}})
    [row] = recorded("smoke", tmp_path, [Declaration("x", "X", "99_x", Place("X", "objective", ("KG",), "s"),
                                                     headline)])
    assert row.deltas == pytest.approx([-0.1, 0.0]) and row.plain == [0.2, 0.3]
    frame = table([row])
    assert frame.loc[0, "Δ vs plain BERT"] == "+0.300 [+0.200, +0.400]" and frame.loc[0, "higher on"] == "0/2"
    with pytest.raises(InputError, match="plain"):
        Headline("t", "a", "b", "a KG", plain="b")


def test_the_labels_at_one_never_overlap_and_every_label_fits_the_axis():
    """Nine methods that run the plain network sit at 1x: their names were drawn on top of each other, and the
    rightmost point's name was cut at the plot's edge."""
    from kbench.comparison import Row
    from kbench.cost import Cost
    from kbench.viz.overview import gain_cost_figure, label_column

    rows = [Row(declared(f"9{i}_x", f"Objective {i}"), ("x_acc", "base_acc"), [0, 1], [0.5 + 0.001 * i] * 2,
                [0.5, 0.5]) for i in range(6)]
    rows.append(Row(declared("05_ernie_thu", "Fused", "fused entity vectors"), ("x_acc", "base_acc"), [0], [0.9], [0.5]))
    costs = {"05_ernie_thu": Cost(10, 10, 4, 1.0, 1.0, 0.5, 0.5, (0.48, 0.52), (0.48, 0.52), 5)}
    figure = gain_cost_figure(rows, costs, title="gain")
    labels = [a for a in figure.layout.annotations if a.text.startswith("Objective")]
    heights = sorted(a.ay for a in labels)
    bottom, top = figure.layout.yaxis.range
    one_label = (top - bottom) * 14 / (figure.layout.height - 170)               # about 14 px of the plot's height
    assert len(labels) == 6 and all(b - a >= one_label for a, b in zip(heights, heights[1:]))   # points 0.001 apart
    assert bottom <= min(heights) and top >= 0.4                                # every label and point is inside
    low, high = figure.layout.xaxis.range
    assert low < min(a.ax for a in labels) and high > 2.0 + 0.1                # the 2x point's name has room
    assert figure.layout.title.text == "gain"
    assert [p[1] for p in label_column([(0.1, "a", "c"), (0.3, "b", "c")], gap=0.5)] == [0.3, -0.2]
