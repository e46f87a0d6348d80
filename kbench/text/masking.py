"""Maskers for masked-language-model pretraining: one interface, from token ids and unit spans to inputs and labels.

Every pretraining objective in kbench masks through :func:`mask_units`, called
in a collate function so that masking is dynamic (a fresh mask each time an
example is batched) and examples stay compact (ids plus spans).

A *unit* is a span ``[start, end)`` of token positions that is masked or kept
as a whole: every token for BERT's token masking (Devlin et al. 2019, §3.1), a
word's WordPiece pieces for whole-word masking, a noun phrase or an entity
mention for ERNIE's knowledge masking (Sun et al. 2019, "ERNIE: Enhanced
Representation through Knowledge Integration", §3.2). Tokens no given unit
covers are units of their own, so phrase or entity masking still masks the
basic units between phrases, as ERNIE's segment labels do.

Unit masking follows the ERNIE authors' code (PaddlePaddle/ERNIE, ERNIE 1.0
``batching.py``, ``mask()``): a unit is chosen when a uniform draw at its first
token is at most the rate (0.15), and then *each of its tokens* is replaced by
[MASK] (80%), by a random token (10%) or kept (10%), every token predicted.
The expected share of predicted *tokens* is therefore the rate, whatever the
unit lengths — not 15% of units, which would over-mask text with long units.
(The authors reuse the first token's selection draw, rescaled, for its own
80/10/10 choice; a fresh draw has the same distribution and is what we use.)
Random replacements are drawn uniformly from the vocabulary minus its special
tokens, so a [CLS] or [SEP] never appears mid-sentence.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kbench.errors import InputError

IGNORE = -100            # the label of a position that is not predicted (PyTorch's cross-entropy default)
RATE = 0.15              # BERT's and ERNIE's share of predicted tokens
Span = tuple[int, int]


@dataclass(frozen=True)
class MaskVocab:
    """What a masker needs of a tokenizer: the [MASK] id, the vocabulary size and the special ids never masked."""

    mask_id: int
    vocab_size: int
    special_ids: frozenset[int]

    @classmethod
    def of(cls, tokenizer) -> MaskVocab:
        """Return the masking vocabulary of a Hugging Face tokenizer."""
        if tokenizer.mask_token_id is None:
            raise InputError(f"{type(tokenizer).__name__} has no [MASK] token: it cannot be used for MLM")
        return cls(int(tokenizer.mask_token_id), len(tokenizer), frozenset(int(i) for i in tokenizer.all_special_ids))

    @cached_property
    def special_array(self) -> np.ndarray:
        """Return the special ids as an array (for ``np.isin``)."""
        return np.fromiter(sorted(self.special_ids), np.int64, len(self.special_ids))

    def replacement_pool(self) -> np.ndarray:
        """Return the ids a random replacement is drawn from: every id but the special ones."""
        pool = np.setdiff1d(np.arange(self.vocab_size), np.fromiter(self.special_ids, np.int64))
        if not len(pool):
            raise InputError("the vocabulary has no ordinary token to draw replacements from")
        return pool


def check_units(units: Iterable[Span], length: int) -> list[Span]:
    """Return ``units`` sorted, after checking each is a non-empty span inside ``length`` and none overlap."""
    spans = sorted((int(start), int(end)) for start, end in units)
    previous = 0
    for start, end in spans:
        if not 0 <= start < end <= length:
            raise InputError(f"unit [{start}, {end}) is empty or outside a sequence of {length} tokens")
        if start < previous:
            raise InputError(f"unit [{start}, {end}) overlaps the unit before it")
        previous = end
    return spans


def mask_units(ids: np.ndarray, units: Sequence[Span], rng: np.random.Generator, vocab: MaskVocab,
               rate: float = RATE, pool: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(input_ids, labels)``: ERNIE's unit masking of ``ids`` over ``units`` (see the module docstring).

    ``labels`` holds the original id at every predicted position and
    :data:`IGNORE` elsewhere. Tokens no unit covers are units of their own; with
    no units every token is: BERT's token masking. A unit must not contain a
    special token. ``pool`` (default: ``vocab.replacement_pool()``) is where
    random replacements come from; pass it when masking many sentences.
    """
    if not 0.0 < rate < 1.0:
        raise InputError(f"the masking rate must be in (0, 1), got {rate}")
    ids = np.asarray(ids, dtype=np.int64)
    special = np.isin(ids, vocab.special_array)
    begins = np.ones(len(ids), bool)           # does a unit begin at this token?
    for start, end in check_units(units, len(ids)):
        if special[start:end].any():
            raise InputError(f"unit [{start}, {end}) contains a special token")
        begins[start + 1:end] = False
    unit_of = np.cumsum(begins) - 1
    draws = rng.random(int(unit_of[-1]) + 1 if len(ids) else 0)     # one draw per unit, at its first token
    positions = np.flatnonzero((draws[unit_of] <= rate) & ~special)
    inputs, labels = ids.copy(), np.full(len(ids), IGNORE, np.int64)
    if not len(positions):
        return inputs, labels
    labels[positions] = ids[positions]
    action = rng.random(len(positions))        # each token of a chosen unit: 80% [MASK], 10% random, 10% kept
    replaced = positions[(action >= 0.8) & (action < 0.9)]
    inputs[positions[action < 0.8]] = vocab.mask_id
    inputs[replaced] = rng.choice(vocab.replacement_pool() if pool is None else pool, size=len(replaced))
    return inputs, labels


def word_units(word_ids: Sequence[int | None]) -> list[Span]:
    """Return the token spans of words from a fast tokenizer's ``word_ids()`` (None for special tokens).

    Whole-word masking's units (Devlin et al.'s 2019 whole-word-masking release):
    all WordPiece pieces of one word.
    """
    spans, start = [], None
    for position, word in enumerate([*word_ids, None]):
        if start is not None and (word is None or word != word_ids[start]):
            spans.append((start, position))
            start = None
        if word is not None and start is None:
            start = position
    return spans


def char_spans_to_tokens(char_spans: Iterable[Span], offsets: Sequence[tuple[int, int]]) -> list[Span]:
    """Return the token spans covering character spans, given each token's ``(start, end)`` character offsets.

    A token belongs to a span when its characters lie inside it; special tokens
    (offsets ``(0, 0)``) never do. Spans covering no token, and spans that
    overlap an earlier one, are dropped.
    """
    result, last = [], 0
    for char_start, char_end in sorted(char_spans):
        inside = [i for i, (start, end) in enumerate(offsets)
                  if end > start and start >= char_start and end <= char_end]
        if inside and inside[0] >= last:
            result.append((inside[0], inside[-1] + 1))
            last = inside[-1] + 1
    return result
