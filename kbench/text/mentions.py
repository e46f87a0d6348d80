"""Mention detection: segment a raw sentence into words by forward maximum matching.

K-BERT (Liu et al. 2020, §3.2, the knowledge layer's "K-Query") needs the words of
a sentence that are KG subjects. The authors segment Chinese text with pkuseg,
using the KG's subjects as a user dictionary; we use forward maximum matching
(FMM): scanning left to right, the longest subject that starts at the current
unit wins, and text no subject covers falls back to the tokenizer's units (a
run of letters/digits, or a single CJK character or punctuation mark).

The matching runs in a leftmost-longest Aho-Corasick automaton (``ahocorasick_rs``)
over the whole string. A match that starts or ends inside a run of letters
or digits (``Rome`` inside ``Romeo``) is not a unit-aligned match; sentences that
have one are segmented by the exact unit-level FMM (:func:`forward_maximum_match`),
which is also the oracle the tests compare against.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import ahocorasick_rs

from kbench.errors import InputError

SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[ENT]", "[SUB]", "[PRE]", "[OBJ]")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
#: A unit: a special token, a run of non-CJK word characters, or any other single visible character.
UNIT_PATTERN = re.compile(
    r"\[(?:CLS|SEP|PAD|UNK|MASK|ENT|SUB|PRE|OBJ)\]|[^\W" + _CJK + r"]+|\S")
_RUN_CHAR = re.compile(r"[^\W" + _CJK + r"]")
_LOOSE_SPACE = re.compile(r"(?<![^\W" + _CJK + r"]) | (?![^\W" + _CJK + r"])")


def split_units(text: str) -> list[str]:
    """Return the units of ``text``: special tokens, letter/digit runs, and single other characters."""
    return UNIT_PATTERN.findall(text)


def normalize_space(text: str) -> str:
    """Return ``text`` in canonical form: one space between two letter/digit runs, no other whitespace.

    Whitespace only separates units, so two strings with the same units have
    the same canonical form ("系统 软件" and "系统软件"; "Tim  Cook" and "Tim Cook").
    """
    parts = text.split()
    if len(parts) == 1:  # the common case for Chinese text: nothing to collapse
        return parts[0]
    return _LOOSE_SPACE.sub("", " ".join(parts))


class _RunChars(dict):
    """char -> whether it belongs to a letter/digit run; filled lazily, read as a dict (fast)."""

    def __missing__(self, char: str) -> bool:
        value = self[char] = _RUN_CHAR.match(char) is not None
        return value


_IS_RUN = _RunChars()


def forward_maximum_match(text: str, subjects: Iterable[str]) -> list[str]:
    """Return the words of ``text`` by unit-level FMM: the slow, obviously correct reference.

    A subject matches at unit ``i`` when its units equal units ``i..j``; the
    longest such subject wins and is emitted as written in the KG.
    """
    by_units: dict[tuple[str, ...], str] = {}
    for subject in subjects:
        by_units.setdefault(tuple(split_units(subject)), subject)
    longest = max((len(k) for k in by_units), default=0)
    units = split_units(text)
    words: list[str] = []
    i = 0
    while i < len(units):
        for size in range(min(longest, len(units) - i), 0, -1):
            subject = by_units.get(tuple(units[i:i + size]))
            if subject is not None:
                words.append(subject)
                i += size
                break
        else:
            words.append(units[i])
            i += 1
    return words


class MentionDetector:
    """Segment sentences into words, KG subjects kept whole (forward maximum matching).

    Build once per KG (about 0.1 s for HowNet's 45k subjects); ``segment`` is then
    fast enough for whole corpora (see ``benchmarks/bench_kbert.py``).
    """

    def __init__(self, subjects: Iterable[str]):
        # A subject is matched in its canonical form; unit-equal variants
        # ("Tim  Cook", "Tim Cook") map to the first one seen, as in the oracle.
        self._subjects: list[str] = []
        patterns: list[str] = []
        seen: set[str] = set()
        for subject in subjects:
            pattern = normalize_space(subject)
            if pattern and pattern not in seen and split_units(pattern):
                seen.add(pattern)
                patterns.append(pattern)
                self._subjects.append(subject)
        self._patterns = patterns
        self._automaton = (ahocorasick_rs.AhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
                           if patterns else None)

    def __len__(self) -> int:
        return len(self._subjects)

    def segment(self, sentence: str) -> list[str]:
        """Return the words of ``sentence``; KG subjects are single words, spelled as in the KG."""
        if not isinstance(sentence, str):
            raise InputError(f"a sentence must be a str, not {type(sentence).__name__}")
        text = normalize_space(sentence)
        if self._automaton is None:
            return split_units(text)
        words: list[str] = []
        position, size, is_run, findall = 0, len(text), _IS_RUN, UNIT_PATTERN.findall
        bracket = "[" in text
        for index, start, end in self._automaton.find_matches_as_indexes(text):
            if ((start and is_run[text[start]] and is_run[text[start - 1]])
                    or (end < size and is_run[text[end - 1]] and is_run[text[end]])
                    or (bracket and (_inside_special(text, start) or _inside_special(text, end)))):
                # a match that cuts a unit: only the exact unit-level FMM is right here
                return forward_maximum_match(text, self._subjects)
            if start > position:
                words += findall(text, position, start)
            words.append(self._subjects[index])
            position = end
        if position < size:
            words += findall(text, position)
        return words


def _inside_special(text: str, offset: int) -> bool:
    for match in re.finditer(r"\[(?:CLS|SEP|PAD|UNK|MASK|ENT|SUB|PRE|OBJ)\]", text):
        if match.start() < offset < match.end():
            return True
    return False
