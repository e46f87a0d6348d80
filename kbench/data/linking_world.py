"""The linking world: the knowledge world with ambiguous mentions, for entity linking and fusion papers.

KnowBert (§3.1) must choose among the candidate entities an alias may mean;
ERNIE must align each mention to its entity and classify the relation between
two. Here people share family names, and a sentence names a person by family
name and occupation only ("the engineer Zuma"), so the alias ``Zuma`` has
several candidates with priors from a (generated) reference corpus; the
occupation and the employer or home town in the sentence (facts in the KG) tell them apart. The
label is again the continent the mentioned person comes from (born in a city
of it) — a KG fact reached only through the right link — and each sentence also carries a typed
relation between its person and a second entity (``works for`` an employer, or
``lives in`` a city, drawn apart from the birth city so that no sentence names
the label's city) for relation classification. People are disjoint between
train, dev and test, so nothing about a test person is learned from text, and
no sentence occurs twice (a person's sentences use distinct frames; tested), so
a test set counts each distinct case once.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from kbench.data.world import GEOGRAPHY, OCCUPATIONS, _names
from kbench.errors import InputError
from kbench.kg import KnowledgeGraph
from kbench.text.links import AliasTable, Candidate, LinkedMention

TEMPLATES = {"works for": ["the {O} {F} signed a contract with {E} .", "the {O} {F} works for {E} these days ."],
             "lives in": ["the {O} {F} lives in {C} now .", "the {O} {F} moved to {C} last year ."]}
RELATIONS = tuple(TEMPLATES)
#: Every (relation, template) pair: a person's sentences use distinct ones.
FRAMES = [(relation, template) for relation, templates in TEMPLATES.items() for template in templates]


@dataclass
class LinkedExample:
    """One sentence: its words, the person mention (gold link), the second entity, relation and label."""

    words: list[str]
    mention: LinkedMention        # the family-name mention, with its candidates; ``chosen`` is the gold person
    other: tuple[int, int, str]   # (start, end, entity) of the second entity: an employer or a city
    relation: str                 # "works for" or "lives in": the relation between the person and ``other``
    label: int                    # continent of the person's birth

    def mentions(self) -> list[LinkedMention]:
        """Return both linked mentions: the person (ambiguous alias) and the second entity (its own name)."""
        start, end, entity = self.other
        return [self.mention, LinkedMention(start, end, " ".join(self.words[start:end]), [Candidate(entity, 1.0)],
                                            chosen=entity)]


@dataclass
class LinkingWorld:
    """A KG, an alias table over family names, and person-disjoint train/dev/test sentences."""

    kg: KnowledgeGraph
    aliases: AliasTable
    labels: list[str]
    train: list[LinkedExample]
    dev: list[LinkedExample]
    test: list[LinkedExample]

    def prior_accuracy(self, split: str = "test") -> float:
        """Return how often the most probable candidate is the gold person (the linking baseline)."""
        examples = getattr(self, split)
        return sum(e.mention.candidates[0].entity == e.mention.chosen for e in examples) / max(1, len(examples))


def make_linking_world(people: tuple[int, int, int] = (120, 40, 80), families: int = 30, sentences_per_person: int = 2,
                       employers: int = 8, seed: int = 0) -> LinkingWorld:
    """Return a linking world; ``families`` family names are shared by all people (fewer: more ambiguity)."""
    if families * len(OCCUPATIONS) < sum(people):
        raise InputError(f"{sum(people)} people need at least {-(-sum(people) // len(OCCUPATIONS))} families: "
                         f"within a family each person has one of the {len(OCCUPATIONS)} occupations")
    if not 1 <= sentences_per_person <= len(FRAMES):
        raise InputError(f"sentences_per_person must be between 1 and {len(FRAMES)} (the distinct sentence frames), "
                         f"got {sentences_per_person}")
    if min(people) < 1 or families < 1 or employers < 1:
        raise InputError(f"a linking world needs at least one person per split, family, sentence and employer "
                         f"(got {people}, {families}, {sentences_per_person}, {employers})")
    rng = random.Random(seed)
    labels = list(GEOGRAPHY)
    cities = [(city, continent) for continent, countries in GEOGRAPHY.items()
              for names in list(countries.values())[:1] for city in names]
    taken = {name for city, continent in cities for name in (city, continent)}
    family_names = _names(rng, families, 1, taken)
    continent_of_city = dict(cities)
    firms = _names(rng, employers, 1, taken)
    persons, triples, facts, popularity = [], [], {}, {}
    # within a family every person has a different occupation, so the sentence's context can always
    # tell the candidates apart (the linker's job); the family's members are spread over the splits
    jobs = {family: rng.sample(OCCUPATIONS, len(OCCUPATIONS)) for family in family_names}
    for number in range(sum(people)):
        family = family_names[number % families]
        person = f"{family}_{number}"
        occupation = jobs[family][number // families]
        city, firm = rng.choice(cities)[0], rng.choice(firms)
        home = rng.choice([c for c, _ in cities if c != city])
        facts[person] = (family, city, occupation, firm, home)
        popularity[person] = rng.randint(1, 20)
        triples += [(person, "born in", city), (person, "comes from", continent_of_city[city]),
                    (person, "works as", occupation), (person, "works for", firm), (person, "lives in", home),
                    (person, "family name", family)]
        persons.append(person)
    rng.shuffle(persons)
    triples += [(city, "part of", continent) for city, continent in cities]
    continent_of = dict(cities)

    def sentences(group: list[str]) -> list[tuple]:
        rows = []
        for person in group:
            family, city, occupation, firm, home = facts[person]
            # distinct templates per person: a person's (family, occupation) is unique, so no sentence repeats
            for relation, template in rng.sample(FRAMES, sentences_per_person):
                words = template.format(O=occupation, F=family, E=firm, C=home).split()
                other = firm if relation == "works for" else home
                rows.append((words, person, family, other, relation, labels.index(continent_of[city])))
        rng.shuffle(rows)
        return rows

    n_train, n_dev, _ = people
    splits = [sentences(persons[:n_train]), sentences(persons[n_train:n_train + n_dev]),
              sentences(persons[n_train + n_dev:])]
    # priors p(e|m): how often each person is named by the alias in a reference corpus, as an alias table
    # built from, e.g., Wikipedia anchors would have them; independent of the splits, so they help
    # on unseen people as much as on seen ones, and never decide alone
    counts: dict[str, dict[str, float]] = {}
    for person, (family, *_rest) in sorted(facts.items()):
        counts.setdefault(family, {})[person] = float(popularity[person])
    aliases = AliasTable(counts, top_k=len(persons))

    def linked(rows) -> list[LinkedExample]:
        out = []
        for words, person, family, other, relation, label in rows:
            start = words.index(family)
            mention = LinkedMention(start, start + 1, family, aliases.candidates(family), chosen=person)
            other_start = words.index(other)
            out.append(LinkedExample(words, mention, (other_start, other_start + 1, other), relation, label))
        return out

    kg = KnowledgeGraph.from_triples(triples, name="linking world")
    return LinkingWorld(kg, aliases, labels, *(linked(rows) for rows in splits))

