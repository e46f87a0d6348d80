"""ERNIE (Tsinghua): alignment and marks, the aggregator's fusion (Eq. 2-6), dEA's noise and targets, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kbench.data.ernie_wiki import first_piece_entities, load_ernie_wiki
from kbench.encoders import HookedEncoder, load_encoder
from kbench.errors import DataError, InputError
from kbench.models.ernie_thu import (MARKS, Aggregator, ErnieClassifier, ErnieDEA, dea_accuracy, dea_noise, half_of)
from kbench.text import Candidate, LinkedMention

ENTITIES = {"paris": 0, "zuma_1": 1, "zuma_2": 2, "acme": 3}


def vectors(dim=8):
    return torch.nn.functional.normalize(torch.randn(len(ENTITIES), dim, generator=torch.Generator().manual_seed(0)),
                                         dim=-1)


def mention(start, end, words, entity):
    return LinkedMention(start, end, " ".join(words[start:end]), [Candidate(entity, 1.0)], chosen=entity)


WORDS = "the teacher zuma moved to paris last year".split()
MENTIONS = [mention(2, 3, WORDS, "zuma_1"), mention(5, 6, WORDS, "paris")]


def classifier(**kw):
    options = dict(k_layers=1, max_length=32, seed=0) | kw
    return ErnieClassifier(3, vectors(), ENTITIES, "tiny", **options).eval()


def aggregator(hidden=128):
    torch.manual_seed(0)
    bert = load_encoder("tiny").model.eval()
    return bert, Aggregator(bert.encoder.layer[1], 8, heads=2).eval()


def test_entity_on_the_first_piece_and_marks_on_both_sides():
    model = classifier()
    example = model.dataset([(WORDS, MENTIONS)])[0]
    tokens = model.ernie.tokenizer.convert_ids_to_tokens(example.input_ids.tolist())
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    first = tokens.index(MARKS["ENT"])
    second = tokens.index(MARKS["ENT"], first + 1)
    pieces = model.ernie.tokenizer.tokenize("zuma")
    assert tokens[first + 1:second] == pieces                    # [ENT] zuma [ENT]
    assert example.entity_ids[first + 1] == ENTITIES["zuma_1"]    # on the first piece only
    assert (example.entity_ids[first + 2:second] == -1).all()
    assert example.entity_ids[tokens.index("paris")] == ENTITIES["paris"]   # aligned, not marked for typing
    assert (example.entity_ids >= 0).sum() == 2


def test_relation_marks_head_and_tail():
    model = classifier(task="relation")
    tokens = model.ernie.tokenizer.convert_ids_to_tokens(model.dataset([(WORDS, MENTIONS)])[0].input_ids.tolist())
    assert tokens.count(MARKS["HD"]) == 2 and tokens.count(MARKS["TL"]) == 2
    assert tokens[tokens.index(MARKS["TL"]) + 1] == "paris"


def test_a_mention_cut_by_max_length_loses_its_entity():
    model = classifier(max_length=6)
    example = model.dataset([(WORDS, MENTIONS)])[0]
    assert len(example.input_ids) == 6 and example.entity_ids.tolist().count(ENTITIES["paris"]) == 0


def test_without_entities_an_aggregator_is_the_bert_layer_it_rebuilds():
    """Eq. 4 with no entity: ``h = GELU(W_t w + b)`` — the token path exactly, so the layer's own output."""
    bert, module = aggregator()
    states = torch.randn(2, 5, 128)
    context = {"entity_mask": torch.zeros(2, 5, dtype=torch.bool), "entity_states": torch.zeros(2, 5, 8)}
    assert torch.allclose(module(states, None, context), bert.encoder.layer[1](states, None), atol=1e-6)


def test_an_entity_changes_only_its_own_token_and_cls_within_one_aggregator():
    """Token attention comes before the fusion (Eq. 2 then 4), so an entity at j moves w'_j — and [CLS],
    whose zero-vector entity slot attends over every entity — and no other token."""
    _, module = aggregator()
    states = torch.randn(1, 6, 128)
    mask = torch.zeros(1, 6, dtype=torch.bool)
    mask[0, 0] = True                                   # [CLS]'s slot, the zero vector
    empty = {"entity_mask": mask, "entity_states": torch.zeros(1, 6, 8)}
    mask_j = mask.clone()
    mask_j[0, 3] = True
    entity = torch.zeros(1, 6, 8)
    entity[0, 3] = vectors()[1]
    fused = {"entity_mask": mask_j, "entity_states": entity}
    moved = (module(states, None, fused) - module(states, None, empty)).norm(dim=-1)[0]
    assert moved[3] > 1e-3 and moved[0] > 1e-3 and torch.all(moved[[1, 2, 4, 5]] < 1e-6)


def test_one_aggregator_carries_the_entities_to_the_logits():
    """The [CLS] entity slot (authors' ``ent_mask[0] = 1``): with a single aggregator the logits depend on the
    entities (without the slot they were exactly independent of them)."""
    model = classifier(k_layers=1)
    batch = model.collate(list(model.dataset([(WORDS, MENTIONS)])))
    with torch.no_grad():
        logits = model(**batch)["logits"]
        none = model(**(batch | {"entity_ids": torch.full_like(batch["entity_ids"], -1)}))["logits"]
        other = batch["entity_ids"].clone()
        other[other == ENTITIES["zuma_1"]] = ENTITIES["zuma_2"]
        swapped = model(**(batch | {"entity_ids": other}))["logits"]
    assert (logits - none).abs().max() > 1e-4 and (logits - swapped).abs().max() > 1e-4


def test_the_k_encoder_is_half_of_the_encoder_by_default():
    assert [half_of(depth) for depth in (1, 2, 4, 6, 12)] == [1, 1, 2, 3, 6]
    assert classifier(k_layers=None).ernie.k_layers == 1                       # tiny: 2 layers
    mini = ErnieClassifier(3, vectors(), ENTITIES, "mini", max_length=32)
    assert mini.ernie.k_layers == 2 and sorted(mini.ernie.encoder.replace) == ["2", "3"]


def test_new_layers_start_as_berts_and_the_pretrained_layer_is_untouched():
    """``init_bert_weights`` on the entity path and the head: N(0, 0.02), zero bias, LayerNorm 1/0."""
    bert, module = aggregator()
    for linear in (module.entity_in, module.entity_out, module.entity_attention.self.query,
                   module.entity_attention.output.dense):
        assert abs(linear.weight.std().item() - 0.02) < 0.006
    assert not module.entity_out.bias.any() and not module.entity_attention.self.query.bias.any()
    assert torch.equal(module.entity_norm.weight, torch.ones(8))
    assert module.layer is bert.encoder.layer[1]           # wrapped, not re-initialised
    model = classifier()
    assert abs(model.output.weight.std().item() - 0.02) < 0.01 and not model.output.bias.any()


def test_the_entity_stream_follows_eq5_by_hand():
    """``e' = LN(W_oe h + e)`` with ``h = GELU(W_t w + W_e e + b)``, for one aligned token computed by hand."""
    _, module = aggregator()
    states = torch.randn(1, 3, 128)
    aligned = torch.tensor([[False, True, False]])
    entity = torch.zeros(1, 3, 8)
    entity[0, 1] = vectors()[2]
    context = {"entity_mask": aligned, "entity_states": entity}
    module(states, None, context)
    tokens = module.layer.attention(states, None)[0]
    attended = module.entity_attention(entity, aligned[:, None, None, :] | torch.eye(3, dtype=torch.bool))[0][0, 1]
    h = torch.nn.functional.gelu(module.layer.intermediate.dense(tokens[0, 1]) + module.entity_in.weight @ attended)
    expected = torch.nn.functional.layer_norm(module.entity_out(h) + attended, (8,), module.entity_norm.weight,
                                              module.entity_norm.bias, eps=1e-12)
    assert torch.allclose(context["entity_states"][0, 1], expected, atol=1e-5)


def test_hooked_encoder_runs_a_replacing_module_in_place_of_the_layer():
    bert = load_encoder("tiny").model.eval()
    calls = []

    class Same(torch.nn.Module):
        def forward(self, states, mask, context):
            calls.append(context["tag"])
            return bert.encoder.layer[0](states, mask)

    ids = torch.tensor([[101, 2054, 2003, 102]])
    plain = HookedEncoder(bert)(ids, torch.ones_like(ids))
    replaced = HookedEncoder(bert, replace={0: Same()})(ids, torch.ones_like(ids), tag="seen")
    assert torch.equal(plain, replaced) and calls == ["seen"]
    with pytest.raises(InputError, match="replacing module"):
        HookedEncoder(bert, replace={7: Same()})


def test_k_layers_zero_is_bert_on_the_same_input():
    model = classifier(k_layers=0)
    batch = model.collate(list(model.dataset([(WORDS, MENTIONS)])))
    plain = model.ernie.encoder.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert torch.allclose(model.ernie(batch["input_ids"], batch["attention_mask"], batch["entity_ids"]),
                          plain.last_hidden_state, atol=1e-6)


@given(st.integers(0, 10_000))
def test_dea_noise_touches_only_aligned_tokens(seed):
    rng = np.random.default_rng(seed)
    ids = np.where(rng.random((4, 12)) < 0.4, rng.integers(0, 50, (4, 12)), -1)
    noisy = dea_noise(ids, np.random.default_rng(seed), 50)
    assert noisy.shape == ids.shape
    assert (noisy[ids < 0] == -1).all()
    assert ((noisy >= -1) & (noisy < 50)).all()


def test_dea_noise_rates_are_the_papers():
    ids = np.arange(200_000) % 1000
    noisy = dea_noise(ids, np.random.default_rng(0), 1000)
    removed = np.mean(noisy < 0)
    replaced = np.mean((noisy >= 0) & (noisy != ids))
    assert abs(removed - 0.15) < 0.005 and abs(replaced - 0.05 * 999 / 1000) < 0.003
    with pytest.raises(InputError, match="probabilities"):
        dea_noise(ids, np.random.default_rng(0), 1000, replace=0.6, remove=0.5)


def test_dea_replacements_come_from_the_batchs_entities():
    """The authors' collate draws a replaced entity among the batch's entities, not the whole table."""
    model = ErnieDEA(vectors(), ENTITIES, "tiny", k_layers=1, seed=0, replace=1.0, remove=0.0)
    data = model.aligned_examples([([2054, 2003, 2023], ["acme", None, "paris"])] * 50)
    noisy = model.collate(list(data), noise=True)["entity_ids"]
    drawn = set(noisy[noisy >= 0].tolist())
    assert drawn == {ENTITIES["acme"], ENTITIES["paris"]}          # never zuma_1 or zuma_2
    assert (noisy[:, 1] == ENTITIES["paris"]).any()                # a replacement, not only the original
    with pytest.raises(InputError, match="pool is empty"):
        dea_noise(np.array([3]), np.random.default_rng(0), np.array([], np.int64), replace=1.0, remove=0.0)


def test_dea_targets_index_the_batchs_entities_and_the_loss_trains():
    model = ErnieDEA(vectors(), ENTITIES, "tiny", k_layers=1, seed=0)
    data = model.aligned_examples([([2054, 2003, 2023], ["acme", None, "paris"]), ([2054], ["zuma_2"])])
    batch = model.collate(list(data), noise=False)
    assert batch["candidates"].tolist() == [0, 2, 3]
    labels = batch["labels"]
    assert labels[0, 1] == 2 and labels[0, 3] == 0 and labels[1, 1] == 1 and (labels[0, [0, 2, 4]] == -100).all()
    out = model(**batch)
    assert out["logits"].shape == (2, 5, 3) and torch.isfinite(out["loss"])
    accuracy, chance = dea_accuracy(model, data, remove=True)
    assert chance == pytest.approx(1 / 3)
    # a head that always picks candidate 0 (paris) is right on exactly one of the three aligned tokens
    model.head.forward = lambda states, candidates: torch.nn.functional.one_hot(
        torch.zeros(states.shape[:2], dtype=torch.long), len(candidates)).float()
    assert dea_accuracy(model, data, remove=True) == (pytest.approx(1 / 3), pytest.approx(1 / 3))


def test_dea_pretrained_weights_move_into_the_classifier():
    dea = ErnieDEA(vectors(), ENTITIES, "tiny", k_layers=1, seed=1)
    model = classifier(pretrained=dea.ernie.state_dict())
    assert torch.equal(model.ernie.encoder.replace["1"].entity_in.weight, dea.ernie.encoder.replace["1"].entity_in.weight)
    assert "pre-trained with dEA" in model.description
    with pytest.raises(InputError, match="do not fit"):
        classifier(k_layers=2, pretrained=dea.ernie.state_dict())


@pytest.mark.parametrize("change, message", [
    (dict(mentions=[mention(2, 3, WORDS, "nobody")]), "not in the embedding table"),
    (dict(mentions=[LinkedMention(7, 9, "x", [Candidate("paris", 1.0)], chosen="paris")]), "out of range"),
    (dict(words=[]), "at least one word"),
    (dict(mentions=[]), "needs 1 mention"),
])
def test_bad_input_gets_a_clear_error(change, message):
    text = dict(words=WORDS, mentions=MENTIONS) | change
    with pytest.raises(InputError, match=message):
        classifier().dataset([(text["words"], text["mentions"])])


def test_bad_configuration_gets_a_clear_error():
    with pytest.raises(InputError, match="k_layers"):
        classifier(k_layers=5)
    with pytest.raises(InputError, match="unknown task"):
        classifier(task="qa")
    with pytest.raises(InputError, match="at least one aggregator"):
        ErnieDEA(vectors(), ENTITIES, "tiny", k_layers=0)
    with pytest.raises(InputError, match="divisible"):
        ErnieClassifier(3, torch.randn(4, 10), ENTITIES, "tiny", heads=4)
    with pytest.raises(InputError, match="past the"):
        ErnieClassifier(3, torch.randn(2, 8), ENTITIES, "tiny")


def test_wikipedia_entities_stay_on_first_pieces():
    assert first_piece_entities(["#UNK#", "Q1", "Q1", "#UNK#", "Q2", "Q3", "Q3"]) == [None, "Q1", None, None, "Q2",
                                                                                        "Q3", None]


def test_wikipedia_sample_loads_from_the_mirror(mirror, tmp_path):
    from kbench.data import fetch
    from kbench.data.ernie_wiki import FILES

    for name in FILES:
        fetch(name, tmp_path, mirror, progress=False)
    sentences = load_ernie_wiki(tmp_path, documents=2)
    assert sentences and all(len(ids) == len(entities) for ids, entities in sentences)
    assert any(e is not None for _, entities in sentences for e in entities)
    assert all(e is None or e.startswith("Q") for _, entities in sentences for e in entities)


def test_a_malformed_wikipedia_file_is_named(tmp_path):
    for name in ("wiki_token", "wiki_entity"):
        path = tmp_path / "ernie_thu" / "pretrain_data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("2\t3\t1\t2\n")
    with pytest.raises(DataError, match="wiki_token:1"):
        load_ernie_wiki(tmp_path)


def test_readable_tokens_write_the_marks_as_the_paper():
    model = classifier(task="relation")
    tokens = model.ernie.readable_tokens(model.dataset([(WORDS, MENTIONS)])[0].input_ids)
    assert tokens.count("[HD]") == 2 and tokens.count("[TL]") == 2 and not any("unused" in t for t in tokens)


def test_the_untrained_module_is_random_vectors_of_the_same_norms():
    from kbench.models import ernie_thu

    table = torch.randn(7, 6) * 3
    (variant,) = ernie_thu.control_variants(table, seed=0)
    fresh = variant.options["entity_embeddings"]
    assert fresh.shape == table.shape and torch.allclose(fresh.norm(dim=-1), table.norm(dim=-1), atol=1e-5)
    assert not torch.allclose(fresh, table)
    assert f"{variant.name}_test_accuracy" in ernie_thu.HEADLINE.trivial
