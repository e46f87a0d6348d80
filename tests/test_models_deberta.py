"""DeBERTa's mechanisms: eq. 4's three terms against an O(n²) loop, the 1/√(3d) scale, one relative table for
every layer, the enhanced mask decoder (absolute positions only at decoding, the last layer twice with shared
weights), one init for every variant, and the bad inputs."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.models.deberta.modeling_deberta import DisentangledSelfAttention, build_relative_position

from kbench.encoders import load_tokenizer
from kbench.errors import InputError, UnknownNameError
from kbench.models.deberta import (VARIANTS, DebertaMLM, PaperDisentangledAttention, attend_with_query,
                                   deberta_config, delta, one_init)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("embedded")


def attention(pos_att_type, k=3, hidden=8, heads=2, seed=0):
    torch.manual_seed(seed)
    config = deberta_config("deberta", 50, "tiny", max_positions=32, k=k)
    config.hidden_size, config.num_attention_heads, config.pos_att_type = hidden, heads, list(pos_att_type)
    config.attention_probs_dropout_prob = config.hidden_dropout_prob = 0.0
    module = PaperDisentangledAttention(config).eval()
    return module


def parts(module, h, table):
    """Eq. 4's ingredients as the module computes them: scaled queries, keys, relative queries and keys."""
    factor = 1 + len(module.pos_att_type)
    q, k, _ = module.transpose_for_scores(module.in_proj(h)).chunk(3, dim=-1)
    q = (q + module.transpose_for_scores(module.q_bias[None, None, :])) / math.sqrt(q.size(-1) * factor)
    return q, k, factor


@pytest.mark.parametrize("terms", [("c2p",), ("p2c",), ("c2p", "p2c")])
def test_the_disentangled_bias_is_eq_4_term_by_term(terms):
    k, n = 3, 8                                    # n > 2k: distances are clamped at both ends
    module = attention(terms, k=k)
    h, table = torch.randn(1, n, 8), torch.randn(2 * k, 8)
    q, key, factor = parts(module, h, table)
    got = module.disentangled_att_bias(q, key, build_relative_position(h, h), table, factor)[0]
    expected = torch.zeros_like(got)
    for head in range(module.num_attention_heads):
        for i in range(n):
            for j in range(n):
                if "c2p" in terms:      # Q^c_i · K^r_δ(i,j)
                    k_r = module.transpose_for_scores(module.pos_proj(table)[None])[0, head]
                    expected[head, i, j] += q[0, head, i] @ k_r[delta(i, j, k)]
                if "p2c" in terms:      # K^c_j · Q^r_δ(j,i), Q^r scaled like the queries
                    q_r = module.transpose_for_scores(module.pos_q_proj(table)[None])[0, head] / math.sqrt(4 * factor)
                    expected[head, i, j] += key[0, head, j] @ q_r[delta(j, i, k)]
    assert torch.allclose(got, expected.detach(), atol=1e-5)


def test_transformers_p2c_reads_the_other_distance_which_eq_4_does_not():
    """The one index changed from transformers' (and the authors' v1) code: p2c's δ(j, i), not δ(i, j)."""
    k, n = 3, 7
    module = attention(("p2c",), k=k)
    h, table = torch.randn(1, n, 8), torch.randn(2 * k, 8)
    q, key, factor = parts(module, h, table)
    ours = module.disentangled_att_bias(q, key, build_relative_position(h, h), table, factor)
    theirs = DisentangledSelfAttention.disentangled_att_bias(module, q, key, build_relative_position(h, h), table,
                                                             factor)
    assert not torch.allclose(ours, theirs, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(i=st.integers(0, 60), j=st.integers(0, 60), k=st.integers(1, 20))
def test_delta_buckets_every_distance_in_the_table(i, j, k):
    assert 0 <= delta(i, j, k) <= 2 * k - 1
    if abs(i - j) < k:
        assert delta(i, j, k) + delta(j, i, k) == 2 * k      # near distances: the two directions mirror


def test_the_scale_is_one_over_root_3d_with_both_terms_and_root_d_for_bert(tokenizer):
    deberta, bert = DebertaMLM("deberta", tokenizer, None), DebertaMLM("bert", tokenizer, None)
    assert len(deberta.deberta.encoder.layer[0].attention.self.pos_att_type) + 1 == 3
    assert bert.deberta.encoder.layer[0].attention.self.pos_att_type == [] and not bert.config.relative_attention
    module = attention(("c2p", "p2c"))
    with torch.no_grad():                           # no position signal: only c2c is left, scaled by 1/sqrt(3d)
        for projection in (module.pos_proj, module.pos_q_proj):
            projection.weight.zero_()
            if projection.bias is not None:
                projection.bias.zero_()
    h, table = torch.randn(1, 5, 8), torch.randn(6, 8)
    mask = torch.ones(1, 1, 5, 5)
    _, probs = module(h, mask, output_attentions=True, relative_pos=build_relative_position(h, h),
                      rel_embeddings=table)
    q, key, _ = module.transpose_for_scores(module.in_proj(h)).chunk(3, dim=-1)
    q = q + module.transpose_for_scores(module.q_bias[None, None, :])
    d = q.size(-1)
    assert torch.allclose(probs, ((q @ key.transpose(-1, -2)) / math.sqrt(3 * d)).softmax(-1), atol=1e-5)
    assert not torch.allclose(probs, ((q @ key.transpose(-1, -2)) / math.sqrt(d)).softmax(-1), atol=1e-3)


def test_one_relative_table_serves_every_layer(tokenizer):
    model = DebertaMLM("deberta", tokenizer, None, size="mini")
    tables = [name for name, _ in model.named_parameters() if "rel_embeddings" in name]
    assert tables == ["deberta.encoder.rel_embeddings.weight"]
    assert model.deberta.encoder.rel_embeddings.weight.shape[0] == 2 * model.config.max_relative_positions
    assert all(isinstance(layer.attention.self, PaperDisentangledAttention) for layer in model.deberta.encoder.layer)


def test_a_layer_with_its_own_states_as_query_is_its_forward(tokenizer):
    model = DebertaMLM("deberta", tokenizer, None).eval()
    ids = torch.randint(5, 1000, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    encoder = model.deberta.encoder
    h = model.deberta(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-2]
    extended, relative = encoder.get_attention_mask(mask), encoder.get_rel_pos(h)
    ours = attend_with_query(encoder.layer[-1], h, h, extended, relative, encoder.get_rel_embedding())
    theirs = encoder.layer[-1](h, extended, relative_pos=relative, rel_embeddings=encoder.get_rel_embedding())[0]
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_emd_adds_absolute_positions_only_at_decoding_with_no_new_layer(tokenizer):
    deberta, no_emd = DebertaMLM("deberta", tokenizer, None).eval(), DebertaMLM("no_emd", tokenizer, None).eval()
    one_init({"deberta": deberta, "no_emd": no_emd})
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(deberta) - count(no_emd) == deberta.z.weight.numel()      # z only: the last layer is reused
    assert deberta.deberta.embeddings.position_embeddings is None          # no absolute position at the input
    ids = torch.randint(5, 1000, (2, 9))
    encoded = deberta.deberta(input_ids=ids).last_hidden_state
    states = deberta.states(ids)
    with torch.no_grad():
        deberta.z.weight.add_(torch.randn_like(deberta.z.weight))
    assert torch.allclose(deberta.deberta(input_ids=ids).last_hidden_state, encoded)   # the encoder: no z
    assert not torch.allclose(deberta.states(ids), states, atol=1e-4)                   # the decoder reads it
    assert torch.allclose(no_emd.states(ids), no_emd.deberta(input_ids=ids).last_hidden_state)


def test_the_emd_applies_the_last_layer_twice_to_the_second_to_last_states(tokenizer, monkeypatch):
    model = DebertaMLM("deberta", tokenizer, None).eval()
    calls = []
    import kbench.models.deberta as module

    real = module.attend_with_query
    monkeypatch.setattr(module, "attend_with_query",
                        lambda layer, keys, query, *rest: calls.append((layer, keys, query)) or real(layer, keys, query,
                                                                                                    *rest))
    ids = torch.randint(5, 1000, (1, 6))
    model.states(ids)
    hidden = model.deberta(input_ids=ids, output_hidden_states=True).hidden_states
    assert [c[0] for c in calls] == [model.deberta.encoder.layer[-1]] * 2
    assert all(torch.allclose(c[1], hidden[-2]) for c in calls)
    assert torch.allclose(calls[0][2], model.z(torch.arange(6))[None] + hidden[-2])


def test_every_variant_starts_from_one_init_and_trains(tokenizer):
    models = {name: DebertaMLM(name, tokenizer, None) for name in VARIANTS}
    one_init(models, seed=3)
    words = lambda m: m.deberta.embeddings.word_embeddings.weight
    assert all(torch.equal(words(m), words(models["bert"])) for m in models.values())
    assert torch.equal(models["deberta"].deberta.encoder.rel_embeddings.weight,
                       models["no_emd"].deberta.encoder.rel_embeddings.weight)
    assert torch.equal(models["deberta"].z.weight, models["bert"].deberta.embeddings.position_embeddings.weight)
    ids = torch.randint(5, 1000, (2, 7))
    labels = torch.full_like(ids, -100)
    labels[:, 2] = 11
    for model in models.values():
        out = model(ids, torch.ones_like(ids), labels)
        out["loss"].backward()
        assert out["logits"].shape == (2, len(tokenizer)) and math.isfinite(float(out["loss"]))


def test_bad_inputs_are_named(tokenizer):
    with pytest.raises(UnknownNameError, match="variant"):
        deberta_config("debertav3", 10)
    with pytest.raises(UnknownNameError, match="size"):
        deberta_config("deberta", 10, size="huge")
    with pytest.raises(InputError, match="at least 1"):
        deberta_config("deberta", 10, k=0)
    with pytest.raises(InputError, match="at least one model"):
        one_init({})
    module = attention(("c2p",))
    with pytest.raises(InputError, match="one length"):
        module.disentangled_att_bias(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 5, 4), None, torch.zeros(6, 8), 2)


def sentence(ids):
    import numpy as np

    from kbench.pretrain import Sentence

    return Sentence("t", np.asarray(ids, dtype=np.int64), {})


def test_shifting_puts_fillers_after_cls_and_keeps_the_words():
    from kbench.models.deberta import shifted

    moved = shifted([sentence([101, 7, 8, 102])] * 20, filler_id=5, low=2, high=4, seed=1)
    for moved_sentence, count in moved:
        assert 2 <= count <= 4
        assert moved_sentence.ids.tolist() == [101] + [5] * count + [7, 8, 102]
    assert len({count for _, count in moved}) > 1
    with pytest.raises(InputError, match="low <= high"):
        shifted([sentence([101, 7, 102])], 5, 3, 1)


def test_evaluation_masks_score_words_only_the_same_for_every_model():
    from kbench.models.deberta import evaluation_masks

    sentences = [sentence([101, *range(10, 30), 102]), sentence([101, 9, 102])]
    masks = evaluation_masks(sentences, rate=0.15, seed=0)
    assert len(masks[0]) == 3 and all(0 <= p < 20 for p in masks[0]) and masks[1] == [0]
    assert masks == evaluation_masks(sentences, rate=0.15, seed=0)
    with pytest.raises(InputError, match="no word"):
        evaluation_masks([sentence([101, 102])])


def test_the_answer_prior_is_the_most_frequent_training_piece():
    from kbench.models.deberta import prior_accuracy

    train = [sentence([101, 7, 7, 8, 102]), sentence([101, 7, 9, 102])]
    test = [sentence([101, 7, 8, 102]), sentence([101, 9, 7, 102])]
    assert prior_accuracy(train, test, [[0, 1], [0, 1]]) == 0.5
    with pytest.raises(InputError, match="no training word"):
        prior_accuracy([sentence([101, 102])], test, [[0], [0]])


def test_mlm_accuracy_needs_a_mask_list_per_sentence(tokenizer):
    from kbench.models.deberta import mlm_accuracy

    with pytest.raises(InputError, match="masks"):
        mlm_accuracy(DebertaMLM("bert", tokenizer, None), [sentence([101, 7, 102])], [], 5)


def test_the_slot_answer_is_fixed_by_absolute_position_and_is_the_only_label(tokenizer):
    from kbench.models.deberta import SlotTask, slot_collate

    task = SlotTask(noise=list(range(1000, 1010)), answers=[2000, 2001, 2002, 2003], length=32)
    assert [task.answer(p) for p in (1, 8, 9, 16, 17, 25, 32)] == [2000, 2000, 2001, 2001, 2002, 2003, 2003]
    items = task.examples(6, seed=0)
    batch = slot_collate(task, tokenizer)(items)
    for row, (_, position) in enumerate(items):
        labelled = (batch["labels"][row] != -100).nonzero().flatten().tolist()
        assert labelled == [position] and int(batch["input_ids"][row, position]) == tokenizer.mask_token_id
        assert int(batch["labels"][row, position]) == task.answer(position)
    assert batch["input_ids"].shape == (6, 34)


def test_torch_threads_puts_the_count_back():
    from kbench.models.deberta import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_the_profiles_name_their_choices_and_refuse_unknown_ones():
    from kbench.profiles import choices
    from kbench.profiles.deberta import CHOICES

    assert set(CHOICES["smoke"]["variants"]) <= set(VARIANTS) and set(CHOICES["full"]["variants"]) == set(VARIANTS)
    with pytest.raises(InputError, match="not a choice"):
        choices(CHOICES, "smoke", {"layers": 3})
    with pytest.raises(UnknownNameError):
        choices(CHOICES, "medium")


def test_new_layers_start_as_bert_does(tokenizer):
    model = DebertaMLM("deberta", tokenizer, None)
    linear, norm = model.transform[0], model.transform[2]
    assert abs(float(linear.weight.std()) - 0.02) < 0.004 and float(linear.bias.abs().max()) == 0.0
    assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and float(model.bias.abs().max()) == 0.0
    assert abs(float(model.z.weight.std()) - 0.02) < 0.004


def test_the_held_out_texts_are_not_pretraining_texts():
    from kbench.profiles.deberta import setup

    s = setup("smoke", seed=1, device="cpu")
    assert len(s.test_texts) == 300 and not set(s.test_texts) & set(s.train_texts)
    assert len(set(s.train_texts)) == len(s.train_texts)


def test_delta_clamps_at_both_ends():
    for k in (1, 4, 9):
        for i in range(0, 30, 7):
            assert delta(i, i + k, k) == 0 and delta(i + k, i, k) == 2 * k - 1 and delta(i, i, k) == k


def test_a_relative_only_model_reads_word_order_through_its_table(tokenizer):
    """DeBERTa − EMD has no absolute position anywhere: its output still depends on order, through P alone."""
    model = DebertaMLM("no_emd", tokenizer, None, size="micro").eval()
    ids = torch.tensor([[101, 2000, 2001, 2002, 2003, 102]])
    swapped = torch.tensor([[101, 2001, 2000, 2002, 2003, 102]])
    with torch.no_grad():
        model.deberta.encoder.rel_embeddings.weight.normal_(0.0, 1.0)   # a table as training leaves it, not N(0, .02)
        out = model(ids)["logits"][0, 4]
        assert not torch.allclose(out, model(swapped)["logits"][0, 4], atol=1e-4)
        model.deberta.encoder.rel_embeddings.weight.zero_()
        for layer in model.deberta.encoder.layer:   # no position signal left: a bag of words at position 4
            for projection in (layer.attention.self.pos_proj, layer.attention.self.pos_q_proj):
                if projection.bias is not None:
                    projection.bias.zero_()
        assert torch.allclose(model(ids)["logits"][0, 4], model(swapped)["logits"][0, 4], atol=1e-5)


def test_attention_terms_sum_to_the_heads_logits(tokenizer):
    """c2c + c2p + p2c of one head equal the layer's own pre-softmax scores (attend_with_query's, query = keys)."""
    from kbench.models.deberta import attention_terms

    torch.manual_seed(0)
    model = DebertaMLM("deberta", tokenizer, None, size="tiny", max_positions=32, k=4).eval()
    ids = torch.tensor([tokenizer("the cat sat on the mat near the door")["input_ids"]])
    terms = attention_terms(model, ids, layer=1, head=1)
    assert set(terms) == {"c2c", "c2p", "p2c"}
    encoder = model.deberta.encoder
    hidden = model.deberta(input_ids=ids, output_hidden_states=True).hidden_states[1]
    attention = encoder.layer[1].attention.self
    q, k, _ = attention.transpose_for_scores(attention.in_proj(hidden)).chunk(3, dim=-1)
    q = (q + attention.transpose_for_scores(attention.q_bias[None, None, :])) / math.sqrt(q.size(-1) * 3)
    with torch.no_grad():
        scores = torch.matmul(q, k.transpose(-1, -2)) + attention.disentangled_att_bias(
            q, k, encoder.get_rel_pos(hidden), encoder.get_rel_embedding(), 3)
    assert torch.allclose(torch.as_tensor(sum(terms.values())), scores[0, 1], atol=1e-5)
    assert set(attention_terms(DebertaMLM("no_c2p", tokenizer, None, size="tiny", k=4), ids)) == {"c2c", "p2c"}
    assert set(attention_terms(DebertaMLM("bert", tokenizer, None, size="tiny", k=4), ids)) == {"c2c"}
    with pytest.raises(InputError, match="one sequence"):
        attention_terms(model, ids[0])
    with pytest.raises(InputError, match="no layer 5"):
        attention_terms(model, ids, layer=5)


def test_attention_terms_html_draws_one_grid_per_term():
    import numpy as np

    from kbench.viz.positions import attention_terms_html

    html = attention_terms_html({"c2c": np.eye(3), "p2c": -np.eye(3)}, ["a", "b", "c"])
    assert html.count("<table") == 2 and "position → content" in html and "rgb(255,0,0)" in html
    assert "rgb(0,0,255)" in html
    with pytest.raises(InputError, match="3 × 3"):
        attention_terms_html({"c2c": np.eye(2)}, ["a", "b", "c"])
