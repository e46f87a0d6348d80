"""Linked mentions, one data type for every paper: a span, its candidate entities with priors, the choice.

Mention detection (K-BERT's KG subjects), alias-table candidate generation
(KnowBert's ``p(e|m)``), and linkers (KnowBert's scorer, ERNIE's alignment) all
produce :class:`LinkedMention` records; the views and the models read them.
Spans index the caller's units (words, characters or tokens), ``end``
exclusive. ``chosen`` None is the NULL entity: the mention links to nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kbench.errors import InputError
from kbench.text.mentions import MentionDetector


@dataclass(frozen=True)
class Candidate:
    """One entity a mention may refer to: its prior ``p(e|m)`` and, once a linker ran, its score."""

    entity: str
    prior: float
    score: float | None = None


@dataclass
class LinkedMention:
    """A mention span ``[start, end)`` over some units, its candidates, and the entity chosen (None: NULL)."""

    start: int
    end: int
    text: str
    candidates: list[Candidate] = field(default_factory=list)
    chosen: str | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise InputError(f"mention {self.text!r}: span [{self.start}, {self.end}) is empty or negative")

    def check(self, length: int) -> None:
        """Raise a clear error when the span does not fit a sequence of ``length`` units."""
        if self.end > length:
            raise InputError(f"mention {self.text!r}: span [{self.start}, {self.end}) is out of range for "
                             f"{length} units")

    @property
    def entities(self) -> list[str]:
        return [candidate.entity for candidate in self.candidates]

    @property
    def priors(self) -> list[float]:
        return [candidate.prior for candidate in self.candidates]


class AliasTable:
    """Aliases (surface strings) to candidate entities with priors ``p(e|m)``, as KnowBert's candidate generators.

    Priors follow the KnowBert authors (``kb/wordnet.py``, ``load_candidate_maps``):
    keep an alias's ``top_k`` entities by count, add ``smoothing`` to each
    count and normalise. Matching over text uses the one
    :class:`~kbench.text.MentionDetector` (longest alias first).
    """

    def __init__(self, counts: dict[str, dict[str, float]], top_k: int = 30, smoothing: float = 1.0):
        if top_k < 1 or smoothing < 0:
            raise InputError(f"top_k must be >= 1 and smoothing >= 0 (got {top_k}, {smoothing})")
        self._candidates: dict[str, list[Candidate]] = {}
        for alias, entity_counts in counts.items():
            if not entity_counts:
                raise InputError(f"alias {alias!r} has an empty candidate list")
            ranked = sorted(entity_counts.items(), key=lambda item: (-item[1], item[0]))[:top_k]
            total = sum(count + smoothing for _, count in ranked)
            if total <= 0:
                raise InputError(f"alias {alias!r}: counts and smoothing sum to zero, no prior can be formed")
            self._candidates[alias] = [Candidate(entity, (count + smoothing) / total) for entity, count in ranked]
        self._detector: MentionDetector | None = None

    @classmethod
    def from_triples(cls, rows: Iterable[tuple[str, str, float]], **options) -> "AliasTable":
        """Return a table from ``(alias, entity, count)`` rows (counts of one pair add up)."""
        counts: dict[str, dict[str, float]] = {}
        for index, row in enumerate(rows):
            try:
                alias, entity, count = row
                count = float(count)
            except (TypeError, ValueError) as error:
                raise InputError(f"row #{index} {row!r} is not (alias, entity, count)") from error
            if not alias or not entity or count < 0:
                raise InputError(f"row #{index} {row!r}: alias and entity must be non-empty and count >= 0")
            counts.setdefault(alias, {})
            counts[alias][entity] = counts[alias].get(entity, 0.0) + count
        return cls(counts, **options)

    def __len__(self) -> int:
        return len(self._candidates)

    def __contains__(self, alias: object) -> bool:
        return alias in self._candidates

    @property
    def aliases(self) -> list[str]:
        return list(self._candidates)

    def candidates(self, alias: str) -> list[Candidate]:
        """Return an alias's candidates, most probable first ([] when the table does not know it)."""
        return list(self._candidates.get(alias, ()))

    @property
    def detector(self) -> MentionDetector:
        if self._detector is None:
            self._detector = MentionDetector(self._candidates)
        return self._detector

    def link(self, units: Sequence[str], choose_by_prior: bool = True) -> list[LinkedMention]:
        """Return the linked mentions over ``units``: each alias span with its candidates.

        With ``choose_by_prior`` the most probable candidate is chosen (the
        prior baseline every linker is compared with); otherwise none is.
        """
        mentions = []
        for start, end, alias in self.detector.spans(list(units)):
            if alias is None:
                continue
            candidates = self.candidates(alias)
            mentions.append(LinkedMention(start, end, alias, candidates,
                                          candidates[0].entity if choose_by_prior else None,
                                          candidates[0].prior if choose_by_prior else None))
        return mentions


def subject_mentions(detector: MentionDetector, units: Sequence[str]) -> list[LinkedMention]:
    """Return K-BERT's mentions as linked mentions: each KG subject span, linked to itself (prior 1)."""
    return [LinkedMention(start, end, subject, [Candidate(subject, 1.0)], subject, 1.0)
            for start, end, subject in detector.spans(list(units)) if subject is not None]
