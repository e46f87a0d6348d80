"""Knowledge probes, LAMA-style (Petroni et al. 2019, "Language Models as Knowledge Bases?").

A fact ``(subject, relation, object)`` becomes a cloze statement from a
template ("X is a native of [Y]."); the model scores every candidate object of
the right type (every object the relation has in the KG) and the probe records
the rank of the gold one. MRR and hits@1/10 summarise the ranks.

Multi-piece names: a candidate of ``k`` WordPiece pieces is scored by putting
``k`` [MASK] tokens in place of the object and averaging the log-probabilities
of its pieces at those positions, all predicted at once (one forward pass per
distinct ``k``). Averaging, not summing, keeps long names from losing by their
length alone; LAMA itself kept single-token objects only, which would drop most
names here. Ties rank pessimistically (the gold object ranks below every
candidate with an equal score), so a scorer that says nothing gets the worst
rank, never a lucky one.

The probe template of each fact is held out of the pretraining corpus
(:func:`kbench.data.fact_corpus.fact_corpus`): other facts of the relation are
written with it, this fact only with the relation's other templates — so the
probe measures whether the model knows the fact, not whether it memorised a string.

Controls. An MRR alone cannot tell facts from answer frequencies: a model that
ranks each relation's objects by how often they are the answer, whatever the
subject, scores well above chance. So every probe reports three controls beside
its MRR (Petroni et al. rank against a frequency baseline too; the swap follows
the control-task idea of Hewitt & Liang, EMNLP 2019):

- *subject swapped* (:func:`swapped_items`): each statement's subject replaced by
  another subject of the same relation, scored against the original answer. A
  model that knows subject-dependent facts loses rank; one that reads only the
  template does not move. ``mrr − swapped_mrr`` (:attr:`ProbeResult.knowledge`)
  is the probe's measure of knowledge;
- *answer prior* (:func:`prior_result`): each relation's objects ranked by how
  often they are its answer, the subject ignored;
- *chance* (:func:`chance_mrr`): the expected MRR of a uniformly random ranking.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from kbench.errors import InputError
from kbench.train import eval_mode

SLOT = "[Y]"


@dataclass(frozen=True)
class ProbeItem:
    """One cloze question: the statement with ``[Y]`` where the object goes, the gold object and the candidates."""

    subject: str
    relation: str
    gold: str
    statement: str
    candidates: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.statement.count(SLOT) != 1:
            raise InputError(f"a probe statement needs exactly one {SLOT}: {self.statement!r}")
        if self.gold not in self.candidates:
            raise InputError(f"the gold object {self.gold!r} is not among the candidates of {self.relation!r}")


@dataclass
class ProbeResult:
    """The gold object's rank for every item; MRR and hits@k over them, and per relation."""

    items: list[ProbeItem]
    ranks: list[int]
    top: list[str] = field(default_factory=list)    # each item's best-scored candidate
    swapped: ProbeResult | None = None               # the same model on the subject-swapped items, if probed

    @property
    def knowledge(self) -> float:
        """MRR minus the subject-swapped MRR: what the model knows about *this* subject (needs ``swapped``)."""
        if self.swapped is None:
            raise InputError("this probe ran without the subject-swapped control: probe_model(..., swapped=True)")
        return self.mrr() - self.swapped.mrr()

    def _ranks(self, relation: str | None = None) -> np.ndarray:
        ranks = [r for item, r in zip(self.items, self.ranks) if relation is None or item.relation == relation]
        if not ranks:
            raise InputError(f"no probe item for relation {relation!r}")
        return np.asarray(ranks, dtype=float)

    def mrr(self, relation: str | None = None) -> float:
        return float((1.0 / self._ranks(relation)).mean())

    def hits(self, k: int, relation: str | None = None) -> float:
        return float((self._ranks(relation) <= k).mean())

    @property
    def relations(self) -> list[str]:
        return list(dict.fromkeys(item.relation for item in self.items))

    def summary(self) -> dict[str, float]:
        return {"mrr": self.mrr(), "hits@1": self.hits(1), "hits@10": self.hits(10)}

    def table(self, prior: ProbeResult | None = None) -> list[dict]:
        """Return one row per relation (and one for all) with its items, MRR, hits@1 and hits@10 — and, where
        known, the controls: the subject-swapped MRR, the answer prior's MRR (``prior``) and chance."""
        def controls(relation):
            row = {"chance mrr": chance_mrr(self.items, relation)}
            if prior is not None:
                row["prior mrr"] = prior.mrr(relation)
            if self.swapped is not None:
                row["swapped mrr"] = self.swapped.mrr(relation)
                row["mrr − swapped"] = self.mrr(relation) - self.swapped.mrr(relation)
            return row

        rows = [{"relation": r, "items": int(len(self._ranks(r))), "candidates": len(next(
            i.candidates for i in self.items if i.relation == r)), "mrr": self.mrr(r), "hits@1": self.hits(1, r),
            "hits@10": self.hits(10, r), **controls(r)} for r in self.relations]
        return rows + [{"relation": "all", "items": len(self.ranks), "candidates": None, **self.summary(),
                        **controls(None)}]


def rank_of(scores: Mapping[str, float], gold: str) -> int:
    """Return the gold candidate's rank (1 = best): one plus the candidates scored at least as high (ties: pessimistic)."""
    if gold not in scores:
        raise InputError(f"no score for the gold candidate {gold!r}")
    value = scores[gold]
    if not np.isfinite(value):
        return len(scores)
    return 1 + sum(1 for name, score in scores.items() if name != gold and score >= value)


def run_probe(items: Sequence[ProbeItem], scorer: Callable[[Sequence[ProbeItem]], list[dict[str, float]]]
              ) -> ProbeResult:
    """Return the :class:`ProbeResult` of ``scorer`` (items -> one ``{candidate: score}`` per item)."""
    items = list(items)
    if not items:
        raise InputError("the probe has no items")
    scores = scorer(items)
    if len(scores) != len(items):
        raise InputError(f"the scorer returned {len(scores)} score tables for {len(items)} items")
    return ProbeResult(items, [rank_of(table, item.gold) for item, table in zip(items, scores)],
                       [max(table, key=table.get) for table in scores])


def swapped_items(items: Sequence[ProbeItem], seed: int = 0) -> list[ProbeItem]:
    """Return ``items`` with each statement's subject replaced by another subject of the same relation.

    The gold stays the original answer: a model that knows subject-dependent facts ranks it lower
    once the subject is another; a model that reads only the template and the answer prior does
    not move. The other subject is drawn (seeded) among the relation's subjects whose own answer
    differs from this gold where there are such, so the swap changes the fact, not just the name.
    A relation with one subject cannot be swapped: an error, as is a statement that does not
    contain its subject.
    """
    items = list(items)
    rng = np.random.default_rng(seed)
    by_relation: dict[str, dict[str, set[str]]] = {}
    for item in items:
        by_relation.setdefault(item.relation, {}).setdefault(item.subject, set()).add(item.gold)
    out = []
    for item in items:
        if item.subject not in item.statement:
            raise InputError(f"the statement {item.statement!r} does not contain its subject {item.subject!r}: "
                             "the subject cannot be swapped")
        subjects = by_relation[item.relation]
        others = sorted(s for s in subjects if s != item.subject)
        if not others:
            raise InputError(f"relation {item.relation!r} has one subject ({item.subject!r}): nothing to swap with")
        differing = [s for s in others if item.gold not in subjects[s]]
        pool = differing or others
        other = pool[int(rng.integers(len(pool)))]
        out.append(ProbeItem(other, item.relation, item.gold, item.statement.replace(item.subject, other),
                             item.candidates))
    return out


def prior_result(items: Sequence[ProbeItem], answers: Sequence[tuple[str, str]] | None = None) -> ProbeResult:
    """Return the probe result of the subject-blind answer prior: each relation's candidates ranked by how often
    they are its answer in ``answers`` (``(relation, object)`` pairs, e.g. the training facts; by default the
    probe items' own answers — the strongest prior, as it has seen the test answers' frequencies).

    Ties are broken by the candidates' sorted order, not pessimistically: the prior is a baseline to beat,
    so it gets a fair rank, not the worst."""
    items = list(items)
    counts: dict[tuple[str, str], int] = {}
    for relation, obj in ([(i.relation, i.gold) for i in items] if answers is None else answers):
        counts[(relation, obj)] = counts.get((relation, obj), 0) + 1

    def scorer(chunk):
        return [{name: counts.get((item.relation, name), 0) - 1e-6 * rank
                 for rank, name in enumerate(sorted(item.candidates))} for item in chunk]

    return run_probe(items, scorer)


def chance_mrr(items: Sequence[ProbeItem], relation: str | None = None) -> float:
    """Return the expected MRR of a uniformly random ranking: the mean over items of H(n)/n for n candidates."""
    chosen = [i for i in items if relation is None or i.relation == relation]
    if not chosen:
        raise InputError(f"no probe item for relation {relation!r}")
    return float(np.mean([sum(1.0 / r for r in range(1, len(i.candidates) + 1)) / len(i.candidates)
                          for i in chosen]))


class MaskedLMScorer:
    """Score probe candidates with a masked language model (any ``BertForMaskedLM``-like ``lm(...).logits``)."""

    def __init__(self, lm: torch.nn.Module, tokenizer, batch_size: int = 64):
        if tokenizer.mask_token is None:
            raise InputError("the tokenizer has no [MASK] token: the model cannot be probed")
        self.lm, self.tokenizer, self.batch_size = lm, tokenizer, batch_size

    def pieces(self, name: str) -> list[int]:
        ids = self.tokenizer(name, add_special_tokens=False)["input_ids"]
        if not ids:
            raise InputError(f"candidate {name!r} has no tokens")
        return ids

    @torch.no_grad()
    def __call__(self, items: Sequence[ProbeItem]) -> list[dict[str, float]]:
        pieces = {name: self.pieces(name) for item in items for name in item.candidates}
        queries = sorted({(index, len(pieces[name])) for index, item in enumerate(items) for name in item.candidates})
        log_probs: dict[tuple[int, int], torch.Tensor] = {}
        device = next(self.lm.parameters()).device
        with eval_mode(self.lm):
            for first in range(0, len(queries), self.batch_size):
                chunk = queries[first:first + self.batch_size]
                texts = [items[i].statement.replace(SLOT, " ".join([self.tokenizer.mask_token] * k)) for i, k in chunk]
                encoded = self.tokenizer(texts, padding=True, return_tensors="pt")
                logits = self.lm(**{key: v.to(device) for key, v in encoded.items()}).logits.float()
                masks = encoded["input_ids"] == self.tokenizer.mask_token_id
                for row, key in enumerate(chunk):
                    positions = masks[row].nonzero().flatten()
                    log_probs[key] = logits[row, positions.to(device)].log_softmax(-1).cpu()
        tables = []
        for index, item in enumerate(items):
            table = {}
            for name in item.candidates:
                ids = pieces[name]
                rows = log_probs[(index, len(ids))]
                table[name] = float(rows[torch.arange(len(ids)), torch.tensor(ids)].mean())
            tables.append(table)
        return tables


def probe_model(lm: torch.nn.Module, tokenizer, items: Sequence[ProbeItem], batch_size: int = 64,
                swapped: bool = True, seed: int = 0) -> ProbeResult:
    """Return the probe result of a masked language model on ``items``, with its subject-swapped control
    (:func:`swapped_items`, drawn with ``seed``) in ``.swapped`` unless ``swapped=False``."""
    scorer = MaskedLMScorer(lm, tokenizer, batch_size)
    result = run_probe(items, scorer)
    if swapped:
        result.swapped = run_probe(swapped_items(items, seed), scorer)
    return result
