"""A linked knowledge world: documents about people with every entity mention annotated, as Linked WikiText-2
annotates Wikipedia for the KGLM (Logan et al. 2019, §3 and Table 1), for notebook ``20_kglm``.

The KG is the knowledge world's (:mod:`kbench.data.world`: its geography and its names of neutral syllables):
people are ``born in`` a city, ``work as`` an occupation, ``work for`` a firm and each ``knows`` one
acquaintance; firms are ``based in`` a city; cities are ``located in`` a country and ``part of`` a continent,
as countries are. A document tells one person's facts in short sentences::

    Kovi Dana was born in Paris . Paris is a city in France . France is part of Europe .
    Kovi Dana works as a teacher . Kovi Dana works for Zolo . Zolo is based in Lyon . Kovi Dana knows Rasu Pel .

Every mention carries the annotation the KGLM trains on (§2.2): its tokens, its entity, and its kind — ``new``
when no recent entity reaches it, else ``related`` with *every* path ``(parent, relation)`` from a recent entity
(an entity mentioned within the last :data:`CUTOFF` tokens, as the authors' ``RecentEntities``) to it in the KG,
the paper's reflexive relation included: the second ``Kovi Dana`` is ``(Kovi Dana, reflexive)``; ``Europe`` is
reached from ``France`` and from ``Paris`` (both ``part of``), ``Paris`` in the second sentence both by
``(Paris, reflexive)`` and ``(Kovi Dana, born in)`` — the paper marginalises over all of them (§4). Tokens after
a mention's first are continuations (the authors' mention type 3).

People are split: a test person, and the acquaintance they know, are in the KG but in no training document, so
their names' tokens never occur in the training text (out of the vocabulary built from it). An acquaintance
is named at most once in the whole text, so its name is out of the vocabulary too, as rare names are in WikiText.
A person's facts beyond the birthplace are told or not by chance, so a name is said one to four times, and the
vocabulary (words seen at least three times) holds about half the training people's names. Every name is a
whole token; an entity's alias is its name's tokens. :attr:`LinkedDocument.blanks` mark the
fact-completion prompts of §5.2 ("Kovi Dana was born in ___").
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from kbench.data.world import GEOGRAPHY, _CODAS, _ONSETS, _VOWELS
from kbench.errors import InputError, UnknownNameError
from kbench.kg import KnowledgeGraph

#: The mention types of the authors' code (its ``mention_type`` values 0-3); the paper's §2.2 has the first three.
MENTION_TYPES = ("none", "new", "related", "continuation")
#: The paper's self-relation (§2.2): an entity already mentioned is its own parent.
REFLEXIVE = "reflexive"
#: An entity stays a parent candidate for this many tokens after its last token (the authors' ``cutoff``, 30).
CUTOFF = 30
#: Occupations, all starting with a consonant, so "works as a" gives nothing away.
OCCUPATIONS = ("teacher", "doctor", "lawyer", "chemist", "painter", "pilot", "farmer", "baker")
#: The relations asked in fact completion, each with the sentence that states it (the answer is ``{Y}``'s first token).
ASKED = {"born in": "{X} was born in {Y} .", "works as": "{X} works as a {Y} .", "works for": "{X} works for {Y} .",
         "knows": "{X} knows {Y} ."}


@dataclass(frozen=True)
class Mention:
    """Tokens ``[start, end)`` naming ``entity``; ``kind`` new or related; ``paths``: every ``(parent, relation)``
    from a recent entity to the entity (empty for a new mention)."""

    start: int
    end: int
    entity: str
    kind: str
    paths: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if self.kind not in ("new", "related"):
            raise UnknownNameError(f"unknown mention type {self.kind!r} for {self.entity!r}: a mention is 'new' or "
                                   "'related' (its later tokens are continuations)")
        if not 0 <= self.start < self.end:
            raise InputError(f"mention of {self.entity!r} spans tokens [{self.start}, {self.end}): give a "
                             "non-empty span of token positions")
        if (self.kind == "related") != bool(self.paths):
            raise InputError(f"mention of {self.entity!r}: a related mention names its (parent, relation) paths, "
                             f"a new one none (got kind {self.kind!r} with {len(self.paths)} paths)")


@dataclass(frozen=True)
class Blank:
    """A fact-completion prompt: the document up to token ``position``, whose token is ``answer`` (the first token
    of ``entity``, the object of ``(subject, relation, entity)``)."""

    relation: str
    entity: str
    answer: str
    position: int


@dataclass(frozen=True)
class LinkedDocument:
    """A document's tokens, its mentions in order, the person it is about and its fact-completion blanks."""

    subject: str
    tokens: tuple[str, ...]
    mentions: tuple[Mention, ...]
    blanks: tuple[Blank, ...] = ()

    def __post_init__(self):
        if not self.tokens:
            raise InputError(f"the document about {self.subject!r} has no tokens: give it at least one")
        end = 0
        for mention in self.mentions:
            if mention.start < end or mention.end > len(self.tokens):
                raise InputError(f"mention of {mention.entity!r} at [{mention.start}, {mention.end}) overlaps the "
                                 f"one before it or runs past the {len(self.tokens)} tokens: mentions are disjoint, "
                                 "in order, inside the text")
            end = mention.end

    def annotations(self) -> list[tuple[str, str | None]]:
        """Return ``(mention type, entity)`` for every token (``("none", None)`` outside mentions)."""
        out: list[tuple[str, str | None]] = [("none", None)] * len(self.tokens)
        for mention in self.mentions:
            out[mention.start] = (mention.kind, mention.entity)
            for position in range(mention.start + 1, mention.end):
                out[position] = ("continuation", mention.entity)
        return out

    def prefix(self, position: int) -> "LinkedDocument":
        """Return the document's first ``position`` tokens with the mentions inside them (a prompt)."""
        if not 0 < position <= len(self.tokens):
            raise InputError(f"a prompt of {position} tokens from a document of {len(self.tokens)}: give 1 to "
                             f"{len(self.tokens)}")
        if any(m.start < position < m.end for m in self.mentions):
            raise InputError(f"token {position} is inside a mention: cut a prompt between mentions")
        return LinkedDocument(self.subject, self.tokens[:position],
                              tuple(m for m in self.mentions if m.end <= position))

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def recent_entities(entities: list[str | None], position: int, cutoff: int = CUTOFF) -> list[str]:
    """Return the entities of tokens ``position - cutoff .. position - 1``, the most recently mentioned first: the
    parent candidates at ``position`` (the authors' ``RecentEntities``: a token's entity is a candidate for the
    ``cutoff`` tokens after it)."""
    if cutoff < 1:
        raise InputError(f"cutoff must be at least one token, got {cutoff}")
    seen: list[str] = []
    for index in range(position - 1, max(-1, position - cutoff - 1), -1):
        entity = entities[index]
        if entity is not None and entity not in seen:
            seen.append(entity)
    return seen


def edges_of(kg: KnowledgeGraph) -> dict[str, list[tuple[str, str]]]:
    """Return each entity's outgoing edges ``(relation, tail)`` in KG order, then ``(reflexive, itself)``."""
    entities = {s for s, _, _ in kg} | {o for _, _, o in kg}
    edges = {entity: [] for entity in sorted(entities)}
    for subject, relation, obj in kg:
        edges[subject].append((relation, obj))
    for entity, out in edges.items():
        out.append((REFLEXIVE, entity))
    return edges


def link(parts: list, edges: dict[str, list[tuple[str, str]]], aliases: dict[str, tuple[str, ...]],
         subject: str, cutoff: int = CUTOFF) -> LinkedDocument:
    """Return the annotated document of ``parts`` (plain words, and ``("entity", name)`` for a mention).

    A mention is related when some recent entity has an edge to it (its paths: all of them), else new.
    """
    tokens: list[str] = []
    entity_of: list[str | None] = []
    mentions: list[Mention] = []
    for part in parts:
        if isinstance(part, str):
            tokens.append(part)
            entity_of.append(None)
            continue
        _, entity = part
        if entity not in aliases or not aliases[entity]:
            raise InputError(f"entity {entity!r} has no alias: give it its name's tokens")
        if entity not in edges:
            raise UnknownNameError(f"entity {entity!r} is not in the KG: add its triples first")
        start = len(tokens)
        recent = recent_entities(entity_of, start, cutoff)
        paths = tuple((parent, relation) for parent in recent for relation, tail in edges.get(parent, ())
                      if tail == entity)
        mentions.append(Mention(start, start + len(aliases[entity]), entity, "related" if paths else "new", paths))
        tokens.extend(aliases[entity])
        entity_of.extend([entity] * len(aliases[entity]))
    return LinkedDocument(subject, tuple(tokens), tuple(mentions))


@dataclass
class LinkedWorld:
    """The KG, every entity's alias, and the training and test documents (one per person of each split)."""

    kg: KnowledgeGraph
    aliases: dict[str, tuple[str, ...]]
    train: list[LinkedDocument]
    test: list[LinkedDocument]
    train_people: list[str]
    test_people: list[str]
    acquaintances: dict[str, str]         # person -> the one they know (named at most once in all the text)
    cutoff: int = CUTOFF
    edges: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def vocabulary(self, min_count: int = 3) -> list[str]:
        """Return the training text's words seen at least ``min_count`` times, most frequent first (ties by
        spelling): the word vocabulary; every other word is out of it (an acquaintance's name, a test person's)."""
        counts = Counter(token for document in self.train for token in document.tokens)
        return [w for w, c in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if c >= min_count]

    def unknown_types(self, vocabulary: list[str]) -> int:
        """Return ``|U|``: the word types of all the text (training and test) outside ``vocabulary``."""
        known = set(vocabulary)
        return len({t for document in self.train + self.test for t in document.tokens} - known)


def _words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """Return ``count`` distinct two-syllable words (the knowledge world's syllables), none in ``taken``."""
    pool = sorted({(a + b + c + d + e).capitalize() for a in _ONSETS for b in _VOWELS for c in _ONSETS
                   for d in _VOWELS for e in _CODAS} - {t.capitalize() for t in taken})
    if count > len(pool):
        raise InputError(f"{count} name words asked, only {len(pool)} can be made: use fewer people")
    rng.shuffle(pool)
    return pool[:count]


def make_linked_world(people: tuple[int, int] = (300, 60), firms: int = 12, countries_per_continent: int = 4,
                      cutoff: int = CUTOFF, keep: float = 0.5, seed: int = 0) -> LinkedWorld:
    """Return a linked world of ``people`` = (training, test) persons, one document each, and their acquaintances.

    The first sentence names the person (a new mention) and where they were born, the second and third the
    city's country and continent; the sentences of the person's occupation, employer (with the employer's city)
    and acquaintance are each told with probability ``keep``, in a seeded order. So a person is named one to
    four times: with the vocabulary's ``min_count`` of 3, half the training people's names are out of it (as a
    rare name is in WikiText), and an unknown word is seen in the training text wherever a name can stand.
    """
    if min(people) < 1 or firms < 1 or not 1 <= countries_per_continent <= 4 or not 0 <= keep <= 1:
        raise InputError(f"a linked world needs at least one person per split and one firm, and 1-4 countries per "
                         f"continent, and keep a share (got {people}, {firms}, {countries_per_continent}, {keep})")
    rng = random.Random(seed)
    geography = {continent: dict(list(countries.items())[:countries_per_continent])
                 for continent, countries in GEOGRAPHY.items()}
    cities = [(city, country, continent) for continent, countries in geography.items()
              for country, names in countries.items() for city in names]
    taken = {name for city in cities for name in city} | set(OCCUPATIONS)
    total = 2 * sum(people)
    words = _words(rng, 2 * total + firms, taken)
    names = [f"{words[2 * i]} {words[2 * i + 1]}" for i in range(total)]
    firm_names = words[2 * total:]
    firm_city = {firm: rng.choice(cities)[0] for firm in firm_names}
    persons, acquaintances = names[:sum(people)], names[sum(people):]
    known = dict(zip(persons, acquaintances))
    triples, facts = [], {}
    for person in persons + acquaintances:
        facts[person] = {"born in": rng.choice(cities)[0], "works as": rng.choice(OCCUPATIONS),
                         "works for": rng.choice(firm_names)}
        triples += [(person, relation, obj) for relation, obj in facts[person].items()]
    for person in persons:
        facts[person]["knows"] = known[person]
        triples.append((person, "knows", known[person]))
    triples += [(firm, "based in", city) for firm, city in firm_city.items()]
    for city, country, continent in cities:
        triples += [(city, "located in", country), (city, "part of", continent)]
    triples += [(country, "part of", continent) for continent, countries in geography.items() for country in countries]
    kg = KnowledgeGraph.from_triples(triples, name="linked world")
    edges = edges_of(kg)
    aliases = {entity: tuple(entity.split()) for entity in edges}
    country_of = {city: (country, continent) for city, country, continent in cities}

    def document(person: str) -> LinkedDocument:
        E = lambda name: ("entity", name)
        f = facts[person]
        city = f["born in"]
        country, continent = country_of[city]
        firm = f["works for"]
        told = [[[E(person), "works", "as", "a", E(f["works as"]), "."]],
                [[E(person), "works", "for", E(firm), "."], [E(firm), "is", "based", "in", E(firm_city[firm]), "."]],
                [[E(person), "knows", E(f["knows"]), "."]]]
        units = [[[E(city), "is", "a", "city", "in", E(country), "."],
                  [E(country), "is", "part", "of", E(continent), "."]]] + [u for u in told if rng.random() < keep]
        rng.shuffle(units)
        sentences = [[E(person), "was", "born", "in", E(city), "."]] + [s for unit in units for s in unit]
        linked = link([part for sentence in sentences for part in sentence], edges, aliases, person, cutoff)
        blanks = []
        for relation, template in ASKED.items():
            words_before = template.split(" {Y}")[0].replace("{X}", "").split()
            for mention in linked.mentions:
                before = linked.tokens[max(0, mention.start - len(words_before)):mention.start]
                if mention.entity == f[relation] and tuple(before) == tuple(words_before):
                    blanks.append(Blank(relation, mention.entity, aliases[mention.entity][0], mention.start))
                    break
        return LinkedDocument(person, linked.tokens, linked.mentions, tuple(blanks))

    train_people, test_people = persons[:people[0]], persons[people[0]:]
    return LinkedWorld(kg, aliases, [document(p) for p in train_people], [document(p) for p in test_people],
                       train_people, test_people, known, cutoff, edges)
