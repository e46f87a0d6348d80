"""SciBERT: SciVocab and BaseVocab of one size, their overlap and fragmentation, one init, no held-out text."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.encoders import load_tokenizer
from kbench.errors import InputError
from kbench.models.scibert import (DomainClassifier, base_vocabulary, build_scivocab,
                                   fragmented_words, general_pieces, macro_f1, matched_vocabularies, shared_pieces,
                                   vocabulary_report, write_vocab)
from kbench.text.vocabulary import SPECIALS, pieces_per_word, tokens_of, vocabulary_overlap

SCIENCE = ["photosynthesis converts light into chemical energy in chloroplasts",
           "chloroplasts hold chlorophyll and photosynthesis needs chlorophyll",
           "electrons orbit the nucleus of atoms ; isotopes differ in neutrons",
           "an enzyme catalyses the hydrolysis of proteins into amino acids"] * 10
HELD_OUT = ["chlorophyll in chloroplasts converts light", "isotopes of atoms hold electrons"]


@pytest.fixture(scope="module")
def pair():
    return matched_vocabularies(SCIENCE, 300)


def test_the_two_vocabularies_have_the_same_size_and_the_specials_first(pair):
    base, sci = pair
    assert len(base) == len(sci) <= 300
    for tokenizer in pair:
        vocab = tokenizer.get_vocab()
        assert [vocab[t] for t in SPECIALS] == [0, 1, 2, 3, 4]


def test_the_cut_base_vocabulary_is_berts_first_pieces_and_spells_the_domain(pair):
    base, _ = pair
    mine = tokens_of(base)
    assert mine <= set(general_pieces())                                   # only BERT's own pieces
    words = [p for p in general_pieces() if len(p.removeprefix("##")) > 1 and p not in SPECIALS][:40]
    assert set(words) <= mine                                              # its most frequent: the, of, and ...
    assert "the" in mine and "of" in mine
    assert not any(len(p) == 1 and not p.isascii() for p in mine)          # no CJK or other foreign characters
    assert pieces_per_word(base, SCIENCE)["unknown_share"] == 0.0          # every domain word spelled
    assert len(base_vocabulary()) == 30522                                 # whole: BERT's uncased vocabulary


def test_scivocab_cuts_held_out_domain_words_less_than_basevocab_of_the_same_size(pair):
    base, sci = pair
    assert sci.tokenize("chloroplasts") == ["chloroplasts"]
    assert len(base.tokenize("chloroplasts")) > 1
    cut_base, cut_sci = pieces_per_word(base, HELD_OUT), pieces_per_word(sci, HELD_OUT)
    assert cut_sci["pieces_per_word"] < cut_base["pieces_per_word"]
    assert cut_sci["split_share"] < cut_base["split_share"]
    whole = fragmented_words(base, sci, HELD_OUT, k=3)
    assert whole and all(len(b) > 1 and c == [w] for w, _, b, c in whole)
    assert [w for w, *_ in whole][0] in {"chlorophyll", "chloroplasts", "isotopes", "electrons", "converts"}


def test_the_whole_base_vocabulary_cuts_less_than_its_cut(pair):
    base, _ = pair
    whole = pieces_per_word(base_vocabulary(), HELD_OUT)["pieces_per_word"]
    assert whole < pieces_per_word(base, HELD_OUT)["pieces_per_word"]


def test_overlap_of_hand_made_vocabularies_is_their_known_share():
    from kbench.models.scibert import _bert_tokenizer

    first = _bert_tokenizer(list(SPECIALS) + ["a", "b", "cd", "##ef"])
    second = _bert_tokenizer(list(SPECIALS) + ["a", "b", "xy", "##zz"])
    third = _bert_tokenizer(list(SPECIALS) + ["a", "xy", "##zz", "q", "r", "s", "t", "u"])
    assert shared_pieces(first, second) == {"a", "b"}
    assert vocabulary_overlap(first, second) == vocabulary_overlap(second, first) == 0.5
    assert vocabulary_overlap(second, third) == 0.75 and vocabulary_overlap(third, second) == 3 / 8   # unequal sizes
    rows = vocabulary_report({"first": first, "second": second, "third": third}, HELD_OUT, reference="second")
    assert [r["overlap"] for r in rows] == [0.5, 1.0, 0.75]
    assert [r["size"] for r in rows] == [9, 9, 13]


def test_overlap_of_the_matched_pair_is_partial(pair):
    base, sci = pair
    assert 0 < len(shared_pieces(base, sci)) < len(tokens_of(sci))


def test_bad_vocabulary_sizes_are_named_errors():
    with pytest.raises(InputError, match="no room beside the 5 special tokens"):
        build_scivocab(SCIENCE, 5)
    with pytest.raises(InputError, match="no room beside the 5 special tokens and the"):
        base_vocabulary(20, spell=SCIENCE)                 # the text's alphabet alone needs more
    with pytest.raises(InputError, match="domain corpus is empty"):
        matched_vocabularies(["", " "], 300)
    with pytest.raises(InputError, match="unknown reference"):
        vocabulary_report({"a": base_vocabulary(100, spell=["ab"])}, HELD_OUT, reference="b")


@settings(max_examples=15, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=12), min_size=1, max_size=8),
       st.integers(min_value=120, max_value=3000))
def test_a_cut_base_vocabulary_has_exactly_its_size_and_spells_its_text(words, size):
    text = " ".join(words)
    base = base_vocabulary(size, spell=[text])
    assert len(base) == size == len(set(base.get_vocab()))
    assert pieces_per_word(base, [text])["unknown_share"] == 0.0


def test_the_vocab_file_reads_back_as_the_same_tokenizer(pair, tmp_path):
    for tokenizer in pair:
        path = write_vocab(tokenizer, tmp_path)
        again = load_tokenizer("tiny", str(path))
        assert again.get_vocab() == tokenizer.get_vocab()
        for text in [*HELD_OUT, "Chlorophyll, Électrons and 42 ATOMS!"]:
            assert again(text)["input_ids"] == tokenizer(text)["input_ids"]
        assert write_vocab(tokenizer, tmp_path) == path                     # named by content: written once


def test_both_vocabularies_start_from_the_same_weights(pair, tmp_path):
    from kbench.pretrain import mlm_model

    files = [str(write_vocab(t, tmp_path)) for t in pair]
    first, second = (mlm_model("tiny", vocab=f, seed=3).lm.state_dict() for f in files)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = mlm_model("tiny", vocab=files[1], seed=4).lm.state_dict()      # a different seed: a different init
    key = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(other[key], first[key])


def test_pretraining_refuses_held_out_text(pair, tmp_path):
    from kbench.pretrain import continue_pretraining
    from kbench.train import TrainConfig

    path = str(write_vocab(pair[1], tmp_path))
    config = TrainConfig(batch_size=4, max_steps=1, progress=False, device="cpu", precision="no")
    with pytest.raises(InputError, match="excluded"):
        continue_pretraining("tiny", SCIENCE, config, tmp_path / "out", vocab=path,
                             exclude=["Chloroplasts hold  chlorophyll and photosynthesis needs chlorophyll"])


def test_the_smoke_domain_text_holds_no_dev_or_test_text():
    from kbench.profiles.scibert import setup
    from kbench.text.vocabulary import text_key

    s = setup("smoke", per_class=20, seed=1)
    task = s.tasks["gloss"]
    held = {text_key(t) for part in task.splits[1:] for t in part[0]}
    assert held and held == {text_key(t) for t in s.held_out}
    assert not held & {text_key(t) for t in s.domain_texts}
    assert {text_key(t) for t in task.splits[0][0]} & {text_key(t) for t in s.domain_texts}   # training text is in
    with pytest.raises(InputError, match="must be a size"):
        setup("smoke", base_model="embedded")


def test_dev_and_test_texts_also_in_training_are_dropped():
    from kbench.data.kbert_datasets import Split
    from kbench.profiles.scibert import unseen

    train = Split(["Heart failure , in the LUNG .", "a gene"], [0, 1])
    dev = Split(["heart failure, in the lung.", "a new text"], [0, 1])
    test = Split([["a", "gene"], ["a", "new", "text"], ["other"]], [["O", "O"], ["O"] * 3, ["O"]])
    (_, kept_dev, kept_test), dropped = unseen((train, dev, test))
    assert kept_dev.texts == ["a new text"] and kept_test.texts == [["other"]] and dropped == 3


def test_macro_f1_is_the_mean_of_every_labels_f1():
    logits = torch.eye(3)[[0, 0, 1, 1]]                                       # predictions 0 0 1 1
    labels = torch.tensor([0, 1, 1, 1])
    # label 0: tp 1, fp 1 -> 2/3; label 1: tp 2, fn 1 -> 4/5; label 2: never gold nor predicted -> 0 (allennlp)
    assert macro_f1(logits, labels) == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    assert macro_f1(torch.eye(2)[[0, 1]], torch.tensor([0, 1])) == 1.0
    model = DomainClassifier(3, base_model="tiny", max_length=16, joiner=" ")
    assert list(model.metrics()) == ["macro_f1", "accuracy"]
    assert np.isclose(model.metrics()["accuracy"](logits, labels), 0.75)



def test_scivocab_ids_follow_one_order_specials_then_sorted(pair):
    # the trainer's own ids follow a per-process hash order: a seeded model would give a piece a different row
    # in every run; sorted, the same pieces always get the same ids
    vocab = pair[1].get_vocab()
    order = sorted(vocab, key=vocab.get)
    assert order[:5] == list(SPECIALS) and order[5:] == sorted(order[5:])


def test_berts_whole_vocabulary_cuts_the_first_cells_example_words():
    bert = base_vocabulary()
    assert bert.tokenize("chloroplast") == ["ch", "##lor", "##op", "##las", "##t"]
    assert bert.tokenize("hydrolysis") == ["hydro", "##lysis"]
    assert bert.tokenize("electrons") == ["electrons"]                 # kept whole: not an example of a cut word
    vocab = bert.get_vocab()
    assert (vocab["the"], vocab["##s"]) == (1996, 2015)
    words = [p for p in general_pieces() if p not in SPECIALS and vocab[p] >= 1996]
    assert words[:3] == ["the", "of", "and"] and words.index("##s") == 19   # the 20th piece after the characters


def test_fine_tuning_reads_the_pretrained_checkpoint_and_its_vocabulary(pair, tmp_path):
    from kbench.pretrain import continue_pretraining
    from kbench.train import TrainConfig

    path = str(write_vocab(pair[1], tmp_path))
    config = TrainConfig(batch_size=4, max_steps=1, progress=False, device="cpu", precision="no", seed=0)
    checkpoint, _ = continue_pretraining("tiny", SCIENCE, config, tmp_path / "ckpt", vocab=path, max_length=16)
    from transformers import BertForMaskedLM

    saved = BertForMaskedLM.from_pretrained(str(checkpoint)).bert.embeddings.word_embeddings.weight
    tuned = DomainClassifier(2, base_model=str(checkpoint), max_length=16, joiner=" ", seed=0)
    fresh = DomainClassifier(2, base_model="tiny", vocab=path, max_length=16, joiner=" ", seed=0)
    assert torch.equal(tuned.bert.embeddings.word_embeddings.weight.detach(), saved.detach())
    assert not torch.equal(fresh.bert.embeddings.word_embeddings.weight.detach(), saved.detach())
    assert tuned.tokenizer.get_vocab() == pair[1].get_vocab()


def test_the_cosine_probe_reads_cls_or_mean_and_names_a_bad_pooling(pair, tmp_path):
    from kbench.models.scibert import mean_cosine, sentence_cosine

    path = str(write_vocab(pair[1], tmp_path))
    cls = sentence_cosine("tiny", HELD_OUT + SCIENCE[:4], vocab=path, seed=1, max_length=16)
    mean = sentence_cosine("tiny", HELD_OUT + SCIENCE[:4], vocab=path, seed=1, max_length=16, pooling="mean")
    assert -1 <= cls <= 1 and -1 <= mean <= 1 and cls != pytest.approx(mean)
    assert mean_cosine([[1, 0], [1, 0], [0, 1]]) == pytest.approx(1 / 3)
    with pytest.raises(InputError, match="unknown pooling"):
        sentence_cosine("tiny", HELD_OUT, vocab=path, pooling="max")


def test_the_frozen_probe_reads_a_separable_task_and_names_a_bad_pooling(pair, tmp_path):
    """Two kinds of sentence, each with its own words: a probe on frozen (even random) features separates them; it
    scores the same test texts the same way every call."""
    from kbench.models.scibert import frozen_probe

    path = str(write_vocab(pair[1], tmp_path))
    a = ["photosynthesis in chloroplasts", "chlorophyll converts light", "chloroplasts hold chlorophyll"] * 4
    b = ["isotopes differ in neutrons", "electrons orbit the nucleus", "atoms hold electrons"] * 4
    train = (a[:9] + b[:9], [0] * 9 + [1] * 9)
    test = (a[9:] + b[9:], [0] * 3 + [1] * 3)
    score = frozen_probe("tiny", train, test, vocab=path, seed=0, max_length=16)
    assert score == 1.0 == frozen_probe("tiny", train, test, vocab=path, seed=0, max_length=16, pooling="cls")
    flipped = frozen_probe("tiny", train, (test[0], [1 - y for y in test[1]]), vocab=path, seed=0, max_length=16)
    assert flipped == 0.0
    with pytest.raises(InputError, match="unknown pooling"):
        frozen_probe("tiny", train, test, vocab=path, pooling="max")
