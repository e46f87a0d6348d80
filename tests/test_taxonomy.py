"""The map of where knowledge enters: declarations checked, every paper drawn and linked to its notebook."""
from __future__ import annotations

import re

import pytest

from kbench.errors import InputError
from kbench.taxonomy import WHERE, Declaration, Place, declarations, taxonomy_html, taxonomy_svg


def test_a_place_names_a_known_where_and_knowledge_and_says_how():
    with pytest.raises(InputError, match="unknown place 'output'"):
        Place("X", "output", ("KG",), "somehow")
    with pytest.raises(InputError, match="knowledge"):
        Place("X", "input", ("gossip",), "somehow")
    with pytest.raises(InputError, match="knowledge"):
        Place("X", "input", (), "somehow")
    with pytest.raises(InputError, match="one line"):
        Place("X", "input", ("KG",), "  ")


def test_every_model_is_drawn_in_its_column_and_linked_to_its_notebook():
    items = declarations()
    assert [d.notebook for d in items] == sorted(d.notebook for d in items) and len(items) >= 10
    page = taxonomy_html(items, link_prefix="../notebooks/")
    svg = taxonomy_svg(items)
    assert svg in page and "<a" not in svg      # no anchor inside the SVG: JupyterLab cannot set an SVG link's href
    links = re.findall(r'<a href="\.\./notebooks/([^"]+)\.ipynb"', page)
    assert links == [d.notebook for w in WHERE for d in items if d.place.where == w]
    columns = {w: float(x) for x, w in re.findall(r'<text x="([\d.]+)" y="30"[^>]*>([^<]+)</text>', svg)}
    assert list(columns) == list(WHERE)
    for item in items:                                  # each box sits under its own column's heading
        box = re.search(rf'<g><title>[^<]*</title><rect x="(\d+)"[^/]*/>(?:<rect[^/]*/?>(?:<title>[^<]*</title></rect>)?)*'
                        rf'<text[^>]*>[^<]*</text><text[^>]*>{item.notebook}</text>', svg)
        assert box and abs(float(box.group(1)) + 90 - columns[item.place.where]) < 1, item.notebook


def test_each_kind_of_knowledge_is_a_stripe_with_its_name():
    items = [Declaration("m", "Two kinds", "99_two", Place("Two kinds", "adapters", ("KG", "linguistic"), "both"))]
    svg = taxonomy_svg(items)
    stripes = re.findall(r'fill="(#[0-9a-f]+)"><title>(\w+)</title>', svg)
    assert [kind for _, kind in stripes] == ["KG", "linguistic"] and stripes[0][0] != stripes[1][0]
    assert "<title>both</title>" in svg and "Two kinds" in svg
