"""Maskers: rates within binomial bounds, whole units, 80/10/10, special tokens untouched, bad input named."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kbench.errors import InputError
from kbench.text.masking import IGNORE, MaskVocab, char_spans_to_tokens, check_units, mask_units, word_units

VOCAB = MaskVocab(mask_id=3, vocab_size=1000, special_ids=frozenset({0, 1, 2, 3}))   # pad, cls, sep, mask


def sentence(length: int, seed: int = 0) -> np.ndarray:
    body = np.random.default_rng(seed).integers(10, 1000, size=length)
    return np.concatenate([[1], body, [2]]).astype(np.int64)


def bounds(n: int, p: float, sd: float = 4.5) -> tuple[float, float]:
    half = sd * np.sqrt(n * p * (1 - p))
    return n * p - half, n * p + half


def test_token_masking_rate_and_80_10_10_on_10k_tokens():
    ids = sentence(10_000)
    inputs, labels = mask_units(ids, [], np.random.default_rng(0), VOCAB)
    chosen = labels != IGNORE
    low, high = bounds(10_000, 0.15)
    assert low <= chosen.sum() <= high
    n = chosen.sum()
    masked = (inputs == VOCAB.mask_id) & chosen
    kept = (inputs == ids) & chosen
    replaced = chosen & ~masked & ~kept
    for count, share in ((masked.sum(), 0.8), (kept.sum(), 0.1), (replaced.sum(), 0.1)):
        low, high = bounds(n, share)
        assert low <= count <= high
    assert (labels[chosen] == ids[chosen]).all()
    assert (inputs[~chosen] == ids[~chosen]).all()


def test_unit_masking_keeps_the_token_rate_at_15_percent_with_long_units():
    """ERNIE's code: a unit is chosen at rate 0.15 and all its tokens predicted, so tokens stay at 15%."""
    ids = sentence(12_000)
    units = [(start, start + 4) for start in range(1, 12_001, 4)]     # 3,000 units of 4 tokens
    inputs, labels = mask_units(ids, units, np.random.default_rng(1), VOCAB)
    chosen_units = sum((labels[s:e] != IGNORE).all() for s, e in units)
    low, high = bounds(3_000, 0.15)
    assert low <= chosen_units <= high
    assert (labels != IGNORE).sum() == 4 * chosen_units
    assert abs((labels != IGNORE).mean() - 0.15) < 0.03


def test_every_token_of_a_chosen_unit_gets_its_own_80_10_10():
    ids = sentence(9_000, seed=2)
    units = [(start, start + 3) for start in range(1, 9_001, 3)]
    inputs, labels = mask_units(ids, units, np.random.default_rng(3), VOCAB)
    second = np.array([s + 1 for s, e in units if labels[s] != IGNORE])    # not the unit's first token
    masked_share = (inputs[second] == VOCAB.mask_id).mean()
    assert 0.74 <= masked_share <= 0.86
    partially_masked = sum(0 < (inputs[s:e] == VOCAB.mask_id).sum() < 3 for s, e in units if labels[s] != IGNORE)
    assert partially_masked > 0        # the 80/10/10 is per token, not per unit


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 5), min_size=1, max_size=30), seed=st.integers(0, 10_000),
       rate=st.floats(0.05, 0.95))
def test_units_are_masked_whole_and_specials_never(lengths, seed, rate):
    total = sum(lengths)
    ids = sentence(total, seed)
    units, start = [], 1
    for length in lengths:
        units.append((start, start + length))
        start += length
    inputs, labels = mask_units(ids, units, np.random.default_rng(seed), VOCAB, rate=rate)
    for s, e in units:
        predicted = labels[s:e] != IGNORE
        assert predicted.all() or not predicted.any()
    assert labels[0] == IGNORE and labels[-1] == IGNORE and inputs[0] == 1 and inputs[-1] == 2
    replaced = (labels != IGNORE) & (inputs != ids) & (inputs != VOCAB.mask_id)
    assert not np.isin(inputs[replaced], list(VOCAB.special_ids)).any()


def test_uncovered_tokens_are_units_of_their_own():
    ids = sentence(2_000, seed=4)
    inputs, labels = mask_units(ids, [(1, 11)], np.random.default_rng(5), VOCAB)
    assert 0.10 < (labels[11:-1] != IGNORE).mean() < 0.20


def test_rate_near_one_predicts_every_ordinary_token():
    ids = sentence(20)
    _, labels = mask_units(ids, [(2, 5)], np.random.default_rng(0), VOCAB, rate=0.999999)
    assert (labels[1:-1] == ids[1:-1]).all() and labels[0] == IGNORE


def test_masking_is_dynamic_and_seeded():
    ids = sentence(200)
    rng = np.random.default_rng(0)
    first, second = mask_units(ids, [], rng, VOCAB)[1], mask_units(ids, [], rng, VOCAB)[1]
    assert not np.array_equal(first, second)
    assert np.array_equal(first, mask_units(ids, [], np.random.default_rng(0), VOCAB)[1])


def test_bad_units_and_rates():
    ids = sentence(10)
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="overlaps"):
        mask_units(ids, [(1, 4), (3, 6)], rng, VOCAB)
    with pytest.raises(InputError, match="outside"):
        mask_units(ids, [(5, 40)], rng, VOCAB)
    with pytest.raises(InputError, match="empty"):
        check_units([(4, 4)], 10)
    with pytest.raises(InputError, match="special"):
        mask_units(ids, [(0, 3)], rng, VOCAB)
    with pytest.raises(InputError, match="rate"):
        mask_units(ids, [], rng, VOCAB, rate=0.0)


def test_a_tokenizer_without_mask_is_rejected():
    class NoMask:
        mask_token_id = None

    with pytest.raises(InputError, match="MASK"):
        MaskVocab.of(NoMask())


def test_word_units_group_pieces():
    assert word_units([None, 0, 0, 1, 2, 2, 2, None]) == [(1, 3), (3, 4), (4, 7)]
    assert word_units([None, None]) == []


def test_char_spans_to_tokens():
    offsets = [(0, 0), (0, 3), (3, 5), (6, 10), (11, 13), (0, 0)]       # [CLS] mum ##an nake ok [SEP]
    assert char_spans_to_tokens([(0, 5), (11, 13)], offsets) == [(1, 3), (4, 5)]
    assert char_spans_to_tokens([(0, 10), (6, 13)], offsets) == [(1, 4)]        # the overlapping one dropped
    assert char_spans_to_tokens([(20, 25)], offsets) == []
