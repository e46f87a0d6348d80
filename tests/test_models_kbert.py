"""K-BERT classifier and tagger on a transformers BERT: batches, masks, parity with plain BERT, ablations."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from kbench.errors import InputError
from kbench.experiment import compare_variants
from kbench.kg import KnowledgeGraph
from kbench.models import kbert
from kbench.models.kbert import VARIANTS, KBertClassifier, KBertTagger, attention_from_first_token

SENTENCES = ["Tim Cook is visiting Beijing now", "Beijing is far"]


def tiny(kg=None, **kw):
    return KBertClassifier(3, kg, "tiny", max_length=24, joiner=" ", **kw).eval()


def batch(model, sentences, labels=None):
    return model.collate(list(model.dataset(sentences, labels)))


def test_forward_shapes_loss_and_no_nan(figure2_kg):
    model = tiny(figure2_kg)
    inputs = batch(model, SENTENCES, [0, 2])
    assert inputs["attention_mask"].shape == (2, 1, 15, 15)      # the batch's longest tree, not max_length
    assert inputs["labels"].tolist() == [0, 2]
    out = model(**inputs)
    assert out["logits"].shape == (2, 3) and torch.isfinite(out["loss"])


def test_without_kg_equals_plain_bert():
    model = tiny(None)
    inputs = batch(model, SENTENCES)
    encoded = model.tokenizer(["[CLS] " + s for s in SENTENCES], add_special_tokens=False, padding=True,
                              return_tensors="pt")
    assert torch.equal(inputs["input_ids"], encoded["input_ids"])
    ours = model.states(inputs["input_ids"], inputs["position_ids"], inputs["attention_mask"])
    plain = model.bert(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).last_hidden_state
    real = encoded["attention_mask"].bool()
    assert torch.allclose(ours[real], plain[real], atol=1e-5)


def test_visible_matrix_hides_knowledge_from_the_sentence(figure2_kg):
    """Changing a branch's object changes the sentence's states only through its own word."""
    other = KnowledgeGraph.from_triples([("Tim Cook", "CEO", "Apple"), ("Beijing", "capital", "Paris"),
                                         ("Beijing", "is_a", "City")])
    a, b = tiny(figure2_kg, seed=1), tiny(other, seed=1)
    b.load_state_dict(a.state_dict())
    a.bert.encoder.layer = a.bert.encoder.layer[:1]
    b.bert.encoder.layer = b.bert.encoder.layer[:1]
    ia, ib = batch(a, SENTENCES[:1]), batch(b, SENTENCES[:1])
    sa = a.states(ia["input_ids"], ia["position_ids"], ia["attention_mask"])
    sb = b.states(ib["input_ids"], ib["position_ids"], ib["attention_mask"])
    # after one layer, [CLS] cannot have seen the branch: identical; "beijing" (index 7) has: different
    assert torch.allclose(sa[0, 0], sb[0, 0], atol=1e-6)
    assert not torch.allclose(sa[0, 7], sb[0, 7], atol=1e-4)


def test_no_visible_matrix_ablation_lets_everything_see(figure2_kg):
    model = tiny(figure2_kg, use_visible_matrix=False)
    inputs = batch(model, SENTENCES)
    assert model.tree(SENTENCES[0]).length == 15  # [CLS] tim cook ceo apple is visiting beijing capital ...
    assert inputs["attention_mask"][0, 0].all()
    short = model.tree(SENTENCES[1]).length
    assert inputs["attention_mask"][1, 0, :short, :short].all() and not inputs["attention_mask"][1, 0, :short, short:].any()
    assert inputs["attention_mask"][1, 0, short:].sum() == 15 - short  # padding: itself only


def test_hard_positions_ablation(figure2_kg):
    inputs = batch(tiny(figure2_kg, use_soft_positions=False), SENTENCES[:1])
    assert inputs["position_ids"][0].tolist() == list(range(15))
    soft = batch(tiny(figure2_kg), SENTENCES[:1])["position_ids"][0].tolist()
    assert soft == [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 6, 7, 8, 9, 6]  # [CLS] tim cook ceo apple is visiting beijing capital china is _ a city now


def test_collate_mask_equals_stacked_trees_cut_to_the_longest(figure2_kg):
    model = tiny(figure2_kg)
    inputs = batch(model, SENTENCES)
    trees = [model.tree(s) for s in SENTENCES]
    width = max(t.length for t in trees)
    stacked = torch.from_numpy(np.stack([t.visible_matrix[:width, :width] for t in trees]))
    assert torch.equal(inputs["attention_mask"][:, 0], stacked | torch.eye(width, dtype=torch.bool))
    ids = [model.tokenizer.convert_tokens_to_ids(t.tokens[:width]) for t in trees]
    assert inputs["input_ids"].tolist() == ids
    assert inputs["position_ids"].tolist() == [t.soft_positions[:width].tolist() for t in trees]


def test_bad_arguments(figure2_kg):
    with pytest.raises(InputError):
        KBertClassifier(1, figure2_kg, "tiny")
    with pytest.raises(InputError):
        tiny(figure2_kg).dataset([""])
    with pytest.raises(InputError, match="2 sentences but 1 labels"):
        tiny(figure2_kg).dataset(SENTENCES, [0])
    with pytest.raises(InputError, match="empty batch"):
        tiny(figure2_kg).collate([])
    with pytest.raises(TypeError):
        tiny(figure2_kg, dropout=0.3)  # the authors' head has no dropout of its own; none is pretended


def test_first_token_attention_ignores_knowledge_with_vm(figure2_kg):
    model = tiny(figure2_kg)
    tokens, weights = attention_from_first_token(model, SENTENCES[0])
    knowledge = model.tree(SENTENCES[0]).segments[:len(tokens)] == 1
    assert weights.shape == (2, len(tokens)) and knowledge.any()
    assert weights[:, knowledge].max() == 0 and abs(weights.sum(1) - 1).max() < 1e-5
    _, open_weights = attention_from_first_token(tiny(figure2_kg, use_visible_matrix=False), SENTENCES[0])
    assert open_weights[:, knowledge].sum() > 0


def test_tagger_follows_the_authors_ner_script():
    """No [CLS], objects-only branches, a unit's tag on its first token, [ENT] on knowledge."""
    kg = KnowledgeGraph.from_triples([("high fever", "is a", "sign")])
    model = KBertTagger(["O", "B-SYM", "I-SYM"], kg, "tiny", max_length=16)
    assert not model.layer.predicate and not hasattr(model, "dropout")
    units = "the patient has high fever".split()
    data = model.dataset([units], [["O", "O", "O", "B-SYM", "I-SYM"]])
    inputs = model.collate(list(data))
    assert model.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist()) == [
        "the", "patient", "has", "high", "fever", "sign"]
    ent = model.tags.index("[ENT]")
    assert inputs["labels"][0].tolist() == [0, 0, 0, 1, 2, ent]
    out = model(**inputs)
    assert out["logits"].shape == (1, 6, 4) and torch.isfinite(out["loss"])
    with pytest.raises(InputError, match="unknown tags"):
        model.dataset([["a", "b"]], [["O", "B-X"]])
    with pytest.raises(InputError, match="2 units but 1 tags"):
        model.dataset([["a", "b"]], [["O"]])


def test_tagger_groups_units_with_the_mention_detector():
    kg = KnowledgeGraph.from_triples([("高烧", "类别", "症状")])
    model = KBertTagger(["O", "B-SYM", "I-SYM"], kg, "tiny", max_length=16)
    words, groups = model.group(list("他高烧了"))
    assert words == ["他", "高烧", "了"] and groups == [[0], [1, 2], [3]]
    inputs = model.collate(list(model.dataset([list("他高烧了")], [["O", "B-SYM", "I-SYM", "O"]])))
    ent = model.tags.index("[ENT]")
    assert inputs["labels"][0].tolist() == [0, 1, 2, ent, ent, 0]  # 他 高 烧 症 状 了


def test_compare_variants_trains_all_three(figure2_kg):
    from kbench.train import TrainConfig

    data = (SENTENCES * 4, [0, 1] * 4)
    make = functools.partial(KBertClassifier, num_labels=2, kg=figure2_kg, base_model="tiny", max_length=24,
                             joiner=" ")
    results = compare_variants(make, VARIANTS, data, data, data,
                               config=TrainConfig(epochs=1, batch_size=4, progress=False, device="cpu"))
    assert [r.label for r in results.values()] == ["BERT", "K-BERT", "K-BERT w/o VM"]
    assert results["bert"].model.layer.kg.name == "none" and results["kbert"].model.layer.kg is figure2_kg
    assert not results["kbert_no_vm"].model.use_visible_matrix
    assert all(0.0 <= r.test_score <= 1.0 and len(r.history.dev_metric) == 1 for r in results.values())
    with pytest.raises(InputError, match="unknown variant"):
        compare_variants(make, VARIANTS, data, data, data, only=["ernie"])


def test_compare_tagging_variants_records_both_f1s():
    from kbench.train import TrainConfig

    kg = KnowledgeGraph.from_triples([("high fever", "is a", "sign")])
    units = [["the", "patient", "has", "high", "fever"], ["no", "fever", "today"]] * 3
    tags = [["O", "O", "O", "B-SYM", "I-SYM"], ["O", "B-SYM", "O"]] * 3
    make = functools.partial(KBertTagger, tags=["O", "B-SYM", "I-SYM"], kg=kg, base_model="tiny", max_length=16)
    results = compare_variants(make, VARIANTS, (units, tags), (units, tags), (units, tags), only=["bert", "kbert"],
                               config=TrainConfig(epochs=2, batch_size=2, progress=False, device="cpu"))
    assert set(results) == {"bert", "kbert"}
    for result in results.values():
        assert set(result.test_scores) == {"f1", "authors_f1"} and result.test_score == result.test_scores["f1"]
        assert all(0.0 <= v <= 1.0 for v in result.test_scores.values()) and len(result.history.dev_metric) == 2


def test_citation_is_declared():
    assert kbert.CITATION["year"] == 2020 and kbert.CITATION["url"].startswith("https://arxiv.org/")
