"""ERNIE (Baidu): the three masking stages, whole entity units, dialogues and DLM's roles and real/fake labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.data.fact_corpus import WORLD_TEMPLATES, fact_corpus
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.models.ernie_baidu import (FAKE, QUERY, REAL, RESPONSE, VARIANTS, Dialogue, DialogueCollator, ErnieDLM,
                                       build_dialogues, check_corpus, compare_masking, dialogue_corpus,
                                       ernie_pretrainer, fact_dialogues, knowledge_stages, make_fake, schedule)
from kbench.pretrain import MaskingCollator, build_corpus
from kbench.text.masking import IGNORE, MaskVocab
from kbench.text.mentions import MentionDetector
from kbench.train import TrainConfig

NAMES = ["Muman Nakel", "Zukun Zesul", "Lagos", "Megor", "Paris"]
TEXTS = ["Muman Nakel was born in Lagos .", "Zukun Zesul works for Megor in Paris .",
         "the birthplace of Muman Nakel is Lagos .", "Zukun Zesul has a job at Megor ."] * 6
DIALOGUES = [[("Q", "where was Muman Nakel born ?"), ("R", "Muman Nakel was born in Lagos ."),
              ("Q", "who does Muman Nakel work for ?")],
             [("Q", "who does Zukun Zesul work for ?"), ("R", "Zukun Zesul has a job at Megor ."),
              ("R", "Zukun Zesul lives in Paris .")],
             [("Q", "where is Megor based ?"), ("Q", "where was Zukun Zesul born ?"),
              ("R", "Zukun Zesul is a native of Paris .")]]


@pytest.fixture(scope="module")
def tiny():
    return ernie_pretrainer("basic", "tiny", steps=30, seed=0)


@pytest.fixture(scope="module")
def corpus(tiny):
    return dialogue_corpus(TEXTS, DIALOGUES * 4, tiny.tokenizer, ("word", "phrase", "entity"),
                           MentionDetector(NAMES), "en", 32)


# --- the stages ------------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(total=st.integers(3, 100_000), shares=st.tuples(*[st.floats(0.01, 100)] * 3))
def test_stage_steps_sum_to_the_total_in_paper_order(total, shares):
    stages = knowledge_stages(total, "en", shares)
    assert [name for name, _ in stages] == ["whole_word", "phrase", "entity"]
    assert sum(steps for _, steps in stages) == total and min(steps for _, steps in stages) >= 1


def test_equal_thirds_and_the_basic_unit_by_language():
    assert knowledge_stages(300, "en") == [("whole_word", 100), ("phrase", 100), ("entity", 100)]
    assert knowledge_stages(10, "zh") == [("token", 4), ("phrase", 3), ("entity", 3)]     # characters for Chinese
    assert schedule("basic", 300, "zh") == "token" and schedule("basic", 300, "en") == "whole_word"


@pytest.mark.parametrize("bad", [dict(total_steps=2), dict(total_steps=0), dict(total_steps=10, shares=(1, 0, 1)),
                                 dict(total_steps=10, shares=(1, 1)), dict(total_steps=10, language="fr")])
def test_bad_schedules_are_named_errors(bad):
    with pytest.raises(InputError):
        knowledge_stages(**bad)


def test_collator_runs_the_stages_in_sequence(tiny):
    stages = knowledge_stages(6, "en")
    collator = MaskingCollator(MaskVocab.of(tiny.tokenizer), tiny.tokenizer.pad_token_id, stages)
    seen = []
    for _ in range(9):
        seen.append(collator.strategy)
        collator.batches += 1
    assert seen == ["whole_word"] * 2 + ["phrase"] * 2 + ["entity"] * 5      # the last stage runs to the end


def _fully_or_not(labels: np.ndarray, spans) -> tuple[int, int]:
    whole = partial = 0
    for start, end in spans:
        chosen = labels[start:end] != IGNORE
        whole += chosen.all()
        partial += chosen.any() and not chosen.all()
    return whole, partial


def test_entity_stage_masks_whole_entities_and_the_basic_stage_does_not(tiny, corpus):
    vocab = MaskVocab.of(tiny.tokenizer)
    sentences = [s for s in corpus.sentences if not isinstance(s, Dialogue)]
    for strategy, must_split in (("entity", False), ("whole_word", True)):
        collator = MaskingCollator(vocab, tiny.tokenizer.pad_token_id, strategy, seed=1, rate=0.5)
        whole = partial = 0
        for _ in range(30):
            for sentence in sentences:
                _, labels = collator.mask(sentence, strategy)
                w, p = _fully_or_not(labels, [(s, e) for s, e in sentence.units["entity"] if e - s > 1])
                whole, partial = whole + w, partial + p
        assert whole > 0
        assert (partial > 0) == must_split, strategy      # whole words split a two-word name; entities never


def test_every_level_predicts_about_fifteen_percent_of_the_tokens(tiny, corpus):
    """Knowledge masking changes what is hidden together, not how much: a unit is chosen with p = 0.15 and all its
    tokens are predicted, so the token share is 0.15 at every level (a masker that chose 15% of *units* of k tokens
    and predicted one, or 15% of tokens plus whole units, would miss it)."""
    vocab = MaskVocab.of(tiny.tokenizer)
    sentences = [s for s in corpus.sentences if not isinstance(s, Dialogue)]
    for strategy in ("token", "whole_word", "phrase", "entity"):
        collator = MaskingCollator(vocab, tiny.tokenizer.pad_token_id, strategy, seed=3)
        predicted = np.concatenate([collator.mask(s, strategy)[1][1:-1] != IGNORE
                                    for _ in range(40) for s in sentences])
        assert predicted.mean() == pytest.approx(0.15, abs=0.02), strategy


def test_the_kg_names_decide_what_the_entity_stage_masks(tiny):
    """Knowledge reaches the output: the same sentence and draws, other KG names -> other masks."""
    vocab = MaskVocab.of(tiny.tokenizer)
    text = ["Muman Nakel was born in Lagos ."]
    with_kg = build_corpus(text, tiny.tokenizer, ("entity",), MentionDetector(NAMES)).sentences[0]
    other_kg = build_corpus(text, tiny.tokenizer, ("entity",), MentionDetector(["Nakel was"])).sentences[0]
    assert with_kg.units["entity"] != other_kg.units["entity"]
    differ = 0
    for seed in range(20):
        a = MaskingCollator(vocab, 0, "entity", seed=seed, rate=0.5).mask(with_kg, "entity")[1]
        b = MaskingCollator(vocab, 0, "entity", seed=seed, rate=0.5).mask(other_kg, "entity")[1]
        differ += not np.array_equal(a, b)
    assert differ > 0


def test_a_corpus_without_entities_cannot_run_the_entity_stage(tiny):
    no_mentions = build_corpus(TEXTS, tiny.tokenizer, ("word", "phrase", "entity"), MentionDetector(["Atlantis"]))
    with pytest.raises(InputError, match="no entity unit"):
        check_corpus(no_mentions, knowledge_stages(30))
    no_kind = build_corpus(TEXTS, tiny.tokenizer, ("word", "phrase"))
    with pytest.raises(InputError, match="entity units"):
        check_corpus(no_kind, knowledge_stages(30))
    check_corpus(no_kind, "whole_word")                        # basic masking needs words only


def test_compare_masking_checks_units_steps_and_dialogues(tiny):
    plain = build_corpus(TEXTS, tiny.tokenizer, ("word", "phrase", "entity"), MentionDetector(NAMES))
    make = lambda seed, objective: ernie_pretrainer(objective, "tiny", steps=2, seed=seed)
    config = TrainConfig(batch_size=8, device="cpu", progress=False, max_steps=2)
    with pytest.raises(InputError, match="at least 3 steps"):
        compare_masking(make, VARIANTS[:2], plain, config)
    config.max_steps = 3
    with pytest.raises(InputError, match="dialogue"):
        compare_masking(make, VARIANTS, plain, config)


def test_variants_start_from_the_same_weights():
    basic, dlm = (ernie_pretrainer(o, "tiny", steps=30, seed=3) for o in ("basic", "knowledge_dlm"))
    for name, value in basic.bert.state_dict().items():
        assert torch.equal(value, dlm.bert.state_dict()[name]), name
    assert not isinstance(basic, ErnieDLM) and isinstance(dlm, ErnieDLM)


def test_one_short_run_of_every_variant_probes_and_differs(tiny, corpus):
    facts = fact_corpus([("Muman Nakel", "born in", "Lagos"), ("Zukun Zesul", "born in", "Paris")], seed=0)
    make = lambda seed, objective: ernie_pretrainer(objective, "tiny", steps=3, seed=seed)
    results = compare_masking(make, VARIANTS, corpus, TrainConfig(batch_size=8, learning_rate=1e-3, device="cpu",
                                                                  progress=False, max_steps=3), probe=facts.probe)
    assert set(results) == {v.name for v in VARIANTS}
    assert all(r.history.steps == 3 and len(r.probe.ranks) == 2 for r in results.values())
    embeddings = {n: r.model.bert.embeddings.word_embeddings.weight for n, r in results.items()}
    assert not torch.equal(embeddings["basic"], embeddings["knowledge"])


# --- dialogues and DLM -------------------------------------------------------------------------------------------

def test_dialogue_ids_roles_and_units_line_up(tiny, corpus):
    dialogue = next(s for s in corpus.sentences if isinstance(s, Dialogue))
    tokenizer = tiny.tokenizer
    assert dialogue.ids[0] == tokenizer.cls_token_id and dialogue.roles[0] == dialogue.turns[0].role
    seps = np.flatnonzero(dialogue.ids == tokenizer.sep_token_id)
    assert len(seps) == len(dialogue.turns) == 3
    start = 1
    for turn, sep in zip(dialogue.turns, seps):
        assert np.array_equal(dialogue.ids[start:sep], turn.ids)
        assert set(dialogue.roles[start:sep + 1]) == {turn.role}
        start = sep + 1
    assert [t.role for t in dialogue.turns] == [QUERY, RESPONSE, QUERY]
    tokens = tokenizer.convert_ids_to_tokens(dialogue.ids)
    names = sorted(" ".join(tokens[s:e]) for s, e in dialogue.units["entity"])
    assert names == ["lagos"] + ["mum ##an nak ##el"] * 3        # the name in all three turns, the city once


def test_collated_roles_are_the_dialogue_roles_and_zero_for_sentences(tiny, corpus):
    collator = DialogueCollator(MaskVocab.of(tiny.tokenizer), tiny.tokenizer.pad_token_id, "token", fake_rate=0.0)
    sentence = next(s for s in corpus.sentences if not isinstance(s, Dialogue))
    dialogues = [s for s in corpus.sentences if isinstance(s, Dialogue)][:3]
    batch = collator([sentence, *dialogues])
    assert batch["token_type_ids"][0].sum() == 0 and batch["dialogue_labels"][0] == IGNORE
    for row, dialogue in enumerate(dialogues, start=1):
        assert torch.equal(batch["token_type_ids"][row, :len(dialogue.ids)], torch.from_numpy(dialogue.roles))
        assert batch["dialogue_labels"][row] == REAL


def test_a_fake_dialogue_differs_in_exactly_one_turn_of_the_same_role(corpus):
    dialogues = [s for s in corpus.sentences if isinstance(s, Dialogue)][:3]
    rng = np.random.default_rng(0)
    for _ in range(30):
        for dialogue in dialogues:
            fake = make_fake(dialogue, dialogues, rng)
            changed = [i for i, (a, b) in enumerate(zip(dialogue.turns, fake.turns)) if a.text != b.text]
            assert len(changed) == 1 and len(fake.turns) == len(dialogue.turns)
            assert [t.role for t in fake.turns] == [t.role for t in dialogue.turns]
            assert np.array_equal(fake.roles[:1], dialogue.roles[:1])
    lonely = dialogues[:1]
    assert make_fake(dialogues[0], lonely, rng) is None          # no other dialogue to borrow from


def test_labels_say_which_dialogues_were_made_fake(tiny, corpus):
    dialogues = [s for s in corpus.sentences if isinstance(s, Dialogue)][:6]
    vocab = MaskVocab.of(tiny.tokenizer)
    for rate, label in ((1.0, FAKE), (0.0, REAL)):
        collator = DialogueCollator(vocab, tiny.tokenizer.pad_token_id, "token", fake_rate=rate)
        examples, labels = collator.dialogues(dialogues)
        assert labels == [label] * len(dialogues)
        for original, example in zip(dialogues, examples):
            assert (example.text != original.text) == (label == FAKE)
    mixed = DialogueCollator(vocab, tiny.tokenizer.pad_token_id, "token", seed=4, fake_rate=0.5)
    for _ in range(10):
        examples, labels = mixed.dialogues(dialogues)
        for original, example, label in zip(dialogues, examples, labels):
            assert (example.text != original.text) == (label == FAKE)


def test_swapping_roles_changes_the_cls_heads_loss(corpus):
    model = ernie_pretrainer("knowledge_dlm", "tiny", steps=30, seed=0)
    model.eval()
    dialogues = [s for s in corpus.sentences if isinstance(s, Dialogue)][:3]
    batch = model.collate(dialogues)
    with torch.no_grad():
        out = model(**batch)
        swapped = dict(batch, token_type_ids=torch.where(batch["attention_mask"] > 0, 1 - batch["token_type_ids"], 0))
        out_swapped = model(**swapped)
    assert not torch.allclose(out["dialogue_logits"], out_swapped["dialogue_logits"])
    assert abs(out["dialogue_loss"].item() - out_swapped["dialogue_loss"].item()) > 1e-6


def test_sentences_alone_add_no_dialogue_loss(corpus):
    model = ernie_pretrainer("knowledge_dlm", "tiny", steps=30, seed=0)
    model.eval()
    sentences = [s for s in corpus.sentences if not isinstance(s, Dialogue)][:4]
    batch = model.collate(sentences)
    with torch.no_grad():
        out = model(**batch)
        mlm = torch.nn.functional.cross_entropy(model.lm(input_ids=batch["input_ids"],
                                                         attention_mask=batch["attention_mask"]).logits[
            batch["labels"] != IGNORE], batch["labels"][batch["labels"] != IGNORE])
    assert "dialogue_loss" not in out and torch.allclose(out["loss"], mlm, atol=1e-5)


def test_fact_dialogues_never_state_a_fact_in_its_probe_template():
    triples = [(f"Person{i}", relation, obj) for i in range(30)
               for relation, obj in (("born in", ["Lagos", "Paris"][i % 2]), ("works as", ["doctor", "pilot"][i % 2]))]
    facts = fact_corpus(triples, seed=0)
    dialogues = fact_dialogues(triples, WORLD_TEMPLATES, probe=facts.probe, per_subject=3, seed=0)
    responses = {text for dialogue in dialogues for role, text in dialogue if role == "R"}
    held = {item.statement.replace("[Y]", item.gold) for item in facts.probe}
    assert responses and held and not responses & held
    assert {"".join(role for role, _ in d) for d in dialogues} == {"QRQ", "QRR", "QQR"}


@pytest.mark.parametrize("dialogues", [[[("Q", "where ?")]], [[("X", "a"), ("R", "b")]], [[("Q", "a"), ("R", " ")]]])
def test_bad_dialogues_are_named_errors(tiny, dialogues):
    with pytest.raises(InputError):
        build_dialogues(dialogues, tiny.tokenizer)


def test_no_dialogue_without_two_facts_per_subject_and_bad_rates():
    with pytest.raises(InputError, match="two facts"):
        fact_dialogues([("A", "born in", "Lagos"), ("B", "born in", "Paris")], WORLD_TEMPLATES)
    with pytest.raises(InputError):
        DialogueCollator(MaskVocab(1, 10, frozenset({0})), 0, "token", fake_rate=1.5)
    with pytest.raises(InputError):
        ernie_pretrainer("entity_only", "tiny", steps=30)


# --- the smoke profile's base ------------------------------------------------------------------------------------

def test_the_world_vocabulary_splits_its_texts_as_minilm_does_and_the_pruned_base_reads_them_alike(tmp_path):
    from kbench.encoders import EMBEDDED, load_encoder, load_tokenizer
    from kbench.profiles.ernie_baidu import corpus_vocabulary, pruned_base

    texts = TEXTS[:4] + ["by profession , Zovo Kunor is a chemist ."]
    vocab = corpus_vocabulary(texts, str(tmp_path))
    full, small = load_tokenizer(EMBEDDED), load_tokenizer("tiny", str(vocab))
    assert len(small) < 100
    for text in texts:
        assert small.tokenize(text) == full.tokenize(text) and small.unk_token not in small.tokenize(text)
    assert small.tokenize("Atlantis") != full.tokenize("Atlantis")        # a word outside the texts: not covered
    pruned = load_encoder(str(pruned_base(vocab, 2, str(tmp_path)))).model.eval()
    minilm = load_encoder(EMBEDDED, layers=2).model.eval()
    with torch.no_grad():
        for text in texts:
            a = pruned(**small(text, return_tensors="pt")).last_hidden_state
            b = minilm(**full(text, return_tensors="pt")).last_hidden_state
            assert torch.allclose(a, b, atol=1e-5)


def test_a_unit_with_an_unknown_piece_is_dropped_not_refused(tiny):
    """Chinese text has characters outside the vocabulary: a name holding an [UNK] is no unit, and masking runs."""
    text = ["Mu\u2603an Nakel was born in Lagos ."]
    sentence = build_corpus(text, tiny.tokenizer, ("word", "entity"), MentionDetector(["Mu\u2603an Nakel", "Lagos"])
                            ).sentences[0]
    tokens = tiny.tokenizer.convert_ids_to_tokens(sentence.ids)
    assert "[UNK]" in tokens
    assert [" ".join(tokens[s:e]) for s, e in sentence.units["entity"]] == ["lagos"]
    collator = MaskingCollator(MaskVocab.of(tiny.tokenizer), 0, "entity", rate=0.9)
    for _ in range(5):
        collator.mask(sentence, "entity")
        collator.mask(sentence, "whole_word")


def test_full_profile_evaluates_on_texts_no_training_step_has_seen(tmp_path, mirror):
    """ChnSentiCorp's released dev/test share texts with its train split; ours keep none of train's or pretraining's."""
    from kbench.data import fetch
    from kbench.data.corpora import KBERT_PRETRAINING, pretraining_text
    from kbench.data.kbert_datasets import load_kbert_dataset, text_of
    from kbench.profiles.ernie_baidu import setup

    for name in ("kbert/kgs", "kbert/vocab/google_vocab.txt",
                 *(f"kbert/datasets/{d}/{p}.tsv" for d in KBERT_PRETRAINING for p in ("train", "dev", "test"))):
        fetch(name, tmp_path, mirror, progress=False)
    s = setup("full", sentences=50, data_dir=str(tmp_path))
    train = {text_of(t) for t in load_kbert_dataset("chnsenticorp", "train", str(tmp_path)).texts}
    seen = train | {text_of(t) for t in pretraining_text("kbert-zh", str(tmp_path)).texts}
    assert {text_of(t) for t in load_kbert_dataset("chnsenticorp", "test", str(tmp_path)).texts} & train
    for texts, _ in s.splits[1:]:
        assert texts and not {text_of(t) for t in texts} & seen
    assert "also training texts" in s.about and " less 0 " not in s.about
