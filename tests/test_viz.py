"""Views are pure, self-contained and show what the tree says."""
from __future__ import annotations

from kbench.models.kbert import KnowledgeLayer
from kbench.viz import accuracy_bars, positions_html, sentence_tree_html, tree_view_html, visible_matrix_svg
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
    figure = accuracy_bars({"bert": 0.25, "kbert": 0.9}, chance=0.25)
    assert list(figure.data[0].y) == [0.25, 0.9]
    widget = tree_explorer({"fig2": figure2_kg}, str.split, "Tim Cook is visiting Beijing now", max_length=16)
    view = widget.children[-1]
    assert "CEO Apple" in view.value
    widget.children[0].value = ""                         # an empty sentence shows the error, not a crash
    assert "empty" in view.value
