"""The knowledge world: a seeded, generated world in which knowledge decides the label.

Used by every notebook's ``smoke`` profile (first in ``01_k_bert``, section
"The experiment"). People, cities, countries, continents, occupations and
employers exist as triples; a sentence mentions a person but never the fact
that decides its label: the continent the first-mentioned person was born on.
People are split between train, dev and test, so a test person never occurs in
training text, while the KG holds the facts of every person. Without knowledge
a model can only guess (chance = 1 / number of continents); with the person's
``born in`` branch it needs only the city -> continent mapping, which training
sentences about other people teach.

With ``distractors`` most sentences also mention a second person, a city or an
employer, each bringing branches of their own that point at other continents:
the noise K-BERT's visible matrix is meant to keep away from the sentence.
Person names are made of neutral syllables so that a name carries no hint of a
region.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from kbench.errors import InputError
from kbench.kg import KnowledgeGraph

GEOGRAPHY = {
    "Europe": {"France": ["Paris", "Lyon"], "Germany": ["Berlin", "Munich"],
               "Italy": ["Rome", "Milan"], "Spain": ["Madrid", "Seville"]},
    "Asia": {"Japan": ["Tokyo", "Osaka"], "China": ["Beijing", "Shanghai"],
             "India": ["Mumbai", "Delhi"], "Korea": ["Seoul", "Busan"]},
    "Africa": {"Kenya": ["Nairobi", "Mombasa"], "Nigeria": ["Lagos", "Abuja"],
               "Egypt": ["Cairo", "Alexandria"], "Ghana": ["Accra", "Kumasi"]},
    "America": {"Brazil": ["Recife", "Salvador"], "Mexico": ["Monterrey", "Cancun"],
                "Canada": ["Toronto", "Vancouver"], "Peru": ["Lima", "Cusco"]},
}
OCCUPATIONS = ["engineer", "teacher", "doctor", "lawyer", "chemist", "painter", "pilot", "farmer"]
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u"]
_CODAS = ["", "n", "r", "l", "s"]
TEMPLATES_PLAIN = ["{T} arrived at the office early today .", "{T} gave a short talk this morning .",
                   "{T} is reading a long report ."]
TEMPLATES_DISTRACTOR = ["{T} had lunch with {D} .", "{T} met {D} in {C} .", "{T} signed a contract with {E} .",
                        "{T} and {D} visited {C} last spring .", "{T} flew to {C} to meet {E} ."]


@dataclass
class Example:
    """One sentence, its label (a continent index) and the person it is about."""

    text: str
    label: int
    person: str


@dataclass
class KnowledgeWorld:
    """A generated world: its KG, labels, and person-disjoint train/dev/test sentences."""

    kg: KnowledgeGraph
    labels: list[str]
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    birth_city: dict[str, str]

    @property
    def chance(self) -> float:
        """Return the accuracy of guessing the most common test label."""
        counts = [sum(e.label == i for e in self.test) for i in range(len(self.labels))]
        return max(counts) / max(1, len(self.test))


def _names(rng: random.Random, count: int, words: int, taken: set[str]) -> list[str]:
    def word() -> str:
        syllables = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(2)) + rng.choice(_CODAS)
        return syllables.capitalize()
    names: list[str] = []
    while len(names) < count:
        name = " ".join(word() for _ in range(words))
        if name not in taken and not any(part in taken for part in name.split()):
            taken.add(name)
            names.append(name)
    return names


def make_world(people: tuple[int, int, int] = (200, 40, 80), sentences_per_person: int = 3,
               distractors: bool = True, employers: int = 12, countries_per_continent: int = 4,
               seed: int = 0) -> KnowledgeWorld:
    """Return a knowledge world with ``people`` = (train, dev, test) persons and a few sentences each.

    ``countries_per_continent`` (1-4, two cities each) sets how many city ->
    continent pairs a model must learn from the training sentences.
    """
    if min(people) < 1 or sentences_per_person < 1 or employers < 1 or not 1 <= countries_per_continent <= 4:
        raise InputError(f"a world needs at least one person per split, sentence and employer, and 1-4 countries "
                         f"per continent (got {people}, {sentences_per_person}, {employers}, {countries_per_continent})")
    rng = random.Random(seed)
    labels = list(GEOGRAPHY)
    geography = {continent: dict(list(countries.items())[:countries_per_continent])
                 for continent, countries in GEOGRAPHY.items()}
    cities = [(city, country, continent) for continent, countries in geography.items()
              for country, names in countries.items() for city in names]
    taken = {name for city in cities for name in city}
    persons = _names(rng, sum(people), 2, taken)
    firms = [(name, rng.choice(cities)[0]) for name in _names(rng, employers, 1, taken)]
    triples, birth_city = [], {}
    for person in persons:
        city = rng.choice(cities)[0]
        birth_city[person] = city
        triples += [(person, "born in", city), (person, "works as", rng.choice(OCCUPATIONS)),
                    (person, "works for", rng.choice(firms)[0])]
    triples += [(firm, "based in", city) for firm, city in firms]
    for city, country, continent in cities:
        triples += [(city, "located in", country), (city, "part of", continent)]
    triples += [(country, "part of", continent) for continent, countries in geography.items() for country in countries]
    kg = KnowledgeGraph.from_triples(triples, name="world")
    continent_of = {city: continent for city, _, continent in cities}

    def sentences(group: list[str]) -> list[Example]:
        examples = []
        for person in group:
            for _ in range(sentences_per_person):
                template = rng.choice(TEMPLATES_DISTRACTOR if distractors and rng.random() < 0.8 else TEMPLATES_PLAIN)
                text = template.format(T=person, D=rng.choice([p for p in group if p != person] or [person]),
                                       C=rng.choice(cities)[0], E=rng.choice(firms)[0])
                examples.append(Example(text, labels.index(continent_of[birth_city[person]]), person))
        rng.shuffle(examples)
        return examples

    n_train, n_dev, _ = people
    splits = persons[:n_train], persons[n_train:n_train + n_dev], persons[n_train + n_dev:]
    return KnowledgeWorld(kg, labels, *(sentences(list(group)) for group in splits), birth_city=birth_city)
