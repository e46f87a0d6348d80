"""LIBERT: WordNet's positives, the smart negatives (never a true partner, batch-nearest), held-out words absent from
training, NSP pairs as BertForPreTraining's, the shared pooled output, equal budgets with the MLM + NSP baseline,
knowledge reaching the output, direction, `kbench pretrain --objective libert`, and bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kbench.data.lexical_relations import (NEGATIVE_BATCH, LexicalPair, StaticVectors, embedded_vectors,
                                           heldout_split, noun_hierarchy, smart_negatives, true_pair_set,
                                           unique_pairs, wordnet_documents, wordnet_pairs, wordnet_relations)
from kbench.errors import InputError
from kbench.models.libert import (LIBERT, LRC_MAX_LENGTH, NEXT, RANDOM_NEXT, BertPretrainer, LRCExamples,
                                  document_corpus, lrc_probabilities, pair_features, pair_view_rows, pretrainer,
                                  relation_probe, split_segments, subset_auc, surface_features, surface_probe,
                                  truncate_pair, word_similarity)
from kbench.pretrain import Sentence, build_corpus
from kbench.text.masking import IGNORE

DOCUMENTS = [("a small domesticated carnivore", "the cat sat on the mat", "it purred"),
             ("a motor vehicle with four wheels", "he parked the car outside"),
             ("a large body of salt water", "they sailed across the sea"),
             ("a building for living in", "their house has a red door")] * 4
PAIRS = [LexicalPair("car", "automobile", "synonym", 1), LexicalPair("car", "road", "", 0),
         LexicalPair("dog", "canine", "hypernym", 1), LexicalPair("dog", "cat", "", 0)] * 4


@pytest.fixture(scope="module")
def wordnet_dir(tmp_path_factory):
    from kbench.kg.wordnet import prepare_wordnet

    return str(prepare_wordnet(str(tmp_path_factory.mktemp("wordnet-data"))) / "corpora" / "wordnet")


@pytest.fixture(scope="module")
def relations(wordnet_dir):
    positives, known, vectors = wordnet_relations(str(Path(wordnet_dir).parents[2]))
    return positives, known, vectors


@pytest.fixture(scope="module")
def split(relations):
    positives, known, vectors = relations
    return heldout_split(positives, vectors, known, 0.2, train_size=600, test_size=200, seed=0)


# --- positives from WordNet ---

def test_positives_are_wordnet_synonyms_and_hyponym_hypernym_pairs(wordnet_dir):
    pairs = set(wordnet_pairs(wordnet_dir))
    assert (("automobile", "car", "synonym") in pairs) != (("car", "automobile", "synonym") in pairs)   # once
    assert ("dog", "canine", "hypernym") in pairs                         # dog.n.01 -> canine.n.02
    assert ("canine", "dog", "hypernym") not in pairs                     # the hyponym comes first
    assert ("car", "motor vehicle", "hypernym") in pairs                  # a multi-word hypernym, "_" -> " "
    assert not any(w1 == w2 for w1, w2, _ in pairs)
    assert {r for *_, r in pairs} == {"synonym", "hypernym"}


def test_synonym_order_is_a_seeded_coin_not_alphabetical(wordnet_dir):
    """A sorted w1 < w2 would tell synonyms from negatives without any relation (the review's surface cue)."""
    synonyms = [(w1, w2) for w1, w2, r in wordnet_pairs(wordnet_dir) if r == "synonym"]
    share = np.mean([w1 < w2 for w1, w2 in synonyms])
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / len(synonyms))
    assert wordnet_pairs(wordnet_dir) == wordnet_pairs(wordnet_dir, ("n", "v", "a", "r"), 0)


def test_positives_keep_only_terms_with_static_vectors(relations):
    positives, known, vectors = relations
    assert all(p.label == 1 and p.w1 in vectors and p.w2 in vectors for p in positives)
    assert "car" in vectors and "motor vehicle" in vectors and "##ing" not in vectors and "[MASK]" not in vectors
    assert ("car", "automobile") in known and ("automobile", "car") in known


def test_static_vectors_are_the_embedded_minilm_input_embeddings():
    from safetensors import safe_open

    from kbench.encoders import embedded_model_dir

    vectors = embedded_vectors()
    vocab = (embedded_model_dir() / "vocab.txt").read_text().splitlines()
    with safe_open(str(embedded_model_dir() / "model.safetensors"), "np") as handle:
        table = handle.get_tensor(next(k for k in handle.keys() if k.endswith("word_embeddings.weight")))
    row = table[vocab.index("violin")]
    assert np.allclose(vectors.vector("violin"), row / np.linalg.norm(row), atol=1e-6)
    assert vectors.vector("car") @ vectors.vector("automobile") > vectors.vector("car") @ vectors.vector("philosophy")


def test_a_word_missing_from_the_static_vectors_is_a_named_error():
    vectors = StaticVectors(["car", "road"], np.eye(2, dtype=np.float32), "toy")
    with pytest.raises(InputError, match="'zyzzyva' .* not in the static vectors"):
        vectors.vector("zyzzyva")
    with pytest.raises(InputError, match="'tram'"):
        smart_negatives([LexicalPair("car", "tram", "synonym", 1), LexicalPair("car", "road", "hypernym", 1)],
                        vectors, set())


# --- smart negatives (preprocess_wn.py's smart_negative_sampling) ---

def test_smart_negatives_are_never_a_true_partner_and_about_two_per_positive(split, relations):
    _, known, _ = relations
    for part in (split.train, split.test):
        negatives = [p for p in part if p.label == 0]
        positives = [p for p in part if p.label == 1]
        assert negatives and all((p.w1, p.w2) not in known for p in negatives)
        assert 1.8 <= len(negatives) / len(positives) <= 2.0


@given(st.integers(0, 10_000), st.integers(3, 40))
def test_each_negative_is_the_batch_nearest_allowed_word(seed, size):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(2 * size)]
    vectors = StaticVectors(words, rng.normal(size=(len(words), 8)).astype(np.float32))
    positives = [LexicalPair(words[2 * i], words[2 * i + 1], "synonym", 1) for i in range(size)]
    known = true_pair_set(positives) | {(words[0], words[3]), (words[3], words[0])}
    examples = smart_negatives(positives, vectors, known, batch_size=8, seed=seed)
    assert sorted((p.w1, p.w2) for p in examples if p.label == 1) == sorted((p.w1, p.w2) for p in positives)
    # rebuild each batch from the output order: a positive, then its negatives
    batches, current = [], []
    for example in examples:
        if example.label == 1:
            if len([e for e in current if e.label == 1]) == 8:
                batches.append(current)
                current = []
        current.append(example)
    batches.append(current)
    for batch in batches:
        batch_words = {w for e in batch if e.label == 1 for w in (e.w1, e.w2)}
        partner = {}
        for e in batch:
            if e.label == 1:
                partner[e.w1], partner[e.w2] = e.w2, e.w1
        for e in batch:
            if e.label == 0:
                assert e.w2 in batch_words and (e.w1, e.w2) not in known and e.w2 != partner[e.w1]
                allowed = [w for w in batch_words if w not in (e.w1, partner[e.w1]) and (e.w1, w) not in known]
                best = max(float(vectors.vector(w) @ vectors.vector(e.w1)) for w in allowed)
                assert float(vectors.vector(e.w2) @ vectors.vector(e.w1)) == pytest.approx(best, abs=1e-6)


def test_smart_negatives_are_closer_than_random_pairs(split, relations):
    vectors = relations[2]
    rng = np.random.default_rng(0)
    words = sorted(split.words("train"))
    smart = np.mean([vectors.vector(p.w1) @ vectors.vector(p.w2) for p in split.train if p.label == 0])
    random_pairs = np.mean([vectors.vector(a) @ vectors.vector(b) for a, b in rng.choice(words, (500, 2))])
    assert smart > random_pairs + 0.1


# --- held-out words ---

def test_held_out_words_never_appear_in_a_training_pair_word_by_word(split):
    """Held out word by word: no word of a test term is in any training term ("birch tree" held out, "tree" trained
    on is impossible), negatives included."""
    assert split.heldout_words and all(" " not in w for w in split.heldout_words)
    assert not split.vocabulary("train") & split.heldout_words
    assert split.vocabulary("test") <= split.heldout_words               # negatives too: drawn from test batches
    assert not split.vocabulary("train") & split.vocabulary("test")
    assert any(" " in term for term in split.words("test") | split.words("train"))   # multi-word terms still occur


def test_no_pair_appears_twice_on_a_side(split):
    for part in (split.train, split.test):
        keys = [(p.w1, p.w2) for p in part]
        assert len(keys) == len(set(keys))
        positives = [frozenset((p.w1, p.w2)) for p in part if p.label]
        assert len(positives) == len(set(positives))
    examples = [LexicalPair("a", "b", "synonym", 1), LexicalPair("a", "c", "", 0), LexicalPair("b", "a", "hypernym", 1),
                LexicalPair("b", "d", "", 0), LexicalPair("e", "f", "synonym", 1), LexicalPair("c", "a", "", 0),
                LexicalPair("a", "c", "", 0)]
    assert [(p.w1, p.w2) for p in unique_pairs(examples, ordered=False)] == [("a", "b"), ("a", "c"), ("e", "f")]
    assert [(p.w1, p.w2) for p in unique_pairs(examples)] == [("a", "b"), ("a", "c"), ("b", "a"), ("b", "d"),
                                                              ("e", "f"), ("c", "a")]


def test_the_held_out_split_depends_on_the_seed(relations):
    positives, known, vectors = relations
    first = heldout_split(positives, vectors, known, 0.2, 100, 50, seed=0)
    second = heldout_split(positives, vectors, known, 0.2, 100, 50, seed=1)
    assert first.heldout_words != second.heldout_words
    with pytest.raises(InputError, match="held-out fraction"):
        heldout_split(positives, vectors, known, 1.5)


def test_path_similarity_matches_nltks_for_nouns(wordnet_dir):
    from kbench.kg.wordnet import load_wordnet

    hierarchy = noun_hierarchy(str(Path(wordnet_dir).parents[2]))
    wordnet = load_wordnet(str(Path(wordnet_dir).parents[2]))
    for a, b in [("dog", "cat"), ("car", "automobile"), ("dog", "car"), ("violin", "guitar"), ("wine", "philosophy")]:
        nltk = max(x.path_similarity(y) or 0.0 for x in wordnet.synsets(a, "n") for y in wordnet.synsets(b, "n"))
        assert hierarchy.path_similarity(a, b) == pytest.approx(nltk)
    assert hierarchy.path_similarity("dog", "zyzzyvax") == 0.0


def test_documents_are_a_gloss_then_its_examples(wordnet_dir):
    documents = wordnet_documents(wordnet_dir)
    assert all(len(doc) >= 2 for doc in documents)
    assert any(doc[0].startswith("a member of the genus Canis") and "the dog barked all night" in doc
               for doc in documents)


# --- NSP pairs (BertForPreTraining's task) ---

@pytest.fixture(scope="module")
def libert():
    return pretrainer("tiny", "libert", PAIRS, seed=0)


@pytest.fixture(scope="module")
def corpus(libert):
    return document_corpus(DOCUMENTS, libert.tokenizer, max_length=32)


def test_document_corpus_pairs_each_segment_with_the_next(corpus, libert):
    tokenizer = libert.tokenizer
    first = corpus.sentences[0]
    assert first.text == DOCUMENTS[0][0]
    assert tokenizer.decode(first.next_ids) == DOCUMENTS[0][1]
    assert len(corpus) == sum(len(doc) - 1 for doc in DOCUMENTS)          # every segment but a document's last


def test_nsp_pairs_are_cls_a_sep_b_sep_with_segments_and_half_true_next(libert, corpus):
    collate = libert.collate
    state = collate.get_state()
    labels, tokenizer = [], libert.tokenizer
    for _ in range(60):
        batch = collate(corpus.sentences[:16])
        labels.extend(batch["pair_label"].tolist())
        for row in range(16):
            length = int(batch["attention_mask"][row].sum())
            types = batch["token_type_ids"][row][:length]
            targets = batch["labels"][row][:length]
            original = torch.where(targets != IGNORE, targets, batch["input_ids"][row][:length])
            seps = (original == tokenizer.sep_token_id).nonzero().flatten().tolist()
            assert original[0] == tokenizer.cls_token_id and len(seps) == 2 and seps[1] == length - 1
            assert types[:seps[0] + 1].eq(0).all() and types[seps[0] + 1:].eq(1).all()
            assert targets[[0, *seps]].eq(IGNORE).all()                     # [CLS]/[SEP] never predicted
            segment_b = original[seps[0] + 1:seps[1]].numpy()
            true_next = corpus.sentences[row].next_ids[:len(segment_b)]
            if batch["pair_label"][row] == NEXT:
                assert np.array_equal(segment_b, true_next)
    collate.set_state(state)
    share = np.mean(np.asarray(labels) == NEXT)
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / len(labels))            # binomial bounds around BERT's 50%


def test_random_next_segments_come_from_other_documents(libert, corpus):
    collate = libert.collate
    state = collate.get_state()
    sentences = corpus.sentences[:5]              # five segments of four documents: the first two share one
    assert sentences[0].document == sentences[1].document != sentences[2].document
    same_document = {row: {bytes(s.next_ids) for s in sentences if s.document == sentences[row].document}
                     for row in range(5)}
    randoms = 0
    for _ in range(40):
        batch = collate(sentences)
        for row in range(5):
            if batch["pair_label"][row] == RANDOM_NEXT:
                randoms += 1
                length = int(batch["attention_mask"][row].sum())
                original = torch.where(batch["labels"][row] != IGNORE, batch["labels"][row], batch["input_ids"][row])
                seps = (original[:length] == libert.tokenizer.sep_token_id).nonzero().flatten().tolist()
                segment_b = original[seps[0] + 1:seps[1]].numpy()
                assert not any(np.array_equal(segment_b, np.frombuffer(b, np.int64)[:len(segment_b)])
                               for b in same_document[row])
    collate.set_state(state)
    assert randoms > 50


def test_mlm_masks_about_15_percent_of_the_pair_tokens(libert, corpus):
    collate = libert.collate
    state = collate.get_state()
    masked = total = 0
    for _ in range(40):
        batch = collate(corpus.sentences[:16])
        masked += int((batch["labels"] != IGNORE).sum())
        total += int(batch["attention_mask"].sum()) - 3 * 16
    collate.set_state(state)
    assert abs(masked / total - 0.15) < 4 * np.sqrt(0.15 * 0.85 / total)


def test_a_plain_sentence_is_cut_at_a_word_boundary(libert):
    built = build_corpus(["the quick brown fox jumps over the lazy dog"], libert.tokenizer, ("word",))
    sentence = built.sentences[0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        first, second = split_segments(sentence, rng)
        assert len(first) and len(second)
        assert np.array_equal(np.concatenate([first, second]), sentence.ids[1:-1])
        assert not libert.tokenizer.convert_ids_to_tokens([int(second[0])])[0].startswith("##")
    assert split_segments(Sentence("fox", np.asarray([101, 4419, 102]), {"word": [(1, 2)]}), rng)[1] is None


def test_truncate_pair_cuts_the_longer_segment_first():
    first, second = truncate_pair(np.arange(10), np.arange(100, 104), 8)
    assert list(first) == [0, 1, 2, 3] and list(second) == [100, 101, 102, 103]


def test_nsp_head_equals_bert_for_pretraining(libert, corpus):
    """Our pooler + seq_relationship are BertForPreTraining's: load them into one and get the same logits."""
    from transformers import BertForPreTraining

    reference = BertForPreTraining(libert.lm.config)
    reference.bert.embeddings.load_state_dict(libert.bert.embeddings.state_dict())
    reference.bert.encoder.load_state_dict(libert.bert.encoder.state_dict())
    reference.bert.pooler.load_state_dict(libert.pooler.state_dict())
    reference.cls.seq_relationship.load_state_dict(libert.seq_relationship.state_dict())
    reference.cls.predictions.load_state_dict(libert.lm.cls.predictions.state_dict(), strict=False)
    batch = libert.collate(corpus.sentences[:4])
    libert.eval(), reference.eval()
    with torch.no_grad():
        ours = libert(batch["input_ids"], batch["attention_mask"], token_type_ids=batch["token_type_ids"])
        theirs = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           token_type_ids=batch["token_type_ids"])
    libert.train()
    assert torch.allclose(ours["pair_logits"], theirs.seq_relationship_logits, atol=1e-5)
    assert torch.allclose(ours["logits"], theirs.prediction_logits, atol=1e-4)


# --- the objective: losses, shared pooled output, equal budgets ---

def test_loss_is_the_sum_of_mlm_nsp_and_lrc(libert, corpus):
    batch = libert.collate(corpus.sentences[:8])
    libert.eval()
    with torch.no_grad():
        out = libert(**batch)
        mlm = torch.nn.functional.cross_entropy(out["logits"], batch["labels"][batch["labels"] != IGNORE])
        nsp = torch.nn.functional.cross_entropy(out["pair_logits"], batch["pair_label"])
        lrc = torch.nn.functional.cross_entropy(out["lrc_logits"], batch["lrc_labels"])
    libert.train()
    assert torch.allclose(out["loss"], mlm + nsp + lrc, atol=1e-5)
    assert batch["lrc_input_ids"].shape[0] == 8                           # an LRC batch of the text batch's size


def test_lrc_reads_the_pooled_output_shared_with_nsp(libert, corpus):
    batch = libert.collate(corpus.sentences[:8])
    libert.zero_grad()
    out = libert(**{k: v for k, v in batch.items() if not k.startswith("lrc_")}, lrc_input_ids=batch["lrc_input_ids"],
                 lrc_attention_mask=batch["lrc_attention_mask"], lrc_token_type_ids=batch["lrc_token_type_ids"])
    out["lrc_logits"].sum().backward()
    assert libert.pooler.dense.weight.grad.abs().sum() > 0                # through NSP's pooler ...
    assert libert.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0   # ... into the encoder
    assert libert.seq_relationship.weight.grad is None or libert.seq_relationship.weight.grad.abs().sum() == 0
    libert.zero_grad()


def test_both_variants_start_equal_and_see_the_same_text(corpus):
    bert, libert = pretrainer("tiny", "bert", seed=3), pretrainer("tiny", "libert", PAIRS, seed=3)
    assert isinstance(bert, BertPretrainer) and not isinstance(bert, LIBERT) and isinstance(libert, LIBERT)
    for name, value in bert.state_dict().items():
        assert torch.equal(value, libert.state_dict()[name]), name          # encoder, MLM head, pooler, NSP head
    assert set(libert.state_dict()) - set(bert.state_dict()) == {"lrc_classifier.weight", "lrc_classifier.bias"}
    assert torch.count_nonzero(libert.lrc_classifier.bias) == 0 and libert.lrc_classifier.weight.std() < 0.03
    for _ in range(3):
        a, b = bert.collate(corpus.sentences[:8]), libert.collate(corpus.sentences[:8])
        assert all(torch.equal(a[k], b[k]) for k in a) and set(b) - set(a) == {
            "lrc_input_ids", "lrc_attention_mask", "lrc_token_type_ids", "lrc_labels"}


def test_lrc_batches_are_binary_pairs_cycled_through_every_example(libert):
    examples = LRCExamples(PAIRS[:4], libert.tokenizer, seed=0)
    seen = []
    for _ in range(4):
        batch = examples.batch(2, libert.tokenizer.pad_token_id)
        seen.extend(libert.tokenizer.decode(row[mask == 1][1:-1]) for row, mask in
                    zip(batch["input_ids"], batch["attention_mask"]))
        for row, types, mask in zip(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]):
            seps = (row[mask == 1] == libert.tokenizer.sep_token_id).nonzero().flatten().tolist()
            assert len(seps) == 2 and seps[1] == int(mask.sum()) - 1
            assert types[:seps[0] + 1].eq(0).all()                          # [CLS] w1 [SEP]
            assert types[seps[0] + 1:seps[1] + 1].eq(1).all()               # w2 [SEP]
    assert sorted(seen[:4]) == sorted(seen[4:]) == sorted(f"{p.w1} [SEP] {p.w2}" for p in PAIRS[:4])


# --- the knowledge reaches the output; direction survives ---

def test_the_word_pair_reaches_the_lrc_output(libert):
    pairs = [LexicalPair("car", "automobile", "", 1), LexicalPair("car", "road", "", 0)]
    p = lrc_probabilities(libert, pairs)
    assert p[0] != p[1]


def test_the_lrc_forward_leaves_the_text_dropout_to_bert(libert, corpus):
    """LRC's dropout draws under fork_rng: after a LIBERT step the global random state is where BERT's would be."""
    batch = libert.collate(corpus.sentences[:8])
    text = {k: v for k, v in batch.items() if not k.startswith("lrc_")}
    libert.train()
    torch.manual_seed(11)
    libert(**text)
    after_text = torch.get_rng_state()
    torch.manual_seed(11)
    out = libert(**batch)
    assert "lrc_loss" in out and torch.equal(torch.get_rng_state(), after_text)


def test_lrc_training_learns_the_pairs_it_is_shown(corpus):
    from kbench.pretrain import pretrain
    from kbench.train import TrainConfig

    model = pretrainer("tiny", "libert", PAIRS, seed=0)
    truth = [p.label for p in PAIRS[:4]]
    before = lrc_probabilities(model, PAIRS[:4])
    pretrain(model, corpus, TrainConfig(batch_size=8, learning_rate=3e-3, warmup=0.0, max_steps=40, seed=0,
                                        device="cpu", precision="no", progress=False))
    after = lrc_probabilities(model, PAIRS[:4])
    gap = lambda p: p[np.asarray(truth) == 1].mean() - p[np.asarray(truth) == 0].mean()
    assert gap(after) > gap(before) + 0.2


def test_a_trained_head_keeps_the_direction_of_a_pair(corpus):
    """Direction survives: taught (dog, canine) as related and (canine, dog) as not, the trained head tells the two
    orders apart; nothing but the segment order and ids distinguishes them."""
    from kbench.pretrain import pretrain
    from kbench.train import TrainConfig

    directed = [LexicalPair("dog", "canine", "hypernym", 1), LexicalPair("canine", "dog", "", 0),
                LexicalPair("car", "vehicle", "hypernym", 1), LexicalPair("vehicle", "car", "", 0)] * 4
    model = pretrainer("tiny", "libert", directed, seed=0)
    pretrain(model, corpus, TrainConfig(batch_size=8, learning_rate=3e-3, warmup=0.0, max_steps=40, seed=0,
                                        device="cpu", precision="no", progress=False))
    p = lrc_probabilities(model, directed[:4])
    assert p[0] > p[1] + 0.2 and p[2] > p[3] + 0.2


# --- evaluation and bad input ---

def test_relation_probe_and_word_similarity_need_usable_data(libert):
    with pytest.raises(InputError, match="both labels"):
        relation_probe(libert, PAIRS[:1] * 4, PAIRS)
    with pytest.raises(InputError, match="at least 3 pairs"):
        word_similarity(libert, [("car", "automobile")], [1.0])


def test_surface_features_and_the_single_word_subset():
    pairs = [LexicalPair("birch tree", "tree", "hypernym", 1), LexicalPair("dog", "canine", "hypernym", 1),
             LexicalPair("dog", "cat", "", 0), LexicalPair("oak", "tree", "", 0)]
    features = surface_features(pairs)
    assert features[:, 0].tolist() == [1, 0, 0, 0] and features[:, 1].tolist() == [2, 1, 1, 1]
    assert features[:, 3].tolist() == [1, 0, 0, 1]                       # w1 < w2 alphabetically
    auc, count = subset_auc(pairs, [0.0, 0.9, 0.1, 0.5])
    assert count == 3 and auc == 1.0                                     # the multi-word pair is left out
    probe = surface_probe(pairs * 5, pairs)
    assert probe.auc > 0.5 and len(probe.scores) == 4
    with pytest.raises(InputError, match="both labels"):
        subset_auc(pairs, [0.1] * 4, keep=lambda p: p.label == 1)
    with pytest.raises(InputError, match="no word pairs"):
        surface_features([])


def test_the_view_shows_true_pairs_only(libert, relations):
    _, known, vectors = relations
    rows = pair_view_rows(libert, "dog", "canine", ["cat", "wolf", "car", "fox"], vectors, known)
    assert rows[0]["kind"] == "true pair" and len(rows) == 4
    with pytest.raises(InputError, match="not a WordNet synonym or hyponym-hypernym pair"):
        pair_view_rows(libert, "violin", "instrument", ["cat"], vectors, known)


def test_bad_input_is_named(libert):
    with pytest.raises(InputError, match="no word pairs"):
        pair_features(libert, [])
    with pytest.raises(InputError, match="no word pairs"):
        lrc_probabilities(libert, [])
    with pytest.raises(InputError, match="no LRC task"):
        pretrainer("tiny", "bert", PAIRS)
    assert LRC_MAX_LENGTH == 24
    with pytest.raises(InputError, match="unknown objective 'mlm'"):
        pretrainer("tiny", "mlm")
    with pytest.raises(InputError, match="needs LRC word pairs"):
        pretrainer("tiny", "libert")
    with pytest.raises(InputError, match="binary"):
        pretrainer("tiny", "libert", [LexicalPair("car", "auto", "synonym", 2)])
    with pytest.raises(InputError, match="at least two non-blank texts"):
        document_corpus([("only one",)], embedded_tokenizer())
    with pytest.raises(InputError, match="at least 2 pairs"):
        smart_negatives(PAIRS, embedded_vectors(), set(), batch_size=1)
    assert NEGATIVE_BATCH == 32


def test_a_batch_of_one_cannot_draw_a_random_next(libert, corpus):
    with pytest.raises(InputError, match="batches of 2"):
        libert.collate(corpus.sentences[:1])


def embedded_tokenizer():
    from kbench.encoders import load_tokenizer

    return load_tokenizer("tiny")


def test_kbench_pretrain_objective_libert(tmp_path, monkeypatch):
    """The ``kbench pretrain`` path: a plain one-text-per-line corpus, split at a word boundary for NSP."""
    from kbench.pretrain import run_pretraining

    lines = [f"the {a} {b} sat near the {c} today" for a in ("small", "big", "red", "old")
             for b in ("cat", "dog", "car", "boat") for c in ("house", "river", "road")]
    (tmp_path / "corpus.txt").write_text("\n".join(lines))
    monkeypatch.setattr("kbench.models.libert.training_pairs", lambda data_dir=None, seed=0: PAIRS)
    summary = run_pretraining(str(tmp_path / "corpus.txt"), "tiny", "libert", steps=3, out=str(tmp_path / "out"),
                              batch_size=8, progress=False, device="cpu", precision="no")
    assert summary["steps"] == 3 and (tmp_path / "out" / "config.json").is_file()


def test_the_smoke_profile_keeps_held_out_words_out_of_lrc_and_probe_training():
    from kbench.profiles.libert import CHOICES, setup

    assert set(CHOICES["smoke"]) == set(CHOICES["full"])
    s = setup("smoke", seed=0)
    split = s.relations
    probe_words = {w for p in s.probe_train for term in (p.w1, p.w2) for w in term.split()}
    assert not (split.vocabulary("train") | probe_words) & split.heldout_words
    assert split.vocabulary("test") <= split.heldout_words
    assert sum(p.label for p in split.train) == CHOICES["smoke"]["lrc_positives"]
    # LRC's pool is large enough that no example is drawn twice in the run
    assert len(split.train) >= CHOICES["smoke"]["steps"] * CHOICES["smoke"]["batch_size"]
    assert s.view_pairs and all((a, b) in {(p.w1, p.w2) for p in split.test if p.label} for a, b in s.view_pairs)
    assert not {(p.w1, p.w2) for p in split.train} & {(p.w1, p.w2) for p in s.probe_train}
    assert {p.label for p in s.probe_train} == {0, 1} and len(s.documents) == CHOICES["smoke"]["documents"]
    pairs, gold = s.similarity
    assert len(pairs) == len(gold) and all(a in split.heldout_words and b in split.heldout_words for a, b in pairs)
    train_texts = set(s.splits[0][0])
    assert not train_texts & set(s.splits[2][0]) and not train_texts & set(s.splits[1][0])
    # held-out words are words the pretraining documents hold at least MIN_OCCURRENCES times (the old split drew
    # from every word of the pairs: 1,107 of 2,760 held-out words occurred at all, median 1)
    from kbench.profiles.libert import MIN_OCCURRENCES

    assert all(s.word_counts.get(w, 0) >= MIN_OCCURRENCES for w in split.heldout_words)
    cover = s.coverage()
    assert cover["fewest"] >= MIN_OCCURRENCES and cover["test_words_rare"] == 0 and cover["held_out"] > 100


def test_word_counts_and_the_eligible_held_out_words(relations):
    from kbench.data.lexical_relations import word_counts

    counts = word_counts([["The dog barked.", "A dog, a DOG!"], ["dog-sled racing"]])
    assert counts["dog"] == 4 and counts["the"] == 1 and counts["sled"] == 1 and "dog-sled" not in counts
    positives, known, vectors = relations
    allowed = {w for p in positives[:3000] for term in (p.w1, p.w2) for w in term.split()}
    allowed = set(sorted(allowed)[::3])
    split = heldout_split(positives, vectors, known, 0.5, 100, 20, seed=0, eligible=allowed)
    assert split.heldout_words and split.heldout_words <= allowed
    every = heldout_split(positives, vectors, known, 0.5, 100, 20, seed=0)
    assert not every.heldout_words <= allowed                   # without the filter, rare words are held out too
    with pytest.raises(InputError, match="eligible"):
        heldout_split(positives, vectors, known, 0.5, eligible=set())


def test_the_positive_control_pool_is_taught_and_split_by_positive(split):
    from kbench.models.libert import TAUGHT_POSITIVES, taught_pool

    pool, first, second = taught_pool(split.train, seed=0)
    assert sum(p.label for p in pool) == TAUGHT_POSITIVES and pool == first + second
    assert set((p.w1, p.w2) for p in pool) <= set((p.w1, p.w2) for p in split.train)
    # a positive and its negatives stay on one side: no pair of the second half repeats one of the first
    assert not {(p.w1, p.w2) for p in first} & {(p.w1, p.w2) for p in second}
    assert {p.label for p in first} == {p.label for p in second} == {0, 1}
    assert taught_pool(split.train, seed=1)[0] != pool


def test_topic_baselines_by_hand():
    from kbench.metrics import majority_accuracy
    from kbench.models.libert import bag_of_words_probe

    splits = ((["a b", "c d", "a a"], [0, 1, 0]), (["a", "d"], [0, 1]), (["c", "a", "b"], [1, 1, 0]))
    assert majority_accuracy(splits[0][1], splits[2][1]) == pytest.approx(1 / 3)   # always 0: right once in three
    words = [f"sport{i} goal" for i in range(20)] + [f"market{i} shares" for i in range(20)]
    labels = [0] * 20 + [1] * 20
    text = ((words[::2], labels[::2]), (words[1::4], labels[1::4]), (words[3::4], labels[3::4]))
    assert bag_of_words_probe(text) == 1.0                            # the topic words give it away
