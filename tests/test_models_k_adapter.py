"""K-Adapter's tasks and models: marks and roles, dependency heads, the frozen base, knowledge reaching the output."""
from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.adapters import Adapter, default_taps, load_adapter, save_adapter
from kbench.data.adapter_tasks import (NEUTRAL_TEMPLATES, ROOT, ParsedSentence, dependency_heads, mark,
                                       marked_statement, relation_sentences, split_by_fact, split_sentences,
                                       swap_marks, unmarked)
from kbench.encoders import load_encoder
from kbench.errors import InputError
from kbench.models.k_adapter import (IGNORE, UNTRAINED, VARIANTS, KAdapterModel, base_state,
                                     downstream_model, fresh_adapter, head_example, task_model, unchanged)
from kbench.train import TrainConfig, fit, predict
from kbench.viz.adapters import adapter_architecture_svg

TEMPLATES = {"born in": ["{s} was born in {o} .", "{s} is a native of {o} ."],
             "works as": ["{s} works as a {o} .", "by profession , {s} is a {o} ."]}
TRIPLES = [("anna", "born in", "paris"), ("bob", "born in", "rome"), ("anna", "works as", "farmer"),
           ("carl", "works as", "teacher"), ("dora", "born in", "oslo"), ("bob", "works as", "chemist")]


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("tiny", seed=0)


def fresh(encoder, name="factual", seed=0):
    return fresh_adapter(encoder, name, None, 32, seed)


def perturbed(adapter: Adapter, scale: float = 0.05, seed: int = 0) -> Adapter:
    """Return ``adapter`` with its weights moved away from the near-zero init (a 'trained' adapter)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return adapter


# -- marks and roles -------------------------------------------------------------------------------------------------

def test_marks_wrap_the_subject_and_the_object_and_bad_names_are_named():
    assert marked_statement("{s} was born in {o} .", "anna", "paris") == "@ anna @ was born in # paris # ."
    assert unmarked("@ anna @ was born in # paris # .") == "anna was born in paris ."
    with pytest.raises(InputError, match="holds a mark"):
        mark("a@b", "subject")
    with pytest.raises(InputError, match="non-empty"):
        mark(" ", "object")
    with pytest.raises(InputError, match="role"):
        mark("anna", "agent")


@given(st.text(alphabet="abc @#", max_size=30))
@settings(max_examples=60, deadline=None)
def test_swapping_the_marks_twice_is_the_identity_and_exchanges_the_counts(text):
    assert swap_marks(swap_marks(text)) == text
    assert swap_marks(text).count("@") == text.count("#") and swap_marks(text).count("#") == text.count("@")


def test_relation_sentences_mark_each_fact_and_half_the_frames_name_no_relation():
    rows = relation_sentences(TRIPLES * 20, TEMPLATES, per_fact=2, seed=0)
    assert len(rows) == 2 * len(TRIPLES) * 20
    assert all(r.text.count("@") == 2 and r.text.count("#") == 2 for r in rows)
    neutral = sum(r.neutral for r in rows) / len(rows)
    share = 2 * len(NEUTRAL_TEMPLATES) / (2 * len(NEUTRAL_TEMPLATES) + 2)       # 8 neutral frames of 10
    assert abs(neutral - share) < 0.1
    for r in rows:
        if not r.neutral:                   # a relation's own words: its template, filled
            assert any(marked_statement(t, r.fact[0], r.fact[2]) == r.text for t in TEMPLATES[r.relation])
    both_orders = {r.text.index("@") < r.text.index("#") for r in rows if r.neutral}
    assert both_orders == {True, False}      # neutral frames put the object first too
    with pytest.raises(InputError, match="per_fact"):
        relation_sentences(TRIPLES, TEMPLATES, per_fact=0)
    with pytest.raises(InputError, match="nothing to write"):
        relation_sentences([("a", "likes", "b")], TEMPLATES)


def test_the_split_keeps_an_entity_pair_and_its_inverse_on_one_side():
    triples = [(f"e{i}", "born in", f"c{i % 7}") for i in range(60)]
    triples += [(o, "works as", s) for s, _, o in triples]                # the same pairs, roles swapped
    splits = split_by_fact(relation_sentences(triples, TEMPLATES, per_fact=2, seed=1), seed=1)
    pairs = [{tuple(sorted((r.fact[0], r.fact[2]))) for r in part} for part in splits]
    texts = [{r.text.lower() for r in part} for part in splits]
    assert all(pairs) and not pairs[0] & pairs[1] and not pairs[0] & pairs[2] and not pairs[1] & pairs[2]
    assert not texts[0] & texts[2] and not texts[0] & texts[1]


# -- dependency heads ------------------------------------------------------------------------------------------------

def test_spacy_heads_point_at_the_governing_word_and_the_root_at_root():
    [parsed] = dependency_heads(["the cat sat on the mat ."])
    words = list(parsed.words)
    assert words == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert parsed.heads[words.index("cat")] == words.index("sat")
    assert parsed.heads[words.index("sat")] == ROOT
    assert parsed.heads[0] == 1                                            # "the" -> "cat"
    with pytest.raises(InputError, match="no text"):
        dependency_heads(["  "])


def test_head_labels_sit_on_first_pieces_and_point_at_the_head_words_first_piece(encoder):
    parsed = ParsedSentence(("zovokunor", "cats", "sleep"), (1, 2, ROOT))
    example = head_example(parsed, encoder.tokenizer, 32)
    tokens = encoder.tokenizer.convert_ids_to_tokens(example.ids.tolist())
    firsts = [i for i, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]") and not t.startswith("##")]
    assert len(firsts) == 3 and len(tokens) > 5                            # "zovokunor" splits into pieces
    labels = example.token_labels.tolist()
    assert [labels[i] for i in firsts] == [firsts[1], firsts[2], 0]        # root -> [CLS] at 0
    assert all(labels[i] == IGNORE for i in range(len(tokens)) if i not in firsts)
    with pytest.raises(InputError, match="is not a word"):
        head_example(ParsedSentence(("a", "b"), (5, ROOT)), encoder.tokenizer, 32)
    with pytest.raises(InputError, match="2 words but 1 heads"):
        head_example(ParsedSentence(("a", "b"), (ROOT,)), encoder.tokenizer, 32)


def test_sentence_splits_are_disjoint_by_content():
    parsed = [ParsedSentence(tuple(f"w{i % 30} x".split()), (ROOT, 0)) for i in range(90)]
    splits = split_sentences(parsed, seed=0)
    keys = [{" ".join(p.words).lower() for p in part} for part in splits]
    assert sum(len(k) for k in keys) == 30 and not keys[0] & keys[1] and not keys[0] & keys[2]


# -- the models ------------------------------------------------------------------------------------------------------

def test_swapping_subject_and_object_marks_changes_the_relation_logits(encoder):
    model = task_model(0, encoder=encoder, task="relation", num_labels=3, adapter=perturbed(fresh(encoder)))
    text = "@ anna @ was born in # paris # ."
    logits = predict(model, model.dataset([text, swap_marks(text)]), device="cpu")
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    batch = model.collate(list(model.dataset([text, swap_marks(text)])))
    assert batch["subject_at"].tolist() == batch["object_at"].flip(0).tolist() != batch["object_at"].tolist()


def test_the_knowledge_reaches_the_downstream_logits(encoder):
    """CHECKLIST 1: in the notebook's downstream configuration, changing an adapter's weights changes the logits."""
    trained = {"factual": perturbed(fresh(encoder)), "linguistic": perturbed(fresh(encoder, "linguistic", 1), seed=1)}
    texts = ["we heard about @ anna @ today .", "the report mentions @ paris @ twice ."]
    config = TrainConfig(max_steps=2, batch_size=2, learning_rate=1e-2, device="cpu", progress=False)
    for use in (("factual",), ("linguistic",), ("factual", "linguistic")):
        model = downstream_model(0, encoder=encoder, num_labels=4, trained=trained, use=use, cache_base=True)
        fit(model, model.dataset(texts, [0, 1]), config=config)     # the projection's adapter parts start at zero
        before = predict(model, model.dataset(texts), device="cpu")
        with torch.no_grad():
            trained[use[-1]].layers[-1].up.weight.add_(0.5)
        after = predict(model, model.dataset(texts), device="cpu")
        assert not torch.allclose(before, after, atol=1e-4), use
    alone = downstream_model(0, encoder=encoder, num_labels=4, trained=trained, use=())
    first = predict(alone, alone.dataset(texts), device="cpu")
    with torch.no_grad():
        trained["factual"].layers[-1].up.weight.add_(0.5)
    torch.testing.assert_close(predict(alone, alone.dataset(texts), device="cpu"), first)   # control: base alone


def test_cached_base_states_give_the_logits_of_running_the_base(encoder):
    adapter = perturbed(fresh(encoder))
    texts = ["@ anna @ was born in # paris # .", "# rome # and @ bob @ came up in the talk ."]
    cached = task_model(0, encoder=encoder, task="relation", num_labels=3, adapter=adapter, cache_base=True)
    running = task_model(0, encoder=encoder, task="relation", num_labels=3, adapter=adapter)
    data = cached.dataset(texts)
    assert data.examples[0].states.shape[0] == encoder.model.config.num_hidden_layers + 1
    expected = predict(running, running.dataset(texts), device="cpu")
    torch.testing.assert_close(predict(cached, data, device="cpu"), expected, atol=1e-5, rtol=1e-4)


def test_adapter_training_leaves_the_base_bit_identical_and_trains_the_adapter(encoder):
    before = base_state(encoder)
    adapter = fresh(encoder)
    adapter_before = {k: v.clone() for k, v in adapter.state_dict().items()}
    model = task_model(0, encoder=encoder, task="heads", num_labels=16, adapter=adapter, max_length=16, cache_base=True)
    parsed = [ParsedSentence(("the", "cat", "sat"), (1, 2, ROOT)), ParsedSentence(("dogs", "bark"), (1, ROOT))] * 4
    fit(model, model.dataset(parsed), config=TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-2, device="cpu",
                                                         progress=False))
    assert unchanged(before, encoder)
    assert any(not torch.equal(adapter_before[k], v) for k, v in adapter.state_dict().items())


def test_the_whole_base_fine_tune_trains_a_copy_and_leaves_the_callers_base(encoder):
    before = base_state(encoder)
    model = task_model(0, encoder=encoder, task="relation", num_labels=2, train_base=True, train_word_embeddings=False)
    texts = ["@ anna @ was born in # paris # .", "@ bob @ works as a # farmer # ."] * 4
    fit(model, model.dataset(texts, [0, 1] * 4), config=TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-3,
                                                                    device="cpu", progress=False))
    assert unchanged(before, encoder)
    tuned = model.features.bert.state_dict()
    assert any(not torch.equal(before[k], tuned[k]) for k in before if "word_embeddings" not in k)
    assert torch.equal(before["embeddings.word_embeddings.weight"], tuned["embeddings.word_embeddings.weight"])


def test_downstream_training_leaves_the_loaded_adapters_frozen(encoder):
    trained = {"factual": perturbed(fresh(encoder))}
    frozen = {k: v.clone() for k, v in trained["factual"].state_dict().items()}
    model = downstream_model(0, encoder=encoder, num_labels=2, trained=trained, use=("factual",), cache_base=True)
    texts = ["we heard about @ anna @ today .", "the report mentions @ paris @ twice ."] * 4
    fit(model, model.dataset(texts, [0, 1] * 4), config=TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-2,
                                                                    device="cpu", progress=False))
    assert all(torch.equal(frozen[k], v) for k, v in trained["factual"].state_dict().items())
    assert model.features.combine.in_features == 2 * encoder.model.config.hidden_size


def test_a_saved_and_loaded_adapter_gives_the_same_downstream_logits(encoder, tmp_path):
    adapter = perturbed(fresh(encoder))
    loaded = load_adapter(save_adapter(adapter, tmp_path / "factual"))
    texts = ["we heard about @ anna @ today ."]
    make = functools.partial(downstream_model, 0, encoder=encoder, num_labels=3, use=("factual",))
    original, reloaded = make(trained={"factual": adapter}), make(trained={"factual": loaded})
    assert torch.equal(predict(original, original.dataset(texts), device="cpu"),
                       predict(reloaded, reloaded.dataset(texts), device="cpu"))


def test_bad_inputs_are_named(encoder):
    with pytest.raises(InputError, match="unknown task"):
        KAdapterModel(encoder, "parsing", 2)
    model = task_model(0, encoder=encoder, task="relation", num_labels=2)
    with pytest.raises(InputError, match="has no # mark"):
        model.dataset(["@ anna @ was born in paris ."])
    with pytest.raises(InputError, match="no trained adapter 'linguistic'"):
        downstream_model(0, encoder=encoder, num_labels=2, trained={}, use=("linguistic",))
    with pytest.raises(InputError, match="beyond the base"):
        fresh_adapter(encoder, "factual", (0, 3), 32, 0)                   # the tiny base has 2 layers


def test_the_variants_and_the_controls_share_the_head_init(encoder):
    trained = {"factual": fresh(encoder), "linguistic": fresh(encoder, "linguistic", seed=1)}
    assert [v.options["use"] for v in VARIANTS] == [(), ("factual",), ("linguistic",), ("factual", "linguistic")]
    heads = [downstream_model(3, encoder=encoder, num_labels=4, trained=trained, **v.options).head for v in VARIANTS]
    for head in heads[1:]:
        assert all(torch.equal(a, b) for a, b in zip(heads[0].state_dict().values(), head.state_dict().values()))
    for task, labels in (("relation", 3), ("heads", 32)):
        alone = task_model(3, encoder=encoder, task=task, num_labels=labels).head
        beside = task_model(3, encoder=encoder, task=task, num_labels=labels, adapter=fresh(encoder)).head
        assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), beside.state_dict().values()))
    other = downstream_model(4, encoder=encoder, num_labels=4, trained=trained).head
    assert not torch.equal(other.dense.weight, heads[0].dense.weight)            # the seed still decides


def test_the_architecture_view_draws_each_adapter_layer_at_its_tap():
    svg = adapter_architecture_svg(6, {"factual": default_taps(6), "linguistic": default_taps(6)})
    assert default_taps(6) == (0, 3, 4)
    assert svg.count("factual layer") == 3 and "factual layer 2 (tap 3)" in svg and "linguistic layer 3 (tap 4)" in svg
    assert svg.count("base layer") == 6 and "embeddings (state 0)" in svg and "http" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    with pytest.raises(InputError, match="outside the base"):
        adapter_architecture_svg(2, {"factual": (0, 3)})


def test_no_tap_arrow_runs_through_another_adapters_box():
    """Drawn straight, the linguistic adapter's tap arrows crossed the factual adapter's boxes, reading
    "factual → linguistic" under text that says there is no path between adapters."""
    import re

    svg = adapter_architecture_svg(6, {"factual": (0, 3, 4), "linguistic": (0, 3, 4), "third": (1, 2)})
    boxes = [tuple(map(float, b)) for b in re.findall(
        r'<rect x="([\d.]+)" y="([\d.]+)" width="130" height="([\d.]+)" rx="4" fill="#', svg)]
    assert len(boxes) == 8
    segments = [((float(a), float(b)), (float(c), float(d))) for a, b, c, d in re.findall(
        r'<line x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)" stroke="#555"', svg)]
    for points in re.findall(r'<polyline points="([^"]+)"', svg):
        pairs = [tuple(map(float, p.split(","))) for p in points.split()]
        segments += list(zip(pairs, pairs[1:]))
    for (x1, y1), (x2, y2) in segments:
        for bx, by, bh in boxes:
            inside_y = by < y1 < by + bh and by < y2 < by + bh
            crosses = min(x1, x2) < bx and max(x1, x2) > bx + 130      # passes all the way through the box
            assert not (inside_y and crosses), ((x1, y1, x2, y2), (bx, by))


def test_the_smoke_profile_splits_typing_by_entity_and_facts_by_pair():
    from kbench.profiles.k_adapter import setup

    s = setup("smoke", seed=0)
    entities = [set(part) for part in s.typing_entities]
    assert all(entities) and not entities[0] & entities[2] and not entities[0] & entities[1]
    for texts, labels in s.splits:
        assert len(texts) == len(labels) and all(t.count("@") == 2 for t in texts)
    pairs = [{tuple(sorted((r.fact[0], r.fact[2]))) for r in part} for part in s.factual]
    assert not pairs[0] & pairs[2]
    assert s.adapter_config.max_steps == s.finetune_config.max_steps           # equal budgets
    assert s.adapter_config.batch_size == s.finetune_config.batch_size


def test_precomputed_states_of_the_wrong_depth_are_named(encoder):
    from kbench.adapters import KAdapterEncoder
    from kbench.encoders import HookedEncoder

    model = KAdapterEncoder(HookedEncoder(encoder.model), [fresh(encoder)])
    ids = torch.tensor([[101, 1037, 102]])
    with pytest.raises(InputError, match="expected the 3 hidden states"):
        model(ids, hidden_states=[torch.zeros(1, 3, encoder.model.config.hidden_size)] * 2)


@pytest.mark.parametrize("profile, overrides", [("smoke", {}), ("full", {"entities": 300, "parse_limit": 300})])
def test_no_held_out_typing_text_or_entity_reaches_the_knowledge_training(profile, overrides):
    from kbench.profiles.k_adapter import setup

    s = setup(profile, seed=0, **overrides)
    parsed = {"".join(p.words).lower() for part in s.linguistic for p in part}
    held_out = [unmarked(t).replace(" ", "").lower() for texts, _ in s.splits[1:] for t in texts]
    assert held_out and not [t for t in held_out if t in parsed]                  # no dev/test typing text parsed
    held_out = set(s.typing_entities[1]) | set(s.typing_entities[2])          # dev entities too
    assert s.typing_entities[1] and not [r for r in s.factual[0] if held_out & {r.fact[0], r.fact[2]}]
    # the positive control's split: every pair of a test entity (and no dev entity) trained, no dev entity's
    names = lambda r: {r.fact[0], r.fact[2]}
    test, dev = set(s.typing_entities[2]), set(s.typing_entities[1])
    seen_train = {r.fact for r in s.factual_seen[0]}
    assert not [r for r in s.factual_seen[0] if dev & names(r)]
    assert not [r for part in s.factual_seen[1:] for r in part if test & names(r) and not dev & names(r)]
    assert len({r.fact for r in s.factual_seen[0] if test & names(r)}) >= 20
    assert seen_train != {r.fact for r in s.factual[0]}


def test_a_held_out_entity_puts_every_pair_it_names_in_test():
    rows = relation_sentences(TRIPLES, TEMPLATES, per_fact=2, seed=0)
    train, dev, test = split_by_fact(rows, seed=0, held_out=["anna"])
    assert not [r for r in train + dev if "anna" in (r.fact[0], r.fact[2])]
    assert {r.fact for r in test} >= {("anna", "born in", "paris"), ("anna", "works as", "farmer")}


def test_a_seen_entity_puts_its_pairs_in_train_unless_held_out():
    rows = relation_sentences(TRIPLES, TEMPLATES, per_fact=2, seed=0)
    for seed in range(4):
        train, dev, test = split_by_fact(rows, seed=seed, seen=["anna", "bob"], held_out=["paris"])
        facts = [{r.fact for r in part} for part in (train, dev, test)]
        assert {("bob", "born in", "rome"), ("bob", "works as", "chemist"), ("anna", "works as", "farmer")} <= facts[0]
        assert ("anna", "born in", "paris") in facts[2]                     # held out wins over seen
        assert not facts[0] & facts[1] and not facts[0] & facts[2]


def test_untrained_adapters_are_the_trained_ones_before_training_and_every_variant_starts_as_the_base(encoder):
    """The trivial baseline of the same shape: fresh adapters of the same seed are the trained adapters' init;
    with the projection's base part the identity, each downstream variant starts with the base alone's logits."""
    taps = default_taps(encoder.model.config.num_hidden_layers)
    a, b = fresh_adapter(encoder, "factual", taps, 32, 7), fresh_adapter(encoder, "factual", taps, 32, 7)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    other = fresh_adapter(encoder, "factual", taps, 32, 8)
    assert not torch.equal(a.layers[0].down.weight, other.layers[0].down.weight)
    assert [v.options for v in UNTRAINED] == [VARIANTS[1].options, VARIANTS[3].options]
    trained = {"factual": perturbed(a), "linguistic": perturbed(fresh(encoder, "linguistic", 1), seed=1)}
    texts = ["we heard about @ anna @ today .", "the report mentions @ paris @ twice ."]
    logits = [predict(m, m.dataset(texts), device="cpu") for m in
              (downstream_model(3, encoder=encoder, num_labels=4, trained=trained, **v.options) for v in VARIANTS)]
    for other in logits[1:]:
        torch.testing.assert_close(other, logits[0], atol=1e-6, rtol=1e-6)


def test_the_authors_downstream_trains_a_copy_of_the_base_and_keeps_the_adapters_frozen(encoder):
    before = base_state(encoder)
    trained = {"factual": perturbed(fresh(encoder))}
    frozen = {k: v.clone() for k, v in trained["factual"].state_dict().items()}
    model = downstream_model(0, encoder=encoder, num_labels=2, trained=trained, use=("factual",), train_base=True,
                             cache_base=True)
    texts = ["we heard about @ anna @ today .", "the report mentions @ paris @ twice ."] * 4
    data = model.dataset(texts, [0, 1] * 4)
    assert data.examples[0].states is None                                  # a training base is run every step
    fit(model, data, config=TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-3, device="cpu", progress=False))
    assert unchanged(before, encoder)                                       # the caller's base
    assert all(torch.equal(frozen[k], v) for k, v in trained["factual"].state_dict().items())
    tuned = model.features.base.bert.state_dict()
    assert any(not torch.equal(before[k], tuned[k]) for k in before)

