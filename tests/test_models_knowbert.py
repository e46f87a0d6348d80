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


def test_back_projection_inverts_the_affine_projection_on_its_row_space():
    """W2 (W1 h + b1) + b2 = P h, P the projection on W1's rows: the residual is in W1's null space (b1 != 0)."""
    for dim, hidden in ((32, 16), (8, 16)):
        module = kar(dim=dim, hidden=hidden)
        with torch.no_grad():
            module.project.bias.normal_()                  # a trained b1: the sign of b2 matters now
        module.initialise_back_projection()
        h = torch.randn(5, hidden)
        with torch.no_grad():
            back = module.back(module.project(h))
            residual = module.project.weight @ (h - back).T
        assert residual.abs().max() < 1e-4                 # with b2 = +W1^+ b1 it is 2 W1 W1^+ b1, not 0
        if dim >= hidden:                                  # W1 has full column rank: W2 W1 = I
            assert torch.allclose(back, h, atol=1e-4)
        else:
            assert (back - h).norm() > 0.1 * h.norm()      # narrower: only the row space comes back


def test_kar_is_not_a_pass_through_at_initialisation():
    """The docstring's number: hidden 384, entity dimension 64: |H' - H| / |H| is about 0.5."""
    torch.manual_seed(1)
    module = KnowledgeAttentionRecontextualization(384, torch.randn(50, 64), heads=4).eval()
    torch.manual_seed(0)
    states = torch.randn(4, 12, 384)
    ctx = context([[[1, 3], [5, 6]]] * 4, [[[0, 1, 2], [3, 4, -1]]] * 4, [[[0.5, 0.3, 0.2], [0.6, 0.4, 0]]] * 4)
    with torch.no_grad():
        out = module(states, ctx)
    change = ((out - states).norm(dim=-1) / states.norm(dim=-1)).mean().item()
    cosine = torch.nn.functional.cosine_similarity(out, states, dim=-1).mean().item()
    assert 0.3 < change < 0.8 and 0.7 < cosine < 0.95


def test_the_untrained_linker_is_near_uniform_and_the_head_starts_as_berts():
    """The score MLP's output layer is BERT's (N(0, 0.02), zero bias): each span's candidates share its mass evenly."""
    module = kar(dim=64, hidden=32)
    assert module.score[2].bias.abs().max() == 0 and abs(module.score[2].weight.std().item() - 0.02) < 0.01
    ctx = context([[[0, 2], [2, 4]]], [[[0, 1, 2, 3], [1, 2, -1, -1]]], [[[0.7, 0.1, 0.1, 0.1], [0.9, 0.1, 0, 0]]])
    module(torch.randn(1, 5, 32) * 3, ctx)
    probabilities = ctx["linker_probabilities"][0]
    assert (probabilities[0, :4] * 4 - 1).abs().max() < 0.15 and (probabilities[1, :2] * 2 - 1).abs().max() < 0.15
    head = classifier()
    assert head.dense.bias.abs().max() == 0 and abs(head.dense.weight.std().item() - 0.02) < 0.005


def test_null_embedding_enters_the_weighted_sum_only_for_spans_with_no_candidate_above_threshold():
    states = torch.randn(1, 4, 16)
    ctx = lambda: context([[[0, 2]]], [[[0, 1]]], [[[0.5, 0.5]]])
    for threshold, moves in ((1e6, True), (None, False)):
        module = kar(threshold=threshold)
        before = module(states, ctx())
        with torch.no_grad():
            module.null.add_(torch.randn(8))             # not a constant shift: the LayerNorm would remove it
        after = module(states, ctx())
        assert (not torch.allclose(before, after, atol=1e-6)) == moves


def test_word_to_span_attention_ignores_padded_spans_and_rows_with_no_span():
    from transformers import BertConfig

    torch.manual_seed(0)
    layer = knowbert.WordToSpanAttention(BertConfig(hidden_size=8, num_attention_heads=2, intermediate_size=16)).eval()
    tokens, spans = torch.randn(2, 3, 8), torch.randn(2, 2, 8)
    mask = torch.tensor([[True, False], [False, False]])     # row 0: one real span and a pad; row 1: none
    out, attention = layer(tokens, spans, mask)
    assert torch.allclose(attention[0, :, :, 0], torch.ones(2, 3)) and attention[0, :, :, 1].eq(0).all()
    assert attention[1].eq(0).all()
    changed = spans.clone()
    changed[0, 1] += 5.0                                     # the pad
    changed[1] += 5.0                                        # every slot of the span-less row
    assert torch.allclose(layer(tokens, changed, mask)[0], out, atol=1e-6)
    changed[0, 0] += 5.0                                     # the real span does matter
    assert not torch.allclose(layer(tokens, changed, mask)[0][0], out[0], atol=1e-4)


def test_linker_loss_is_the_nll_of_the_gold_candidate_by_hand():
    module = kar()
    ctx = context([[[0, 1], [1, 3]], [[2, 3], [-1, -1]]], [[[0, 1, 2], [3, -1, -1]], [[1, 2, -1], [-1, -1, -1]]],
                  [[[0.5, 0.3, 0.2], [1.0, 0, 0]], [[0.6, 0.4, 0], [0, 0, 0]]], gold=[[2, -100], [1, -100]])
    module(torch.randn(2, 4, 16), ctx)
    scores = ctx["linking_scores"].tolist()
    nll = []
    for row, span, valid, gold in ((0, 0, 3, 2), (1, 0, 2, 1)):   # mentions with a gold candidate only
        values = scores[row][span][:valid]
        nll.append(math.log(sum(math.exp(v) for v in values)) - values[gold])
    assert ctx["linker_loss"].item() == pytest.approx(sum(nll) / 2, abs=1e-5)


def test_knowledge_reaches_the_logits():
    """The notebook's configuration (KAR after the last layer): other candidate entities, other logits."""
    model = classifier().eval()
    batch = model.collate(list(model.dataset([words_and_mentions()])))
    other = dict(batch, candidates=torch.where(batch["candidates"] >= 0, 3 - batch["candidates"], batch["candidates"]))
    with torch.no_grad():
        assert (model(**batch)["logits"] - model(**other)["logits"]).abs().max() > 1e-4


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
    assert out["logits"].shape == (2, 2) and out["linking_scores"].shape == (2, 2, 2)
    task = torch.nn.functional.cross_entropy(out["logits"], batch["labels"])
    assert out["loss"].item() > task.item()                     # the linker's NLL is added
    unsupervised = classifier(linker_weight=0.0)
    out = unsupervised(**batch)
    assert out["loss"].item() == pytest.approx(torch.nn.functional.cross_entropy(out["logits"], batch["labels"]).item())
    plain = classifier(kar_layer=None)
    assert plain.kar is None and "linking_scores" not in plain(**batch)


def scores_from_the_prior(model, sign):
    """Make the linker's MLP score = prior (sign +1) or 1 - prior (sign -1): a linker whose accuracy we know."""
    first, last = model.kar.score[0], model.kar.score[2]
    with torch.no_grad():
        for layer in (first, last):
            layer.weight.zero_(), layer.bias.zero_()
        first.weight[0, 1], first.bias[0], last.weight[0, 0] = sign, (1.0 if sign < 0 else 0.0), 1.0


def test_linker_accuracy_counts_gold_hits():
    model = classifier()
    data = model.dataset([words_and_mentions()])            # gold: cat.n.02 (prior 0.2), hat.n.01 (alone)
    scores_from_the_prior(model, +1)
    assert linker_accuracy(model, data) == pytest.approx(0.5) == prior_accuracy(data)
    scores_from_the_prior(model, -1)
    assert linker_accuracy(model, data) == pytest.approx(1.0)


def test_link_returns_the_choice_and_none_for_null():
    words, mentions = words_and_mentions()
    model = classifier()
    scores_from_the_prior(model, -1)
    linked = knowbert.link(model, words, mentions)
    assert [m.chosen for m in linked] == ["cat.n.02", "hat.n.01"]
    assert linked[0].candidates[1].score == pytest.approx(0.8) and linked[0].candidates[0].score == pytest.approx(0.2)
    null = classifier(threshold=1e6)
    assert [(m.chosen, m.score) for m in knowbert.link(null, words, mentions)] == [(None, 1.0), (None, 1.0)]


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


def test_citation_is_the_papers_first_page():
    assert knowbert.CITATION["authors"].split(", ") == ["Matthew E. Peters", "Mark Neumann", "Robert L. Logan IV",
                                                         "Roy Schwartz", "Vidur Joshi", "Sameer Singh", "Noah A. Smith"]
    assert knowbert.CITATION["year"] == 2019 and knowbert.NOTEBOOK == "02_knowbert"
    assert [v.name for v in knowbert.VARIANTS] == ["bert", "knowbert", "knowbert_no_link"]
    assert knowbert.VARIANTS[2].options == {"linker_weight": 0.0}


def test_profiles_are_data_and_the_smoke_setup_loads():
    from kbench.errors import UnknownNameError
    from kbench.profiles import knowbert as profile

    assert set(profile.CHOICES) == {"smoke", "full"} and profile.CHOICES["smoke"].keys() == profile.CHOICES["full"].keys()
    assert profile.CHOICES["smoke"]["probe_relation"] == "comes from" and profile.CHOICES["full"]["probe_relation"] == "hypernym"
    kit = profile.setup("smoke", seed=1, epochs=3)
    (train, train_labels), _, (test, test_labels) = kit.splits
    assert kit.config.epochs == 3 and kit.config.seed == 1 and kit.options["layers"] == 2
    assert len(train) == len(train_labels) == 240 and len(test) == 160
    assert kit.gold()[0] == [test[0][1][0].chosen] and kit.facts[kit.gold()[0][0]] in test[0][0]   # the occupation
    assert 0.0 < kit.prior_accuracy(2) < 0.3 and kit.majority() >= 1 / len(kit.labels)
    assert len(kit.probe) == 240 and {r for _, r, _ in kit.probe} == {"comes from"}
    assert kit.probe != sorted(kit.probe, key=list(kit.kg).index)                    # a random sample, not the first N
    with pytest.raises(UnknownNameError):
        profile.setup("huge")
    with pytest.raises(InputError, match="not a choice"):
        profile.setup("smoke", hidden=3)


def test_the_positive_control_keeps_only_the_gold_candidate():
    from kbench.profiles.knowbert import setup

    kit = setup("smoke", seed=0)
    gold_only = kit.gold_only()
    assert [labels for _, labels in gold_only] == [list(labels) for _, labels in kit.splits]
    many = sum(len(m.candidates) > 1 for _, found in kit.splits[0][0] for m in found)
    assert many > 0   # the real candidates are ambiguous, so the control changes what the linker sees
    for (texts, _), (original, _) in zip(gold_only, kit.splits):
        for (words, found), (original_words, original_found) in zip(texts, original):
            assert words == original_words
            assert [(m.start, m.end, m.chosen) for m in found] == [(m.start, m.end, m.chosen) for m in original_found]
            assert all(m.entities == [m.chosen] and m.priors == [1.0] for m in found)
    assert knowbert.HEADLINE.positive.left == f"{knowbert.GOLD_ONLY.name}_test_accuracy"
