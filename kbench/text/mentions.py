"""Mention detection: segment a raw sentence into words by forward maximum matching.

K-BERT (Liu et al. 2020, §3.2, the knowledge layer's "K-Query") needs the words of
a sentence that are KG subjects. The authors segment Chinese text with pkuseg,
using the KG's subjects as a user dictionary; we use forward maximum matching
(FMM) over *units*: scanning left to right, the longest subject whose units
start at the current unit wins, and text no subject covers falls back to the
tokenizer's units (a run of letters/digits/underscores, a special token such
as ``[CLS]``, or any other single character; whitespace only separates units).

For speed, each sentence is encoded so that every unit is one character: a
letter/digit run or special token becomes one private-use character (shared
with the KG's subjects through a table), whitespace is dropped, CJK characters
and punctuation stay as they are. Leftmost-longest matching over that string,
done by an Aho-Corasick automaton in Rust (``ahocorasick_rs``), is then exactly
unit-level FMM; :func:`forward_maximum_match` is the slow reference the tests
compare it with.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import ahocorasick_rs

from kbench.errors import InputError

SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[ENT]", "[SUB]", "[PRE]", "[OBJ]")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
_SPECIAL = r"\[(?:CLS|SEP|PAD|UNK|MASK|ENT|SUB|PRE|OBJ)\]"
_RUN = _SPECIAL + r"|[^\W" + _CJK + r"]+"
#: A unit: a special token, a run of non-CJK word characters, or any other single visible character.
UNIT_PATTERN = re.compile(_RUN + r"|\S")
_RUN_OR_SPACE = re.compile(_RUN + r"|\s+")
_RUN_OR_SPACE_SPLIT = re.compile("(" + _RUN + r"|\s+)")
# Units that are runs are encoded as characters from Supplementary Private Use Area-B.
_FIRST_CODE = 0x100000
_UNKNOWN_RUN = "\U0010FFFD"   # a run that no subject contains
_ATOMIC = "\U0010FFFC"        # a given unit that no subject can contain (see ``MentionDetector.spans``)
_PLACEHOLDER = re.compile("[\U00100000-\U0010FFFD]")


def split_units(text: str) -> list[str]:
    """Return the units of ``text``: special tokens, letter/digit runs, and single other characters."""
    return UNIT_PATTERN.findall(text)


def forward_maximum_match(text: str, subjects: Iterable[str]) -> list[str]:
    """Return the words of ``text`` by unit-level FMM: the slow, obviously correct reference.

    A subject matches at unit ``i`` when its units equal units ``i..j``; the
    longest such subject wins and is emitted as written in the KG (the first
    spelling seen, when several have the same units).
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

    Build once per KG (about 0.1 s for HowNet's 45k subjects); ``segment`` then
    handles tens of thousands of sentences a second (``benchmarks/bench_kbert.py``).
    """

    def __init__(self, subjects: Iterable[str]):
        self._codes: dict[str, str] = {}       # run unit -> its one-character code
        self._subjects: list[str] = []
        patterns: list[str] = []
        seen: set[str] = set()
        for subject in subjects:
            pattern = _RUN_OR_SPACE.sub(self._code_for_subject, subject)
            if pattern and pattern not in seen:   # unit-equal spellings: the first one wins
                seen.add(pattern)
                patterns.append(pattern)
                self._subjects.append(subject)
        self._automaton = (ahocorasick_rs.AhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
                           if patterns else None)

    def _code_for_subject(self, match: re.Match) -> str:
        unit = match.group()
        if unit[0].isspace():
            return ""
        code = self._codes.get(unit)
        if code is None:
            code = self._codes[unit] = chr(_FIRST_CODE + len(self._codes))
        return code

    def __len__(self) -> int:
        return len(self._subjects)

    def segment(self, sentence: str) -> list[str]:
        """Return the words of ``sentence``; KG subjects are single words, spelled as in the KG."""
        if not isinstance(sentence, str):
            raise InputError(f"a sentence must be a str, not {type(sentence).__name__}")
        if _PLACEHOLDER.search(sentence):  # the text uses our code points itself: take the slow, exact path
            return forward_maximum_match(sentence, self._subjects)
        runs: list[str] = []
        text = sentence
        if _RUN_OR_SPACE.search(sentence):
            parts = _RUN_OR_SPACE_SPLIT.split(sentence)   # text, unit-or-space, text, ..., text
            found = parts[1::2]
            runs = [unit for unit in found if not unit[0].isspace()]
            codes = self._codes
            parts[1::2] = ["" if unit[0].isspace() else codes.get(unit, _UNKNOWN_RUN) for unit in found]
            text = "".join(parts)
        matches = self._automaton.find_matches_as_indexes(text) if self._automaton is not None else []
        if not runs:  # every unit is one character of ``text``
            words: list[str] = []
            position = 0
            for index, start, end in matches:
                if start > position:
                    words += text[position:start]
                words.append(self._subjects[index])
                position = end
            words += text[position:]
            return words
        return self._decode(text, matches, runs)

    def spans(self, units: Sequence[str]) -> list[tuple[int, int, str | None]]:
        """Return ``units`` grouped left to right into ``(start, end, subject)``, ``end`` exclusive.

        The same forward maximum matching as :meth:`segment`, over units the
        caller already has (a tagged sentence's characters or words): a group is
        a KG subject whose units equal ``units[start:end]``, or one unit with
        ``subject`` None. A given unit that is itself several units (``"a-b"``)
        or empty is atomic and never part of a subject.
        """
        codes, encoded = self._codes, []
        for unit in units:
            if not isinstance(unit, str):
                raise InputError(f"a unit must be a str, not {type(unit).__name__}")
            if len(unit) == 1 and not unit.isspace() and not _RUN_OR_SPACE.fullmatch(unit) \
                    and not _PLACEHOLDER.match(unit):
                encoded.append(unit)
            elif _RUN_OR_SPACE.fullmatch(unit) and not unit[0].isspace():
                encoded.append(codes.get(unit, _UNKNOWN_RUN))
            else:
                encoded.append(_ATOMIC)
        groups: list[tuple[int, int, str | None]] = []
        position = 0
        matches = self._automaton.find_matches_as_indexes("".join(encoded)) if self._automaton is not None else []
        for index, start, end in matches:
            groups += [(i, i + 1, None) for i in range(position, start)]
            groups.append((start, end, self._subjects[index]))
            position = end
        groups += [(i, i + 1, None) for i in range(position, len(encoded))]
        return groups

    def mentions(self, units: Sequence[str]) -> list:
        """Return the KG subjects among ``units`` as :class:`~kbench.text.links.LinkedMention` s (prior 1)."""
        from kbench.text.links import subject_mentions

        return subject_mentions(self, units)

    def _decode(self, text: str, matches: list[tuple[int, int, int]], runs: list[str]) -> list[str]:
        """Return the words of an encoded sentence, putting each run unit back where its code stands."""
        marks = [match.start() for match in _PLACEHOLDER.finditer(text)]  # one per run, in order
        marks.append(len(text) + 1)
        words: list[str] = []
        position = taken = 0
        for index, start, end in [*matches, (-1, len(text), len(text))]:
            while marks[taken] < start:            # run units in the unmatched text before this match
                words += text[position:marks[taken]]
                words.append(runs[taken])
                position = marks[taken] + 1
                taken += 1
            words += text[position:start]
            if index >= 0:
                words.append(self._subjects[index])
                while marks[taken] < end:          # run units inside the matched subject
                    taken += 1
            position = end
        return words
