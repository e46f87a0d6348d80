"""SKEP: PMI mining by hand, the three masking steps and their caps, the pair targets, the three losses, the
review world's splits, and named errors for bad input."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from kbench.data.review_world import (NEGATIVE, NEGATIVE_SEEDS, NOUNS, POSITIVE, POSITIVE_SEEDS, aspect_task,
                                      frequent_and_rare, lexicon, make_reviews, sentence_task)
from kbench.errors import InputError, UnknownNameError
from kbench.models.skep import (SentimentCollator, SentimentSentence, aspect_pairs, lexicon_baseline,
                                lexicon_scores, mine_lexicon, pretrainer, sentiment_corpus, sentiment_mask,
                                word_polarity)
from kbench.text.masking import IGNORE, MaskVocab

VOCAB = MaskVocab(mask_id=4, vocab_size=60, special_ids=frozenset({0, 1, 2, 3, 4}))


def test_word_polarity_is_the_sum_of_pmi_with_positive_seeds_minus_negative_by_hand():
    texts = [["good", "nice"], ["good", "nice"], ["bad", "nice"], ["bad", "awful"], ["good"], ["bad"]]
    wp = word_polarity(texts, ["good"], ["bad"])
    # N = 6; c(good) = c(bad) = c(nice) = 3, c(awful) = 1; nice meets good twice, bad once; awful meets bad once
    assert wp["nice"] == pytest.approx(math.log(2 * 6 / 9) - math.log(1 * 6 / 9))     # = log 2
    assert wp["awful"] == pytest.approx(-math.log(1 * 6 / 3))                           # good never met: adds nothing
    assert "good" not in wp and "bad" not in wp


def test_mining_keeps_words_past_the_margin_and_the_seeds():
    texts = [["good", "nice"], ["good", "nice"], ["bad", "nice"], ["bad", "awful"], ["bad", "awful"], ["good", "the"],
             ["bad", "the"]]
    mined = mine_lexicon(texts, ["good"], ["bad"], min_count=2, margin=0.5)
    assert mined == {"nice": 1, "awful": 0, "good": 1, "bad": 0}          # "the" meets both alike: WP = 0
    assert mine_lexicon(texts, ["good"], ["bad"], min_count=2, margin=5.0) == {"good": 1, "bad": 0}


def test_bad_seeds_are_named():
    with pytest.raises(InputError, match="never occur"):
        word_polarity([["good", "nice"]], ["good"], ["dreadful"])
    with pytest.raises(InputError, match="both polarities"):
        word_polarity([["good", "nice"]], ["good"], ["good"])
    with pytest.raises(InputError, match="at least one text"):
        word_polarity([], ["good"], ["bad"])


def test_a_pair_is_a_sentiment_word_and_its_nearest_noun_at_most_three_words_away():
    lex = {"superb": 1, "dull": 0}
    assert aspect_pairs("the battery is superb".split(), lex, {"battery"}) == [(1, 3)]
    assert aspect_pairs("the battery is so very superb".split(), lex, {"battery"}) == []          # 4 away
    assert aspect_pairs("a superb battery".split(), lex, {"battery"}) == [(2, 1)]
    # two nouns: the nearer wins; equally near, the earlier
    assert aspect_pairs("screen battery superb".split(), lex, {"battery", "screen"}) == [(1, 2)]
    assert aspect_pairs("screen superb battery".split(), lex, {"battery", "screen"}) == [(0, 1)]


def _sentence(words, lex, nouns=NOUNS):
    """A hand tokenisation: id 5 + word index, [CLS] = 2, [SEP] = 3."""
    class Tok:
        def __call__(self, batch, is_split_into_words, truncation, max_length):
            class Enc(dict):
                def word_ids(self_inner, index):
                    return [None] + list(range(len(batch[index]))) + [None]
            return Enc(input_ids=[[2] + [5 + i for i in range(len(ws))] + [3] for ws in batch])
    return sentiment_corpus([" ".join(words)], Tok(), lex, nouns)[0]


def test_pair_masking_masks_both_words_at_most_two_pairs_and_targets_their_ids():
    words = "the battery is superb and the screen is dull and the fan is bad".split()
    s = _sentence(words, {"superb": 1, "dull": 0, "bad": 0})
    assert len(s.pairs) == 3
    for seed in range(20):
        inputs, tokens, polarity, targets = sentiment_mask(s, np.random.default_rng(seed), VOCAB)
        pairs = [p for p in s.pairs if inputs[p[0][0]] == VOCAB.mask_id and inputs[s.sentiment[p[1]][0]] == 4]
        assert len(pairs) == 2                                                   # at most 2 of the 3
        expected = sorted({int(s.ids[a0]) for (a0, _), _ in pairs} | {int(s.ids[s.sentiment[k][0]]) for _, k in pairs})
        assert targets == expected
        for (a0, _), k in pairs:                                                 # no word prediction on a pair
            s0 = s.sentiment[k][0]
            assert tokens[a0] == IGNORE and tokens[s0] == IGNORE and polarity[s0] == s.sentiment[k][2]
            assert polarity[a0] == IGNORE


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 60), sentiment=st.integers(0, 6), seed=st.integers(0, 10_000))
def test_steps_two_and_three_predict_ten_percent_of_the_tokens_as_an_expected_share(n, sentiment, seed):
    """No pairs: the sentiment words first, ordinary tokens after, floor(0.1 n + u) predicted in all; specials never."""
    words = ["w"] * n
    for i in range(min(sentiment, n)):
        words[i * (n // max(1, sentiment))] = "superb"
    s = _sentence(words, {"superb": 1}, nouns=())
    inputs, tokens, polarity, targets = sentiment_mask(s, np.random.default_rng(seed), VOCAB)
    predicted = int((tokens != IGNORE).sum())
    assert predicted in (math.floor(0.1 * n), math.floor(0.1 * n) + 1) and targets == []
    assert tokens[0] == IGNORE and tokens[-1] == IGNORE and inputs[0] == 2 and inputs[-1] == 3
    sentiment_positions = {start for start, _, _ in s.sentiment}
    masked_sentiment = {i for i in sentiment_positions if tokens[i] != IGNORE}
    assert all(polarity[i] == 1 for i in masked_sentiment)
    if len(sentiment_positions) >= predicted:                     # enough sentiment words: no ordinary token
        assert len(masked_sentiment) == predicted


def test_mean_share_of_steps_two_and_three_is_ten_percent():
    s = _sentence(["w"] * 15, {}, nouns=())
    rng = np.random.default_rng(0)
    shares = [int((sentiment_mask(s, rng, VOCAB)[1] != IGNORE).sum()) / 15 for _ in range(4000)]
    assert np.mean(shares) == pytest.approx(0.10, abs=0.005)


def test_the_lexicon_decides_the_batch_and_the_polarity_labels():
    """The knowledge reaches the model's input: another lexicon masks other words; a flipped one flips labels."""
    words = "the battery is superb and the screen is dull".split()
    collate = lambda lex: SentimentCollator(VOCAB, 0, seed=3)([_sentence(words, lex)])
    a, b = collate({"superb": 1, "dull": 0}), collate({"superb": 0, "dull": 1})
    assert torch.equal(a["input_ids"], b["input_ids"])
    marked = a["polarity_labels"] != IGNORE
    assert marked.any() and torch.equal(a["polarity_labels"][marked], 1 - b["polarity_labels"][marked])
    c = collate({})
    assert not torch.equal(a["input_ids"], c["input_ids"]) and c["pair_labels"].sum() == 0
    assert a["pair_labels"].sum() == 4


def test_collator_names_examples_without_sentiment_marks():
    with pytest.raises(InputError, match="SentimentSentence"):
        SentimentCollator(VOCAB, 0)([object()])
    with pytest.raises(InputError, match="empty text"):
        _sentence([], {})


def _tiny_vocab(tmp_path):
    from kbench.text.vocabulary import write_vocab_file

    words = sorted({w for t in ["the battery is superb but the screen is dull .", "good bad"] for w in t.split()})
    return str(write_vocab_file(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words, tmp_path))


def _review_batch(model, lexicon, texts=("the battery is superb , but the screen is dull .",) * 4):
    corpus = sentiment_corpus(list(texts), model.tokenizer, lexicon, {"battery", "screen"})
    return model.collate(corpus)


def test_skep_losses_by_hand_with_silent_heads(tmp_path):
    """Zero heads: the polarity loss is ln 2, the pair loss ln 2 averaged over the vocabulary (|V| ln 2 summed),
    whatever the encoder; rows without a masked pair add no pair loss."""
    model = pretrainer("skep", "tiny", _tiny_vocab(tmp_path), seed=0)
    with torch.no_grad():
        for head in (model.polarity_head, model.pair_head):
            head.weight.zero_()
            head.bias.zero_()
    out = model(**_review_batch(model, {"superb": 1, "dull": 0}))
    assert out["polarity_loss"].item() == pytest.approx(math.log(2), rel=1e-5)
    assert out["pair_loss"].item() == pytest.approx(math.log(2), rel=1e-5)             # averaged over the vocabulary
    model.pair_reduction = "sum"
    summed = model(**_review_batch(model, {"superb": 1, "dull": 0}))
    assert summed["pair_loss"].item() == pytest.approx(len(model.tokenizer) * math.log(2), rel=1e-5)
    with pytest.raises(InputError, match="pair_reduction"):
        pretrainer("skep", "tiny", _tiny_vocab(tmp_path), seed=0, pair_reduction="max")
    plain = model(**_review_batch(model, {}))                          # no sentiment word: no pair, no polarity
    assert plain["pair_loss"].item() == 0.0 and plain["polarity_loss"].item() == 0.0


def test_the_lexicon_reaches_the_loss_and_the_encoders_gradient(tmp_path):
    """Checklist 1: another lexicon (a flipped polarity, another word) changes SKEP's loss and the gradient that
    reaches the encoder, from the same weights and the same masking draws."""
    model = pretrainer("skep", "tiny", _tiny_vocab(tmp_path), seed=0)
    model.eval()

    def step(lexicon):
        model.collate.rng = np.random.default_rng(7)
        model.zero_grad()
        out = model(**_review_batch(model, lexicon))
        out["loss"].backward()
        return out["loss"].item(), model.bert.embeddings.word_embeddings.weight.grad.clone()

    loss, grad = step({"superb": 1, "dull": 0})
    flipped_loss, flipped_grad = step({"superb": 0, "dull": 1})
    other_loss, _ = step({"superb": 1})
    assert flipped_loss != pytest.approx(loss) and not torch.allclose(grad, flipped_grad)
    assert other_loss != pytest.approx(loss)


def test_every_variant_starts_from_one_encoder_and_bad_names_are_named(tmp_path):
    vocab = _tiny_vocab(tmp_path)
    a, b = pretrainer("random", "tiny", vocab, 0), pretrainer("skep_true", "tiny", vocab, 0)
    assert all(torch.equal(x, y) for x, y in zip(a.bert.state_dict().values(), b.bert.state_dict().values()))
    with pytest.raises(UnknownNameError, match="skep_true"):
        pretrainer("sentiment", "tiny", vocab, 0)


def test_lexicon_scores_and_the_lexicon_baseline_by_hand():
    truth = {"superb": 1, "dull": 0, "great": 1}
    assert lexicon_scores({"superb": 1, "dull": 1, "the": 0}, truth) == {"precision": 1 / 3, "recall": 1 / 3, "mined": 3.0}
    # the seeds are left out of both: mined by construction, they would lift precision and recall for free
    assert lexicon_scores({"great": 1, "dull": 0, "the": 0}, truth, seeds=["great"]) == {"precision": 0.5, "recall": 0.5, "mined": 2.0}
    with pytest.raises(InputError, match="beyond the seeds"):
        lexicon_scores({}, {"great": 1}, seeds=["great"])
    from kbench.data.review_world import AspectExample

    examples = [AspectExample("battery", "the battery is superb but the screen is dull .", 1, "superb"),
                AspectExample("screen", "the battery is superb but the screen is dull .", 0, "dull")]
    assert lexicon_baseline(examples, truth, {"battery", "screen"}) == 1.0
    assert lexicon_baseline(examples, {"superb": 1}, {"battery", "screen"}) == 0.5     # no word for the screen
    assert lexicon_baseline([("the fan is dull .", 0), ("the fan is new .", 1)], truth, ()) == 0.5
    assert lexicon_baseline([("the fan is dull , and the bed is superb .", 1)], truth, ()) == 0.0     # a tie: no answer


def test_review_world_tests_rare_words_that_fine_tuning_never_sees_but_pretraining_does():
    frequent, rare = frequent_and_rare(6)
    assert not set(frequent) & set(rare) and set(frequent) | set(rare) == set(lexicon())
    reviews = make_reviews(3000, seed=0)
    seen = {w for r in reviews for w in r.text.split()}
    assert len(set(rare) & seen) >= 0.9 * len(rare)
    train, test = aspect_task(200, frequent, 1), aspect_task(200, rare, 2)
    assert {e.word for e in train} <= set(frequent) and {e.word for e in test} <= set(rare)
    assert not {w for e in train for w in e.text.split()} & set(rare)
    # the two examples of a review share its words and differ in the aspect asked; in a mixed review, the label
    for first, second in zip(train[::2], train[1::2]):
        assert first.text == second.text and first.aspect != second.aspect
        assert (first.label != second.label) == (" but " in first.text)
    assert 0.35 < np.mean([" but " in e.text for e in train]) < 0.65
    sentences = sentence_task(100, rare, 3)
    assert all(sum(w in lexicon() for w in t.split()) == 1 for t, _ in sentences)
    assert {label for _, label in sentences} == {0, 1}


def test_reviews_mix_opposite_opinions_joined_by_but():
    reviews = make_reviews(500, seed=1)
    mixed = [r for r in reviews if r.polarity is None]
    assert 0.25 < len(mixed) / len(reviews) < 0.45 and all(" but " in r.text for r in mixed)
    truth = lexicon()
    for r in reviews[:100]:
        for aspect, word in r.pairs:
            assert truth[word] == dict(r.opinions)[aspect]


def test_review_world_bad_input_is_named():
    with pytest.raises(InputError):
        make_reviews(0)
    with pytest.raises(InputError, match="lexicon"):
        sentence_task(3, ["blue"])
    with pytest.raises(InputError, match="both polarities"):
        aspect_task(3, list(POSITIVE[:3]))
    with pytest.raises(InputError):
        frequent_and_rare(len(NEGATIVE))
    assert set(POSITIVE_SEEDS) <= set(POSITIVE) and set(NEGATIVE_SEEDS) <= set(NEGATIVE)


def test_counting_within_sentences_keeps_the_closing_verdicts_out_of_the_mined_lexicon():
    """The notebook's claim: over whole reviews the verdicts ("i would buy it again .") are mined, over sentences not."""
    reviews = [r.text for r in make_reviews(3000, seed=0, second_word=1.0)]
    whole = mine_lexicon([t.split() for t in reviews], POSITIVE_SEEDS, NEGATIVE_SEEDS, 2, 1.0)
    by_sentence = mine_lexicon([s.split() for t in reviews for s in t.split(" . ")], POSITIVE_SEEDS, NEGATIVE_SEEDS,
                               2, 1.0)
    assert {"would", "buy"} <= set(whole) and not {"would", "buy", "sent", "back"} & set(by_sentence)
    assert lexicon_scores(by_sentence, lexicon(), POSITIVE_SEEDS + NEGATIVE_SEEDS)["recall"] > 0.9


def test_review_view_colours_by_polarity_numbers_pairs_and_outlines_mistakes():
    from kbench.viz.sentiment import POLARITY_COLOURS, review_html

    words = "the battery is superb but the screen is dull .".split()
    html = review_html(words, {"superb": 1, "dull": 1}, [(1, 3), (6, 8)], truth={"superb": 1, "dull": 0})
    assert html.count(POLARITY_COLOURS[1]) >= 3 and "solid #c92a2a" in html      # dull mined positive: outlined
    assert html.count("solid #c92a2a") == 1
    with pytest.raises(InputError):
        review_html([], {}, [])


def test_masked_prediction_view_shows_each_model_and_names_bad_positions(tmp_path):
    from kbench.viz.sentiment import masked_predictions_html

    vocab = _tiny_vocab(tmp_path)
    models = {"control": pretrainer("random", "tiny", vocab, 0), "SKEP": pretrainer("skep", "tiny", vocab, 0)}
    html = masked_predictions_html(models, "the battery is superb .", [3], {"superb": 1})
    assert "control" in html and "SKEP" in html and html.count("p(positive)") == 1     # only SKEP has the head
    with pytest.raises(InputError, match="word positions"):
        masked_predictions_html(models, "the battery is superb .", [9], {"superb": 1})


def test_polarity_scatter_draws_every_word_once():
    from kbench.viz.sentiment import polarity_scatter

    figure = polarity_scatter({"superb": 2.0, "dull": -1.5, "the": 0.1}, {"superb": 3, "dull": 4, "the": 9},
                              {"superb": 1, "dull": 0}, 1.0)
    assert sorted(w for trace in figure.data for w in trace.text) == ["dull", "superb", "the"]
    with pytest.raises(InputError):
        polarity_scatter({}, {}, {}, 1.0)


def test_word_polarity_probe_reads_a_planted_direction(tmp_path):
    """A model whose embeddings carry polarity on one axis is read at 1.0; unknown words are named."""
    from kbench.models.skep import word_polarity_probe

    vocab = _tiny_vocab(tmp_path)
    model = pretrainer("random", "tiny", vocab, 0)
    ids = model.tokenizer.get_vocab()
    truth = {"good": 1, "superb": 1, "bad": 0, "dull": 0}
    with torch.no_grad():
        for word, polarity in truth.items():
            model.bert.embeddings.word_embeddings.weight[ids[word]] = 0.0
            model.bert.embeddings.word_embeddings.weight[ids[word], 0] = 5.0 if polarity else -5.0
    assert word_polarity_probe(model, ["good", "bad"], ["superb", "dull"], truth) == 1.0
    with torch.no_grad():                                                     # the axis flipped for the test words
        for word in ("superb", "dull"):
            model.bert.embeddings.word_embeddings.weight[ids[word], 0] *= -1
    assert word_polarity_probe(model, ["good", "bad"], ["superb", "dull"], truth) == 0.0
    with pytest.raises(InputError, match="whole tokens"):
        word_polarity_probe(model, ["good", "bad"], ["splendid"], truth)


def test_nearest_noun_pairs_never_cross_a_clause_in_the_review_world():
    """The positive control hands the masker the true lexicon and the nearest-noun pairs: in this world those
    pairs are the world's own (every written pair found, none joining a word to another clause's aspect)."""
    truth = lexicon()
    for review in make_reviews(400, seed=3, second_word=1.0):
        words = review.text.split()
        boundaries = [i for i, w in enumerate(words) if w in ("and", "but") and i > 0 and words[i - 1] == ","]
        clause_of = lambda i: sum(i > b for b in boundaries)
        found = aspect_pairs(words, truth, NOUNS)
        assert all(clause_of(a) == clause_of(s) for a, s in found), review.text
        written = {(words[a], words[s]) for a, s in found}
        assert set(review.pairs) <= written, review.text


def test_no_test_review_is_a_pretraining_review():
    frequent, rare = frequent_and_rare(6)
    pretraining = {r.text for r in make_reviews(3000, seed=0, second_word=1.0)}
    tests = [t for t, _ in sentence_task(600, rare, 2)] + [e.text for e in aspect_task(600, rare, 4)]
    assert not pretraining & set(tests)


def test_a_model_listed_twice_is_fine_tuned_once(tmp_path, monkeypatch):
    import kbench.models.skep as skep

    calls = []
    monkeypatch.setattr(skep, "fine_tuned", lambda model, *a, **k: calls.append(model) or object())
    a, b = object(), object()
    tuned = skep.fine_tuned_variants({"skep": a, "skep_true": a, "random": b}, [("x", 1)], None)
    assert len(calls) == 2 and tuned["skep"] is tuned["skep_true"] and tuned["random"] is not tuned["skep"]
