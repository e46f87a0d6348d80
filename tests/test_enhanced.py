"""What has been enhanced: per-layer similarity, attention shift and predictions of a base and its variant."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.encoders import load_encoder
from kbench.enhanced import compare_encoders
from kbench.errors import InputError
from kbench.pretrain import masked_lm
from kbench.viz.enhanced import enhancement_explorer, enhancement_html

SENTENCE = "the measles virus spreads through the air"


@pytest.fixture(scope="module")
def base():
    encoder = load_encoder("tiny", seed=0, layers=None)
    return encoder.model, encoder.tokenizer


def perturbed(model, layer: int, scale: float = 0.5):
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.encoder.layer[layer].attention.self.query.weight.mul_(1 + scale)
        other.encoder.layer[layer].output.dense.weight.mul_(1 - scale)
    return other


def test_a_model_against_itself_changes_nothing(base):
    model, tokenizer = base
    found = compare_encoders(model, copy.deepcopy(model), tokenizer, SENTENCE)
    assert found.similarity.shape == (3, len(found.tokens)) and found.attention_shift.shape == (2, 2)
    assert np.allclose(found.similarity, 1, atol=1e-5) and np.allclose(found.attention_shift, 0, atol=1e-6)
    assert found.changed_layers() == [] and found.tokens[0] == "[CLS]"


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 1))
def test_a_change_shows_from_its_layer_upward_only(base, layer):
    model, tokenizer = base
    found = compare_encoders(model, perturbed(model, layer), tokenizer, SENTENCE)
    assert found.changed_layers() == list(range(layer + 1, 3))      # hidden state l+1 is layer l's output
    assert np.allclose(found.attention_shift[:layer], 0, atol=1e-6)
    assert (found.attention_shift[layer] > 1e-4).all()              # the query change moves every head of that layer


def test_the_attention_shift_is_total_variation(base):
    model, tokenizer = base
    found = compare_encoders(model, perturbed(model, 1, scale=4.0), tokenizer, "a b")
    assert (found.attention_shift >= 0).all() and (found.attention_shift <= 1).all()
    # by hand for layer 2: recompute the attention of both models
    from kbench.enhanced import _read

    batch = dict(tokenizer("a b", return_tensors="pt"))
    batch.pop("token_type_ids")
    _, a = _read(model, batch)
    _, b = _read(perturbed(model, 1, scale=4.0), batch)
    by_hand = [[0.5 * sum(abs(float(a[1][h, i, j] - b[1][h, i, j])) for j in range(4)) for i in range(4)]
               for h in range(2)]
    assert np.allclose(found.attention_shift[1], np.mean(by_hand, axis=1), atol=1e-6)


def test_the_eager_switch_is_undone(base):
    model, tokenizer = base
    before = model.config._attn_implementation
    compare_encoders(model, model, tokenizer, SENTENCE)
    assert model.config._attn_implementation == before == "sdpa"


def test_predictions_come_from_each_mlm(base):
    _, tokenizer = base
    lm_a, tok, _ = masked_lm("tiny", seed=0)
    lm_b, _, _ = masked_lm("tiny", seed=1)
    found = compare_encoders(lm_a.bert, lm_b.bert, tok, "the [MASK] spreads", lms={"a": lm_a, "b": lm_b}, k=3)
    assert list(found.predictions) == ["a", "b"] and len(found.predictions["a"]) == 1
    assert len(found.predictions["a"][0]) == 3 and found.predictions["a"] != found.predictions["b"]
    html = enhancement_html(found, ("a", "b"))
    assert "[MASK] 1" in html and "<script" not in html and html.count("<tr>") >= 3 + 2


def test_bad_pairs_and_sentences_are_named_errors(base, tmp_path):
    from transformers import BertTokenizerFast

    model, tokenizer = base
    with pytest.raises(InputError, match="give a sentence"):
        compare_encoders(model, model, tokenizer, "  ")
    shallow = load_encoder("tiny", seed=0, layers=1).model
    with pytest.raises(InputError, match="differ in depth"):
        compare_encoders(model, shallow, tokenizer, SENTENCE)
    with pytest.raises(InputError, match="differ in width"):
        compare_encoders(model, load_encoder("embedded", layers=2).model, tokenizer, SENTENCE)
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]))
    with pytest.raises(InputError, match="vocabulary of"):
        compare_encoders(model, model, BertTokenizerFast(vocab=str(tmp_path / "vocab.txt")), "a b")
    lm, tok, _ = masked_lm("tiny", seed=0)
    with pytest.raises(InputError, match=r"\[MASK\]"):
        compare_encoders(lm.bert, lm.bert, tok, "no mask here", lms={"a": lm})


def test_the_explorer_renders_the_chosen_pair(base):
    model, tokenizer = base
    calls = []

    def compare(sentence, pair):
        calls.append((sentence, pair))
        return compare_encoders(model, perturbed(model, 1), tokenizer, sentence)

    widget = enhancement_explorer([SENTENCE, "a b"], ["base → variant"], compare)
    assert calls == [(SENTENCE, "base → variant")] and "variant" in widget.children[2].value
    widget.children[0].value = "a b"
    assert calls[-1] == ("a b", "base → variant")
    with pytest.raises(InputError):
        enhancement_explorer([], ["x"], compare)


@pytest.fixture(scope="module")
def ernie_pair():
    """ERNIE and plain BERT (ERNIE's network with no aggregator) on the linking world, read on their own input."""
    from kbench.data import make_linking_world
    from kbench.head_to_head import head_to_head_model, linked_text

    world = make_linking_world(seed=0)
    entities = sorted({t[0] for t in world.kg} | {t[2] for t in world.kg})
    vectors = torch.randn(len(entities), 8, generator=torch.Generator().manual_seed(0))
    ids = {e: i for i, e in enumerate(entities)}
    build = lambda method, v=vectors: head_to_head_model(4, v, ids, world.kg, "tiny", method, link="gold",
                                                         layers=None, max_length=32)
    example = world.test[0]
    text = linked_text((example.words, example.mentions()), "gold")
    return build("ernie"), build("bert"), build, vectors, text


def test_own_input_reads_the_states_the_model_carries_on_with(ernie_pair):
    """The states are those of the model's own path: an ERNIE against itself changes nothing; the same ERNIE
    handed other entity vectors changes only the aggregator's layer (the top one), not the layers beneath it."""
    from kbench.enhanced import compare_on_own_input, read_own_input
    from kbench.head_to_head import text_encoder

    ernie, bert, build, vectors, text = ernie_pair
    tokens_of = ernie.ernie.readable_tokens
    same = compare_on_own_input(ernie, ernie, text, (text_encoder(ernie),) * 2, tokens_of)
    assert same.changed_layers() == [] and "[ENT]" in same.tokens and same.similarity.shape[0] == 3
    other = copy.deepcopy(ernie)
    other.ernie.entities.copy_(torch.randn_like(vectors))
    moved = compare_on_own_input(ernie, other, text, (text_encoder(ernie), text_encoder(other)), tokens_of)
    assert moved.changed_layers() == [2]                            # the entity enters at the aggregator alone
    assert np.allclose(moved.attention_shift, 0, atol=1e-6)         # the text attention reads no entity
    ids, states, attention = read_own_input(ernie, text_encoder(ernie), text)
    assert len(states) == 3 and len(attention) == 2 and states[0].shape[0] == len(ids)
    with torch.no_grad():   # the last state read is what the classifier's head reads
        batch = ernie.collate([ernie.dataset([text], [0])[0]])
        ernie.eval()
        top = ernie.ernie(batch["input_ids"], batch["attention_mask"], batch["entity_ids"])[0]
    assert torch.allclose(states[-1], top, atol=1e-5)


def test_own_input_needs_the_same_tokens(ernie_pair):
    from kbench.enhanced import compare_on_own_input
    from kbench.head_to_head import text_encoder

    ernie, _, build, _, text = ernie_pair
    kbert = build("kbert")
    with pytest.raises(InputError, match="different tokens"):
        compare_on_own_input(ernie, kbert, text, (text_encoder(ernie), text_encoder(kbert)), str)
