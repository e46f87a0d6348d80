"""A small fact world: a few people with one-piece names, two relations, many exposures per fact.

The regime in which a tiny masked LM pretrained from scratch certainly learns
subject-dependent facts within a CPU budget (``tests/test_probe_regime.py``
measures it; ``notebooks/06_ernie_baidu.ipynb`` runs it as its positive
control). Every name — person, city, occupation — is a single word piece of
the embedded (MiniLM, uncased) vocabulary, so a fact is one subject piece
and one object piece. Each relation's objects are dealt out evenly among the
people (``subjects`` a multiple of ``objects`` gives every object the same
count), so the subject-blind answer prior ranks no better than chance and
only knowing *this* person's fact lifts the probe.
"""
from __future__ import annotations

import random

from kbench.errors import InputError

PEOPLE = ("john", "mary", "peter", "anna", "david", "maria", "paul", "laura",
          "james", "sarah", "george", "emma", "frank", "alice", "henry", "julia")
CITIES = ("paris", "rome", "tokyo", "berlin", "madrid", "lima", "cairo", "delhi")
OCCUPATIONS = ("engineer", "teacher", "doctor", "lawyer", "chemist", "painter", "pilot", "farmer")
#: The relations and their objects (templates: :data:`kbench.data.fact_corpus.WORLD_TEMPLATES`).
RELATIONS = {"born in": CITIES, "works as": OCCUPATIONS}


def small_fact_world(subjects: int = 8, objects: int = 4, seed: int = 0) -> list[tuple[str, str, str]]:
    """Return the triples of ``subjects`` people, each with one object per relation among its first ``objects``.

    Objects are dealt evenly (shuffled with ``seed``): each relation's answers have
    equal counts when ``objects`` divides ``subjects``, and at least two distinct
    answers, so a subject swap can change the fact.
    """
    if not 2 <= objects <= min(len(v) for v in RELATIONS.values()):
        raise InputError(f"objects must be 2-{min(len(v) for v in RELATIONS.values())}, got {objects}")
    if not objects <= subjects <= len(PEOPLE):
        raise InputError(f"subjects must be {objects}-{len(PEOPLE)} (at least one per object), got {subjects}")
    rng = random.Random(seed)
    people = PEOPLE[:subjects]
    triples = []
    answers = {}
    for relation, names in RELATIONS.items():
        dealt = [names[i % objects] for i in range(subjects)]
        rng.shuffle(dealt)
        answers[relation] = dealt
    for index, person in enumerate(people):
        triples += [(person, relation, answers[relation][index]) for relation in RELATIONS]
    return triples
