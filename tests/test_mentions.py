"""Mention detection: forward maximum matching, unit boundaries, and the fast path against the oracle."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.text import MentionDetector, forward_maximum_match, split_units


def test_longest_match_wins():
    detector = MentionDetector(["New", "New York", "New York City", "York"])
    assert detector.segment("I love New York City now") == ["I", "love", "New York City", "now"]
    assert detector.segment("New York, York.") == ["New York", ",", "York", "."]


def test_no_match_inside_a_word():
    detector = MentionDetector(["Rome", "Romeo"])
    assert detector.segment("Romeo and Romeos in Rome") == ["Romeo", "and", "Romeos", "in", "Rome"]
    assert MentionDetector(["caf"]).segment("café caf") == ["café", "caf"]


def test_chinese_characters_are_units():
    detector = MentionDetector(["苹果", "苹果公司", "北京"])
    assert detector.segment("苹果公司在北京开会") == ["苹果公司", "在", "北京", "开", "会"]


def test_whitespace_is_normalized_and_special_tokens_kept():
    detector = MentionDetector(["Tim Cook"])
    assert detector.segment("[CLS]  Tim   Cook\tsays hi") == ["[CLS]", "Tim Cook", "says", "hi"]
    assert MentionDetector(["CLS"]).segment("[CLS] CLS") == ["[CLS]", "CLS"]


def test_empty_kg_and_bad_input():
    assert MentionDetector([]).segment("a b, c") == ["a", "b", ",", "c"]
    with pytest.raises(InputError):
        MentionDetector(["a"]).segment(None)


def test_whitespace_only_separates_units():
    assert MentionDetector(["系统软件"]).segment("系统 软件好") == ["系统软件", "好"]
    assert MentionDetector(["Tim Cook"]).segment("TimCook Tim  Cook") == ["TimCook", "Tim Cook"]


def test_units():
    assert split_units("[CLS] Tim's 3rd 北京!") == ["[CLS]", "Tim", "'", "s", "3rd", "北", "京", "!"]


ALPHABET = st.sampled_from(list("abAB 北京é-_.") + ["[CLS]", "  ", "\U00100000"])
SUBJECTS = st.lists(st.text(st.sampled_from(list("abAB北京é-_ ")), min_size=1, max_size=5), max_size=8)


@given(subjects=SUBJECTS, pieces=st.lists(ALPHABET, max_size=25))
def test_fast_segmentation_equals_unit_fmm(subjects, pieces):
    text = "".join(pieces)
    detector = MentionDetector(subjects)
    expected = forward_maximum_match(text, [s for s in subjects if s.split()])
    assert detector.segment(text) == expected


def test_real_hownet_against_oracle(real_data):
    from kbench.data import load_kbert_dataset, load_kg

    kg = load_kg("HowNet", real_data)
    detector = MentionDetector(kg.subjects)
    sentences = load_kbert_dataset("chnsenticorp", "test", real_data, limit=80).texts
    for sentence in sentences:
        assert detector.segment(sentence) == forward_maximum_match(sentence, kg.subjects)
    assert any(word in kg for s in sentences for word in detector.segment(s) if len(word) > 1)


def test_spans_group_given_units_by_the_same_matching():
    detector = MentionDetector(["New York", "New York City", "高烧", "York"])
    assert detector.spans("I love New York City now".split()) == [
        (0, 1, None), (1, 2, None), (2, 5, "New York City"), (5, 6, None)]
    assert detector.spans(list("他高烧了")) == [(0, 1, None), (1, 3, "高烧"), (3, 4, None)]
    # a unit that is itself several units, or empty, is atomic: it never joins a subject
    assert detector.spans(["New-York", "York", ""]) == [(0, 1, None), (1, 2, "York"), (2, 3, None)]
    assert MentionDetector([]).spans(["a", "b"]) == [(0, 1, None), (1, 2, None)]
    with pytest.raises(InputError):
        detector.spans(["ok", 3])


@given(st.lists(st.sampled_from(["a", "b", "c", "ab", "北", "京", "[CLS]", ",", "x-y"]), max_size=12),
       st.lists(st.sampled_from(["a", "a b", "b c", "北京", "c", "ab", "[CLS] a"]), max_size=6))
def test_spans_agree_with_segment_on_whole_units(units, subjects):
    """Over units that are each one unit, ``spans`` groups exactly as ``segment`` splits their text."""
    detector = MentionDetector(subjects)
    whole = [u for u in units if len(split_units(u)) == 1]
    groups = detector.spans(whole)
    assert [i for start, end, _ in groups for i in range(start, end)] == list(range(len(whole)))
    words = [subject if subject is not None else whole[start] for start, end, subject in groups]
    assert words == forward_maximum_match(" ".join(whole), subjects)
