"""BioBERT (notebooks/14_biobert): continued pretraining keeps the general vocabulary and never sees held-out text;
the NER scores, the seen/unseen split and the mention contrast are what the notebook says they are."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.errors import InputError, UnknownNameError
from kbench.metrics import span_f1
from kbench.models.biobert import (CITATION, NOTEBOOK, TAGGER, TAGS, contrast_mentions, continue_biomedical,
                                   entity_scores, general_checkpoint, loss_means, mention_fragmentation, mention_texts,
                                   only_found_by, predict_tags, pretraining_corpus, same_vocabulary, seen_unseen_scores,
                                   truncation, weight_change)
from kbench.text.vocabulary import text_key
from kbench.train import TrainConfig

TEXTS = ["the heart pumps blood through the body .", "a chronic disease of the lungs .",
         "an inflammation of the liver caused by a virus .", "a tumour of the nerve tissue in children .",
         "pain in the joints of the hands .", "a fever with a rash and a cough ."]


def test_citation_names_the_paper():
    assert CITATION["url"] == "https://arxiv.org/abs/1901.08746"
    assert CITATION["authors"].split(", ")[0] == "Jinhyuk Lee" and "Jaewoo Kang" in CITATION["authors"]
    assert NOTEBOOK == "14_biobert"


def test_pretraining_corpus_drops_held_out_texts_by_words_and_duplicates():
    held_out = [["A", "chronic", "disease", "of", "the", "lungs", "."]]       # a word list, other case
    corpus = pretraining_corpus(TEXTS + ["The heart pumps blood through the body ."], held_out)
    assert "a chronic disease of the lungs ." not in corpus
    assert len(corpus) == len(TEXTS) - 1                                          # the duplicate kept once
    assert pretraining_corpus([["pain", "in", "the", "joints"]]) == ["pain in the joints"]


def test_pretraining_corpus_with_nothing_left_is_an_input_error():
    with pytest.raises(InputError, match="empty"):
        pretraining_corpus(TEXTS[:1], [TEXTS[0].upper()])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("biobert")
    general = general_checkpoint(root / "general", "embedded", layers=1, seed=0)
    config = TrainConfig(batch_size=2, learning_rate=1e-3, max_steps=3, seed=0, progress=False, precision="no",
                         device="cpu")
    adapted, history = continue_biomedical(general, TEXTS, config, root / "adapted", exclude=[["held", "out"]],
                                           max_length=24, freeze_word_embeddings=True)
    return general, adapted, history, config, root


def test_continued_pretraining_keeps_the_general_vocabulary_and_moves_the_layers(checkpoints):
    from kbench.encoders import load_encoder

    general, adapted, history, _, _ = checkpoints
    assert history.steps == 3 and len(history.train_loss) == 3
    assert same_vocabulary(general, adapted)
    moved = weight_change(general, adapted)
    assert moved["layers"] > 1e-4                                             # the layers did adapt
    a, b = load_encoder(str(general)).model, load_encoder(str(adapted)).model
    assert a.config.num_hidden_layers == b.config.num_hidden_layers == 1
    assert torch.equal(a.embeddings.word_embeddings.weight, b.embeddings.word_embeddings.weight)   # frozen: kept


def test_continued_pretraining_refuses_a_dev_or_test_text_before_training(checkpoints, tmp_path):
    general, _, _, config, _ = checkpoints
    with pytest.raises(InputError, match="excluded .*inflammation of the liver"):
        continue_biomedical(general, TEXTS, config, tmp_path / "leak", exclude=[TEXTS[2].upper().split()])
    assert not (tmp_path / "leak").exists()
    with pytest.raises(InputError, match="empty"):
        continue_biomedical(general, ["  "], config, tmp_path / "empty")


def test_same_vocabulary_tells_another_vocabulary_apart(checkpoints):
    from kbench.text.vocabulary import train_wordpiece

    general, adapted, *_ = checkpoints
    other = train_wordpiece(TEXTS * 5, size=120)
    assert not same_vocabulary(general, other)
    assert same_vocabulary(adapted, general)


def test_weight_change_refuses_another_architecture(checkpoints):
    general, _, _, _, root = checkpoints
    deeper = general_checkpoint(root / "deeper", "embedded", layers=2)
    with pytest.raises(InputError, match="architecture"):
        weight_change(general, deeper)


GOLD = [["O", "B-Disease", "I-Disease", "O", "B-Disease"], ["B-Disease", "O", "O"]]
PRED = [["O", "B-Disease", "O", "O", "B-Disease"], ["B-Disease", "O", "B-Disease"]]
WORDS = [["a", "cystic", "fibrosis", "and", "flu"], ["flu", "is", "common"]]


def test_entity_scores_are_exact_span_matches():
    scores = entity_scores(GOLD, PRED)
    # gold: (1,3), (4,5), (0,1); predicted: (1,2) wrong boundary, (4,5), (0,1), (2,3) spurious
    assert (scores["correct"], scores["gold"], scores["predicted"]) == (2, 3, 4)
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    with pytest.raises(InputError):
        entity_scores(GOLD, PRED[:1])
    with pytest.raises(InputError, match="sentence #1"):
        entity_scores(GOLD, [PRED[0], ["O"]])


tag_lists = st.lists(st.sampled_from(TAGS), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(tag_lists, tag_lists), min_size=1, max_size=5))
def test_entity_f1_is_the_harness_f1_and_swapping_swaps_precision_and_recall(pairs):
    gold = [g[:min(len(g), len(p))] for g, p in pairs]
    predicted = [p[:len(g)] for g, p in zip(gold, (p for _, p in pairs))]
    scores, swapped = entity_scores(gold, predicted), entity_scores(predicted, gold)
    if scores["gold"] or scores["predicted"]:
        assert scores["f1"] == pytest.approx(span_f1(gold, predicted))
    assert scores["precision"] == pytest.approx(swapped["recall"])
    assert scores["recall"] == pytest.approx(swapped["precision"])


def test_seen_unseen_scores_partition_the_mentions():
    train = {"flu"}
    parts = seen_unseen_scores(train, WORDS, GOLD, PRED)
    total = entity_scores(GOLD, PRED)
    for key in ("gold", "predicted", "correct"):
        assert parts["seen"][key] + parts["unseen"][key] == total[key]
    # seen: gold flu, flu (both found); predicted flu, flu -> perfect. unseen: gold "cystic fibrosis" missed,
    # predicted "cystic" and "common" wrong
    assert parts["seen"]["f1"] == 1.0
    assert (parts["unseen"]["correct"], parts["unseen"]["gold"], parts["unseen"]["predicted"]) == (0, 1, 2)
    assert mention_texts(WORDS, GOLD) == {"cystic fibrosis", "flu"}


def test_contrast_lists_the_mentions_one_model_finds_and_the_other_misses():
    other = [["O", "B-Disease", "I-Disease", "O", "O"], ["O", "O", "O"]]
    outcomes = contrast_mentions(WORDS, GOLD, {"general": PRED, "biobert": other}, {"flu"})
    assert [(o.text, o.seen) for o in outcomes] == [("cystic fibrosis", False), ("flu", True), ("flu", True)]
    assert [o.text for o in only_found_by(outcomes, "biobert", "general")] == ["cystic fibrosis"]
    assert [o.text for o in only_found_by(outcomes, "general", "biobert")] == ["flu", "flu"]
    with pytest.raises(InputError):
        contrast_mentions(WORDS, GOLD, {"general": PRED[:1]})
    with pytest.raises(InputError, match="words"):                  # a sentence shorter than its gold tags
        contrast_mentions([WORDS[0][:3], WORDS[1]], GOLD, {"general": PRED})
    with pytest.raises(InputError, match="words"):
        contrast_mentions(WORDS[:1], GOLD, {"general": PRED})


def test_seen_unseen_scores_check_the_sentences_against_the_gold_tags():
    with pytest.raises(InputError, match="words"):
        seen_unseen_scores({"flu"}, [WORDS[0][:3], WORDS[1]], GOLD, PRED)
    with pytest.raises(InputError, match="words"):
        seen_unseen_scores({"flu"}, WORDS[:1], GOLD, PRED)


def test_mention_words_are_cut_into_more_pieces_than_the_content_words():
    from kbench.encoders import load_tokenizer

    words = [["the", "child", "had", "neuroblastoma", "and", "a", "cold", "in", "hospital", ","]]
    tags = [["O", "O", "O", "B-Disease", "O", "O", "O", "O", "O", "O"]]
    cuts = mention_fragmentation(load_tokenizer("embedded"), words, tags)
    assert cuts["mention"]["pieces_per_word"] > 1 == cuts["content"]["pieces_per_word"]
    assert cuts["content"]["words"] == 3                     # child, cold, hospital: not "the", "had", "in", ","
    with pytest.raises(InputError, match="content words outside"):
        mention_fragmentation(load_tokenizer("embedded"), words, [["O"] * 10])
    with pytest.raises(InputError, match="content words outside"):      # only function words outside
        mention_fragmentation(load_tokenizer("embedded"), [["the", "neuroblastoma"]], [["O", "B-Disease"]])


def test_predict_tags_reads_each_words_first_piece_like_the_harness(checkpoints):
    """The notebook's claim: word-level scores equal the harness's piece-level F1 when no sentence is cut."""
    from kbench.models.kbert import KBertTagger
    from kbench.train import predict_with_labels

    general, *_ = checkpoints
    tagger = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=32, seed=0)
    with torch.no_grad():
        tagger.output.weight.normal_(0, 1.0)                  # an untrained head that still predicts every tag
    sentences = [["neuroblastoma", "in", "a", "child"], ["the", "flu", "spreads", "fast", "in", "winter"]]
    gold = [["B-Disease", "O", "O", "O"], ["O", "B-Disease", "O", "O", "O", "O"]]
    tags = predict_tags(tagger, sentences, device="cpu")
    assert [len(t) for t in tags] == [4, 6] and all(t in TAGS for row in tags for t in row)
    logits, labels = predict_with_labels(tagger, tagger.dataset(sentences, gold), device="cpu", precision="no")
    harness = tagger.metrics()["f1"](logits, labels)
    mine = entity_scores(gold, tags)
    assert mine["f1"] == pytest.approx(harness) or (mine["gold"] + mine["predicted"] == 0 and harness == 1.0)
    cut = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=3, seed=0)
    assert predict_tags(cut, [sentences[1]], device="cpu")[0][3:] == ["O"] * 3      # cut by max_length: O
    with pytest.raises(InputError):
        predict_tags(tagger, [], device="cpu")


def test_biobert_tagger_reads_cls_first_and_sep_last_with_bert_init(checkpoints):
    """run_ner.py's framing and head: [CLS] at position 0, [SEP] last (kept under truncation), N(0, 0.02) output."""
    from kbench.models.kbert import KBertTagger

    general, *_ = checkpoints
    tagger = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=32, seed=0, **TAGGER)
    sentence, gold = ["neuroblastoma", "in", "a", "child"], ["B-Disease", "O", "O", "O"]
    example = tagger.dataset([sentence], [gold]).examples[0]
    tokens = tagger.tokenizer.convert_ids_to_tokens([int(i) for i in example.input_ids])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert example.labels[0] == -100 and example.labels[-1] == -100
    assert example.labels[1] == TAGS.index("B-Disease")                 # the word's tag on its first piece
    short = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=4, seed=0, **TAGGER)
    cut = short.dataset([sentence], [gold]).examples[0]
    assert len(cut.input_ids) == 4 and int(cut.input_ids[-1]) == short.tokenizer.sep_token_id
    assert cut.labels[-1] == -100
    weight = torch.cat([KBertTagger(list(TAGS), kg=None, base_model=str(general), seed=s_, **TAGGER).output.weight.flatten()
                        for s_ in range(4)])
    assert abs(float(weight.detach().std()) - 0.02) < 0.002 and float(tagger.output.bias.abs().max()) == 0.0
    assert tagger.head_dropout.p == 0.1
    plain = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=32, seed=0)     # K-BERT's default
    assert plain.dataset([sentence], [gold]).examples[0].labels[0] == TAGS.index("B-Disease")
    assert float(plain.output.weight.detach().std()) > 0.026 and plain.head_dropout is None     # nn.Linear: 1/sqrt(3 * 384)
    with pytest.raises(InputError, match="head_dropout"):
        KBertTagger(list(TAGS), kg=None, base_model=str(general), head_dropout=1.5)
    tags = predict_tags(tagger, [sentence, ["the", "flu"]], device="cpu")
    assert [len(t) for t in tags] == [4, 2]


def test_truncation_counts_cut_sentences_and_unreachable_mentions(checkpoints):
    from kbench.models.kbert import KBertTagger

    general, *_ = checkpoints
    tagger = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=5, seed=0, **TAGGER)
    sentences = [["the", "flu"], ["a", "child", "with", "the", "flu"], ["flu", "and", "a", "cold", "again"]]
    gold = [["O", "B-Disease"], ["O", "O", "O", "O", "B-Disease"], ["B-Disease", "O", "O", "B-Disease", "O"]]
    # [CLS] + 3 words + [SEP] fit in 5: the second sentence loses "the flu", the third "cold again"
    assert truncation(tagger, sentences, gold) == {"sentences": 3, "cut": 2, "mentions": 4, "unreachable": 2}
    with pytest.raises(InputError):
        truncation(tagger, sentences[:2], gold)


def test_continue_biomedical_leaves_no_checkpoint_when_the_vocabulary_check_fails(checkpoints, tmp_path, monkeypatch):
    import kbench.models.biobert as biobert

    general, _, _, config, _ = checkpoints
    monkeypatch.setattr(biobert, "same_vocabulary", lambda a, b: False)
    with pytest.raises(InputError, match="general vocabulary"):
        continue_biomedical(general, TEXTS, config, tmp_path / "bad", max_length=24, freeze_word_embeddings=True)
    assert not (tmp_path / "bad").exists()


def test_weight_change_takes_a_fine_tuned_encoder(checkpoints):
    from kbench.models.kbert import KBertTagger

    general, adapted, *_ = checkpoints
    tagger = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=16, seed=0)
    assert weight_change(general, tagger.bert)["layers"] == 0.0
    with torch.no_grad():
        tagger.bert.encoder.layer[0].attention.self.query.weight.mul_(1.5)
    assert weight_change(general, tagger.bert)["layers"] > 0.0


def test_loss_means_and_views():
    from kbench.viz.tagging import loss_curve, mention_contrast_html

    assert loss_means([4.0, 3.0, 2.0, 1.0], window=2) == (3.5, 1.5)
    with pytest.raises(InputError):
        loss_means([])
    html = mention_contrast_html(WORDS[0], GOLD[0], {"general": PRED[0]})
    assert "cystic</span>" in html and "#f4a6a6" in html            # a wrong boundary: predicted, not gold
    assert "flu</span>" in html and "#b7e4b0" in html                # found exactly
    assert "border-bottom:3px solid" in html.split("<b>general</b>")[1]   # cystic fibrosis missed
    with pytest.raises(InputError):
        mention_contrast_html(WORDS[0], GOLD[0][:2], {"general": PRED[0]})
    assert len(loss_curve([3.0, 2.0, 1.0]).data) == 2
    with pytest.raises(InputError):
        loss_curve([])


def test_profiles_keep_held_out_text_out_of_the_corpus_and_name_bad_choices():
    from kbench.profiles.biobert import setup

    s = setup("smoke", seed=1, corpus_limit=500, task_limit=300)
    held = {text_key(w) for w in s.held_out}
    assert held and not held & {text_key(t) for t in s.corpus}
    train = {text_key(w) for w in s.splits[0][0]}
    assert not train & held                                               # splits disjoint by content
    assert len(s.corpus) == 500 and s.layers == 1
    assert not held & {text_key(t) for t in s.control_corpus} and len(s.control_corpus) == 500
    assert not {text_key(t) for t in s.control_corpus} & {text_key(t) for t in s.corpus}     # another domain
    with pytest.raises(InputError, match="not a choice"):
        setup("smoke", vocabulary=1)
    with pytest.raises(UnknownNameError):
        setup("tiny")
    with pytest.raises(InputError, match="unknown task"):
        setup("smoke", task="pubmed")


def test_both_variants_start_fine_tuning_from_the_same_head(checkpoints):
    """The notebook's claim: the two taggers differ only in the encoder's weights (same head init, same vocabulary)."""
    from kbench.models.kbert import KBertTagger

    general, adapted, *_ = checkpoints
    a = KBertTagger(list(TAGS), kg=None, base_model=str(general), max_length=16, seed=3)
    b = KBertTagger(list(TAGS), kg=None, base_model=str(adapted), max_length=16, seed=3)
    assert torch.equal(a.output.weight, b.output.weight) and torch.equal(a.output.bias, b.output.bias)
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(a.bert.state_dict()[layer], b.bert.state_dict()[layer])


def test_corpus_mentions_are_whole_word_matches_in_any_case():
    from kbench.models.biobert import corpus_mentions

    corpus = ["Cystic fibrosis is inherited .", "the flu-like illness", "influenza spreads"]
    assert corpus_mentions({"cystic fibrosis", "flu", "measles", "fibrosis is"}, corpus) == \
        {"cystic fibrosis", "flu", "fibrosis is"}
    assert corpus_mentions({"enza"}, corpus) == set()                 # a piece of a word is not the word


def test_recall_on_counts_only_the_named_mentions():
    from kbench.models.biobert import recall_on

    # gold: cystic fibrosis (missed), flu (found), flu (found)
    assert recall_on({"cystic fibrosis"}, WORDS, GOLD, PRED) == {"gold": 1.0, "recall": 0.0}
    assert recall_on({"flu"}, WORDS, GOLD, PRED) == {"gold": 2.0, "recall": 1.0}
    assert recall_on(set(), WORDS, GOLD, PRED) == {"gold": 0.0, "recall": 0.0}
    with pytest.raises(InputError, match="words"):
        recall_on({"flu"}, WORDS[:1], GOLD, PRED)


def test_the_held_out_mlm_loss_reads_the_continued_head(checkpoints):
    """The positive control's metric: the adapted checkpoint's saved head is the one scored (its loss on its own
    training text differs from the general start's fresh head), and the same masks make it repeatable."""
    from kbench.models.dont_stop_pretraining import masked_lm_loss

    general, adapted, *_ = checkpoints
    before = masked_lm_loss(str(general), TEXTS * 4, seed=0, max_length=24)
    after = masked_lm_loss(str(adapted), TEXTS * 4, seed=0, max_length=24)
    assert after == pytest.approx(masked_lm_loss(str(adapted), TEXTS * 4, seed=0, max_length=24))
    assert abs(after - before) > 1e-3


def test_the_headline_takes_the_general_model_as_trivial_and_the_held_out_loss_as_positive_control():
    from kbench.models.biobert import HEADLINE

    assert HEADLINE.trivial == ("general_f1",)
    assert (HEADLINE.positive.left, HEADLINE.positive.right) == ("control_heldout_mlm_loss", "biobert_heldout_mlm_loss")
