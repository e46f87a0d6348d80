"""KnowBert's KAR: each equation's shape and masking, a hand-computed linker, NULL, linking, bad input."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.models import knowbert
from kbench.models.knowbert import (KnowBertClassifier, KnowledgeAttentionRecontextualization, linker_accuracy,
                                    linker_probabilities, prior_accuracy)
from kbench.text import Candidate, LinkedMention

ENTITIES = ["cat.n.01", "cat.n.02", "hat.n.01", "dog.n.01"]


def kar(dim=8, hidden=16, **kw):
    torch.manual_seed(0)
    return KnowledgeAttentionRecontextualization(hidden, torch.randn(len(ENTITIES), dim), heads=2, **kw).eval()


def context(spans, candidates, priors, gold=None):
    return {"spans": torch.tensor(spans), "candidates": torch.tensor(candidates),
            "priors": torch.tensor(priors, dtype=torch.float), "gold": None if gold is None else torch.tensor(gold)}


def test_shapes_and_what_is_left_in_the_context():
    module, states = kar(), torch.randn(2, 5, 16)
    ctx = context([[[1, 3], [4, 5]], [[0, 1], [-1, -1]]], [[[0, 1], [2, -1]], [[3, -1], [-1, -1]]],
                  [[[0.7, 0.3], [1.0, 0]], [[1.0, 0], [0, 0]]], gold=[[0, 0], [0, -100]])
    out = module(states, ctx)
    assert out.shape == states.shape and torch.isfinite(out).all()
    assert ctx["linking_scores"].shape == (2, 2, 2) and ctx["linker_probabilities"].shape == (2, 2, 3)
    assert ctx["word_to_span_attention"].shape == (2, 2, 5, 2)
    assert ctx["linking_scores"][0, 1, 1] == knowbert.MASKED and ctx["linking_scores"][1, 1].eq(knowbert.MASKED).all()
    assert torch.isfinite(ctx["linker_loss"])


def test_span_pooling_reads_only_the_span():
    module = kar()
    projected = torch.randn(1, 6, 8)
    pooled = module.pool_spans(projected, torch.tensor([[[2, 4]]]))
    changed = projected.clone()
    changed[0, [0, 1, 4, 5]] += 10.0
    assert torch.allclose(module.pool_spans(changed, torch.tensor([[[2, 4]]])), pooled)
    weights = torch.softmax(module.span_attention(projected[0, 2:4]).squeeze(-1), 0)
    assert torch.allclose(pooled[0, 0], weights @ projected[0, 2:4], atol=1e-6)


def test_linker_score_by_hand():
    """psi = MLP([s . e / sqrt(d), prior]) with the entity vectors LayerNormed (Eq. 3)."""
    module = kar()
    states = torch.randn(1, 4, 16)
    ctx = context([[[1, 2]]], [[[0, 2]]], [[[0.9, 0.1]]])
    module(states, ctx)
    projected = module.project(states)
    span = module.span_encoder(module.span_norm(module.pool_spans(projected, ctx["spans"])),
                               torch.ones(1, 1, 1, 1, dtype=torch.bool))
    entities = module.kg_norm(module.entities[[0, 2]])
    for k, prior in enumerate([0.9, 0.1]):
        raw = float((span[0, 0] @ entities[k]).detach()) / math.sqrt(8)
        expected = module.score(torch.tensor([raw, prior]))
        assert ctx["linking_scores"][0, 0, k].item() == pytest.approx(expected.item(), abs=1e-5)


def test_threshold_sends_a_span_to_the_learned_null_embedding():
    module = kar(threshold=1e6)                     # no candidate can reach it
    ctx = context([[[0, 2]]], [[[0, 1]]], [[[0.5, 0.5]]])
    module(torch.randn(1, 3, 16), ctx)
    assert ctx["linker_probabilities"][0, 0].tolist() == [0.0, 0.0, 1.0]


@given(st.lists(st.floats(-20, 20), min_size=1, max_size=6), st.lists(st.booleans(), min_size=6, max_size=6),
       st.one_of(st.none(), st.floats(-5, 5)))
def test_linker_probabilities_over_candidates_plus_null_sum_to_one(scores, valid, threshold):
    scores = torch.tensor(scores)
    mask = torch.tensor(valid[:len(scores)])
    probabilities = linker_probabilities(scores, mask, threshold)
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (probabilities[:-1][~mask] == 0).all() and (probabilities >= 0).all()


def test_back_projection_starts_as_the_pseudo_inverse():
    module = kar(dim=32, hidden=16)                 # entity dim >= hidden: W2 W1 = I exactly
    h = torch.randn(3, 16)
    assert torch.allclose(module.back(module.project(h)), h, atol=1e-4)
    narrow = kar(dim=8, hidden=16)                  # smaller: the least-squares inverse, still defined
    assert torch.isfinite(narrow.back.weight).all()


def words_and_mentions():
    words = "the cat sat on the hat".split()
    return words, [LinkedMention(1, 2, "cat", [Candidate("cat.n.01", 0.8), Candidate("cat.n.02", 0.2)], "cat.n.02"),
                   LinkedMention(5, 6, "hat", [Candidate("hat.n.01", 1.0)], "hat.n.01")]


def classifier(**kw):
    return KnowBertClassifier(2, torch.randn(len(ENTITIES), 8), {e: i for i, e in enumerate(ENTITIES)}, "tiny",
                              heads=2, **kw)


def test_classifier_moves_spans_onto_word_pieces_and_trains():
    model = classifier()
    data = model.dataset([words_and_mentions()] * 2, [0, 1])
    example = data[0]
    assert example.spans.tolist() == [[2, 3], [6, 7]]             # +1 for [CLS]
    assert example.candidates.tolist() == [[0, 1], [2, -1]] and example.gold.tolist() == [1, 0]
    assert prior_accuracy(data) == pytest.approx(0.5)
    batch = model.collate(list(data))
    out = model(**batch)
    assert out["logits"].shape == (2, 2) and out["linking_scores"].shape == (2, 2, 2) and torch.isfinite(out["loss"])
    assert 0.0 <= linker_accuracy(model, data) <= 1.0
    plain = classifier(kar_layer=None)
    assert plain.kar is None and "linking_scores" not in plain(**batch)


def test_without_kar_it_is_the_encoder_itself():
    model = classifier(kar_layer=None).eval()
    batch = model.collate(list(model.dataset([words_and_mentions()])))
    bert = model.encoder.bert
    with torch.no_grad():
        ours = model.encoder(batch["input_ids"], batch["attention_mask"])
        theirs = bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    assert torch.equal(ours, theirs)


def test_bad_input():
    model = classifier()
    words, mentions = words_and_mentions()
    with pytest.raises(InputError, match="out of range"):
        model.example(words, [LinkedMention(5, 9, "hat", [Candidate("hat.n.01", 1.0)])])
    with pytest.raises(InputError, match="not in the embedding table"):
        model.example(words, [LinkedMention(1, 2, "cat", [Candidate("cat.n.99", 1.0)])])
    with pytest.raises(InputError, match="empty candidate list"):
        model.example(words, [LinkedMention(1, 2, "cat", [])])
    with pytest.raises(InputError, match="not a layer"):
        classifier(kar_layer=5)
    with pytest.raises(InputError, match="divisible"):
        KnowledgeAttentionRecontextualization(16, torch.randn(4, 6), heads=4)
    with pytest.raises(InputError, match="nothing links"):
        linker_accuracy(classifier(kar_layer=None), model.dataset([(words, mentions)]))


def test_citation_is_declared():
    assert knowbert.CITATION["year"] == 2019 and knowbert.NOTEBOOK == "02_knowbert"
