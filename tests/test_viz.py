"""Views are pure, self-contained and show what the tree says."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.errors import InputError

from kbench.models.kbert import KnowledgeLayer
from kbench.viz import (accuracy_bars, attention_bars, color_of, dev_curves, positions_html, results_table_html,
                        sentence_tree_html, tree_view_html, visible_matrix_svg)
from kbench.viz.tree import kept_parts
from kbench.viz.widgets import tree_explorer


def tree(kg):
    return KnowledgeLayer(kg, 2, 16, tokenize=str.split, joiner=" ").build("[CLS] Tim Cook is visiting Beijing now")


def test_matrix_svg_has_one_cell_per_visible_pair(figure2_kg):
    t = tree(figure2_kg)
    svg = visible_matrix_svg(t)
    assert svg.startswith("<svg") and svg.count("<title>") == int(t.visible_matrix.sum())
    assert "<title>CEO sees Tim</title>" in svg and "<title>CEO sees is</title>" not in svg


def test_tree_and_positions_views(figure2_kg):
    t = tree(figure2_kg)
    html = sentence_tree_html(t)
    assert "↳ CEO Apple" in html and "↳ is_a City" in html and "<script" not in html
    table = positions_html(t)
    assert table.count("<td") == 4 * t.length and "soft position" in table
    assert "<script" not in tree_view_html(t)


def test_views_escape_text():
    from kbench.kg import KnowledgeGraph

    kg = KnowledgeGraph.from_triples([("<b>", "is", "<i>")])
    t = KnowledgeLayer(kg, 1, 8, tokenize=lambda s: [s]).build(["<b>"])
    html = sentence_tree_html(t)
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert "&lt;i&gt;" in visible_matrix_svg(t)


def test_chart_and_widget(figure2_kg):
    figure = accuracy_bars({"BERT": 0.25, "K-BERT": 0.9}, majority=0.25)
    assert list(figure.data[0].y) == [0.25, 0.9]
    widget = tree_explorer({"fig2": figure2_kg}, str.split, "Tim Cook is visiting Beijing now", max_length=16)
    view = widget.children[-1]
    assert "CEO Apple" in view.value
    widget.children[0].value = ""                         # an empty sentence shows the error, not a crash
    assert "empty" in view.value


def test_cut_words_and_branches_are_not_drawn_as_kept(figure2_kg):
    cut = KnowledgeLayer(figure2_kg, 2, 10, tokenize=str.split, joiner=" ").build(
        ["[CLS]", "Tim Cook", "is", "visiting", "Beijing", "now"])
    assert kept_parts(cut) == ([True, True, True, True, True, False], [[], [True], [], [], [True, False], []])
    html = sentence_tree_html(cut)
    assert html.count("line-through") == 2 and "cut at max_length=10" in html
    assert "line-through" not in sentence_tree_html(tree(figure2_kg))


def test_charts_name_models_colour_them_alike_and_label_axes():
    bars = accuracy_bars({"BERT": 0.3, "K-BERT": 0.9}, majority=0.35, chance=0.25)
    curves = dev_curves({"K-BERT": [0.2, 0.9], "BERT": [0.2, 0.3]})
    assert list(bars.data[0].marker.color) == [color_of("BERT"), color_of("K-BERT")]
    assert {t.name: t.line.color for t in curves.data} == {"K-BERT": color_of("K-BERT"), "BERT": color_of("BERT")}
    assert color_of("ERNIE") not in (color_of("BERT"), color_of("K-BERT")) and color_of("ERNIE") == color_of("ERNIE")
    assert [t.name for t in bars.data[1:]] == ["majority class (0.35)", "chance (0.25)"]
    assert not bars.layout.annotations and bars.data[0].text is None   # values sit under the names, off the lines
    assert list(bars.data[0].x) == ["BERT<br>0.300", "K-BERT<br>0.900"]
    assert curves.layout.xaxis.dtick == 1 and curves.layout.xaxis.title.text == "epoch"
    assert bars.layout.yaxis.title.text == "accuracy" and curves.layout.yaxis.title.text == "dev accuracy"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=8),
       st.lists(st.floats(-20, 20, allow_nan=False), max_size=3))
def test_every_bar_dot_and_line_lies_inside_the_axis(values, references):
    """A loss of 6.3-6.7 was drawn cut flat at 1.05; now the axis holds everything it plots, and shares keep 0-1."""
    results = {f"model {i}": v for i, v in enumerate(values)}
    lines = {f"line {i}": v for i, v in enumerate(references)}
    figure = accuracy_bars(results, lines=lines, runs={"model 0": [values[0] - 0.5, values[0] + 0.5]})
    low, high = figure.layout.yaxis.range
    plotted = values + references + [values[0] - 0.5, values[0] + 0.5]
    assert low <= min(plotted) and max(plotted) <= high and high > low
    if all(0 <= v <= 1 for v in plotted):
        assert (low, high) == (0, 1.05)


def test_a_chart_says_what_it_plots_and_keeps_its_labels_apart():
    figure = accuracy_bars({"MLM only": 6.7, "with a very long model name indeed": 6.3}, metric="MLM loss",
                           lines={"untrained": 6.9, "answer prior": 6.5})
    assert figure.layout.yaxis.title.text == "MLM loss" and figure.layout.title.text == "test MLM loss"
    assert [t.name for t in figure.data[1:]] == ["untrained (6.90)", "answer prior (6.50)"]   # named for what they are
    assert figure.layout.legend.y >= 1 and figure.layout.legend.yanchor == "bottom"   # above the plot, off the ticks
    assert all(len(line) <= 24 for tick in figure.data[0].x for line in tick.split("<br>")[:-1])   # names wrapped
    assert figure.layout.xaxis.tickangle == 0
    wide = accuracy_bars({f"variant number {i}": 0.5 for i in range(7)}, title="a title " * 20)
    assert wide.layout.width >= 7 * 100 and "<br>" in wide.layout.title.text          # room for every bar and the title


def test_accuracy_bars_show_each_seed_and_reject_runs_without_a_bar():
    bars = accuracy_bars({"BERT": 0.3, "ERNIE": 0.4}, runs={"ERNIE": [0.2, 0.4, 0.6]})
    dots = [t for t in bars.data if t.name == "one seed"]
    assert len(dots) == 1 and list(dots[0].y) == [0.2, 0.4, 0.6] and dots[0].x[0] == bars.data[0].x[1]
    assert "0.20–0.60<br>(3 seeds)" in bars.data[0].x[1]   # the range, then the seed count, on lines of their own
    with pytest.raises(InputError, match="no bar"):
        accuracy_bars({"BERT": 0.3}, runs={"ERNIE": [0.2]})


def test_attention_chart_marks_knowledge_tokens():
    figure = attention_bars(["[CLS]", "beijing", "china"], {"K-BERT": [0.5, 0.5, 0.0]}, "t",
                            knowledge=[False, False, True])
    assert list(figure.data[0].x) == ["0:[CLS]", "1:beijing", "2:⟨china⟩"]
    assert len(figure.layout.shapes) == 1 and figure.layout.shapes[0].x0 == 1.5


def test_results_table_has_a_header_and_escapes():
    html = results_table_html([{"model": "K-BERT", "ours": "90.0", "paper": "<95.5>"}], ["model", "ours", "paper"])
    assert html.index("<th") < html.index("<td") and "&lt;95.5&gt;" in html and html.count("<th") == 3


def test_table_cells_align_by_what_they_hold_and_the_caption_is_not_squeezed():
    """JupyterLab right-aligns every table cell: sentences read ragged. Numbers go right, words left."""
    rows = [{"sentence": "the chemist Bubal lives in Recife now .", "accuracy": "0.456 [0.438, 0.700]", "n": "1,024",
             "speed": "0.87x", "share": "45%", "delta": "−0.04"}]
    html = results_table_html(rows, list(rows[0]), caption="a long caption " * 10)
    aligns = dict(zip(rows[0], re.findall(r"<td style='[^']*text-align:(\w+)'", html)))
    assert aligns == {"sentence": "left", "accuracy": "right", "n": "right", "speed": "right", "share": "right",
                      "delta": "right"}
    assert "<caption" not in html and html.index("a long caption") < html.index("<table")


def test_explorer_has_a_max_length_control(figure2_kg):
    widget = tree_explorer({"fig2": figure2_kg}, str.split, "[CLS] Tim Cook is visiting Beijing now", max_length=16)
    controls = {c.description: c for c in widget.children[1].children}
    assert set(controls) == {"KG", "max_entities", "max_length", "predicate"}
    controls["max_length"].value = 6
    assert "line-through" in widget.children[-1].value and "cut at max_length=6" in widget.children[-1].value


def test_linked_sentence_view_underlines_mentions_and_highlights_the_choice():
    from kbench.text import AliasTable, Candidate, LinkedMention
    from kbench.viz.links import linked_sentence_html

    units = "the river bank was <steep>".split()
    table = AliasTable.from_triples([("river bank", "bank.n.01", 3), ("river bank", "bank.n.09", 1)])
    [mention] = table.link(units)
    html = linked_sentence_html(units, [mention])
    assert html.count("border-bottom:3px") == 1 and "river bank<sub" in html and "&lt;steep&gt;" in html
    assert "✓ bank.n.01" in html and "✓ bank.n.09" not in html and "0.667" in html and "0.333" in html  # (3+1)/6, (1+1)/6
    null = LinkedMention(0, 1, "the", [Candidate("the.n.01", 1.0, score=-2.0)], chosen=None)
    html = linked_sentence_html(units, [null])
    assert "✓ NULL" in html and "-2.000" in html and "<script" not in html
    assert "no mention found" in linked_sentence_html(units, [])
    with pytest.raises(InputError, match="out of range"):
        linked_sentence_html(["a"], [LinkedMention(0, 2, "a b")])


def test_alignment_view_and_link_explorer():
    from kbench.text import AliasTable
    from kbench.viz.links import alignment_html, link_explorer

    html = alignment_html(["bob", "dylan", "wrote"], ["Bob_Dylan", None, None])
    assert html.count("<td") == 3 and "Bob_Dylan" in html
    with pytest.raises(InputError, match="2 tokens but 1"):
        alignment_html(["a", "b"], [None])
    table = AliasTable.from_triples([("bank", "bank.n.01", 3), ("bank", "bank.n.02", 1)])
    sentences = [("the bank".split(), table.link("the bank".split())), ("no alias".split(), [])]
    widget = link_explorer(sentences)
    assert "✓ bank.n.01" in widget.children[1].value
    widget.children[0].value = 1
    assert "no mention found" in widget.children[1].value
    with pytest.raises(InputError):
        link_explorer([])


def test_html_picker_renders_the_picked_item_and_rejects_an_empty_list():
    from kbench.viz.widgets import html_picker

    picker = html_picker(["a", "b"], lambda i: f"<b>item {i}</b>")
    assert picker.children[1].value == "<b>item 0</b>"
    picker.children[0].value = 1
    assert picker.children[1].value == "<b>item 1</b>"
    with pytest.raises(InputError, match="at least one"):
        html_picker([], str)


def test_masking_rows_show_each_strategy_and_whole_units():
    from kbench.pretrain import build_corpus, mlm_model
    from kbench.text.mentions import MentionDetector
    from kbench.viz.masking import ACTION_COLORS, masking_rows_html

    model = mlm_model("tiny")
    corpus = build_corpus(["Muman Nakel was born in Lagos ."], model.tokenizer, units=("word", "entity"),
                          detector=MentionDetector(["Muman Nakel", "Lagos"]))
    html = masking_rows_html(corpus.sentences[0], model.tokenizer, ["token", "entity"], seed=0, rate=0.999)
    token_row, entity_row = (row.split("</tr>")[0] for row in html.split("<tr>")[1:3])
    assert "token" in token_row and "entity" in entity_row
    assert entity_row.count("border:1px solid #999") == 1            # the 4-piece name framed as one unit
    assert token_row.count("border:1px solid #999") == 0
    assert sum(entity_row.count(color) for color in ACTION_COLORS.values()) == 9    # all 9 ordinary tokens predicted
    with pytest.raises(InputError, match="unknown masking strategy"):
        masking_rows_html(corpus.sentences[0], model.tokenizer, ["spans"])


def test_prediction_table_marks_gold_and_checks_shapes():
    from kbench.viz.masking import prediction_table_html

    html = prediction_table_html("x [MASK] .", {"before": [[("a", 0.5), ("b", 0.2)]], "after": [[("b", 0.9)]]},
                                 gold=["b"])
    assert html.count("★") == 2 and "before" in html and "after" in html and "(gold: b)" in html
    # a token and its probability in separate spans, the number named: "signed 0.01" read as one phrase
    assert "<span>a</span><span style='color:#777;font-variant-numeric:tabular-nums'>p=0.50</span>" in html
    with pytest.raises(InputError, match="different numbers"):
        prediction_table_html("x", {"a": [[("a", 1.0)]], "b": []})
    with pytest.raises(InputError, match="gold"):
        prediction_table_html("x", {"a": [[("a", 1.0)]]}, gold=["a", "b"])


def test_a_live_view_is_shown_once_with_its_default_as_the_exports_fallback(monkeypatch):
    """Live in JupyterLab (the widget view), static in an export (its HTML, with a line saying it is live), never
    both one under the other."""
    import nbformat

    from kbench.runner import WIDGET_VIEW, offline_copy
    from kbench.viz.widgets import html_picker, live

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda data, raw: shown.append(data))
    render = lambda i: f"<b>view {i}</b>"
    live(html_picker(["a", "b"], render), render(0), "another letter")
    assert len(shown) == 1 and WIDGET_VIEW in shown[0]
    assert shown[0]["text/html"].endswith("<b>view 0</b>") and "pick another letter there" in shown[0]["text/html"]
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("live(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data=shown[0])]
    notebook.cells = [cell]
    exported = offline_copy(notebook).cells[0].outputs[0]["data"]
    assert WIDGET_VIEW not in exported and "text/plain" not in exported and "<b>view 0</b>" in exported["text/html"]


def test_a_view_says_when_its_output_does_not_depend_on_the_input():
    from kbench.errors import KBenchError
    from kbench.viz.widgets import dependence_note

    flat = dependence_note({"a fish": [0.38, 0.38], "a jazz band": [0.385]}, "p(related)")
    assert "does not depend on the input" in flat and "every one of the 2 choices" in flat
    moving = dependence_note({"a": [0.1, 0.9], "b": [0.5]}, "p(related)")
    assert "ranges 0.10–0.90, across the 2 choices" in moving and "does not depend" not in moving
    # every word of every sentence with the same top three supersenses: the same, though the numbers differ
    top = {"adj.all": 0.22, "noun.person": 0.08, "adv.all": 0.07}
    assert "does not depend" in dependence_note({"bass fish": [top, top], "bass jazz": [dict(top)]}, "top three")
    other = {"noun.food": 0.3, "noun.person": 0.08, "adv.all": 0.07}
    assert "— adj.all, noun.person, adv.all — in 1 of its 2 rows" in dependence_note({"bass fish": [top, other]},
                                                                                  "top three")
    with pytest.raises(KBenchError):
        dependence_note({}, "p")
