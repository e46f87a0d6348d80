"""Linked mentions: one type from mention detection, alias tables (KnowBert's priors) and linkers."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.text import AliasTable, Candidate, LinkedMention, MentionDetector


def test_priors_are_the_authors_smoothed_counts():
    table = AliasTable.from_triples([("bank", "bank.n.01", 25), ("bank", "bank.n.02", 20), ("bank", "bank.v.01", 0)])
    assert table.candidates("bank") == [Candidate("bank.n.01", 26 / 48), Candidate("bank.n.02", 21 / 48),
                                        Candidate("bank.v.01", 1 / 48)]
    top = AliasTable({"bank": {"a": 5, "b": 3, "c": 1}}, top_k=2)
    assert [c.entity for c in top.candidates("bank")] == ["a", "b"] and sum(top.candidates("bank")[i].prior
                                                                         for i in range(2)) == pytest.approx(1.0)
    assert table.candidates("unknown") == []


def test_link_finds_the_longest_alias_and_chooses_by_prior():
    table = AliasTable.from_triples([("river bank", "bank.n.01", 3), ("bank", "bank.n.02", 9), ("bank", "bank.n.01", 2)])
    river, money = table.link("the river bank and the bank".split())
    assert (river.start, river.end, river.text, river.chosen) == (1, 3, "river bank", "bank.n.01")
    assert (money.start, money.end, money.chosen) == (5, 6, "bank.n.02") and money.entities == ["bank.n.02", "bank.n.01"]
    assert all(m.chosen is None for m in table.link("the bank".split(), choose_by_prior=False))


def test_mention_detector_returns_linked_mentions():
    [mention] = MentionDetector(["Beijing"]).mentions("I love Beijing".split())
    assert mention == LinkedMention(2, 3, "Beijing", [Candidate("Beijing", 1.0)], "Beijing", 1.0)


def test_bad_input():
    with pytest.raises(InputError, match="empty candidate list"):
        AliasTable({"bank": {}})
    with pytest.raises(InputError, match="not \\(alias, entity, count\\)"):
        AliasTable.from_triples([("bank", "x")])
    with pytest.raises(InputError, match="count >= 0"):
        AliasTable.from_triples([("bank", "x", -1)])
    with pytest.raises(InputError, match="empty or negative"):
        LinkedMention(3, 3, "x")
    with pytest.raises(InputError, match="out of range for 4 units"):
        LinkedMention(2, 6, "x").check(4)
    with pytest.raises(InputError):
        AliasTable({"a": {"b": 1}}, top_k=0)


@given(st.dictionaries(st.sampled_from(["a", "b", "c d"]),
                       st.dictionaries(st.sampled_from(["e1", "e2", "e3", "e4"]), st.integers(0, 50), min_size=1),
                       min_size=1),
       st.integers(1, 4), st.sampled_from([0.5, 1.0, 2.0]))
def test_priors_are_a_distribution(counts, top_k, smoothing):
    table = AliasTable(counts, top_k=top_k, smoothing=smoothing)
    for alias in counts:
        priors = [c.prior for c in table.candidates(alias)]
        assert sum(priors) == pytest.approx(1.0) and len(priors) == min(top_k, len(counts[alias]))
        assert priors == sorted(priors, reverse=True)


def views():
    from kbench.viz.links import link_explorer, linked_sentence_html

    return link_explorer, linked_sentence_html


def teacher_and_cook():
    words = "the teacher Kunor lives in Lima".split()
    candidates = [Candidate("Kunor_1", 0.7, 2.5), Candidate("Kunor_2", 0.3, -0.25)]
    return words, [LinkedMention(2, 3, "Kunor", candidates, chosen="Kunor_2", score=0.1)]


def rows(html: str) -> list[str]:
    return html.split("<tr")[2:]                   # after the header row


def test_the_view_marks_gold_and_chosen_apart_and_shows_the_kg_facts():
    _, view = views()
    words, mentions = teacher_and_cook()
    html = view(words, mentions, gold=["Kunor_1"], facts={"Kunor_1": "teacher", "Kunor_2": "cook"},
                facts_label="works as")
    first, second = rows(html)
    assert "★ Kunor_1" in first and "✓" not in first and "outline:2px" in first       # gold, not chosen
    assert "✓ Kunor_2" in second and "★" not in second and "background" in second     # chosen, not gold
    assert ">teacher<" in first and ">cook<" in second and ">works as<" in html
    both = view(words, [LinkedMention(2, 3, "Kunor", mentions[0].candidates, chosen="Kunor_1")], gold=["Kunor_1"])
    assert "✓★ Kunor_1" in rows(both)[0]
    plain = view(words, mentions, gold=["Kunor_1"], show_choice=False)             # before any linker ran
    assert "✓" not in plain and "★ Kunor_1" in plain and "NULL" not in plain
    with pytest.raises(InputError, match="1 mentions but 2 gold"):
        view(words, mentions, gold=["Kunor_1", "Kunor_2"])


def test_prior_and_score_are_separate_padded_cells():
    """Live, the widget's CSS drops table spacing: each number needs a padded cell of its own ("0.700-0.250")."""
    _, view = views()
    html = view(*teacher_and_cook())
    cells = rows(html)[1].split("<td")[1:]
    assert [c.split(">", 1)[1].split("<")[0] for c in cells] == ["✓ Kunor_2", "0.300", "-0.250"]
    assert all("padding:1px 8px" in c for c in cells)


def test_the_explorer_carries_a_static_copy_of_the_sentence_it_shows():
    explorer, view = views()
    words, mentions = teacher_and_cook()
    other = ("the cook Kunor moved to Oslo".split(), mentions)
    widget = explorer([(words, mentions), other], gold=[["Kunor_1"], ["Kunor_2"]])
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"] == widget.children[1].value == view(words, mentions, gold=["Kunor_1"])
    widget.children[0].value = 1                                                       # pick another sentence
    bundle = widget._repr_mimebundle_()
    assert "Oslo" in bundle["text/html"] and "Lima" not in bundle["text/html"]
    assert bundle["text/html"] == widget.children[1].value
    with pytest.raises(InputError, match="2 sentences but 1 gold"):
        explorer([(words, mentions), other], gold=[["Kunor_1"]])
