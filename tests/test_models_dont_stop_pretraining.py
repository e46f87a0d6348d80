"""Don't Stop Pretraining: each regime's corpus, kNN-TAPT's choice, TAPT after DAPT, the held-out MLM loss, macro-F1."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.errors import InputError, UnknownNameError
from kbench.models.dont_stop_pretraining import (REGIMES, AdaptedClassifier, adapt, adaptation_corpora, macro_f1,
                                                 masked_lm_loss, variants)
from kbench.text.vocabulary import text_key as _text_key
from kbench.train import TrainConfig


def text_key(text):
    return _text_key(text, punctuation=False)

TASK = ["a cell divides into two cells", "the enzyme breaks the protein down", "heat flows from hot to cold",
        "the acid reacts with the metal", "light bends in water"]
HELD = ["the gas expands when heated", "a salt dissolves in water"]
DOMAIN = ["the gas expands when heated",                    # a test text: must never be pretrained on
          "A cell divides into two cells .",                # the task's own text, other case and spacing
          "an enzyme speeds a reaction", "metals conduct heat", "water freezes at zero degrees",
          "proteins fold into shapes", "a cell has a membrane", "acids taste sour"]
ADAPT_CONFIG = dict(batch_size=4, learning_rate=1e-3, max_steps=3, seed=0, progress=False, device="cpu", precision="no")
FAR = ["the train left the station", "a hammer drives nails", "the bridge spans the river", "a salt dissolves in water"]


def bag_of_words(texts):
    """A stand-in sentence embedder: counts of a fixed word list (cosine then measures shared words)."""
    words = ["cell", "enzyme", "protein", "heat", "acid", "metal", "water", "light", "gas", "reaction", "membrane",
             "sour", "train", "hammer", "bridge"]
    return np.array([[text.lower().split().count(w) for w in words] + [0.1] for text in texts], dtype=float)


@pytest.fixture(scope="module")
def corpora():
    return adaptation_corpora(TASK, HELD, DOMAIN, FAR, k=1, embed=bag_of_words, seed=0)


def test_no_held_out_text_in_any_pretraining_corpus(corpora):
    held = {text_key(t) for t in HELD}
    for regime in ("dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt", "irrelevant_dapt"):
        assert not held & {text_key(t) for t in corpora.corpus(regime)}, regime
    assert "the gas expands when heated" not in corpora.domain and "a salt dissolves in water" not in corpora.irrelevant


def test_tapt_is_the_task_train_text_and_dapt_holds_none_of_it(corpora):
    assert corpora.corpus("tapt") == TASK and corpora.corpus("dapt_tapt") == TASK
    task = {text_key(t) for t in TASK}
    assert not task & {text_key(t) for t in corpora.domain}          # "A cell divides ..." removed by its words
    assert len(corpora.domain) == len(DOMAIN) - 2


def test_knn_tapt_adds_each_task_sentence_nearest_domain_sentence(corpora):
    chosen = [corpora.domain[i] for i in corpora.selected]
    assert corpora.knn == TASK + chosen
    # each task sentence's nearest by shared words: cell -> cell, enzyme -> enzyme, heat -> heat, water -> water;
    # "the acid reacts with the metal" shares no listed word with any left ("acids", "metals" are other words), so
    # it takes the lowest-index of the equally near rest
    assert chosen == ["a cell has a membrane", "an enzyme speeds a reaction", "metals conduct heat",
                      "proteins fold into shapes", "water freezes at zero degrees"]
    assert len(set(chosen)) == len(chosen)


def test_rand_tapt_has_as_many_domain_sentences_as_knn(corpora):
    extra = corpora.random[len(TASK):]
    assert corpora.random[:len(TASK)] == TASK and len(extra) == len(corpora.selected)
    assert set(extra) <= set(corpora.domain)


@given(st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def test_every_kept_domain_text_is_outside_the_task_for_any_seed(seed):
    corpora = adaptation_corpora(TASK, HELD, DOMAIN, FAR, k=2, embed=bag_of_words, seed=seed)
    task = {text_key(t) for t in TASK + HELD}
    for text in corpora.domain + corpora.irrelevant + corpora.random[len(TASK):] + corpora.knn[len(TASK):]:
        assert text_key(text) not in task


@pytest.mark.parametrize("call, error, message", [
    (lambda: adaptation_corpora(TASK, HELD, []), InputError, "domain corpus is empty"),
    (lambda: adaptation_corpora(TASK, HELD, ["  "]), InputError, "domain corpus is empty"),
    (lambda: adaptation_corpora(TASK, HELD, HELD + TASK), InputError, "no text left"),
    (lambda: adaptation_corpora([], HELD, DOMAIN), InputError, "train text is empty"),
    (lambda: adaptation_corpora("one string", HELD, DOMAIN), InputError, "not one string"),
    (lambda: adaptation_corpora(TASK + HELD[:1], HELD, DOMAIN), InputError, "also a dev or test text"),
    (lambda: adaptation_corpora(TASK, HELD, DOMAIN, k=2), InputError, "needs embed"),
    (lambda: adaptation_corpora(TASK, HELD, DOMAIN, k=99, embed=bag_of_words), InputError, "k must be between"),
    (lambda: adaptation_corpora(TASK, HELD, DOMAIN).corpus("knn_tapt"), InputError, "knn_tapt corpus is empty"),
    (lambda: adaptation_corpora(TASK, HELD, DOMAIN).corpus("nope"), UnknownNameError, "has no corpus"),
])
def test_bad_input_is_a_named_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_macro_f1_averages_per_class_f1():
    logits = torch.eye(3)[[0, 0, 1, 2, 2, 2]]           # predictions 0 0 1 2 2 2
    labels = torch.tensor([0, 1, 1, 2, 2, 2])
    # class 0: P 1/2 R 1 -> 2/3; class 1: P 1 R 1/2 -> 2/3; class 2: 1
    assert macro_f1(logits, labels) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    # a rare class counts as much as a frequent one: always predicting the majority scores far below accuracy
    majority = torch.eye(3)[[2] * 6]
    assert macro_f1(majority, labels) == pytest.approx((0 + 0 + 2 * 3 / (2 * 3 + 3)) / 3)
    with pytest.raises(InputError, match="no labelled"):
        macro_f1(logits, torch.full((6,), -100))


def test_the_classifier_selects_by_macro_f1():
    assert list(AdaptedClassifier.metrics(None)) == ["macro_f1", "accuracy"]
    assert [v.options["base_model"] for v in variants(["base", "dapt"], {"base": "b", "dapt": "d"})] == ["b", "d"]
    assert variants(["tapt"], {"tapt": "t"})[0].label == REGIMES["tapt"]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """Every regime from one random-init tiny BERT for 3 steps (the mechanism, not the numbers)."""
    out = tmp_path_factory.mktemp("adapt")
    corpora = adaptation_corpora(TASK * 4, HELD, DOMAIN * 4, FAR * 4, k=1, embed=bag_of_words, seed=0)
    return adapt("tiny", list(REGIMES), corpora, TrainConfig(**ADAPT_CONFIG), out, max_length=16)


def test_dapt_tapt_continues_the_dapt_checkpoint_and_base_is_untouched(adapted):
    import json
    from pathlib import Path

    checkpoints, histories = adapted
    assert checkpoints["base"] == "tiny" and "base" not in histories
    about = lambda r: json.loads((Path(checkpoints[r]) / "kbench.json").read_text())
    assert about("dapt_tapt")["from"] == checkpoints["dapt"] and about("tapt")["from"] == "tiny"
    assert {r: h.steps for r, h in histories.items()} == {r: 3 for r in REGIMES if r != "base"}   # equal budgets


def test_regimes_differ_only_in_their_corpus(adapted, tmp_path):
    """The same init, steps and seed: the same text again ends identical, different text differently."""
    from pathlib import Path

    from safetensors.torch import load_file

    checkpoints, _ = adapted
    corpora = adaptation_corpora(TASK * 4, HELD, DOMAIN * 4, FAR * 4, k=1, embed=bag_of_words, seed=0)
    again, _ = adapt("tiny", ["tapt"], corpora, TrainConfig(**ADAPT_CONFIG), tmp_path, max_length=16)
    weights = {r: load_file(str(Path(checkpoints[r]) / "model.safetensors")) for r in ("dapt", "tapt", "dapt_tapt")}
    weights["again"] = load_file(str(Path(again["tapt"]) / "model.safetensors"))
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(weights["again"][key], weights["tapt"][key])
    assert not torch.equal(weights["dapt"][key], weights["tapt"][key])
    assert not torch.equal(weights["dapt_tapt"][key], weights["tapt"][key])


def test_every_checkpoint_is_scored_on_the_same_masks(adapted):
    """masked_lm_loss masks with its seed alone: two checkpoints of one vocabulary see the same masked positions."""
    from kbench.pretrain import build_corpus, mlm_model

    checkpoints, _ = adapted
    masks = []
    for base in ("tiny", checkpoints["dapt"]):
        model = mlm_model(base, "token", seed=0)
        corpus = build_corpus(TASK * 3, model.tokenizer, ("word",), max_length=16)
        masks.append(model.collate(corpus.sentences))
    assert torch.equal(masks[0]["input_ids"], masks[1]["input_ids"])
    assert torch.equal(masks[0]["labels"], masks[1]["labels"])


def test_adapt_bad_input():
    corpora = adaptation_corpora(TASK, HELD, DOMAIN)
    config = TrainConfig(max_steps=1, progress=False)
    with pytest.raises(UnknownNameError, match="unknown regime"):
        adapt("tiny", ["dapt", "mlm"], corpora, config, "/tmp/none")
    with pytest.raises(InputError, match="list 'dapt' before"):
        adapt("tiny", ["dapt_tapt"], corpora, config, "/tmp/none")


def test_held_out_text_in_a_corpus_is_refused_by_pretraining(tmp_path):
    from kbench.pretrain import continue_pretraining

    with pytest.raises(InputError, match="excluded"):
        continue_pretraining("tiny", TASK + HELD, TrainConfig(max_steps=1, progress=False), tmp_path, exclude=HELD)


def test_masked_lm_loss_is_repeatable_and_lower_after_training_on_the_text(adapted, tmp_path):
    """The same masks for every checkpoint: repeatable; TAPT's loss on the task text below the untrained head's."""
    from kbench.pretrain import continue_pretraining

    first = masked_lm_loss("tiny", TASK * 3, seed=0, max_length=16)
    assert first == pytest.approx(masked_lm_loss("tiny", TASK * 3, seed=0, max_length=16))
    trained, _ = continue_pretraining("tiny", TASK * 8, TrainConfig(batch_size=8, learning_rate=3e-3, max_steps=30,
                                      seed=0, progress=False, device="cpu", precision="no"), tmp_path / "t",
                                      max_length=16)
    assert masked_lm_loss(str(trained), TASK * 3, seed=0, max_length=16) < first - 1.0
    with pytest.raises(InputError, match="evaluation text is empty"):
        masked_lm_loss("tiny", [], seed=0)


def test_smoke_profile_domains_exclude_the_task_and_the_task_is_nearer_its_own_domain():
    """None of the task's texts (any split) in its domain corpora; its top words overlap its domain's more than the
    irrelevant domain's (the notebook's section 1)."""
    from kbench.profiles.dont_stop_pretraining import CHOICES, clear_seen, setup
    from kbench.text.vocabulary import domain_overlap

    s = setup("smoke", seed=1, device="cpu")
    task = s.tasks[0]
    every = {text_key(t) for part in task.splits for t in part[0]}
    assert not every & {text_key(t) for t in task.domain + task.irrelevant}
    assert task.loss_texts == task.splits[2][0]                       # smoke scores the MLM loss on every test text
    texts = {"task": task.splits[0][0], "domain": task.domain, "far": task.irrelevant}
    _, overlap = domain_overlap(texts, k=s.overlap_k)
    assert overlap[0, 1] > overlap[0, 2] + 0.1
    assert set(CHOICES["smoke"]) == set(CHOICES["full"])
    splits, dropped = clear_seen((( ["a b", "c d"], [0, 1]), (["A  b", "e"], [0, 1]), (["c d .", "c e"], [1, 0])))
    assert dropped == 2 and splits[1] == (["e"], [1]) and splits[2] == (["c e"], [0])


def test_the_profile_embedder_caches_without_changing_a_vector():
    from types import SimpleNamespace

    from kbench.encoders import EMBEDDED, load_encoder
    from kbench.profiles.dont_stop_pretraining import sentence_embedder
    from kbench.text.selection import sentence_vectors

    embed = sentence_embedder(SimpleNamespace(selection_layers=1, max_length=32))
    first = embed(TASK[:3])
    again = embed([TASK[2], TASK[0], TASK[4]])
    encoder = load_encoder(EMBEDDED, layers=1)
    direct = sentence_vectors(encoder.model, encoder.tokenizer, [TASK[2], TASK[0], TASK[4]], max_length=32)
    np.testing.assert_allclose(again, direct, atol=1e-5)
    np.testing.assert_array_equal(again[1], first[0])


def test_full_profile_samples_at_random_not_the_first_n():
    """The full profile's caps (train, dev, test, MLM-loss texts) draw a seeded random sample, in the split's order."""
    from kbench.profiles.dont_stop_pretraining import sample_split

    split = ([f"text {i}" for i in range(100)], list(range(100)))
    texts, labels = sample_split(split, 10, seed=0)
    assert len(texts) == 10 and labels == sorted(labels) and texts == [f"text {i}" for i in labels]
    assert labels != list(range(10))                                  # not the first ten
    assert sample_split(split, 10, seed=0) == (texts, labels) and sample_split(split, 10, seed=1) != (texts, labels)
    assert sample_split(split, 0, seed=0) == split and sample_split(split, 500, seed=0) == split



def test_the_warmed_head_leaves_the_encoder_as_it_was_and_trains_the_head(tmp_path):
    """warm_head freezes every encoder weight: the saved encoder equals the base's, the head does not, and the warmed
    head's MLM loss on its text is below the fresh head's (what every regime then starts from)."""
    from pathlib import Path

    from safetensors.torch import load_file

    from kbench.models.dont_stop_pretraining import warm_head
    from kbench.pretrain import mlm_model, save_pretrained

    fresh = save_pretrained(mlm_model("tiny", "token", seed=0), tmp_path / "fresh")
    config = TrainConfig(batch_size=8, learning_rate=3e-3, max_steps=30, seed=0, progress=False, device="cpu",
                         precision="no")
    warmed, history = warm_head(str(fresh), FAR * 8, config, tmp_path / "warm", max_length=16, exclude=HELD[:1])
    assert history.steps == 30
    a, b = (load_file(str(Path(p) / "model.safetensors")) for p in (fresh, warmed))
    encoder = [k for k in a if k.startswith("bert.")]
    head = [k for k in a if k.startswith("cls.") and k in b]
    assert encoder and all(torch.equal(a[k], b[k]) for k in encoder)
    assert head and any(not torch.equal(a[k], b[k]) for k in head)
    assert masked_lm_loss(str(warmed), FAR * 3, seed=0, max_length=16) < \
        masked_lm_loss(str(fresh), FAR * 3, seed=0, max_length=16) - 0.5
    with pytest.raises(InputError, match="excluded"):
        warm_head(str(fresh), FAR, config, tmp_path / "leak", exclude=["a salt dissolves in water"])


def test_the_smoke_profile_runs_rand_tapt_and_warms_the_head_on_text_no_regime_reads():
    from kbench.profiles.dont_stop_pretraining import setup

    s = setup("smoke")
    assert {"knn_tapt", "rand_tapt"} <= set(s.regimes) and s.warmup_config is not None
    task = s.tasks[0]
    keys = lambda texts: {text_key(t) for t in texts}
    assert s.warm_texts and not keys(s.warm_texts) & keys([*task.domain, *task.irrelevant, *task.splits[0][0], *task.held_out])
