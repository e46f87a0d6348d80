"""KEPLER (``kbench.models.kepler``, ``kbench.kg.described``): score, loss, negatives, splits, the joint model."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.pretrain import build_corpus
from kbench.kg.described import DescribedKG, answer_named, ke_split
from kbench.models.kepler import (GAMMA, Kepler, NegativeSampler, best_offsets, entity_embeddings, evaluate_links,
                                  ke_loss, link_prediction, mean_offsets, median_offsets, pretrainer, transe_distance)


@pytest.fixture(scope="module")
def smoke():
    from kbench.profiles.kepler import setup

    return setup("smoke", seed=0)


@pytest.fixture(scope="module")
def models(smoke):
    make = lambda objective: pretrainer(smoke.described, smoke.split.train, smoke.base_model, objective, seed=0,
                                        vocab=smoke.vocab, ke_batch_size=4, max_length=24)
    return make("mlm"), make("kepler")


# --- score and loss against the hand formula ----------------------------------------------------------------

def test_distance_is_the_hand_norm():
    h, r, t = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0]), torch.tensor([0.0, 3.0])
    # h + r - t = (1.5, -2.0)
    assert float(transe_distance(h, r, t, 1)) == pytest.approx(3.5)
    assert float(transe_distance(h, r, t, 2)) == pytest.approx(2.5)
    with pytest.raises(InputError, match="norm"):
        transe_distance(h, r, t, 3)


@pytest.mark.parametrize("norm", [1, 2])
def test_distance_is_the_same_metric_as_pykeens_transe(norm):
    from pykeen.nn.modules import TransEInteraction

    torch.manual_seed(norm)
    h, r, t = torch.randn(3, 5, 8).unbind(0)
    assert torch.allclose(transe_distance(h, r, t, norm), -TransEInteraction(p=norm)(h, r, t), atol=1e-5)


def test_ke_loss_is_the_papers_formula():
    positive = torch.tensor([1.0, 5.0])
    negative = torch.tensor([[6.0, 3.0], [2.0, 8.0]])
    s = lambda x: 1 / (1 + math.exp(-x))
    rows = [-math.log(s(GAMMA - 1.0)) - (math.log(s(6.0 - GAMMA)) + math.log(s(3.0 - GAMMA))) / 2,
            -math.log(s(GAMMA - 5.0)) - (math.log(s(2.0 - GAMMA)) + math.log(s(8.0 - GAMMA))) / 2]
    assert float(ke_loss(positive, negative)) == pytest.approx(sum(rows) / 2, rel=1e-6)
    # the loss falls as the positive gets closer and the negatives farther
    assert ke_loss(positive - 0.5, negative) < ke_loss(positive, negative) < ke_loss(positive, negative - 0.5)
    with pytest.raises(InputError):
        ke_loss(positive, torch.zeros(2, 0))


def test_direction_matters():
    h, r, t = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([2.0, 1.0])
    assert float(transe_distance(h, r, t)) == 0.0
    assert float(transe_distance(t, r, h)) > 0.0           # (t, r, h) is not (h, r, t)
    vectors = torch.stack([h, t, torch.tensor([5.0, 5.0])])
    forward = link_prediction(vectors, ["a", "b", "c"], r[None], ["r"], [("a", "r", "b")])
    backward = link_prediction(vectors, ["a", "b", "c"], r[None], ["r"], [("b", "r", "a")])
    assert forward["mrr"] == 1.0 and backward["mrr"] < 1.0


# --- filtered negatives -------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from(["head", "tail"]))
def test_negatives_are_never_known_triples(seed, side):
    entities = [f"e{i}" for i in range(6)]
    known = {("e0", "r", f"e{i}") for i in range(1, 5)} | {(f"e{i}", "r", "e1") for i in range(2, 6)}
    sampler = NegativeSampler(entities, known)
    rng = np.random.default_rng(seed)
    for triple in sorted(known):
        replacement = sampler.corrupt(triple, side, rng)
        made = (replacement, triple[1], triple[2]) if side == "head" else (triple[0], triple[1], replacement)
        assert made not in known and replacement != (triple[0] if side == "head" else triple[2])


def test_negatives_without_any_choice_raise():
    sampler = NegativeSampler(["a", "b"], {("a", "r", "b"), ("b", "r", "b")})
    with pytest.raises(InputError, match="nothing to corrupt"):
        sampler.corrupt(("a", "r", "b"), "head", np.random.default_rng(0))


def test_collator_negatives_are_filtered_and_mlm_batches_equal_plain_mlms(models):
    mlm, kepler = models
    sentences = [s for s in build_corpus(
        ["Tokyo is a city .", "Paris lies in France .", "a pilot flies planes ."], mlm.tokenizer).sentences]
    plain, joint = mlm.collate(sentences), kepler.collate(sentences)
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(plain[key], joint[key])           # the same masks: only the objective differs
    data = kepler.collate.data
    known = set(data.triples)
    for step in range(20):
        batch = kepler.collate.ke_batch()
        ids = batch["ke_ids"]
        by_ids = {tuple(v.tolist()): e for e, v in data.descriptions.items()}
        rows = [by_ids[tuple(row[row != 0].tolist())] for row in ids]
        for (head, tail), negatives, relation in zip(zip(batch["ke_heads"], batch["ke_tails"]),
                                                     batch["ke_negatives"], batch["ke_relations"]):
            assert (rows[head], data.relations[relation], rows[tail]) in known
            for h, t in negatives.tolist():
                assert (rows[h], data.relations[relation], rows[t]) not in known


# --- the inductive split ------------------------------------------------------------------------------------

def test_inductive_split_keeps_unseen_entities_out_of_training(smoke):
    split = smoke.split
    trained = set(split.train_entities)
    unseen = set(split.unseen)
    assert unseen and not unseen & trained
    assert all(h in unseen or t in unseen for h, _, t in split.inductive)
    assert all(h in trained and t in trained for h, _, t in split.transductive)
    assert not set(split.train) & set(split.transductive) and not set(split.train) & set(split.inductive)
    # no description of an unseen entity reaches the KE training data
    model = pretrainer(smoke.described, split.train, smoke.base_model, "kepler", vocab=smoke.vocab, max_length=24)
    assert not unseen & set(model.collate.data.descriptions)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000))
def test_split_is_disjoint_for_any_seed(seed, smoke):
    split = ke_split(smoke.described, 0.15, 0.1, seed)
    assert not set(split.unseen) & set(split.train_entities)
    assert len(split.train) + len(split.transductive) + len(split.inductive) == len(smoke.described.triples)


def test_world_descriptions_state_facts_and_every_entity_has_one(smoke):
    kg = smoke.described
    born = {h: t for h, r, t in kg.triples if r == "born in"}
    person = next(iter(born))
    assert born[person] in kg.descriptions[person]
    assert set(kg.descriptions) >= set(kg.entities)
    texts = {t.lower() for t in smoke.texts}
    assert not texts & {d.lower() for d in kg.descriptions.values()}     # MLM text is separate text
    # nor does any MLM text contain a description's sentence (without its final full stop)
    bodies = {d.lower().rstrip(" .") for d in kg.descriptions.values()}
    assert not any(body in text for text in texts for body in bodies)


def test_mlm_text_states_no_test_fact_and_names_no_unseen_entity(smoke):
    import re

    split = smoke.split
    written = lambda name, text: re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", text.lower())
    unseen = set(split.unseen)
    assert not [t for t in smoke.texts if any(written(u, t) for u in unseen)]
    assert not [item for item in smoke.probe if any(written(u, item.statement) for u in unseen)]
    # a transductive test fact is written in no MLM sentence (unless a training fact links the same two entities)
    linked = {frozenset((h, t)) for h, _, t in split.train}
    for head, _, tail in split.transductive:
        if frozenset((head, tail)) not in linked:
            assert not [t for t in smoke.texts if written(head, t) and written(tail, t)], (head, tail)


def test_answer_named_is_a_whole_word_in_the_other_description():
    kg = DescribedKG("t", [("ann", "born in", "lyon"), ("bob", "born in", "lyon"), ("cat", "is a", "dog.n.01")],
                     {"ann": "Ann is a teacher born in Lyon .", "bob": "Bob likes the Lyonnais .", "lyon": "a city .",
                      "cat": "a small domestic animal .", "dog.n.01": "dog, domestic dog: a member of the genus"},
                     {"dog.n.01": ["dog", "domestic dog"]})
    assert answer_named(kg, ("ann", "born in", "lyon"))
    assert not answer_named(kg, ("bob", "born in", "lyon"))          # "Lyonnais" is not "Lyon"
    assert not answer_named(kg, ("cat", "is a", "dog.n.01"))
    kg.descriptions["cat"] = "a small domestic dog ."                 # an alias of the answer, written
    assert answer_named(kg, ("cat", "is a", "dog.n.01"))


def test_missing_description_is_a_named_error():
    with pytest.raises(InputError, match="'b' has no description"):
        DescribedKG("t", [("a", "r", "b")], {"a": "an a ."})
    with pytest.raises(InputError, match="has no description"):
        DescribedKG("t", [("a", "r", "b")], {"a": "an a .", "b": "  "})


def test_bad_objective_and_norm(smoke):
    with pytest.raises(InputError, match="unknown objective"):
        pretrainer(smoke.described, smoke.split.train, smoke.base_model, "transe", vocab=smoke.vocab)
    with pytest.raises(InputError, match="norm"):
        pretrainer(smoke.described, smoke.split.train, smoke.base_model, "kepler", vocab=smoke.vocab, norm=3)


# --- the joint model ------------------------------------------------------------------------------------------

def test_same_init_and_the_loss_is_mlm_plus_ke(models):
    mlm, kepler = models
    for (name, a), b in zip(mlm.bert.state_dict().items(), kepler.bert.state_dict().values()):
        assert torch.equal(a, b), name
    torch.manual_seed(0)
    batch = kepler.collate([s for s in build_corpus(
        ["Tokyo is a city in Japan .", "Paris lies in France ."], kepler.tokenizer).sentences])
    kepler.eval()
    out = kepler(**batch)
    assert float(out["loss"]) == pytest.approx(float(out["mlm_loss"] + out["ke_loss"]), rel=1e-6)
    # L_KE by hand: entity states, L1 distances and the log-sigmoid sums written out, not the module's ke_loss
    with torch.no_grad():
        states = kepler.bert(input_ids=batch["ke_ids"], attention_mask=batch["ke_mask"]).last_hidden_state[:, 0]
        table = kepler.relation_embeddings.weight
    log_sigmoid = lambda x: -math.log1p(math.exp(-x))
    rows = []
    for i in range(len(batch["ke_heads"])):
        r = table[batch["ke_relations"][i]]
        d = float((states[batch["ke_heads"][i]] + r - states[batch["ke_tails"][i]]).abs().sum())
        negatives = [float((states[h] + r - states[t]).abs().sum()) for h, t in batch["ke_negatives"][i].tolist()]
        rows.append(-log_sigmoid(GAMMA - d) - sum(log_sigmoid(n - GAMMA) for n in negatives) / len(negatives))
    assert float(out["ke_loss"]) == pytest.approx(sum(rows) / len(rows), rel=1e-5)
    kepler.train()


def test_ke_pass_runs_without_dropout_and_mlm_keeps_it(smoke):
    make = lambda **kw: pretrainer(smoke.described, smoke.split.train, smoke.base_model, "kepler", seed=0,
                                   vocab=smoke.vocab, ke_batch_size=4, max_length=24, **kw)
    kepler, authors = make(), make(ke_dropout=True)
    batch = kepler.collate.ke_batch()
    kepler.train()
    authors.train()
    with torch.no_grad():
        first, second = (kepler.entity_states(batch["ke_ids"], batch["ke_mask"]) for _ in range(2))
        assert torch.equal(first, second) and kepler.training and kepler.lm.training   # mode restored
        a, b = (authors.entity_states(batch["ke_ids"], batch["ke_mask"]) for _ in range(2))
        assert not torch.allclose(a, b)                                                 # the authors' way: dropout
        # the MLM pass still has dropout
        assert not torch.allclose(kepler.hidden(batch["ke_ids"], batch["ke_mask"]),
                                  kepler.hidden(batch["ke_ids"], batch["ke_mask"]))


def test_the_description_reaches_the_entity_vector_and_the_loss(models, smoke):
    _, kepler = models
    kepler.eval()
    batch = kepler.collate.ke_batch()
    base = kepler.ke_distances(**batch)[0]
    changed = dict(batch)
    ids = batch["ke_ids"].clone()
    ids[0, 1] = kepler.tokenizer.convert_tokens_to_ids("tokyo")  if ids[0, 1] != kepler.tokenizer.convert_tokens_to_ids(
        "tokyo") else kepler.tokenizer.convert_tokens_to_ids("paris")
    changed["ke_ids"] = ids
    after = kepler.ke_distances(**changed)[0]
    touched = (batch["ke_heads"] == 0) | (batch["ke_tails"] == 0)
    assert not torch.allclose(base[touched], after[touched])
    assert torch.allclose(base[~touched], after[~touched], atol=1e-5)
    kepler.train()


def test_ke_gradient_reaches_the_encoder(models):
    _, kepler = models
    kepler.zero_grad()
    batch = kepler.collate.ke_batch()
    ke_loss(*kepler.ke_distances(**batch)).backward()
    layer = kepler.bert.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and float(layer.grad.abs().sum()) > 0
    assert float(kepler.relation_embeddings.weight.grad.abs().sum()) > 0
    kepler.zero_grad()


def test_relation_table_starts_as_the_authors_code(smoke):
    kepler = pretrainer(smoke.described, smoke.split.train, smoke.base_model, "kepler", vocab=smoke.vocab)
    weights = kepler.relation_embeddings.weight
    bound = (GAMMA + 2.0) / weights.shape[1]
    assert weights.shape[0] == len(smoke.described.relations)
    assert float(weights.abs().max()) <= bound and float(weights.abs().max()) > 0.8 * bound    # U(-b, b), not N(0, .02)


def test_export_is_the_plain_masked_lm(models):
    from transformers import BertForMaskedLM

    _, kepler = models
    assert isinstance(kepler.export_lm(), BertForMaskedLM) and kepler.export_lm().bert is kepler.bert


# --- evaluation -------------------------------------------------------------------------------------------------

def test_link_prediction_filters_other_true_answers():
    vectors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.1, 0.0], [3.0, 0.0]])
    names = ["h", "t1", "t2", "far"]
    r = torch.tensor([[1.0, 0.0]])
    # gold t2 is second closest: raw rank 2, but t1 is also a true tail of (h, r, ?): filtered rank 1
    raw = link_prediction(vectors, names, r, ["r"], [("h", "r", "t2")])
    filtered = link_prediction(vectors, names, r, ["r"], [("h", "r", "t2")], known=[("h", "r", "t1")])
    # tails: raw rank 2, filtered 1; heads (?, r, t2): h is at distance 0.1, t1 at 1.1 -> rank 1 both ways
    assert raw["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert filtered["mrr"] == 1.0
    with pytest.raises(InputError, match="not a candidate"):
        link_prediction(vectors, names, r, ["r"], [("h", "r", "nobody")])


def test_ties_rank_pessimistically():
    vectors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    # tails (h, r, ?), h + r = h: h itself at L1 distance 0, gold "a" and "b" both at 1: pessimistic rank 3
    # (optimistic would be 2); heads (?, r, a): a itself at 0, gold h at 1, b at 2: rank 2
    scores = link_prediction(vectors, ["h", "a", "b", "far"], torch.zeros(1, 2), ["r"], [("h", "r", "a")])
    assert scores["mrr"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_median_offsets_are_the_l1_optimum():
    torch.manual_seed(1)
    vectors = torch.randn(8, 3)
    names = [f"e{i}" for i in range(8)]
    triples = [("e0", "r", "e1"), ("e2", "r", "e3"), ("e4", "r", "e5"), ("e6", "r", "e7")]
    index = {e: i for i, e in enumerate(names)}
    best = median_offsets(vectors, index, triples, ["r", "unused"])
    assert torch.equal(best[1], torch.zeros(3))
    cost = lambda r: sum(float((vectors[index[h]] + r - vectors[index[t]]).abs().sum()) for h, _, t in triples)
    for _ in range(5):
        assert cost(best[0]) <= cost(best[0] + 0.1 * torch.randn(3)) + 1e-6
    assert torch.equal(best_offsets(vectors, index, triples, ["r"], 1)[0], best[0])
    assert torch.equal(best_offsets(vectors, index, triples, ["r"], 2), mean_offsets(vectors, index, triples, ["r"]))


def test_entity_embeddings_run_without_dropout_and_restore_the_mode(models, smoke):
    mlm, _ = models
    mlm.train()
    names = smoke.described.entities[:6]
    first = entity_embeddings(mlm, smoke.described, names, 24)
    assert mlm.training                                          # training mode restored
    assert torch.equal(first, entity_embeddings(mlm, smoke.described, names, 24))   # dropout off: equal
    ids = mlm.tokenizer([smoke.described.descriptions[n] for n in names], padding=True, return_tensors="pt")
    with torch.no_grad():                                        # while dropout on would make them differ
        assert not torch.allclose(mlm.hidden(ids["input_ids"], ids["attention_mask"])[:, 0], first)


def test_evaluate_links_scores_a_kepler_with_its_own_table(models, smoke):
    mlm, kepler = models
    kg, split = smoke.described, smoke.split
    result = evaluate_links(kepler, kg, split, 24)
    table = kepler.relation_embeddings.weight.detach()
    assert isinstance(kepler, Kepler) and torch.equal(result.relation_vectors, table)
    index = {e: i for i, e in enumerate(result.entities)}
    offsets = best_offsets(result.vectors, index, split.train, kg.relations)
    assert not torch.allclose(result.relation_vectors, offsets)
    assert result.inductive == link_prediction(result.vectors, result.entities, table, kepler.relations,
                                               split.inductive, kg.triples)
    assert result.offsets_inductive == link_prediction(result.vectors, result.entities, offsets, kg.relations,
                                                       split.inductive, kg.triples)
    # the named / unnamed parts cover the inductive triples
    named = [t for t in split.inductive if answer_named(kg, t)]
    assert result.named == len(named) and 0 < len(named) < len(split.inductive)
    n = len(split.inductive)
    assert result.inductive["mrr"] == pytest.approx((len(named) * result.inductive_named["mrr"]
                                                     + (n - len(named)) * result.inductive_unnamed["mrr"]) / n)
    # the authors' protocol: both entities unseen, candidates the unseen entities, filtered by those triples alone
    unseen = list(split.unseen)
    both = [t for t in split.inductive if t[0] in unseen and t[2] in unseen]
    rows = torch.tensor([index[e] for e in unseen])
    assert result.disjoint == len(both) > 0
    assert result.inductive_disjoint == link_prediction(result.vectors[rows], unseen, table, kepler.relations, both,
                                                        both)
    # an encoder without a table gets the L1-best offsets of its own vectors
    plain = evaluate_links(mlm, kg, split, 24)
    assert plain.offsets_inductive is None
    assert torch.equal(plain.relation_vectors,
                       median_offsets(plain.vectors, index, split.train, kg.relations))


def test_mean_offsets_are_the_least_squares_relation():
    torch.manual_seed(0)
    vectors = torch.randn(6, 3)
    names = [f"e{i}" for i in range(6)]
    triples = [("e0", "r", "e1"), ("e2", "r", "e3"), ("e4", "r", "e5")]
    index = {e: i for i, e in enumerate(names)}
    best = mean_offsets(vectors, index, triples, ["r"])[0]
    cost = lambda r: sum(float(((vectors[index[h]] + r - vectors[index[t]]) ** 2).sum()) for h, _, t in triples)
    for _ in range(5):
        assert cost(best) < cost(best + 0.1 * torch.randn(3))


# --- the full profile's WordNet data and the view -------------------------------------------------------------

@pytest.fixture(scope="module")
def wordnet():
    from kbench.kg.wordnet import load_wordnet

    return load_wordnet()


def test_wordnet_kg_describes_synsets_by_lemmas_and_gloss_and_mlm_text_avoids_them(wordnet):
    from kbench.kg.described import wordnet_described_kg
    from kbench.profiles.kepler import CHOICES, wordnet_texts

    assert set(CHOICES["smoke"]) == set(CHOICES["full"])
    kg = wordnet_described_kg(wordnet, 200, seed=3)
    assert len(kg.entities) <= 200 and kg.triples
    for name in kg.entities[:20]:
        synset = wordnet.synset(name)
        text = kg.descriptions[name]
        assert text.endswith(synset.definition()) and synset.lemmas()[0].name().replace("_", " ") in text
    assert all(wordnet.synset(h) != wordnet.synset(t) for h, _, t in kg.triples)
    texts = wordnet_texts(wordnet, set(kg.entities), set(kg.descriptions.values()), 500, seed=3)
    definitions = {wordnet.synset(name).definition() for name in kg.entities}
    examples = {e for name in kg.entities for e in wordnet.synset(name).examples()}
    assert len(texts) == 500 and not set(texts) & definitions and not set(texts) & examples
    assert kg.names(kg.entities[0]) == list(dict.fromkeys(
        lemma.name().replace("_", " ") for lemma in wordnet.synset(kg.entities[0]).lemmas()))
    with pytest.raises(InputError, match="at least 10"):
        wordnet_described_kg(wordnet, 5)


def test_translation_view_draws_one_arrow_per_triple():
    from kbench.viz.embeddings import translation_figure

    vectors = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    figure = translation_figure(vectors, ["a", "b", "c", "d"], ["x", "x", "y", "y"], {"r": np.ones(3)},
                                [("a", "r", "b"), ("c", "r", "d")])
    assert len(figure.layout.annotations) == 2
    named = [trace.name for trace in figure.data if trace.name]
    assert named[:2] == ["x", "y"] and len(named) == 6        # the groups, then what each mark means, once each
    assert any(n.startswith("×") for n in named) and any(n.startswith("◯") for n in named)
    assert any("dotted" in n for n in named) and figure.layout.xaxis.title.text == "first principal component"
    with pytest.raises(InputError, match="cannot draw"):
        translation_figure(vectors, ["a", "b", "c", "d"], ["x"] * 4, {"r": np.ones(3)}, [("a", "s", "b")])


def test_kbench_pretrain_kepler_saves_a_plain_masked_lm(tmp_path, smoke, monkeypatch):
    """`kbench pretrain --objective kepler --data-dir D` takes WordNet from D, saves encoder + head."""
    import kbench.kg.described as described
    import kbench.kg.wordnet as wordnet_module
    from transformers import BertForMaskedLM

    from kbench.pretrain import OBJECTIVES, run_pretraining

    assert OBJECTIVES["kepler"][0] == ()
    asked = []
    monkeypatch.setattr(wordnet_module, "load_wordnet", lambda data_dir=None: asked.append(data_dir) or "wordnet")
    monkeypatch.setattr(described, "wordnet_described_kg", lambda wordnet, size, seed: smoke.described)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(smoke.texts[:40]))
    summary = run_pretraining(str(corpus), base="tiny", objective="kepler", steps=3, out=str(tmp_path / "out"),
                              batch_size=4, max_length=24, device="cpu", progress=False, data_dir="D",
                              vocab=smoke.vocab)
    assert asked == ["D"] and summary["steps"] == 3 and math.isfinite(summary["last_loss"])
    saved = BertForMaskedLM.from_pretrained(str(tmp_path / "out"))
    assert not any("relation" in name for name in saved.state_dict())


def test_wordnet_kg_is_the_same_in_every_process():
    """NLTK gives related synsets in set order (it varies with PYTHONHASHSEED): the KG must not."""
    import os
    import subprocess
    import sys

    code = ("from kbench.kg.wordnet import load_wordnet\nfrom kbench.kg.described import wordnet_described_kg\n"
            "import hashlib; print(hashlib.sha256(repr(wordnet_described_kg(load_wordnet(), 150, seed=1).triples)"
            ".encode()).hexdigest())")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(value)}).stdout for value in (1, 2)}
    assert len(outputs) == 1


# --- no training description names an unseen entity; the MLM + descriptions control; the KE tokens per step ----

@pytest.mark.parametrize("seed", range(5))
def test_no_training_description_names_an_unseen_entity(seed):
    """The smoke split holds out only entities no other description names; the plain split of the same world does
    name some (a held-out city is written in its people's descriptions), so the check can fail."""
    from kbench.kg.described import unseen_named_in_training
    from kbench.profiles.kepler import setup

    s = setup("smoke", seed=seed)
    split, kg = s.split, s.described
    assert unseen_named_in_training(kg, split) == []
    # the world's descriptions are space-separated words: an unseen name is no run of a training description's words
    texts = [f" {kg.descriptions[e].lower()} " for e in split.train_entities]
    assert not [(u, t) for u in split.unseen for t in texts if f" {u.lower()} " in t]
    # so no inductive triple is stated in a description KE training encodes
    plain = ke_split(kg, 0.15, 0.1, seed)
    assert unseen_named_in_training(kg, plain)


def test_named_in_others_finds_whole_names_only():
    from kbench.kg.described import named_in_others

    kg = DescribedKG("t", [("Ann", "born in", "Lyon"), ("Lyonel", "born in", "Rome")],
                     {"Ann": "Ann is a baker born in Lyon .", "Lyon": "Lyon is a city .",
                      "Lyonel": "Lyonel is a pilot born in Rome .", "Rome": "Rome is a city ."})
    named = named_in_others(kg)
    assert named == {"Ann": [], "Lyon": ["Ann"], "Lyonel": [], "Rome": ["Lyonel"]}
    with pytest.raises(InputError, match="named in no other description"):
        ke_split(kg, 0.9, 0.1, 0, unnamed_only=True)


@pytest.fixture(scope="module")
def control(smoke):
    return pretrainer(smoke.described, smoke.split.train, smoke.base_model, "mlm_descriptions", seed=0,
                      vocab=smoke.vocab, ke_batch_size=4, max_length=24)


def test_the_description_control_masks_the_descriptions_kepler_encodes_and_has_no_ke_loss(models, control):
    from kbench.models.kepler import DescriptionMLM

    mlm, kepler = models
    assert isinstance(control, DescriptionMLM) and not hasattr(control, "relation_embeddings")
    for (name, a), b in zip(mlm.bert.state_dict().items(), control.bert.state_dict().values()):
        assert torch.equal(a, b), name
    sentences = build_corpus(["Tokyo is a city .", "Paris lies in France ."], mlm.tokenizer).sentences
    from kbench.models.kepler import DescriptionCollator, KeplerCollator

    fresh = lambda cls: cls(kepler.collate.vocab, kepler.collate.pad_id, kepler.collate.data, 4, seed=3)
    a, b, plain = fresh(KeplerCollator), fresh(DescriptionCollator), mlm.collate.__class__(
        mlm.collate.vocab, mlm.collate.pad_id, "token", 3)
    for _ in range(3):
        joint, masked, text = a(sentences), b(sentences), plain(sentences)
        for key in ("input_ids", "attention_mask", "labels"):
            assert torch.equal(masked[key], text[key])           # the same text masks as plain MLM
        assert torch.equal(masked["desc_mask"], joint["ke_mask"])  # the same descriptions, at the same step
        labels, ids = masked["desc_labels"], masked["desc_ids"]
        original = joint["ke_ids"]
        chosen = labels != -100
        assert chosen.any() and torch.equal(labels[chosen], original[chosen])
        assert torch.equal(ids[~chosen], original[~chosen])      # only chosen positions may change
        assert not chosen[:, 0].any()                            # never [CLS]
    control.eval()
    batch = control.collate(sentences)
    out = control(**batch)
    text_only = control(batch["input_ids"], batch["attention_mask"], batch["labels"])
    described = control(batch["desc_ids"], batch["desc_mask"], batch["desc_labels"])
    assert float(out["loss"]) == pytest.approx(float(text_only["loss"] + described["loss"]), rel=1e-6)
    assert float(out["description_loss"]) > 0
    control.train()


def test_ke_tokens_per_step_counts_the_encoded_descriptions_and_keeps_the_draws(models):
    from kbench.models.kepler import ke_tokens_per_step

    kepler = models[1]
    collate = kepler.collate
    state = collate.ke_rng.bit_generator.state
    counted = ke_tokens_per_step(collate, steps=5)
    assert collate.ke_rng.bit_generator.state == state
    batches = [collate.ke_batch() for _ in range(5)]
    assert counted["tokens"] == pytest.approx(np.mean([int(b["ke_mask"].sum()) for b in batches]))
    assert counted["descriptions"] == pytest.approx(np.mean([len(b["ke_ids"]) for b in batches]))
    assert 2 <= counted["descriptions"] <= 4 * 4                 # heads, tails and two negatives of 4 triples
