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
