"""Symmetric regularization: each variant's scheme (classes, shares, the smoothed targets), one init for every
variant, the pair loss against soft targets, the order head's AUC, the entailment classifier and its scores, and
the bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kbench.data.story_world import KINDS, EntailmentPair, entailment_pairs, make_story_world
from kbench.errors import InputError, UnknownNameError
from kbench.models.symmetric import (VARIANT_NAMES, EntailmentClassifier, entailment_scores, pair_collate,
                                     pretrainer)
from kbench.sentence_pairs import document_corpus, follows_auc


@pytest.fixture(scope="module")
def world():
    return make_story_world((40, 10), 8, seed=0, kinds=True)


@pytest.fixture(scope="module")
def vocab(world):
    from kbench.profiles.structbert import story_vocabulary

    return str(story_vocabulary(world))


def test_variants_are_the_papers_schemes(vocab):
    models = {name: pretrainer(name, "tiny", vocab, seed=0, max_length=40) for name in VARIANT_NAMES}
    assert models["nsp"].scheme.classes == ("next", "random")
    assert models["pn"].scheme.relations == ("next", "previous", "random")
    assert len(models["pn5"].scheme.classes) == 5 and models["pn5"].seq_relationship.out_features == 5
    smooth = models["smooth"].scheme
    assert len(smooth.relations) == 5 and smooth.classes == ("next", "previous", "random")
    row = dict(zip(smooth.classes, smooth.targets[smooth.relations.index("previous_inadjacent")]))
    assert row == pytest.approx({"previous": 0.8, "next": 0.1, "random": 0.1})       # the paper's 0.8
    assert pretrainer("smooth", "tiny", vocab, epsilon=0.1).scheme.targets[3][0] == pytest.approx(0.9)   # the code's


def test_every_variant_starts_from_one_init(vocab):
    models = [pretrainer(name, "tiny", vocab, seed=4, max_length=40) for name in VARIANT_NAMES]
    reference = models[0].state_dict()
    for model in models[1:]:
        state = model.state_dict()
        shared = [k for k in state if state[k].shape == reference[k].shape]
        assert all(torch.equal(state[k], reference[k]) for k in shared)
        assert "pooler.dense.weight" in shared


def test_pair_loss_is_cross_entropy_against_the_relations_soft_target(vocab, world):
    model = pretrainer("smooth", "tiny", vocab, seed=0, max_length=40).eval()
    corpus = document_corpus(world.train, model.tokenizer, 40)
    batch = model.collate(corpus.sentences[:64])
    assert set(batch["pair_label"].tolist()) == set(range(5))                  # all five relations drawn
    with torch.no_grad():
        out = model(**batch)
    soft = torch.tensor([model.scheme.targets[i] for i in batch["pair_label"].tolist()])
    expected = torch.nn.functional.cross_entropy(out["pair_logits"], soft)     # torch's own soft-target loss
    assert torch.allclose(out["pair_loss"], expected, atol=1e-6)
    with torch.no_grad():                                                      # by hand: zero logits give ln 3
        model.seq_relationship.weight.zero_()
        model.seq_relationship.bias.zero_()
        assert model(**batch)["pair_loss"].item() == pytest.approx(math.log(3), abs=1e-6)


def test_follows_auc_reads_the_heads_next_class_on_a_pair_and_its_swap(vocab, world):
    model = pretrainer("pn", "tiny", vocab, seed=0, max_length=40)
    with torch.no_grad():                                   # a constant head: one answer for every pair
        model.seq_relationship.weight.zero_()
        model.seq_relationship.bias.copy_(torch.tensor([2.0, 0.0, 0.0]))
    assert follows_auc(model, world.test[:3]) == pytest.approx(0.5)
    place = {tuple(model.tokenizer(t)["input_ids"][1:-1]): i for doc in world.test[:3] for i, t in enumerate(doc)}

    class Reader(torch.nn.Module):                          # p(next) high exactly when A comes first in its life
        scheme, tokenizer = model.scheme, model.tokenizer

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seq_relationship = torch.nn.Identity()

        def pooled(self, input_ids, attention_mask=None, token_type_ids=None):
            rows = []
            for ids, types, mask in zip(input_ids.tolist(), token_type_ids.tolist(), attention_mask.tolist()):
                first = tuple(i for i, t, m in zip(ids, types, mask) if t == 0 and m)[1:-1]
                second = tuple(i for i, t, m in zip(ids, types, mask) if t == 1 and m)[:-1]
                rows.append([3.0, 0.0, 0.0] if place[first] < place[second] else [0.0, 3.0, 0.0])
            return None, torch.tensor(rows)

    assert follows_auc(Reader(), world.test[:3]) == pytest.approx(1.0)       # an order reader scores 1


def test_entailment_scores_count_a_pair_and_its_swap_together(vocab):
    pairs = entailment_pairs(["Kovi", "Dana"], ["Paris"], 10, seed=1)
    model = EntailmentClassifier(pretrainer("nsp", "tiny", vocab, seed=0, max_length=40))
    with torch.no_grad():                                   # always "entails"
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 3.0]))
    scores = entailment_scores(model, pairs)
    assert scores["specific→general"] == 1.0 and scores["general→specific"] == 0.0 and scores["swap"] == 0.0
    assert scores["all"] == pytest.approx(1 / 3) and set(KINDS) <= set(scores)


def test_the_classifier_reads_premise_then_hypothesis(vocab):
    pair = EntailmentPair("Kovi kept a poodle .", "Kovi kept a dog .", 1, KINDS[0], 0)
    swap = EntailmentPair(pair.hypothesis, pair.premise, 0, KINDS[1], 0)
    model = EntailmentClassifier(pretrainer("pn", "tiny", vocab, seed=0, max_length=40)).eval()
    batch = pair_collate(model.tokenizer)([pair, swap])
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"})["logits"]
    assert not torch.allclose(logits[0], logits[1])
    assert batch["token_type_ids"][0].sum() > 0 and batch["labels"].tolist() == [1, 0]


def test_a_fresh_classifier_head_starts_as_berts(vocab):
    model = EntailmentClassifier(pretrainer("nsp", "tiny", vocab, seed=0, max_length=40))
    weight = model.classifier.weight.detach().numpy()
    assert abs(weight.std() - 0.02) < 0.005 and np.all(model.classifier.bias.detach().numpy() == 0)


def test_bad_inputs_are_named(vocab):
    with pytest.raises(UnknownNameError, match="unknown variant"):
        pretrainer("nsp3", "tiny", vocab)
    with pytest.raises(InputError, match="epsilon"):
        pretrainer("smooth", "tiny", vocab, epsilon=1.5)
    with pytest.raises(InputError, match="no entailment pairs"):
        entailment_scores(EntailmentClassifier(pretrainer("nsp", "tiny", vocab)), [])
    with pytest.raises(InputError, match="no adjacent sentences"):
        follows_auc(pretrainer("nsp", "tiny", vocab), [["one sentence ."]])


def test_the_tested_animals_are_kept_out_of_fine_tuning_and_every_word_is_known():
    from kbench.data.story_world import HELD_OUT_ANIMALS
    from kbench.profiles.symmetric import setup

    s = setup("smoke", seed=0, people=(60, 20), train_groups=30, test_groups=30)
    animal = lambda pair: next(w for w in pair.premise.split() if w in
                               {a for kinds in __import__("kbench.data.story_world", fromlist=["FAMILIES"]).FAMILIES.values() for a in kinds})
    train, test = s.entailment
    assert {animal(p) for p in train if p.kind != "general→specific"}.isdisjoint(HELD_OUT_ANIMALS)
    assert {animal(p) for p in test if p.kind != "general→specific"} <= set(HELD_OUT_ANIMALS)
    assert not {(p.premise, p.hypothesis) for p in train} & {(p.premise, p.hypothesis) for p in test}
    tokenizer = pretrainer("nsp", "tiny", s.vocab).tokenizer
    ids = [i for p in train + test for text in (p.premise, p.hypothesis) for i in tokenizer(text)["input_ids"]]
    assert tokenizer.unk_token_id not in ids                               # the frames' words are in the vocabulary
    assert any("kind of" in t for doc in s.train_documents for t in doc)    # the kinds are in the pretraining text
