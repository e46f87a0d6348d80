"""K-BERT classifier and tagger on a transformers BERT: masks, parity with plain BERT, ablations."""
from __future__ import annotations

import pytest
import torch

from kbench.errors import InputError
from kbench.kg import KnowledgeGraph
from kbench.models import kbert
from kbench.models.kbert import (KBertClassifier, KBertTagger, attention_from_first_token, compare_tagging_variants,
                                 compare_variants)

SENTENCES = ["Tim Cook is visiting Beijing now", "Beijing is far"]


def tiny(kg=None, **kw):
    return KBertClassifier(3, kg, "tiny", max_length=24, joiner=" ", **kw).eval()


def test_forward_shapes_loss_and_no_nan(figure2_kg):
    model = tiny(figure2_kg)
    inputs = model.encode(SENTENCES)
    assert inputs["attention_mask"].shape == (2, 1, 24, 24)
    out = model(**inputs, labels=torch.tensor([0, 2]))
    assert out["logits"].shape == (2, 3) and torch.isfinite(out["loss"])
    assert torch.isfinite(model.bert(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"],
                                     attention_mask=inputs["attention_mask"]).last_hidden_state).all()


def test_without_kg_equals_plain_bert():
    model = tiny(None)
    inputs = model.encode(SENTENCES)
    encoded = model.tokenizer(["[CLS] " + s for s in SENTENCES], add_special_tokens=False, padding="max_length",
                              max_length=24, return_tensors="pt")
    assert torch.equal(inputs["input_ids"], encoded["input_ids"])
    ours = model.bert(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"],
                      attention_mask=inputs["attention_mask"]).last_hidden_state
    plain = model.bert(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).last_hidden_state
    real = encoded["attention_mask"].bool()
    assert torch.allclose(ours[real], plain[real], atol=1e-5)


def test_visible_matrix_hides_knowledge_from_the_sentence(figure2_kg):
    """Changing a branch's object changes the sentence's states only through its own word."""
    other = KnowledgeGraph.from_triples([("Tim Cook", "CEO", "Apple"), ("Beijing", "capital", "Paris"),
                                         ("Beijing", "is_a", "City")])
    one_layer = dict(seed=1)
    a, b = tiny(figure2_kg, **one_layer), tiny(other, **one_layer)
    b.load_state_dict(a.state_dict())
    a.bert.encoder.layer = a.bert.encoder.layer[:1]
    b.bert.encoder.layer = b.bert.encoder.layer[:1]
    ia, ib = a.encode(SENTENCES[:1]), b.encode(SENTENCES[:1])
    sa = a.bert(input_ids=ia["input_ids"], position_ids=ia["position_ids"], attention_mask=ia["attention_mask"])[0]
    sb = b.bert(input_ids=ib["input_ids"], position_ids=ib["position_ids"], attention_mask=ib["attention_mask"])[0]
    # after one layer, [CLS] cannot have seen the branch: identical; "beijing" (index 7) has: different
    assert torch.allclose(sa[0, 0], sb[0, 0], atol=1e-6)
    assert not torch.allclose(sa[0, 7], sb[0, 7], atol=1e-4)


def test_no_visible_matrix_ablation_lets_everything_see(figure2_kg):
    model = tiny(figure2_kg, use_visible_matrix=False)
    inputs = model.encode(SENTENCES[:1])
    length = model.layer.build(["[CLS]"] + model.layer.words(SENTENCES[0])).length
    assert length == 15  # [CLS] tim cook ceo apple is visiting beijing capital china is _ a city now
    assert inputs["attention_mask"][0, 0, :length, :length].all()
    assert inputs["attention_mask"][0, 0, length:].sum() == 24 - length  # padding: itself only


def test_hard_positions_ablation(figure2_kg):
    inputs = tiny(figure2_kg, use_soft_positions=False).encode(SENTENCES[:1])
    assert inputs["position_ids"][0].tolist() == list(range(24))


def test_bad_arguments(figure2_kg):
    with pytest.raises(InputError):
        KBertClassifier(1, figure2_kg, "tiny")
    with pytest.raises(InputError):
        tiny(figure2_kg).encode([""])


def test_first_token_attention_ignores_knowledge_with_vm(figure2_kg):
    model = tiny(figure2_kg)
    tokens, weights = attention_from_first_token(model, SENTENCES[0])
    knowledge = model.layer.build(["[CLS]"] + model.layer.words(SENTENCES[0])).segments[:len(tokens)] == 1
    assert weights.shape == (2, len(tokens)) and knowledge.any()
    assert weights[:, knowledge].max() == 0 and abs(weights.sum(1) - 1).max() < 1e-5
    _, open_weights = attention_from_first_token(tiny(figure2_kg, use_visible_matrix=False), SENTENCES[0])
    assert open_weights[:, knowledge].sum() > 0


def test_tagger_aligns_tags_with_tokens_and_knowledge():
    kg = KnowledgeGraph.from_triples([("high fever", "is a", "sign")])
    model = KBertTagger(["O", "B-SYM", "I-SYM"], kg, "tiny", max_length=16, joiner=" ")
    units = "the patient has high fever".split()
    inputs = model.encode_tagged([units], [["O", "O", "O", "B-SYM", "I-SYM"]])
    labels = inputs["labels"][0].tolist()
    tree = model.layer.build(["[CLS]", "the", "patient", "has", "high fever"])
    assert tree.tokens[:9] == ["[CLS]", "the", "patient", "has", "high", "fever", "is", "a", "sign"]
    ent = model.tags.index("[ENT]")
    assert labels[:10] == [-100, 0, 0, 0, 1, 2, ent, ent, ent, -100]
    out = model(**inputs)
    assert out["logits"].shape == (1, 16, 4) and torch.isfinite(out["loss"])
    with pytest.raises(InputError, match="unknown tags"):
        model.encode_tagged([["a", "b"]], [["O", "B-X"]])
    with pytest.raises(InputError, match="2 units but 1 tags"):
        model.encode_tagged([["a", "b"]], [["O"]])


def test_compare_variants_trains_all_three(figure2_kg):
    from kbench.train import TrainConfig

    data = (SENTENCES * 4, [0, 1] * 4)
    results = compare_variants(data, data, data, 2, figure2_kg, "tiny",
                               config=TrainConfig(epochs=1, batch_size=4, progress=False), max_length=24, joiner=" ")
    assert set(results) == {"bert", "kbert", "kbert_no_vm"}
    assert all(0.0 <= r.test_score <= 1.0 and len(r.history.dev_metric) == 1 for r in results.values())
    with pytest.raises(InputError, match="unknown variant"):
        compare_variants(data, data, data, 2, figure2_kg, "tiny", variants=["ernie"])


def test_citation_is_declared():
    assert kbert.CITATION["year"] == 2020 and kbert.CITATION["url"].startswith("https://arxiv.org/")


def test_compare_tagging_variants_scores_f1():
    from kbench.train import TrainConfig

    kg = KnowledgeGraph.from_triples([("high fever", "is a", "sign")])
    units = [["the", "patient", "has", "high", "fever"], ["no", "fever", "today"]] * 3
    tags = [["O", "O", "O", "B-SYM", "I-SYM"], ["O", "B-SYM", "O"]] * 3
    data = (units, tags)
    results = compare_tagging_variants(data, data, data, ["O", "B-SYM", "I-SYM"], kg, "tiny", variants=["bert", "kbert"],
                                       config=TrainConfig(epochs=2, batch_size=2, progress=False), max_length=16,
                                       joiner=" ")
    assert set(results) == {"bert", "kbert"}
    assert all(0.0 <= r.test_score <= 1.0 and len(r.history.dev_metric) == 2 for r in results.values())


def test_trimming_padding_changes_no_real_output(figure2_kg):
    model = tiny(figure2_kg)
    inputs = model.encode(SENTENCES)
    trimmed = kbert.trim_padding(inputs["input_ids"], inputs["position_ids"], inputs["attention_mask"], 0)
    assert trimmed[0].shape == (2, 15) and trimmed[2].shape == (2, 1, 15, 15)
    with torch.no_grad():
        full = model.bert(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"],
                          attention_mask=inputs["attention_mask"]).last_hidden_state[:, :15]
        cut = model.bert(input_ids=trimmed[0], position_ids=trimmed[1], attention_mask=trimmed[2]).last_hidden_state
    real = inputs["input_ids"][:, :15] != 0
    assert torch.allclose(full[real], cut[real], atol=1e-5)
