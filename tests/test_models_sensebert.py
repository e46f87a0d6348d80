"""SenseBERT: A(w) and its exclusions, the two sense losses against the hand formula, the masking (single-supersense
words first, capped, 15% budget), no leak at a masked word, the tied S, knowledge reaching the output, the probe's
data disjoint from the corpus, `kbench pretrain --objective sensebert`, and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.models.sensebert import (MORPHY_SUFFIXES, SUPERSENSES, SenseBERT, SenseMaskingCollator, allowed_supersenses,
                                     choose_words, excluded, frozen_probe, load_lexicon, masking_rates, pretrainer,
                                     require_supersenses, sense_corpus, slm_losses, supersense_predictions, word_states)
from kbench.pretrain import Sentence, build_corpus
from kbench.text.masking import IGNORE, MaskVocab

S = {name: index for index, name in enumerate(SUPERSENSES)}
TEXTS = ["Dan cooked a bass on the grill .", "The fishermen caught a large bass in the river .",
         "She plays the bass in a jazz band .", "They deposited the money in the bank yesterday ."] * 4


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    return load_lexicon(str(tmp_path_factory.mktemp("wordnet-data")))


@pytest.fixture(scope="module")
def model(lexicon):
    return pretrainer(lexicon, "tiny", "sensebert", seed=0).eval()


# --- A(w) (§3.2) ---

def test_allowed_supersenses_of_the_lemmatised_word(lexicon):
    bass = {SUPERSENSES[i] for i in allowed_supersenses(lexicon, "bass")}
    assert {"noun.animal", "noun.food", "noun.artifact", "noun.person"} <= bass      # fish, dish, instrument, singer
    assert "verb.motion" not in bass
    banks = {SUPERSENSES[i] for i in allowed_supersenses(lexicon, "banks")}         # banks -> bank (noun and verb)
    assert {"noun.group", "noun.object", "verb.possession"} <= banks
    assert "noun.animal" in {SUPERSENSES[i] for i in allowed_supersenses(lexicon, "geese")}   # noun.exc: geese goose
    assert allowed_supersenses(lexicon, "Bass") == allowed_supersenses(lexicon, "bass")


@pytest.mark.parametrize("word, reason", [("cat", "short"), ("run", "short"), ("##ing", "piece"), ("##bass", "piece"),
                                          ("about", "stopword"), ("whereas", "stopword"), ("the", "short")])
def test_a_w_is_empty_for_short_words_stopwords_and_pieces(lexicon, word, reason):
    assert excluded(word) == reason and allowed_supersenses(lexicon, word) == ()


def test_a_w_of_words_wordnet_has_is_not_empty_once_long_enough(lexicon):
    assert excluded("cats") is None and allowed_supersenses(lexicon, "cats")     # 4 characters: not excluded
    assert allowed_supersenses(lexicon, "xyzzyq") == ()                          # unknown to WordNet


def test_lexicon_matches_nltks_wordnet_reader(lexicon):
    """The fast reader gives NLTK's lookup: the same supersenses through the same base forms."""
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from kbench.kg.wordnet import LEXNAMES, base_forms, load_wordnet

    assert {part: list(rules) for part, rules in MORPHY_SUFFIXES.items()} == {
        part: list(WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS[part]) for part in MORPHY_SUFFIXES}
    wordnet = load_wordnet(str(lexicon.directory.parents[2]))
    for word in ["bass", "banks", "running", "geese", "axes", "cooked", "grill", "happier", "quickly", "mice"]:
        expected = set()
        for part in "nvar":
            assert lexicon.base_forms(word, part) == base_forms(wordnet, word, part)
            expected |= {LEXNAMES.index(s.lexname()) for f in base_forms(wordnet, word, part)
                         for s in wordnet.synsets(f, part)}
        assert set(allowed_supersenses(lexicon, word)) == expected, word


# --- the losses (Eq. 4, 6, 7) ---

def probabilities_as_logits(p):
    return torch.log(torch.tensor(p, dtype=torch.float64))


def hand_example():
    """p = 0.5 on noun.animal, 0.1 on noun.food, 0.2 on noun.artifact, 0.2 spread over the other 42."""
    p = [0.2 / 42] * 45
    p[S["noun.animal"]], p[S["noun.food"]], p[S["noun.artifact"]] = 0.5, 0.1, 0.2
    allowed = torch.zeros(1, 45, dtype=torch.float64)
    allowed[0, [S["noun.animal"], S["noun.food"]]] = 1
    return probabilities_as_logits(p)[None], allowed


def test_losses_against_the_hand_formula():
    logits, allowed = hand_example()
    allowed_loss, reg_loss = slm_losses(logits, allowed)
    assert allowed_loss.item() == pytest.approx(0.5108256, abs=1e-6)     # -log(0.5 + 0.1)
    assert reg_loss.item() == pytest.approx(1.4978661, abs=1e-6)         # -(log 0.5 + log 0.1) / 2


def test_losses_are_neither_ce_on_one_sense_nor_bce():
    logits, allowed = hand_example()
    allowed_loss, reg_loss = slm_losses(logits, allowed)
    ce_most_likely = 0.6931472           # -log 0.5: cross-entropy on the likeliest allowed sense
    bce = 0.6931472 + 2.3025851 + sum(-math.log(1 - q) for q in [0.2] + [0.2 / 42] * 42)   # one-vs-rest on A(w)
    assert abs(allowed_loss.item() - ce_most_likely) > 0.1 and abs(allowed_loss.item() + reg_loss.item() - bce) > 0.5


def test_allowed_loss_ignores_how_mass_moves_inside_a_w_and_reg_does_not():
    """Eq. 4 depends on the allowed mass only; Eq. 6 prefers it spread evenly over A(w)."""
    _, allowed = hand_example()
    p = [0.2 / 42] * 45
    p[S["noun.animal"]], p[S["noun.food"]], p[S["noun.artifact"]] = 0.3, 0.3, 0.2
    even_allowed, even_reg = slm_losses(probabilities_as_logits(p)[None], allowed)
    skew_allowed, skew_reg = slm_losses(*hand_example())
    assert even_allowed.item() == pytest.approx(skew_allowed.item(), abs=1e-9)
    assert even_reg.item() < skew_reg.item() - 0.2


def test_losses_average_over_masked_words():
    logits, allowed = hand_example()
    single = torch.zeros(1, 45, dtype=torch.float64)
    single[0, S["noun.artifact"]] = 1                                          # A(w) = {noun.artifact}: p = 0.2
    both_allowed, both_reg = slm_losses(torch.cat([logits, logits]), torch.cat([allowed, single]))
    assert both_allowed.item() == pytest.approx((0.5108256 + 1.6094379) / 2, abs=1e-6)   # -log 0.2 = 1.6094
    assert both_reg.item() == pytest.approx((1.4978661 + 1.6094379) / 2, abs=1e-6)


@given(st.lists(st.floats(-5, 5), min_size=45, max_size=45), st.sets(st.integers(0, 44), min_size=1, max_size=45))
def test_allowed_loss_never_exceeds_reg_and_equals_it_for_one_sense(values, senses):
    """log of a sum >= mean of logs over A(w) (Jensen), equal when |A(w)| = 1: both are then plain cross-entropy."""
    logits = torch.tensor(values, dtype=torch.float64)[None]
    allowed = torch.zeros(1, 45, dtype=torch.float64)
    allowed[0, sorted(senses)] = 1
    allowed_loss, reg_loss = slm_losses(logits, allowed)
    assert allowed_loss.item() <= reg_loss.item() + 1e-9
    if len(senses) == 1:
        ce = torch.nn.functional.cross_entropy(logits, torch.tensor([next(iter(senses))]))
        assert allowed_loss.item() == pytest.approx(ce.item(), abs=1e-9) == pytest.approx(reg_loss.item(), abs=1e-9)


def test_the_model_adds_both_sense_losses_to_the_word_loss(model, lexicon):
    """The loss at a masked word is, by hand: its word cross-entropy + L_allowed + L_reg (Eq. 2 + 4 + 6) of the sense
    head read at that word, with A(w) looked up in WordNet; ``sense_weight`` scales the two sense terms only."""
    ids, mask, position = masked_batch(model, "dan cooked a bass on the grill", "bass")
    labels = torch.full_like(ids, IGNORE)
    labels[0, position] = model.tokenizer.convert_tokens_to_ids("bass")
    allowed = torch.zeros(1, len(SUPERSENSES))
    allowed[0, list(allowed_supersenses(lexicon, "bass"))] = 1.0
    weights = torch.zeros(1, ids.shape[1])
    weights[0, position] = 1.0
    with torch.no_grad():
        out = model(ids, mask, labels, sense_rows=torch.tensor([0]), sense_weights=weights, sense_allowed=allowed)
        states = model.hidden(ids, mask)[0, position]
        word = -model.lm.cls(states).log_softmax(-1)[labels[0, position]]
        p = model.sense_logits(states).softmax(-1)
    senses = list(allowed_supersenses(lexicon, "bass"))
    by_hand = word - math.log(float(p[senses].sum())) - float(p[senses].log().mean())
    assert len(senses) > 1 and out["loss"].item() == pytest.approx(float(by_hand), abs=1e-4)
    assert out["word_loss"].item() == pytest.approx(float(word), abs=1e-4)
    model.sense_weight = 0.5
    try:
        with torch.no_grad():
            half = model(ids, mask, labels, sense_rows=torch.tensor([0]), sense_weights=weights, sense_allowed=allowed)
    finally:
        model.sense_weight = 1.0
    assert half["loss"].item() == pytest.approx(float(word + (by_hand - word) / 2), abs=1e-4)


# --- masking (§3.5) ---

def test_budget_is_15_percent_of_words():
    rng = np.random.default_rng(0)
    senses = [(1, 2)] * 40
    for _ in range(20):
        assert len(choose_words(senses, rng)) == 6           # round(0.15 * 40)
    assert len(choose_words([(1,)] * 3, rng)) == 1           # at least one, as BERT's create_pretraining_data


def test_single_supersense_words_first_capped_at_40_percent_of_the_budget():
    """60 single-supersensed words among 100, budget 15: 6 taken first (the cap), 9 at random from the other 94.

    Expected single-supersensed words among the 15: 6 + 9 * 54/94 = 11.17; with no priority 9, with no cap 15.
    """
    rng = np.random.default_rng(1)
    senses = [(3,)] * 60 + [(3, 4)] * 40
    order = np.random.default_rng(2).permutation(100)
    senses = [senses[i] for i in order]
    counts = [sum(len(senses[i]) == 1 for i in choose_words(senses, rng)) for _ in range(3000)]
    assert np.mean(counts) == pytest.approx(6 + 9 * 54 / 94, abs=0.1)


def test_few_single_supersense_words_each_taken_with_probability_at_least_a_half():
    rng = np.random.default_rng(3)
    senses = [(3,)] * 4 + [(3, 4)] * 96 + [()] * 0
    chosen = np.zeros(100)
    runs = 4000
    for _ in range(runs):
        chosen[choose_words(senses, rng)] += 1
    single_rate, other_rate = chosen[:4].mean() / runs, chosen[4:].mean() / runs
    # 1/2 in the first pass, then a share of the rest: 0.5 + 0.5 * (15 - 2) / 98 = 0.566
    assert single_rate == pytest.approx(0.566, abs=0.03) and other_rate == pytest.approx(13 / 98 * 0.99, abs=0.01)


def test_collator_masks_15_percent_of_words_and_each_word_whole(model):
    texts = [" ".join(["the fishermen caught a large basses in the river near banks of sand"] * 3)] * 300
    corpus = sense_corpus(texts, model.tokenizer, model.collate.lexicon, max_length=128)
    collate = SenseMaskingCollator(MaskVocab.of(model.tokenizer), model.tokenizer.pad_token_id, seed=5)
    words = masked = mask_words = 0
    for sentence in corpus.sentences:
        inputs, labels, _ = collate.mask(sentence)
        for start, end in sentence.units["word"]:
            words += 1
            chosen = labels[start:end] != IGNORE
            assert chosen.all() or not chosen.any()                         # all pieces of a word, or none
            if chosen.any():
                masked += 1
                mask_words += (inputs[start:end] == model.tokenizer.mask_token_id).all()
    rate = masked / words
    bound = 3 * math.sqrt(0.15 * 0.85 / words)
    assert abs(rate - 0.15) < bound + 0.005                                 # round(0.15 * 36) / 36 = 0.1389 + ...
    assert mask_words / masked == pytest.approx(0.8, abs=3 * math.sqrt(0.16 / masked))


def test_collated_sense_targets_average_the_masked_words_pieces(model, lexicon):
    """sense_rows/sense_weights put 1/pieces on the pieces of a masked word with A(w); forward scores that mean."""
    import copy

    corpus = sense_corpus(["The fishermen caught unbelievably large basses in the river ."] * 6 + TEXTS,
                          model.tokenizer, lexicon, max_length=32)
    batch = copy.deepcopy(model.collate)(corpus.sentences)
    assert len(batch["sense_rows"]) > 0
    with torch.no_grad():
        out = model(**batch)
        states = model.hidden(batch["input_ids"], batch["attention_mask"])
    multi = 0
    for t, (row, weights) in enumerate(zip(batch["sense_rows"].tolist(), batch["sense_weights"])):
        positions = torch.nonzero(weights).flatten().tolist()
        units = [tuple(unit) for unit in corpus.sentences[row].units["word"]]
        assert (positions[0], positions[-1] + 1) in units and positions == list(range(positions[0], positions[-1] + 1))
        assert (batch["labels"][row, positions] != IGNORE).all()                     # the word is masked, whole
        assert float(weights.sum()) == pytest.approx(1.0)
        assert torch.allclose(weights[positions], torch.full((len(positions),), 1 / len(positions)))
        multi += len(positions) > 1
        expected = model.sense_logits(states[row, positions].mean(0))
        assert torch.allclose(out["sense_logits"][t], expected, atol=1e-5)
    assert multi > 0 and batch["sense_allowed"].sum(1).min() >= 1                 # a word of several pieces among them


def test_masking_rates_count_what_the_collator_does_without_moving_it(model, lexicon):
    corpus = sense_corpus(TEXTS * 10, model.tokenizer, lexicon, max_length=24)
    state = model.collate.get_state()
    rates = masking_rates(model.collate, corpus, rounds=3)
    assert model.collate.get_state() == state
    assert rates["words"] == pytest.approx(5 / 36)    # budgets round(0.15 n): 1 of 8, 2 of 10, 1 of 9, 1 of 9 words
    assert rates["single"] > 2 * rates["other"]       # fishermen, river, money: each chosen first half of the time
    assert 0 < rates["targets"] < 1


def test_sense_targets_only_for_masked_words_with_senses(model, lexicon):
    corpus = build_corpus(["Dan cooked a bass on the grill ."], model.tokenizer, ("word",))
    collate = SenseMaskingCollator(MaskVocab.of(model.tokenizer), model.tokenizer.pad_token_id, seed=0,
                                   lexicon=lexicon, tokenizer=model.tokenizer, rate=0.99)
    inputs, labels, targets = collate.mask(corpus.sentences[0])
    tokens = model.tokenizer.convert_ids_to_tokens(corpus.sentences[0].ids.tolist())
    words = {tokens[start] for start, _, _ in targets}
    assert words == {"cooked", "bass", "grill"}                    # Dan, a, on, the, "." have no A(w)
    bass = next(senses for start, _, senses in targets if tokens[start] == "bass")
    assert bass == allowed_supersenses(lexicon, "bass")


# --- no leak, the tie, knowledge reaching the output (§3.3) ---

def masked_batch(model, text, word):
    encoded = model.tokenizer(text, return_tensors="pt")
    ids = encoded["input_ids"].clone()
    position = model.tokenizer.convert_ids_to_tokens(ids[0].tolist()).index(word)
    ids[0, position] = model.tokenizer.mask_token_id
    return ids, encoded["attention_mask"], position


def test_no_sense_reaches_a_masked_position(model):
    ids, mask, position = masked_batch(model, "dan cooked a bass on the grill", "bass")
    assert model.allowed_matrix[model.tokenizer.mask_token_id].sum() == 0                 # M x_[MASK] = 0
    embedded = model.input_embeddings(ids)
    assert torch.equal(embedded[0, position], model.bert.embeddings.word_embeddings(ids)[0, position])
    bass = model.tokenizer.convert_tokens_to_ids("bass")
    with torch.no_grad():
        before = model(ids, mask)
        saved = model.allowed_matrix[bass].clone()
        model.allowed_matrix[bass] = 1.0 - saved                        # other senses for the hidden word
        after = model(ids, mask)
        model.allowed_matrix[bass] = saved
    assert torch.equal(before["logits"], after["logits"]) and torch.equal(before["sense_logits"], after["sense_logits"])


def test_knowledge_reaches_the_output(model):
    """Changing M for a visible word changes the word and sense scores at the masked position."""
    ids, mask, position = masked_batch(model, "dan cooked a bass on the grill", "bass")
    grill = model.tokenizer.convert_tokens_to_ids("grill")
    with torch.no_grad():
        before = model(ids, mask)
        saved = model.allowed_matrix[grill].clone()
        model.allowed_matrix[grill] = 0.0
        after = model(ids, mask)
        model.allowed_matrix[grill] = saved
    assert (before["logits"][0, position] - after["logits"][0, position]).abs().max() > 1e-4
    assert (before["sense_logits"][0, position] - after["sense_logits"][0, position]).abs().max() > 1e-4


def test_s_is_one_parameter_in_the_input_and_the_head(model):
    shaped = [name for name, p in model.named_parameters() if p.shape == (45, model.lm.config.hidden_size)]
    assert shaped == ["sense_embeddings.weight"]
    ids, mask, _ = masked_batch(model, "dan cooked a bass on the grill", "bass")
    grill = model.tokenizer.convert_tokens_to_ids("grill")
    states = torch.randn(3, model.lm.config.hidden_size)
    with torch.no_grad():
        saved = model.sense_embeddings.weight.clone()
        model.sense_embeddings.weight.zero_()
        inputs, logits = model.input_embeddings(torch.tensor([grill])), model.sense_logits(states)
        model.sense_embeddings.weight.copy_(saved)
    assert torch.equal(inputs, model.bert.embeddings.word_embeddings(torch.tensor([grill])))   # S M x gone
    assert torch.equal(logits, model.sense_bias.expand(3, 45))                                   # S^T v gone


def test_mlm_and_sensebert_start_from_the_same_encoder(lexicon):
    mlm, sense = pretrainer(lexicon, "tiny", "mlm", seed=3), pretrainer(lexicon, "tiny", "sensebert", seed=3)
    for key, value in mlm.bert.state_dict().items():
        assert torch.equal(value, sense.bert.state_dict()[key])
    assert not isinstance(mlm, SenseBERT)


# --- the probe and its data ---

def test_word_states_average_the_marked_words_pieces(model):
    words = ["the", "fishermen", "caught", "basses"]
    state = word_states(model, [(words, 3, 4)])
    encoded = model.tokenizer([words], is_split_into_words=True, return_tensors="pt")
    pieces = [p for p, w in enumerate(encoded.word_ids(0)) if w == 3]
    assert len(pieces) >= 1
    with torch.no_grad():
        expected = model.hidden(encoded["input_ids"], encoded["attention_mask"])[0, pieces].mean(0)
    assert torch.allclose(state[0], expected, atol=1e-5)


def test_probe_is_split_by_synset_and_the_corpus_never_holds_a_probe_sentence(lexicon):
    from kbench.profiles.sensebert import labelled_examples, normalise, pretraining_texts, probe_data

    probe = probe_data(lexicon, 600, seed=0)
    assert all(len(part) > 0 for part in (probe.train, probe.dev, probe.test)) and len(probe.test) > 30
    keys = [{normalise(" ".join(item[0])) for item, _ in part} for part in (probe.train, probe.dev, probe.test)]
    assert not (keys[0] & keys[2]) and not (keys[0] & keys[1]) and not (keys[1] & keys[2])
    texts = pretraining_texts(lexicon, 100_000, probe.texts(), seed=0)
    assert not {normalise(t) for t in texts} & probe.texts()
    assert len({normalise(t) for t in texts}) == len(texts)
    # a probe sentence differing only in case and spacing is still left out
    first = " ".join(probe.test[0][0][0]).upper()
    assert normalise(first) in probe.texts()
    labelled = {normalise(" ".join(item[0])): synset for item, _, synset in labelled_examples(lexicon)}
    train_synsets = {labelled[k] for k in keys[0] if k in labelled}
    assert not train_synsets & {labelled[k] for k in keys[2] if k in labelled}


def test_frozen_probe_leaves_the_model_unchanged(model):
    from kbench.profiles.sensebert import probe_data

    probe = probe_data(model.collate.lexicon, 120, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = frozen_probe(model, probe, Cs=(1.0,))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert len(result.test_predictions) == len(probe.test)


def test_supersense_predictions_in_context(model, lexicon):
    rows = supersense_predictions(model, "Dan cooked a bass on the grill.", lexicon)
    bass = next(row for row in rows if row["word"] == "bass")
    assert bass["best_allowed"] in bass["allowed"] and "noun.animal" in bass["allowed"]
    assert next(row for row in rows if row["word"] == "dan")["allowed"] == []
    masked = supersense_predictions(model, "Dan cooked a bass on the grill.", lexicon, mask="bass")
    assert [row["masked"] for row in masked].count(True) == 1
    hidden = next(row for row in masked if row["word"] == "bass")
    assert hidden["masked"] and hidden["top"] != bass["top"]                  # [MASK] in, other scores out
    twice = supersense_predictions(model, "The bass player cooked a bass.", lexicon, mask="bass")
    assert [row["masked"] for row in twice if row["word"] == "bass"] == [True, False]   # only the masked one


# --- kbench pretrain --objective sensebert ---

def trained_copy(model, steps: int = 6):
    """A copy of ``model`` trained a few steps at a high rate, so its MLM head (decoder bias included) has moved."""
    import copy

    from kbench.train import TrainConfig, fit

    trained = copy.deepcopy(model).train()
    corpus = sense_corpus(TEXTS, trained.tokenizer, trained.collate.lexicon, max_length=24)
    fit(trained, corpus.dataset(), None, TrainConfig(batch_size=4, learning_rate=1e-2, max_steps=steps, device="cpu",
                                                     precision="no", progress=False))
    return trained.eval()


def test_kbench_pretrain_sensebert(tmp_path, lexicon, monkeypatch):
    """`kbench pretrain --objective sensebert --data-dir D` reads WordNet from D, adds the sense losses to the word
    loss, and saves W + S·M at the input (the difference is S·M: zero where A(token) is empty) and W at the output."""
    from safetensors.torch import load_file

    import kbench.models.sensebert as sensebert
    from kbench.pretrain import OBJECTIVES, masked_lm, run_pretraining

    assert OBJECTIVES["sensebert"][0] == ("word",)
    asked = []

    def recording_load_lexicon(data_dir=None):
        asked.append(data_dir)
        return lexicon

    monkeypatch.setattr(sensebert, "load_lexicon", recording_load_lexicon)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS))
    data_dir = str(lexicon.directory.parents[2])
    options = dict(base="tiny", steps=3, batch_size=4, max_length=24, device="cpu", progress=False, data_dir=data_dir)
    summary = run_pretraining(str(corpus), objective="sensebert", out=str(tmp_path / "out"), **options)
    plain = run_pretraining(str(corpus), objective="wwm", out=str(tmp_path / "wwm"), **options)
    assert asked == [data_dir]
    assert summary["steps"] == 3
    # the same init, text and budget: only the sense terms (L_reg alone is about ln 45 = 3.8 untrained) differ
    assert summary["first_loss"] - plain["first_loss"] > 0.5 * math.log(len(SUPERSENSES))
    weights = load_file(str(tmp_path / "out" / "model.safetensors"))
    inputs = weights["bert.embeddings.word_embeddings.weight"]
    outputs = weights["cls.predictions.decoder.weight"]
    assert inputs.shape == outputs.shape
    lm, tokenizer, _ = masked_lm(str(tmp_path / "out"))
    matrix = sensebert.sense_matrix(lexicon, tokenizer)
    folded = inputs - outputs                                              # S·M, row by row
    empty = matrix.sum(1) == 0
    assert empty.any() and (~empty).any()
    assert torch.equal(folded[empty], torch.zeros_like(folded[empty]))    # no sense: W alone
    assert (folded[~empty].abs().sum(1) > 0).all()                         # senses: W + S·M
    s, *_ = torch.linalg.lstsq(matrix, folded)                              # and it is M times one 45 x d matrix
    assert torch.allclose(matrix @ s, folded, atol=1e-4)


def test_a_saved_sensebert_is_a_plain_bert_that_computes_the_same(model, tmp_path):
    """What a notebook takes as base_model is what SenseBERT trained: S·M folded into the input, W at the output,
    the trained MLM head (its decoder bias too) kept, read back by kbench's own loader untied."""
    from safetensors.torch import load_file
    from transformers import BertForMaskedLM

    from kbench.pretrain import masked_lm, save_pretrained

    trained = trained_copy(model)
    bias = trained.lm.cls.predictions.decoder.bias.detach()
    assert bias.abs().max() > 1e-3                                          # training moved the head's bias
    save_pretrained(trained, tmp_path / "saved")
    saved = load_file(str(tmp_path / "saved" / "model.safetensors"))
    stored = saved.get("cls.predictions.decoder.bias", saved.get("cls.predictions.bias"))
    assert stored is not None and torch.equal(stored, bias)
    plain = BertForMaskedLM.from_pretrained(str(tmp_path / "saved")).eval()
    ours_lm, _, description = masked_lm(str(tmp_path / "saved"))
    ours_lm.eval()
    assert "own MLM head" in description and "untied" in description
    assert ours_lm.cls.predictions.decoder.weight is not ours_lm.bert.embeddings.word_embeddings.weight
    ids, mask, _ = masked_batch(trained, "dan cooked a bass on the grill", "bass")
    with torch.no_grad():
        ours = trained(ids, mask)
        states = trained.hidden(ids, mask)
        theirs = plain(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        loaded = ours_lm(input_ids=ids, attention_mask=mask)
        without = trained.lm(input_ids=ids, attention_mask=mask, output_hidden_states=True)   # W x alone
    assert torch.allclose(theirs.hidden_states[-1], states, atol=1e-5)
    assert torch.allclose(theirs.logits, ours["logits"], atol=1e-4)
    assert torch.allclose(loaded.logits, ours["logits"], atol=1e-4)                   # kbench's loader too
    assert not torch.allclose(without.hidden_states[-1], states, atol=1e-3)          # the fold matters


def test_probe_priors_by_hand(lexicon):
    """The majority label and the allowed-set prior: the most frequent training label within A(w)."""
    from kbench.models.sensebert import probe_priors
    from kbench.profiles.sensebert import ProbeData

    animal, food, artifact = S["noun.animal"], S["noun.food"], S["noun.artifact"]
    train = [((["a", "cat"], 1, 2), animal)] * 3 + [((["some", "bread"], 1, 2), food)] * 2
    test = [((["the", "bass", "swam"], 1, 2), animal), ((["a", "xyzzyq"], 1, 2), animal),
            ((["the", "bass", "tasted"], 1, 2), food), ((["a", "hammer"], 1, 2), artifact)]
    priors = probe_priors(lexicon, ProbeData(train, [], test))
    # majority: animal for all -> 2 of 4; allowed prior: bass -> animal (3 > 2 among A(bass)), xyzzyq -> majority
    # animal, bass -> animal (wrong), hammer: A(hammer) holds no training label -> animal (wrong)
    assert priors == {"majority": 0.5, "allowed_prior": 0.5}
    test2 = [((["the", "bread"], 1, 2), food), ((["a", "cat"], 1, 2), animal)]
    assert probe_priors(lexicon, ProbeData(train, [], test2)) == {"majority": 0.5, "allowed_prior": 1.0}


# --- bad input ---

def test_bad_input(lexicon, model):
    with pytest.raises(InputError, match="no supersense: it is a stopword"):
        require_supersenses(lexicon, "about")
    with pytest.raises(InputError, match="WordNet has no synset"):
        require_supersenses(lexicon, "xyzzyq")
    with pytest.raises(InputError, match="non-empty string"):
        allowed_supersenses(lexicon, "  ")
    logits = torch.zeros(2, 45)
    allowed = torch.zeros(2, 45)
    allowed[0, 3] = 1
    with pytest.raises(InputError, match="no supersense"):
        slm_losses(logits, allowed)                       # the second word has an empty A(w)
    with pytest.raises(InputError, match="differ"):
        slm_losses(logits, allowed[:, :44])
    collate = SenseMaskingCollator(MaskVocab.of(model.tokenizer), 0)
    with pytest.raises(InputError, match="whole words"):
        collate.mask(Sentence("x", np.array([101, 102]), {}))
    with pytest.raises(InputError, match="lexicon and tokenizer"):
        collate.mask(Sentence("x", np.array([101, 5, 102]), {"word": [(1, 2)]}))
    with pytest.raises(InputError, match="masking rate"):
        SenseMaskingCollator(MaskVocab.of(model.tokenizer), 0, rate=1.5)
    with pytest.raises(InputError, match="not a word of"):
        supersense_predictions(model, "Dan cooked a bass.", lexicon, mask="tuna")
    with pytest.raises(InputError, match="only a SenseBERT"):
        supersense_predictions(pretrainer(lexicon, "tiny", "mlm"), "Dan cooked a bass.", lexicon)
    with pytest.raises(InputError, match="unknown objective"):
        pretrainer(lexicon, "tiny", "bce")
    from kbench.profiles.sensebert import probe_data, pretraining_texts
    with pytest.raises(InputError, match="at least 30"):
        probe_data(lexicon, 5)
    with pytest.raises(InputError, match="positive"):
        pretraining_texts(lexicon, 0, set())
