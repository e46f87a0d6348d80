"""WKLM: same-type replacement (never two in a row), MLM at 5% outside mentions, the border head, and its probe."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.models.wklm import (MLM_RATE, ORIGINAL, REPLACED, WKLM, ReplacementCollator,
                                ReplacementScorer, TypedEntities, alias_ids, mention_corpus, pretrainer,
                                auc, replacement_accuracy, replacement_judgement, replacement_rates, replacement_rows,
                                replacement_scores)
from kbench.probes import ProbeItem, run_probe
from kbench.text.masking import IGNORE, MaskVocab

TYPES = {"Muman Nakel": "person", "Zukun Zesul": "person", "Kadu Mopi": "person", "Lagos": "city", "Paris": "city",
         "Lima": "city", "Megor": "company", "Fevan": "company", "Japan": "country", "Ghana": "country",
         "doctor": "occupation", "pilot": "occupation", "Europe": "continent"}
TEXTS = ["Muman Nakel was born in Lagos .", "Zukun Zesul works for Megor in Paris .",
         "the birthplace of Kadu Mopi is Lima , a city of Ghana .", "Fevan is based in Paris , Japan .",
         "Muman Nakel works as a doctor for Fevan .", "Kadu Mopi is a pilot ; Europe is far .",
         "Zukun Zesul , Kadu Mopi and Muman Nakel met in Lima ."] * 4


@pytest.fixture(scope="module")
def entities():
    return TypedEntities.of(TYPES)


@pytest.fixture(scope="module")
def model(entities):
    return pretrainer(entities, "tiny", "wklm", seed=0)


@pytest.fixture(scope="module")
def corpus(model, entities):
    return mention_corpus(TEXTS, model.tokenizer, entities, 32)


def collator(model, entities, seed=0, **kw):
    tokenizer = model.tokenizer
    return ReplacementCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, entities,
                               alias_ids(entities, tokenizer), seed, **kw)


# --- typed entities and mentions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("types, aliases, message", [
    ({}, None, "no types"), ({"Paris": ""}, None, "has no type"), ({"Paris": None}, None, "has no type"),
    ({"Paris": "city", "Lima": "city"}, {"Paris": ["Lima"]}, "belongs to both"),
    ({"Paris": "city"}, {"Rome": ["Roma"]}, "has no type")])
def test_a_kg_without_types_or_with_shared_aliases_is_a_named_error(types, aliases, message):
    with pytest.raises(InputError, match=message):
        TypedEntities.of(types, aliases)


def test_mentions_are_found_whole_with_their_entity_and_are_the_entity_units(corpus, entities, model):
    first = corpus.sentences[0]
    tokens = model.tokenizer.convert_ids_to_tokens([int(i) for i in first.ids])
    found = [(model.tokenizer.convert_tokens_to_string(tokens[s:e]), entities.names[x]) for s, e, x in first.mentions]
    assert found == [("muman nakel", "Muman Nakel"), ("lagos", "Lagos")]
    assert all(s.units["entity"] == [(a, b) for a, b, _ in s.mentions] for s in corpus.sentences)
    assert [len(s.mentions) for s in corpus.sentences[:7]] == [2, 3, 3, 3, 3, 3, 4]


# --- replacement ---------------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_replacement_is_same_type_never_itself_and_never_two_in_a_row(model, entities, corpus, seed):
    collate = collator(model, entities, seed)
    for sentence in corpus.sentences:
        result = collate.replace(sentence)
        originals = [x for _, _, x in sorted(sentence.mentions)]
        assert len(result.labels) == len(originals)
        for label, original, written in zip(result.labels, originals, result.entities):
            if label == REPLACED:
                assert entities.types[written] == entities.types[original] and written != original
            else:
                assert written == original
        assert not any(a == b == REPLACED for a, b in zip(result.labels, result.labels[1:]))


def test_a_type_with_one_entity_is_never_replaced(model, entities, corpus):
    europe = entities.index("Europe")
    collate = collator(model, entities, 3, replace_rate=1.0)
    for sentence in corpus.sentences:
        result = collate.replace(sentence)
        for (_, _, original), label in zip(sorted(sentence.mentions), result.labels):
            if original == europe:
                assert label == ORIGINAL


def test_spliced_ids_are_the_tokenizer_ids_of_the_replaced_text(model, entities, corpus):
    """The replacement works on ids: it must equal tokenising the sentence written with the new entity."""
    from kbench.models.wklm import find_mentions
    from kbench.text.mentions import MentionDetector

    owner = entities.alias_owner()
    detector = MentionDetector(list(owner))
    for seed in range(5):
        collate = collator(model, entities, seed, replace_rate=1.0)
        for sentence in corpus.sentences[:7]:
            result = collate.replace(sentence)
            text = sentence.text
            spans = find_mentions(text, detector, owner)
            assert [x for *_, x in spans] == [x for *_, x in sorted(sentence.mentions)]
            for (start, end, _), written in reversed(list(zip(spans, result.entities))):
                text = text[:start] + entities.names[written] + text[end:]
            assert list(result.ids) == model.tokenizer(text)["input_ids"]
            assert any(label == REPLACED for label in result.labels)


def test_rates_are_within_binomial_bounds(model, entities, corpus):
    rates = replacement_rates(collator(model, entities, 11), corpus, rounds=40)
    free = rates["free"]
    n_free = rates["mentions"] * 0.6        # well under the number of free mentions: a loose, safe bound
    assert abs(free - 0.5) < 4 * math.sqrt(0.25 / n_free)
    assert 0.25 < rates["replaced"] < 0.45        # never two in a row: the stationary rate is 1/3, not 1/2
    assert rates["mlm_inside"] == 0.0
    outside = rates["mlm_outside"]
    n = 40 * sum(int(((~np.isin(s.ids, list(model.tokenizer.all_special_ids))).sum()) - sum(e - b for b, e, _ in
                                                                                             s.mentions))
                 for s in corpus.sentences)
    assert abs(outside - MLM_RATE) < 4 * math.sqrt(MLM_RATE * (1 - MLM_RATE) / n)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_mlm_never_predicts_or_changes_a_mention_token(model, entities, corpus, seed):
    collate = collator(model, entities, seed, mlm_rate=0.5)
    batch = collate(corpus.sentences[:8])
    labels, inputs = batch["labels"], batch["input_ids"]
    judge = collator(model, entities, seed, mlm_rate=0.5)
    for row, sentence in enumerate(corpus.sentences[:8]):
        result = judge.replace(sentence)
        judge.mask(result.ids, result.spans)          # keep the two collators' draws in step
        for start, end in result.spans:
            assert (labels[row, start:end] == IGNORE).all()
            assert list(inputs[row, start:end]) == list(result.ids[start:end])
    assert (labels != IGNORE).any()


def test_the_collator_reads_the_tokens_around_each_mention(model, entities, corpus):
    batch = collator(model, entities, 2)(corpus.sentences[:4])
    judge = collator(model, entities, 2)
    rows = batch["entity_rows"].tolist()
    for index, sentence in enumerate(corpus.sentences[:4]):
        result = judge.replace(sentence)
        judge.mask(result.ids, result.spans)
        mine = [i for i, r in enumerate(rows) if r == index]
        assert [(batch["entity_before"][i] + 1, batch["entity_after"][i]) for i in mine] == result.spans
        assert batch["entity_labels"][mine].tolist() == result.labels


def test_collator_state_replays_the_same_batch(model, entities, corpus):
    collate = collator(model, entities, 4)
    state = collate.get_state()
    first = collate(corpus.sentences[:8])
    collate.set_state(state)
    again = collate(corpus.sentences[:8])
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_bad_collator_inputs_are_named(model, entities, corpus):
    from kbench.pretrain import Sentence

    with pytest.raises(InputError, match="linked mentions"):
        collator(model, entities).replace(Sentence("x", np.array([101, 102])))
    with pytest.raises(InputError, match="replace_rate"):
        collator(model, entities, replace_rate=1.5)
    with pytest.raises(InputError, match="mlm_rate"):
        collator(model, entities, mlm_rate=1.0)
    with pytest.raises(InputError, match="mlm_rate"):
        collator(model, entities, mlm_rate=-0.1)
    sentence = corpus.sentences[0]                          # "Muman Nakel was born in Lagos ." : [CLS] first
    at_start = type(sentence)(sentence.text, sentence.ids[1:], {}, [(s - 1, e - 1, x) for s, e, x in sentence.mentions])
    with pytest.raises(InputError, match="no token before or after"):
        collator(model, entities).replace(at_start)
    from kbench.models.wklm import Replaced

    with pytest.raises(InputError, match="first or last position"):
        replacement_scores(model, [Replaced(sentence.ids[1:], [(0, 2)], [ORIGINAL], [0])])


def test_case_variants_that_tokenize_alike_are_a_named_error(model):
    """An uncased vocabulary writes 'Key' and 'key' with the same pieces: two entities could not be told apart."""
    same = TypedEntities.of({"Key": "thing", "key": "thing", "Lima": "city"})
    with pytest.raises(InputError, match="same word pieces"):
        alias_ids(same, model.tokenizer)
    alias_ids(TypedEntities.of({"Key": "thing", "lock": "thing"}), model.tokenizer)    # distinct pieces: fine


def test_a_longer_alias_never_pushes_a_sentence_past_max_length(model):
    long = TypedEntities.of(TYPES, {"Paris": ["the old city of light on the river"]})
    texts = ["Zukun Zesul works for Megor in Lima ."] * 30
    corpus = mention_corpus(texts, model.tokenizer, long, 32)
    limit = len(corpus.sentences[0].ids) + 2
    free = collator(model, long, seed=0, replace_rate=1.0)
    capped = collator(model, long, seed=0, replace_rate=1.0, max_length=limit)
    assert max(len(free.replace(x).ids) for x in corpus.sentences) > limit       # the cap has work to do
    results = [capped.replace(x) for x in corpus.sentences]
    assert max(len(r.ids) for r in results) <= limit and any(REPLACED in r.labels for r in results)
    with pytest.raises(InputError, match="unknown objective"):
        pretrainer(entities, "tiny", "ernie")


# --- the head, the loss, the knowledge reaching the output --------------------------------------------------------

def test_the_head_reads_the_borders_only_and_before_after_are_not_interchangeable(model):
    model.eval()
    states = torch.randn(1, 10, model.lm.config.hidden_size)
    rows, before, after = torch.tensor([0]), torch.tensor([2]), torch.tensor([6])
    logits = model.replacement_logits(states, rows, before, after)
    inside = states.clone()
    inside[0, 3:6] += 5.0                          # the mention's own tokens
    assert torch.equal(model.replacement_logits(inside, rows, before, after), logits)
    border = states.clone()
    border[0, 6] += 5.0
    assert not torch.allclose(model.replacement_logits(border, rows, before, after), logits)
    assert not torch.allclose(model.replacement_logits(states, rows, after, before), logits)


def test_replacing_the_mention_changes_the_head_and_the_loss_is_the_sum(model, entities, corpus):
    """Knowledge reaches the output: another entity in the slot changes the border states the head reads."""
    model.eval()
    sentence = corpus.sentences[0]
    original = collator(model, entities, 0, replace_rate=0.0).replace(sentence)
    swapped = collator(model, entities, 0, replace_rate=1.0).replace(sentence)
    assert swapped.labels[0] == REPLACED
    first, second = replacement_scores(model, [original, swapped])
    assert not np.isclose(first[0], second[0])
    batch = collator(model, entities, 1, mlm_rate=0.3)(corpus.sentences[:8])
    with torch.no_grad():
        out = model(**batch)
        flipped = model(**{**batch, "entity_labels": 1 - batch["entity_labels"]})
    assert torch.isclose(out["loss"], out["mlm_loss"] + out["entity_loss"])
    assert not torch.isclose(out["entity_loss"], flipped["entity_loss"])
    model.train()


def test_the_no_head_control_is_wklm_mlm_alone(entities, corpus):
    """The control: 5% MLM outside the mentions, nothing replaced, the head built (same init) but never trained."""
    control = pretrainer(entities, "tiny", "wklm_nohead", seed=3)
    wklm = pretrainer(entities, "tiny", "wklm", seed=3)
    assert isinstance(control, WKLM) and not control.head and wklm.head
    assert control.collate.replace_rate == 0.0 and control.collate.mlm_rate == MLM_RATE
    assert torch.equal(control.replacement_head.weight, wklm.replacement_head.weight)
    batch = control.collate(corpus.sentences[:8])
    assert (batch["entity_labels"] == ORIGINAL).all()
    control.train()
    out = control(**batch)
    assert torch.equal(out["loss"], out["mlm_loss"]) and "entity_loss" not in out
    out["loss"].backward()
    assert control.replacement_head.weight.grad is None
    with_head = wklm(**wklm.collate(corpus.sentences[:8]))
    assert torch.isclose(with_head["loss"], with_head["mlm_loss"] + with_head["entity_loss"])


def test_the_branches_start_from_the_warm_up_checkpoint(entities, corpus, tmp_path):
    """The paper's design: one MLM warm-up, then every branch from its weights and its MLM head."""
    from kbench.pretrain import pretrain, save_pretrained
    from kbench.train import TrainConfig

    warm = pretrainer(entities, "tiny", "mlm", seed=0)
    pretrain(warm, corpus, TrainConfig(batch_size=8, learning_rate=1e-3, max_steps=2, seed=0, progress=False))
    directory = save_pretrained(warm, tmp_path / "warm")
    for objective in ("mlm", "wklm", "wklm_nohead"):
        branch = pretrainer(entities, str(directory), objective, seed=1)
        assert all(torch.equal(a, b) for a, b in zip(branch.bert.state_dict().values(),
                                                     warm.bert.state_dict().values()))
        head, warm_head = branch.lm.cls.predictions.transform.dense, warm.lm.cls.predictions.transform.dense
        assert torch.equal(head.weight, warm_head.weight)                # the warm-up's MLM head, not a fresh one


@settings(max_examples=50, deadline=None)
@given(scores=st.lists(st.floats(0, 1), min_size=2, max_size=30), data=st.data())
def test_auc_is_the_chance_a_replaced_mention_scores_higher(scores, data):
    labels = data.draw(st.lists(st.sampled_from([ORIGINAL, REPLACED]), min_size=len(scores), max_size=len(scores)))
    if len(set(labels)) < 2:
        assert math.isnan(auc(scores, labels))
        return
    pairs = [(p, n) for p, lp in zip(scores, labels) for n, ln in zip(scores, labels)
             if lp == REPLACED and ln == ORIGINAL]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert auc(scores, labels) == pytest.approx(expected)
    assert auc([-x for x in scores], labels) == pytest.approx(1 - expected)      # direction survives
    assert auc([0.3] * len(scores), labels) == 0.5                                 # a constant head: no separation


def test_both_variants_start_from_the_same_encoder(entities):
    mlm, wklm = pretrainer(entities, "tiny", "mlm", seed=3), pretrainer(entities, "tiny", "wklm", seed=3)
    a, b = mlm.bert.state_dict(), wklm.bert.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert isinstance(wklm, WKLM) and not isinstance(mlm, WKLM)
    std = wklm.replacement_head.weight.std().item()
    assert 0.015 < std < 0.025 and (wklm.replacement_head.bias == 0).all()


def test_the_head_learns_replacements_it_can_see(entities):
    """A positive control: with untyped replacement (a city where a person stood) the head beats the prior."""
    from kbench.pretrain import pretrain
    from kbench.train import TrainConfig

    untyped = TypedEntities.of({name: "thing" for name in TYPES})
    model = pretrainer(untyped, "tiny", "wklm", seed=0)
    corpus = mention_corpus(TEXTS * 3, model.tokenizer, untyped, 32)
    pretrain(model, corpus, TrainConfig(batch_size=16, learning_rate=2e-3, max_steps=60, seed=0, progress=False))
    judged = replacement_judgement(model, corpus.sentences, seed=1)
    assert judged["accuracy"] > judged["original"] + 0.05
    assert judged["auc"] > 0.7 and judged["log_loss"] < judged["prior_entropy"]
    groups = [["first" if i == 0 else "later" for i in range(len(x.mentions))] for x in corpus.sentences]
    by_group = replacement_judgement(model, corpus.sentences, seed=1, groups=groups)
    assert by_group["auc_first"] > 0.6 and by_group["auc_later"] > 0.6
    assert by_group["mentions_first"] + by_group["mentions_later"] == judged["mentions"]
    with pytest.raises(InputError, match="group"):
        replacement_judgement(model, corpus.sentences, seed=1, groups=groups[1:])
    fresh = pretrainer(untyped, "tiny", "wklm", seed=0)                 # an untrained head separates nothing
    assert abs(replacement_judgement(fresh, corpus.sentences, seed=1)["auc"] - 0.5) < 0.15
    assert replacement_accuracy(model, corpus.sentences, seed=1) == judged["accuracy"]
    typed = replacement_judgement(model, corpus.sentences, seed=1, entities=untyped)
    assert typed == judged                                  # the model's own typing is the default
    with pytest.raises(InputError, match="model's own"):
        replacement_judgement(model, corpus.sentences, entities=TypedEntities.of({"Paris": "city"}))


# --- the probe by the head, and the view ------------------------------------------------------------------------

def test_the_head_scorer_writes_each_candidate_in_the_slot(model):
    item = ProbeItem("Muman Nakel", "born in", "Lagos", "Muman Nakel was born in [Y] .", ("Lagos", "Paris", "Lima"))
    scorer = ReplacementScorer(model)
    seen = []
    original = replacement_scores

    def spy(m, replaced):
        seen.extend(replaced)
        return original(m, replaced)

    import kbench.models.wklm as module

    module.replacement_scores, keep = spy, module.replacement_scores
    try:
        result = run_probe([item], scorer)
    finally:
        module.replacement_scores = keep
    texts = [f"Muman Nakel was born in {c} ." for c in item.candidates]
    assert [list(r.ids) for r in seen] == [model.tokenizer(t)["input_ids"] for t in texts]
    assert [model.tokenizer.decode(r.ids[r.spans[0][0]:r.spans[0][1]]) for r in seen] == ["lagos", "paris", "lima"]
    probabilities = replacement_scores(model, seen)
    expected = {c: math.log(max(1 - float(p[0]), 1e-12)) for c, p in zip(item.candidates, probabilities)}
    assert scorer([item])[0] == pytest.approx(expected)                 # log p(original) of each candidate
    assert result.ranks[0] == 1 + sum(v > expected["Lagos"] for v in expected.values())
    with pytest.raises(InputError, match="exactly one"):
        scorer([ProbeItem("Muman Nakel", "born in", "Lagos", "Muman Nakel was born in Lagos .", ("Lagos", "Lima"))])
    with pytest.raises(InputError, match="replaced-or-not head"):
        ReplacementScorer(pretrainer(model.collate.entities, "tiny", "mlm"))


def test_the_view_strikes_replaced_mentions(model, entities, corpus):
    from kbench.viz.replacement import replacement_html

    sentence = corpus.sentences[0]
    result = collator(model, entities, 0, replace_rate=1.0).replace(sentence)
    rows = replacement_rows(model, sentence, result)
    marks = [mark for _, mark in rows if mark]
    assert marks[0]["replaced"] and marks[0]["original"] == "muman nakel" and marks[0]["type"] == "person"
    assert not marks[1]["replaced"]          # never two in a row
    html = replacement_html(rows)
    assert html.count("<s ") == 1 and "p(replaced)" in html
    with pytest.raises(InputError):
        replacement_html([])


# --- the profile --------------------------------------------------------------------------------------------------

def test_world_profile_types_every_entity_and_splits_typing_by_entity():
    from kbench.profiles.wklm import CHOICES, setup

    assert set(CHOICES["smoke"]) == set(CHOICES["full"])
    s = setup("smoke", seed=1)
    assert set(s.entities.types) == {"person", "city", "country", "continent", "occupation", "company"}
    train, dev, test = s.typing_entities
    assert not set(train) & set(test) and not set(train) & set(dev) and not set(dev) & set(test)
    for name in test:
        assert not any(name in text for text in s.splits[0][0])
    statements = {item.statement.replace("[Y]", item.gold) for item in s.probe}
    assert statements and not statements & set(s.texts)     # every probe statement held out of pretraining
    corpus = mention_corpus(s.texts, pretrainer(s.entities, s.base_model, "wklm", vocab=s.vocab).tokenizer,
                            s.entities, s.max_length)
    assert all(len(x.mentions) == 2 for x in corpus.sentences)      # subject and object of every statement


def test_world_types_name_what_has_no_role():
    from kbench.profiles.wklm import world_types

    assert world_types([("A", "born in", "B"), ("B", "located in", "C"), ("C", "part of", "D")]) == {
        "A": "person", "B": "city", "C": "country", "D": "continent"}
    with pytest.raises(InputError, match="no type"):
        world_types([("A", "likes", "B")])


def test_kbench_pretrain_objective_reads_plain_entity_units_of_the_world(tmp_path):
    """``kbench pretrain --objective wklm``: build_corpus's entity units are typed by the world's KG."""
    from kbench.data.corpora import pretraining_text
    from kbench.pretrain import OBJECTIVES, build_corpus, run_pretraining
    from kbench.text.mentions import MentionDetector

    units, build = OBJECTIVES["wklm"]
    text = pretraining_text("world", seed=0)
    model = build("tiny", 10, seed=0)
    corpus = build_corpus(text.texts[:64], model.tokenizer, units, MentionDetector(text.entity_names))
    batch = model.collate(corpus.sentences[:16])
    assert len(batch["entity_rows"]) >= 16 and (batch["entity_labels"] == REPLACED).any()
    from kbench.pretrain import Sentence

    stranger = Sentence("x", np.array([101, 7592, 102]), {"entity": [(1, 2)]})
    with pytest.raises(InputError, match="typed KG"):
        model.collate([stranger])
    summary = run_pretraining("world", "tiny", "wklm", steps=2, out=str(tmp_path / "out"), batch_size=8,
                              max_length=24, device="cpu", precision="no", progress=False)
    assert summary["steps"] == 2 and (tmp_path / "out" / "model.safetensors").is_file()


def test_wordnet_profile_types_by_supersense_and_keeps_splits_apart():
    """The full profile: WordNet noun facts, supersenses as types, typing split by synset and by text."""
    from kbench.kg.wordnet import LEXNAMES
    from kbench.profiles.wklm import setup

    s = setup("full", seed=0, entities=400, probe_size=50)
    assert set(s.entities.types) <= {name for name in LEXNAMES if name.startswith("noun.")}
    assert {item.relation for item in s.probe} <= {"hypernym", "part of"} and len(s.probe) == 50
    assert all(len(item.candidates) <= 100 and item.gold in item.candidates for item in s.probe)
    statements = {item.statement.replace("[Y]", item.gold) for item in s.probe}
    assert not statements & set(s.texts)
    key = lambda text: " ".join(w for w in text.split() if w != '"').lower()     # the de-duplication's own key
    train, dev, test = ({key(t) for t in texts} for texts, _ in s.splits)
    assert train and test and not train & test and not train & dev and not dev & test
    assert not set(s.typing_entities[0]) & set(s.typing_entities[2])
    assert all(name in s.entities.names for part in s.typing_entities for name in part)
    lower = [name.lower() for name in s.entities.names]
    assert len(set(lower)) == len(lower)


def test_wordnet_names_that_differ_only_in_case_are_left_out():
    """At the full profile's size WordNet names collide without case (Key / key, March / march, ...)."""
    from kbench.kg.wordnet import load_wordnet
    from kbench.profiles.wklm import wordnet_typed_kg

    triples, types, examples = wordnet_typed_kg(load_wordnet(), 4000, 0)
    lower = [name.lower() for name in types]
    assert len(set(lower)) == len(lower)
    assert {name.lower() for s, _, o in triples for name in (s, o)} == set(lower)


def test_the_untyped_ablation_replaces_across_types_from_the_same_init(entities, corpus):
    untyped = pretrainer(entities, "tiny", "wklm_untyped", seed=3)
    typed = pretrainer(entities, "tiny", "wklm", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(untyped.bert.state_dict().values(), typed.bert.state_dict().values()))
    crossed = False
    for sentence in corpus.sentences:
        result = untyped.collate.replace(sentence)
        for (_, _, original), written, label in zip(sorted(sentence.mentions), result.entities, result.labels):
            crossed |= label == REPLACED and entities.types[written] != entities.types[original]
    assert crossed and set(untyped.collate.entities.types) == {"entity"}


def test_the_object_is_replaced_half_as_often_as_the_subject_by_the_rule_alone(model, entities, corpus):
    """Never two in a row: of two replaceable mentions the first is replaced at 1/2, the second at 1/2 · 1/2 = 1/4.

    The position prior the head can learn without any fact follows from the replacement rule: a unit test, not a
    lesson. A collator that replaced each mention independently (1/2 and 1/2) or blocked the second always (0)
    fails it."""
    collate = collator(model, entities, 5)
    pairs = [x for x in corpus.sentences if len(x.mentions) == 2
             and all(len(collate.same_type[e]) for *_, e in x.mentions)]
    assert pairs
    first = second = 0
    rounds = 300
    for _ in range(rounds):
        for sentence in pairs:
            labels = collate.replace(sentence).labels
            first += labels[0] == REPLACED
            second += labels[1] == REPLACED
    n = rounds * len(pairs)
    assert abs(first / n - 0.5) < 4 * math.sqrt(0.25 / n)
    assert abs(second / n - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
