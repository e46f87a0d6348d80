"""A pretraining corpus written from a KG's facts, with a probe template held out per fact.

Each relation has several templates. Every fact gets one of them as its *probe*
template and appears in the corpus only in the others, while other facts of the
relation are written with that template — so after pretraining the probe
(:mod:`kbench.probes`) asks about a fact in words the model has seen used for
the relation but never for that fact (Petroni et al.'s LAMA asks with
templates the training text need not contain; here we make sure it does not).
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from kbench.errors import InputError
from kbench.probes import SLOT, ProbeItem

#: Templates of the knowledge world's relations ({s}: subject, {o}: object).
WORLD_TEMPLATES: dict[str, list[str]] = {
    "born in": ["{s} was born in {o} .", "{s} is a native of {o} .", "the birthplace of {s} is {o} ."],
    "works as": ["{s} works as a {o} .", "{s} is employed as a {o} .", "by profession , {s} is a {o} ."],
    "works for": ["{s} works for {o} .", "{s} is on the staff of {o} .", "{s} has a job at {o} ."],
    "based in": ["{s} is based in {o} .", "{s} has its headquarters in {o} .", "the offices of {s} are in {o} ."],
    "located in": ["{s} is located in {o} .", "{s} is a city of {o} .", "{s} lies in {o} ."],
    "part of": ["{s} is part of {o} .", "{s} belongs to {o} .", "{s} is a place in {o} ."],
}


@dataclass
class FactCorpus:
    """Corpus sentences, and the probe items of the facts they state (each in its held-out template)."""

    texts: list[str]
    probe: list[ProbeItem]
    facts: list[tuple[str, str, str]]


def fact_corpus(triples: Sequence[tuple[str, str, str]], templates: dict[str, list[str]] = WORLD_TEMPLATES,
                statements_per_fact: int = 2, seed: int = 0) -> FactCorpus:
    """Return the corpus of ``triples`` (relations without templates are left out) and its probe items.

    Each fact is written ``statements_per_fact`` times (at most the number of
    its relation's templates minus one), never with its probe template. A
    relation's candidates are all its objects; a relation with one object only
    cannot be probed and is written but not asked.
    """
    usable = [t for t in triples if t[1] in templates]
    if not usable:
        raise InputError("no triple has a relation with templates: nothing to write")
    for relation, forms in templates.items():
        if len(forms) < 2:
            raise InputError(f"relation {relation!r} needs at least two templates (one is held out per fact)")
        if any(form.count("{s}") != 1 or form.count("{o}") != 1 for form in forms):
            raise InputError(f"every template of {relation!r} needs one {{s}} and one {{o}}")
    rng = random.Random(seed)
    objects: dict[str, list[str]] = {}
    for _, relation, obj in usable:
        objects.setdefault(relation, [])
        if obj not in objects[relation]:
            objects[relation].append(obj)
    texts, probe = [], []
    for subject, relation, obj in usable:
        forms = templates[relation]
        held = rng.randrange(len(forms))
        others = [form for index, form in enumerate(forms) if index != held]
        for form in rng.sample(others, min(statements_per_fact, len(others))):
            texts.append(form.format(s=subject, o=obj))
        if len(objects[relation]) > 1:
            probe.append(ProbeItem(subject, relation, obj, forms[held].format(s=subject, o=SLOT),
                                   tuple(objects[relation])))
    rng.shuffle(texts)
    return FactCorpus(texts, probe, list(usable))
