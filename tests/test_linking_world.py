"""The linking world: ambiguous aliases, gold links, typed relations, and no label in the text."""
from __future__ import annotations

import pytest

from kbench.data import make_linking_world
from kbench.errors import InputError


@pytest.fixture(scope="module")
def world():
    return make_linking_world(seed=3)


def test_deterministic_and_person_disjoint(world):
    again = make_linking_world(seed=3)
    assert [e.words for e in again.test] == [e.words for e in world.test] and list(again.kg) == list(world.kg)
    people = [{e.mention.chosen for e in split} for split in (world.train, world.dev, world.test)]
    assert not (people[0] & people[1]) and not (people[0] & people[2]) and not (people[1] & people[2])
    assert (len(world.train), len(world.dev), len(world.test)) == (240, 80, 160)


def test_every_mention_is_ambiguous_and_the_gold_person_is_a_candidate(world):
    for example in world.train + world.dev + world.test:
        mention = example.mention
        assert example.words[mention.start] == mention.text and len(mention.candidates) >= 2
        assert mention.chosen in mention.entities and abs(sum(mention.priors) - 1) < 1e-9
        assert ("family name", mention.text) in world.kg.lookup(mention.chosen)


def test_priors_help_but_never_decide(world):
    """Priors come from a reference corpus, not from the splits: informative, far from enough, alike everywhere."""
    for split in ("train", "test"):
        assert 0.1 < world.prior_accuracy(split) < 0.5


def test_the_label_is_a_kg_fact_the_sentence_never_names(world):
    continent = {s: o for s, p, o in world.kg if p == "part of"}
    for example in world.train + world.test:
        facts = dict(world.kg.lookup(example.mention.chosen))
        assert world.labels[example.label] == continent[facts["born in"]]
        assert facts["born in"] not in example.words and facts["works as"] in example.words
        start, end, entity = example.other
        assert example.words[start:end] == [entity] and facts[example.relation] == entity


def test_context_always_tells_the_candidates_apart(world):
    for example in world.test:
        occupations = [dict(world.kg.lookup(c.entity))["works as"] for c in example.mention.candidates]
        assert len(set(occupations)) == len(occupations)


def test_bad_sizes():
    with pytest.raises(InputError, match="at least 30 families"):
        make_linking_world(families=29)
    with pytest.raises(InputError):
        make_linking_world(people=(0, 1, 1))
    with pytest.raises(InputError):
        make_linking_world(families=0)


@pytest.mark.parametrize("seed", [0, 3])
def test_no_sentence_repeats_within_or_across_splits(seed):
    """Each sentence is one distinct case: a repeated test sentence would be counted twice."""
    world = make_linking_world(seed=seed)
    texts = [" ".join(e.words) for split in (world.train, world.dev, world.test) for e in split]
    assert len(texts) == len(set(texts)) == 480


def test_more_sentences_per_person_than_frames_is_an_error():
    with pytest.raises(InputError, match="sentences_per_person"):
        make_linking_world(sentences_per_person=5)
