"""WordNet 3.0 from Debian's files through NLTK: relations as triples, candidates with priors, examples."""
from __future__ import annotations

import pytest

from kbench.errors import DataError, InputError
from kbench.kg.wordnet import (LEXNAMES, lemma_candidates, load_wordnet, prepare_wordnet, sense_examples, supersense,
                               wordnet_kg)


@pytest.fixture(scope="module")
def wordnet(tmp_path_factory):
    return load_wordnet(str(tmp_path_factory.mktemp("wordnet-data")))


def test_the_45_lexicographer_files(wordnet, tmp_path):
    assert len(LEXNAMES) == 45 and LEXNAMES[5] == "noun.animal" and LEXNAMES[44] == "adj.ppl"
    assert supersense(wordnet, "dog.n.01") == "noun.animal" and supersense(wordnet, "run.v.01") == "verb.motion"
    with pytest.raises(InputError, match="no synset"):
        supersense(wordnet, "dog.n.99")


def test_relations_as_triples(wordnet):
    kg = wordnet_kg(wordnet, pos="n", limit=3000)
    assert ("entity.n.01", "hypernym", "physical_entity.n.01") not in set(kg)   # hypernym points up
    assert ("physical_entity.n.01", "hypernym", "entity.n.01") in set(kg)
    assert {p for _, p, _ in kg} >= {"hypernym", "part_meronym"}
    with pytest.raises(InputError, match="unknown WordNet relation"):
        wordnet_kg(wordnet, relations=["cousins"])
    with pytest.raises(InputError, match="part of speech"):
        wordnet_kg(wordnet, pos="x")


def test_candidates_through_morphy_with_smoothed_sense_counts(wordnet):
    candidates = lemma_candidates(wordnet, "banks")
    assert candidates[0].entity == "bank.n.01" and len(candidates) == 19   # 10 noun + 8 verb senses + banks.n.01
    counts = {lemma.synset().name(): lemma.count() for pos in "nv" for lemma in wordnet.lemmas("bank", pos)}
    total = sum(count + 1 for count in counts.values()) + 1                # banks.n.01 (count 0)
    assert candidates[0].prior == pytest.approx((counts["bank.n.01"] + 1) / total)
    assert sum(c.prior for c in candidates) == pytest.approx(1.0)
    assert lemma_candidates(wordnet, "ran", "v")[0].entity == "run.v.01"
    with pytest.raises(InputError, match="does not know 'qwxzy'"):
        lemma_candidates(wordnet, "qwxzy")
    with pytest.raises(InputError):
        lemma_candidates(wordnet, "  ")


def test_wordnets_own_examples_are_sense_labelled_text(wordnet):
    examples = list(sense_examples(wordnet, pos="v", limit=300))
    assert len(examples) == 300
    for example in examples:
        assert 0 <= example.start < example.end <= len(example.words)
        assert example.supersense.startswith("verb.") and example.synset.split(".")[1] == "v"
    assert len(list(sense_examples(wordnet, pos="n", limit=5))) == 5


def test_missing_wordnet_says_what_to_install(tmp_path):
    with pytest.raises(DataError, match="apt-get install wordnet-base wordnet-sense-index"):
        prepare_wordnet(tmp_path / "data", source=tmp_path / "nowhere")


def test_supersense_task_is_split_by_synset_with_linked_mentions(wordnet):
    from kbench.data.supersenses import supersense_task
    from kbench.kg.wordnet import neighbourhood_kg

    task = supersense_task(wordnet, limit=60, seed=1)
    splits = [task.train, task.dev, task.test]
    assert sum(map(len, splits)) == 60 and all(splits)
    senses = [{mentions[0].chosen for (_, mentions), _ in split} for split in splits]
    assert not (senses[0] & senses[2]) and not (senses[0] & senses[1]) and not (senses[1] & senses[2])
    for (words, [mention]), label in task.train:
        assert words[mention.start - 1] == words[mention.end] == '"' and mention.chosen in mention.entities
        assert task.labels[label] == supersense(wordnet, mention.chosen) and task.labels[label][:4] in ("noun", "verb")
    graph = neighbourhood_kg(wordnet, task.synsets)
    assert set(task.synsets) <= {s for s, _, _ in graph}
    with pytest.raises(InputError, match="at least 10"):
        supersense_task(wordnet, limit=5)


def test_base_forms_through_public_calls_match_nltks_private_morphy(wordnet):
    """Every base form NLTK's private ``_morphy`` finds, in its order, for the words of 2,000 WordNet examples."""
    import inspect

    from kbench.kg import wordnet as module
    from kbench.kg.wordnet import base_forms

    assert "._morphy(" not in inspect.getsource(module)            # the private call is gone
    assert base_forms(wordnet, "banks", "n") == ["banks", "bank"]   # public morphy() gives "banks" alone
    assert base_forms(wordnet, "axes", "n") == ["ax", "axis"]       # irregular: noun.exc
    assert base_forms(wordnet, "found", "v") == ["found", "find"]
    words = sorted({w.lower() for e in sense_examples(wordnet, limit=2000) for w in e.words if w.isalpha()})
    assert len(words) > 3000
    for word in words:
        for part in "nvar":
            assert base_forms(wordnet, word, part) == list(dict.fromkeys(wordnet._morphy(word, part))), (word, part)
    with pytest.raises(InputError, match="part of speech"):
        base_forms(wordnet, "bank", "x")
