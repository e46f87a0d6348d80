"""A KG whose entities have text descriptions, and its inductive split: KEPLER's data (``notebooks/03_kepler.ipynb``).

KEPLER (Wang et al. 2021) encodes an entity by its description, so an
entity never seen in training still gets an embedding from its text. Its
Wikidata5M pairs Wikidata triples with each entity's Wikipedia introduction.
Two offline analogs here:

- :func:`world_described_kg`: the knowledge world (:mod:`kbench.data.world`),
  each entity with a generated one-sentence description that states some of
  its facts, as a Wikipedia introduction does ("Bano Kilu is a teacher born in
  Lyon.") — the smoke profile;
- :func:`wordnet_described_kg`: a few thousand WordNet synsets, each described
  by its lemmas and its gloss, with WordNet's relations between them as
  triples — the full profile, a real KG.

:func:`ke_split` makes the two evaluation sets of the paper's link prediction: *inductive* test
triples touch an entity whose description and triples training never sees,
*transductive* test triples are unseen triples between training entities.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kbench.errors import InputError

Triple = tuple[str, str, str]


@dataclass
class DescribedKG:
    """Triples and a description for every entity they name (checked: a missing one is an ``InputError``)."""

    name: str
    triples: list[Triple]
    descriptions: dict[str, str]
    aliases: dict[str, list[str]] = field(default_factory=dict)  # words an entity is written as (default: its name)

    def names(self, entity: str) -> list[str]:
        """Return the words ``entity`` is written as in text: its aliases, else its own name."""
        return list(self.aliases.get(entity) or [entity])

    def __post_init__(self) -> None:
        self.triples = list(dict.fromkeys(tuple(t) for t in self.triples))
        if not self.triples:
            raise InputError(f"{self.name!r} has no triples")
        for index, triple in enumerate(self.triples):
            if len(triple) != 3 or not all(isinstance(part, str) and part.strip() for part in triple):
                raise InputError(f"triple #{index} {triple!r} of {self.name!r} is not three non-empty strings")
        check_descriptions(self.entities, self.descriptions)

    @property
    def entities(self) -> list[str]:
        """Return every entity of the triples, in order of first appearance."""
        return list(dict.fromkeys(e for h, _, t in self.triples for e in (h, t)))

    @property
    def relations(self) -> list[str]:
        """Return the relations, sorted (their ids in a relation table)."""
        return sorted({r for _, r, _ in self.triples})


def check_descriptions(entities: Iterable[str], descriptions: dict[str, str]) -> None:
    """Raise ``InputError`` naming the first entity without a non-blank description."""
    for entity in entities:
        text = descriptions.get(entity)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"entity {entity!r} has no description: KEPLER embeds an entity by its description "
                             "text, so every entity of the KG needs one")


def answer_named(kg: DescribedKG, triple: Triple) -> bool:
    """Return whether one entity of ``triple`` is written (a whole word or phrase, any case) in the other's description.

    Such a test triple can be ranked by word overlap alone: the description of
    the query entity contains the answer's name (or the answer's, the query's).
    """
    head, _, tail = triple

    def written(entity: str, text: str) -> bool:
        return any(re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", text.lower()) for name in kg.names(entity))

    return written(tail, kg.descriptions[head]) or written(head, kg.descriptions[tail])


# --- the knowledge world, described -------------------------------------------------------------------------

def world_described_kg(kg, seed: int = 0) -> DescribedKG:
    """Return the knowledge world's triples with one generated description per entity.

    A person's description names their occupation and birth city (two of their
    three facts; the employer is left to the triples); a city its country, a
    country its continent, a company its city. Wording is drawn per entity from
    a few templates (seeded), so no description is a fact-corpus sentence.
    """
    rng = random.Random(seed)
    triples = list(kg)
    facts: dict[str, dict[str, str]] = {}
    for head, relation, tail in triples:
        facts.setdefault(head, {})[relation] = tail
    descriptions: dict[str, str] = {}
    person = ["{s} is a {job} born in {city} .", "{s} , born in {city} , is a {job} .",
              "{s} is a {job} from {city} ."]
    for entity in dict.fromkeys(e for h, _, t in triples for e in (h, t)):
        own = facts.get(entity, {})
        if "born in" in own:
            text = rng.choice(person).format(s=entity, job=own.get("works as", "person"), city=own["born in"])
        elif "based in" in own:
            text = f"{entity} is a company based in {own['based in']} ."
        elif "located in" in own:
            text = f"{entity} is a city in {own['located in']} ."
        elif "part of" in own:
            text = f"{entity} is a country in {own['part of']} ."
        elif entity[0].islower():
            text = f"a {entity} is a kind of occupation ."
        else:
            text = f"{entity} is one of the continents of the world ."
        descriptions[entity] = text
    return DescribedKG("knowledge world", triples, descriptions)


# --- WordNet, described -----------------------------------------------------------------------------------

def synset_description(synset) -> str:
    """Return a synset's description: its lemmas, then its gloss (``dog, domestic dog: a member of ...``)."""
    lemmas = ", ".join(dict.fromkeys(lemma.name().replace("_", " ") for lemma in synset.lemmas()))
    return f"{lemmas}: {synset.definition()}"


def wordnet_described_kg(wordnet, size: int = 3000, seed: int = 0, pos: str = "n",
                         relations: Sequence[str] | None = None) -> DescribedKG:
    """Return about ``size`` WordNet synsets (grown from random seeds through their relations) and their triples.

    Synsets of part of speech ``pos`` are drawn at random as seeds; each seed
    brings its direct neighbours by ``relations`` (every relation of
    :data:`kbench.kg.wordnet.RELATIONS` by default), until ``size`` synsets are
    chosen. The triples are WordNet's relations *between* chosen synsets; a
    synset's description is :func:`synset_description`.
    """
    from kbench.kg.wordnet import RELATIONS, relation_triples

    if size < 10:
        raise InputError(f"a WordNet KG needs at least 10 synsets, got {size}")
    relations = tuple(relations or RELATIONS)
    pool = list(wordnet.all_synsets(pos))
    random.Random(seed).shuffle(pool)
    chosen: dict[str, object] = {}
    for seed_synset in pool:
        if len(chosen) >= size:
            break
        for synset in [seed_synset] + [other for _, _, other in _neighbours(seed_synset, relations)]:
            if len(chosen) < size:
                chosen.setdefault(synset.name(), synset)
    # NLTK returns a synset's related synsets in set order, which varies from process to process: sort them
    triples = [t for synset in chosen.values() for t in sorted(relation_triples(synset, relations))
               if t[2] in chosen and t[0] != t[2]]
    entities = dict.fromkeys(e for h, _, t in triples for e in (h, t))
    return DescribedKG("WordNet", triples, {name: synset_description(chosen[name]) for name in entities},
                       {name: list(dict.fromkeys(lemma.name().replace("_", " ") for lemma in chosen[name].lemmas()))
                        for name in entities})


def _neighbours(synset, relations):
    from kbench.kg.wordnet import RELATIONS

    return [(synset, RELATIONS[method], other) for method in relations
            for other in sorted(getattr(synset, method)(), key=lambda found: found.name())]


# --- splits -----------------------------------------------------------------------------------------------

@dataclass
class KESplit:
    """KEPLER's evaluation split of a :class:`DescribedKG`.

    ``train``: the triples KE training sees; ``transductive``: held-out triples
    whose two entities both occur in ``train``; ``inductive``: triples with at
    least one ``unseen`` entity (no triple of ``train`` names it, so its
    description never reaches training).
    """

    train: list[Triple]
    transductive: list[Triple]
    inductive: list[Triple]
    unseen: list[str]

    @property
    def train_entities(self) -> list[str]:
        return list(dict.fromkeys(e for h, _, t in self.train for e in (h, t)))


def named_in_others(kg: DescribedKG, entities: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Return, for each of ``entities`` (default: all), the *other* entities whose description writes its name.

    Word-boundary matches of any of the entity's names (:meth:`DescribedKG.names`), any case, as
    :func:`answer_named` matches them. An entity named in a training entity's description reaches
    KE training through that text even when no training triple names it.
    """
    names = {e: [re.compile(rf"(?<!\w){re.escape(n.lower())}(?!\w)") for n in kg.names(e)]
             for e in (kg.entities if entities is None else entities)}
    lowered = {e: text.lower() for e, text in kg.descriptions.items()}
    return {e: [other for other, text in lowered.items() if other != e and any(p.search(text) for p in patterns)]
            for e, patterns in names.items()}


def unseen_named_in_training(kg: DescribedKG, split: KESplit) -> list[tuple[str, str]]:
    """Return ``(unseen entity, training entity)`` pairs where the training entity's description names the unseen one."""
    train = set(split.train_entities)
    return [(e, other) for e, others in named_in_others(kg, split.unseen).items() for other in others
            if other in train]


def ke_split(kg: DescribedKG, unseen_share: float = 0.1, transductive_share: float = 0.1, seed: int = 0,
             unnamed_only: bool = False) -> KESplit:
    """Return the inductive and transductive split of ``kg`` (see :class:`KESplit`).

    A random ``unseen_share`` of the entities is held out: every triple naming
    one is an inductive test triple. With ``unnamed_only`` the held-out entities
    are drawn only among those no other entity's description names
    (:func:`named_in_others`), so no description KE training encodes writes an
    unseen entity's name, and no inductive triple is stated in a training
    description (on the knowledge world: people and companies; a city, country,
    continent or occupation is named by the descriptions of its people, cities or
    countries). Without it, :func:`unseen_named_in_training` counts the leaks. The triples left are split by PyKEEN's
    ``split_kg`` (:func:`kbench.kg.embeddings.split_kg`: a random share, moved
    back to training where an entity or relation would be missing from it), so
    every transductive test triple can be ranked by TransE too.
    """
    from kbench.kg.embeddings import split_kg
    from kbench.kg.graph import KnowledgeGraph

    if not 0 < unseen_share < 1 or not 0 < transductive_share < 1:
        raise InputError(f"shares must lie between 0 and 1, got {unseen_share} and {transductive_share}")
    entities = kg.entities
    count = max(1, int(unseen_share * len(entities)))
    random.Random(seed).shuffle(entities)
    if unnamed_only:
        named = named_in_others(kg)
        entities = [e for e in entities if not named[e]]
        if len(entities) < count:
            raise InputError(f"{kg.name!r}: only {len(entities)} entities are named in no other description, "
                             f"{count} are to be held out: lower unseen_share")
    unseen = set(entities[:count])
    inductive = [t for t in kg.triples if t[0] in unseen or t[2] in unseen]
    seen = [t for t in kg.triples if t[0] not in unseen and t[2] not in unseen]
    if len(seen) < 10 or not inductive:
        raise InputError(f"{kg.name!r} is too small to split: {len(seen)} training and {len(inductive)} inductive "
                         "triples")
    train_graph, held = split_kg(KnowledgeGraph.from_triples(seen, name=kg.name), transductive_share, seed)
    train, transductive = list(train_graph), list(held)
    known = {e for h, _, t in train for e in (h, t)}
    # an unseen entity must not reach training by any path; the relation of an inductive triple must be known
    relations = {r for _, r, _ in train}
    inductive = [t for t in inductive if t[1] in relations]
    return KESplit(train, transductive, inductive, sorted(e for e in unseen if e not in known))
