"""A generated world of life stories: documents whose sentence order is fixed by their content, for the
sentence-pair objectives (StructBERT, notebook 17; symmetric regularization, notebook 18).

Each document tells one person's life in order: a sorted draw of ``stages`` of the eight :data:`STAGES` (born,
a childhood pet, school, college, work, a move, marriage, retirement), so whether one sentence comes before
another is decided by which stages they tell — learnable from text, and unknowable to an objective that only
asks whether two sentences belong together (NSP). Every sentence names its person, so a sentence of another
document is told apart by the name.

The pets carry a small taxonomy (:data:`FAMILIES`: five general words, three specific ones each) for the
entailment pairs of notebook 18 (:func:`entailment_pairs`): "Kovi kept a poodle ." entails "Kovi kept a dog .",
and the swap does not — the same words, another label.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from kbench.data.world import GEOGRAPHY, OCCUPATIONS, _names
from kbench.errors import InputError

STAGES = (
    "{P} was born in {C} .",
    "as a child {P} kept a {A} .",
    "{P} went to school in {C} .",
    "{P} studied {F} at college .",
    "{P} found work as a {O} .",
    "{P} moved to {C} for a new job .",
    "{P} married {Q} in the spring .",
    "{P} retired to a house in {C} .",
)
FIELDS = ["history", "physics", "music", "law", "medicine", "art", "biology", "economics"]
#: general word -> its specific words (hyponyms)
FAMILIES = {"dog": ["poodle", "beagle", "terrier"], "cat": ["siamese", "persian", "tabby"],
            "bird": ["sparrow", "parrot", "robin"], "fish": ["salmon", "trout", "carp"],
            "horse": ["pony", "mare", "stallion"]}
#: frames of the entailment pairs: the premise and hypothesis differ in the animal only
FRAMES = ["{P} kept a {A} .", "{P} bought a {A} in {C} .", "{P} saw a {A} near the river .",
          "{P} drew a {A} for {Q} .", "{P} fed a {A} every morning ."]


@dataclass
class StoryWorld:
    """Training and held-out documents (lists of sentences, in order), and the people of each split."""

    train: list[list[str]]
    test: list[list[str]]
    train_people: list[str]
    test_people: list[str]
    cities: list[str]

    @property
    def texts(self) -> list[str]:
        return [t for doc in self.train + self.test for t in doc]


#: the pet stage when the stories also say what kind of animal a pet is (``kinds=True``)
KIND_STAGE = "as a child {P} kept a {A} , a kind of {G} ."


def make_story_world(people: tuple[int, int] = (1500, 300), stages: int = 5, seed: int = 0,
                     kinds: bool = False) -> StoryWorld:
    """Return ``people`` = (training, held-out) life stories of ``stages`` sentences each, person-disjoint. With
    ``kinds`` the pet is always a specific animal and its sentence names its general word (the taxonomy of
    :func:`entailment_pairs` is then in the text)."""
    if min(people) < 1:
        raise InputError(f"a story world needs at least one person per split, got {people}")
    if not 2 <= stages <= len(STAGES):
        raise InputError(f"a story has 2-{len(STAGES)} stages, got {stages}")
    rng = random.Random(seed)
    cities = [city for countries in GEOGRAPHY.values() for names in countries.values() for city in names]
    animals = [a for general, specific in FAMILIES.items() for a in (general, *specific)]
    taken = {*cities, *animals, *FIELDS, *OCCUPATIONS}
    persons = _names(rng, sum(people), 1, taken)
    spouses = _names(rng, 200, 1, taken)

    family_of = {a: general for general, specific in FAMILIES.items() for a in specific}
    stages_text = [KIND_STAGE if kinds and i == 1 else t for i, t in enumerate(STAGES)]
    pets = sorted(family_of) if kinds else animals

    def sentence(stage: int, person: str) -> str:
        city, pet = rng.choice(cities), rng.choice(pets)          # drawn in this order, every sentence
        field, occupation, spouse = rng.choice(FIELDS), rng.choice(OCCUPATIONS), rng.choice(spouses)
        return stages_text[stage].format(P=person, C=city, A=pet, G=family_of.get(pet, ""), F=field, O=occupation,
                                         Q=spouse)

    def story(person: str) -> list[str]:
        return [sentence(i, person) for i in sorted(rng.sample(range(len(STAGES)), stages))]

    train, test = persons[:people[0]], persons[people[0]:]
    return StoryWorld([story(p) for p in train], [story(p) for p in test], train, test, cities)


@dataclass(frozen=True)
class EntailmentPair:
    """A premise, a hypothesis, the label (1: entails), its kind — ``specific→general`` (entails),
    ``general→specific`` (the swap of an entailed pair: the same words, does not entail) or ``other family`` —
    and its group: the three kinds drawn from one frame and one filling."""

    premise: str
    hypothesis: str
    label: int
    kind: str
    group: int


KINDS = ("specific→general", "general→specific", "other family")


#: the specific animal of each family kept out of fine-tuning: its kind is said only in the pretraining text
HELD_OUT_ANIMALS = tuple(specific[-1] for specific in FAMILIES.values())


def entailment_pairs(people: list[str], cities: list[str], groups: int, seed: int = 0,
                     animals: tuple[str, ...] | None = None) -> list[EntailmentPair]:
    """``groups`` groups of three pairs about ``people``: a frame filled with a specific animal (one of
    ``animals``, default all) and its general word in both orders, and with the specific animal and another
    family's general word."""
    if not people or groups < 1:
        raise InputError("entailment pairs need people and at least one group")
    family_of = {a: general for general, specific in FAMILIES.items() for a in specific}
    animals = tuple(animals) if animals is not None else tuple(family_of)
    if not animals or any(a not in family_of for a in animals):
        raise InputError(f"animals must be specific animals of FAMILIES, got {animals}")
    rng = random.Random(seed)
    generals = list(FAMILIES)
    out = []
    for group in range(groups):
        specific = rng.choice(animals)
        general = family_of[specific]
        other = rng.choice([g for g in generals if g != general])
        frame = rng.choice(FRAMES)
        fill = dict(P=rng.choice(people), C=rng.choice(cities), Q=rng.choice(people))
        for (first, second, label), kind in zip(((specific, general, 1), (general, specific, 0),
                                                 (specific, other, 0)), KINDS):
            out.append(EntailmentPair(frame.format(A=first, **fill), frame.format(A=second, **fill), label, kind,
                                      group))
    return out
