"""Domain vocabularies (SciBERT, Don't Stop Pretraining) and the scientific datasets they are built on."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbench.data.corpora import pretraining_text
from kbench.data.scientific import domain_sentences, load_scientific, plain_text
from kbench.errors import DataError, InputError, UnknownNameError
from kbench.text.vocabulary import (SPECIALS, domain_overlap, pieces_per_word, tokens_of, top_words, train_wordpiece,
                                    vocabulary_overlap, words_of)

GENERAL = ["the cat sat on the mat while the dog ran in the park",
           "people walk to the market and buy bread and milk every morning",
           "a photo album, a thesis on music synthesis and a lab for chemistry"] * 20
SCIENCE = ["photosynthesis converts light into chemical energy in chloroplasts",
           "chloroplasts hold chlorophyll and photosynthesis needs chlorophyll"] * 20


@pytest.fixture(scope="module")
def vocabularies():
    return train_wordpiece(GENERAL, 120), train_wordpiece(SCIENCE, 120)


def test_specials_come_first_and_the_size_is_a_ceiling(vocabularies):
    general, _ = vocabularies
    vocab = general.get_vocab()
    assert [vocab[token] for token in SPECIALS] == [0, 1, 2, 3, 4]
    assert len(vocab) <= 120
    assert general("the cat")["input_ids"][0] == vocab["[CLS]"]


def test_a_domain_vocabulary_keeps_its_frequent_words_whole(vocabularies):
    general, science = vocabularies
    assert science.tokenize("photosynthesis") == ["photosynthesis"]
    assert len(general.tokenize("photosynthesis")) > 1
    held_out = ["chlorophyll in chloroplasts converts light"]
    assert pieces_per_word(science, held_out)["pieces_per_word"] == 1.0
    cut = pieces_per_word(general, held_out)
    assert cut["pieces_per_word"] > 2 and cut["split_share"] > 0.5 and cut["words"] == 5
    assert cut["unknown_share"] == 0.0
    assert pieces_per_word(general, ["zzz qqq"])["unknown_share"] == 1.0     # no piece for z or q: [UNK], not "whole"


def test_overlap_is_the_share_of_the_first_vocabulary_in_the_second(vocabularies):
    general, science = vocabularies
    assert vocabulary_overlap(general, general) == 1.0
    shared = tokens_of(general) & tokens_of(science)
    assert vocabulary_overlap(general, science) == pytest.approx(len(shared) / len(tokens_of(general)))
    assert vocabulary_overlap(science, general) == pytest.approx(len(shared) / len(tokens_of(science)))
    assert 0 < len(shared) < min(len(tokens_of(general)), len(tokens_of(science)))   # letters shared, words not
    assert not set(SPECIALS) & tokens_of(general)


def test_bad_vocabulary_input_is_named():
    with pytest.raises(InputError, match="no room beside the 5 special tokens"):
        train_wordpiece(SCIENCE, 5)
    with pytest.raises(InputError, match="domain corpus is empty"):
        train_wordpiece(["", "   "], 100)
    with pytest.raises(InputError, match="held-out text is empty"):
        pieces_per_word(train_wordpiece(SCIENCE, 60), [])
    with pytest.raises(InputError, match="at least two domains"):
        domain_overlap({"science": SCIENCE})
    with pytest.raises(InputError, match="k must be"):
        top_words(SCIENCE, 0)


def test_top_words_count_words_and_skip_stopwords():
    texts = ["the cell divides", "the cell grows, the cell dies", "a gene"]
    assert top_words(texts, 2, stopwords={"the", "a"}) == ["cell", "divides"]
    assert "the" not in top_words(texts, 10)                              # spaCy's list by default
    assert words_of("GPT-2's loss, 3.5%") == ["GPT", "-", "2", "'", "s", "loss", ",", "3", ".", "5", "%"]


def test_domain_overlap_matrix():
    domains = {"a": ["alpha beta gamma"], "b": ["alpha beta delta"], "c": ["omega"]}
    names, matrix = domain_overlap(domains, k=3, stopwords=())
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(matrix, [[1, 2 / 3, 0], [2 / 3, 1, 0], [0, 0, 1]])


@given(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "the", "of"]), min_size=1, max_size=30),
       st.lists(st.sampled_from(["alpha", "beta", "kappa", "sigma", "the"]), min_size=1, max_size=30))
def test_domain_overlap_is_symmetric_with_unit_diagonal(left, right):
    if set(left) <= {"the"} or set(right) <= {"the"}:
        with pytest.raises(InputError, match="no words besides stopwords"):
            domain_overlap({"l": [" ".join(left)], "r": [" ".join(right)]}, k=3, stopwords=("the",))
        return
    names, matrix = domain_overlap({"l": [" ".join(left)], "r": [" ".join(right)]}, k=3, stopwords=("the",))
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert ((0 <= matrix) & (matrix <= 1)).all()


def test_scientific_loaders_read_the_mirror(tmp_path, mirror):
    from kbench.data import fetch

    fetch("scibert", tmp_path, mirror, progress=False)
    intent = load_scientific("citation_intent", "train", tmp_path)
    assert len(intent.texts) == 1688 and set(intent.labels) == {"Background", "CompareOrContrast", "Extends",
                                                                "Future", "Motivation", "Uses"}
    sciie = load_scientific("sciie", "dev", tmp_path)
    assert "[[" in sciie.texts[0] and "COMPARE" in set(sciie.labels) | {"COMPARE"}
    ncbi = load_scientific("ncbi_disease", "train", tmp_path, limit=20)
    assert len(ncbi.texts) == 20 and all(len(t) == len(g) for t, g in zip(ncbi.texts, ncbi.labels))
    assert {tag for tags in ncbi.labels for tag in tags} <= {"O", "B-Disease", "I-Disease"}
    train = domain_sentences(data_dir=tmp_path)
    assert len(train) == len(set(train)) and not any("[[" in t or "<<" in t for t in train)
    held_out = {plain_text(t) for name in ("citation_intent", "sciie", "ncbi_disease") for split in ("dev", "test")
                for t in load_scientific(name, split, tmp_path).texts}
    raw_train = {plain_text(t) for name in ("citation_intent", "sciie", "ncbi_disease")
                 for t in load_scientific(name, "train", tmp_path).texts}
    assert raw_train & held_out                                       # the released splits share some sentences ...
    assert not set(train) & held_out                                  # ... none of which is pretraining text
    corpus = pretraining_text("scientific", data_dir=str(tmp_path))
    assert corpus.texts == train and corpus.language == "en"


def test_scientific_bad_input(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown scientific dataset"):
        load_scientific("pubmed", "train", tmp_path)
    with pytest.raises(UnknownNameError, match="unknown split"):
        load_scientific("sciie", "validation", tmp_path)
    path = tmp_path / "scibert/text_classification/citation_intent/train.txt"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"text": "fine", "label": "Uses"}) + "\n{broken\n")
    with pytest.raises(DataError, match=r"train.txt:2: not a JSON object"):
        load_scientific("citation_intent", "train", tmp_path)
    conll = tmp_path / "scibert/ner/NCBI-disease/train.txt"
    conll.parent.mkdir(parents=True)
    conll.write_text("Cancer NN O B-Disease\nrisk NN O Q\n")
    with pytest.raises(DataError, match=r"train.txt:2: expected 'token ... tag'"):
        load_scientific("ncbi_disease", "train", tmp_path)


def test_plain_text_removes_markers_and_joins_tokens():
    assert plain_text("number in [[ nouns ]] and << reflexive pronouns >> here") == \
        "number in nouns and reflexive pronouns here"
    assert plain_text(["APC2", "is", "a", "gene"]) == "APC2 is a gene"


def test_tokenization_view_frames_words_and_shades_the_cut_ones(vocabularies):
    from kbench.viz.vocabulary import CUT, UNKNOWN, overlap_heatmap, tokenization_rows_html

    general, science = vocabularies
    html = tokenization_rows_html("photosynthesis in chloroplasts", {"general": general, "science": science},
                                  caption="one sentence")
    general_row, science_row = html.split("</table>")[0].split("<tr>")[1:3]
    assert "3 pieces, 0 of 3 words cut" in science_row and CUT not in science_row
    assert "of 3 words cut" in general_row and CUT in general_row and "0 of 3 words cut" not in general_row
    assert "<script" not in html and "one sentence" in html
    assert UNKNOWN in tokenization_rows_html("zzz", {"general": general}).split("</table>")[0]
    with pytest.raises(InputError, match="no words"):
        tokenization_rows_html("  ", {"general": general})
    figure = overlap_heatmap(["a", "b"], [[1, 0.25], [0.25, 1]])
    assert figure.data[0].z.tolist() == [[100.0, 25.0], [25.0, 100.0]]
    with pytest.raises(InputError, match="2 x 2 matrix"):
        overlap_heatmap(["a", "b"], [[1]])


def test_a_sentence_and_its_word_list_have_one_key():
    from kbench.text.vocabulary import text_key

    assert text_key("Heart  failure, in the LUNG.") == text_key(["heart", "failure", ",", "in", "the", "lung", "."])
    assert text_key("heart failure") != text_key("heart-failure")


def test_the_smoke_corpus_gives_the_same_pieces_in_two_fresh_processes():
    # the trainer breaks ties by a hash map's order, which changes from process to process: the claim that the
    # notebooks' pieces are the same run to run is checked on the smoke corpus at its size, in fresh processes
    import subprocess
    import sys

    script = ("import hashlib, json\n"
              "from kbench.profiles.scibert import setup\n"
              "from kbench.text.vocabulary import train_wordpiece\n"
              "s = setup('smoke')\n"
              "vocab = train_wordpiece(s.domain_texts, s.vocab_size).get_vocab()\n"
              "print(hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest(), len(vocab))\n")
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}) for seed in (1, 2)]
    outputs = [run.communicate(timeout=120)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert outputs[0] == outputs[1] and int(outputs[0][1]) > 3000


def test_text_key_without_punctuation_drops_only_the_marks():
    from kbench.text.vocabulary import text_key

    # the default keeps punctuation: a sentence with and without its full stop are two texts ...
    assert text_key("A cell divides .") != text_key("a cell divides")
    assert text_key("A cell divides .") == "a cell divides ."
    # ... without punctuation they are one, whatever the spacing, case or form (string or word list)
    assert text_key("A cell  divides .", punctuation=False) == text_key("a cell divides", punctuation=False)
    assert text_key(["A", "cell", ",", "divides"], punctuation=False) == "a cell divides"
    # words and numbers stay, and a different word is still a different text
    assert text_key("CO2 at 25 °C!", punctuation=False) == "co 2 at 25 c"
    assert text_key("a cell divides", punctuation=False) != text_key("a cell divided", punctuation=False)
    assert text_key("...", punctuation=False) == ""


def test_a_vocab_file_is_named_by_its_content_and_written_once(tmp_path):
    from kbench.text.vocabulary import write_vocab_file

    first = write_vocab_file(["[PAD]", "[UNK]", "a", "##b"], tmp_path)
    assert first.read_text().splitlines() == ["[PAD]", "[UNK]", "a", "##b"] and first.parent == tmp_path
    assert write_vocab_file(["[PAD]", "[UNK]", "a", "##b"], tmp_path) == first
    assert write_vocab_file(["[PAD]", "a"], tmp_path) != first
    assert write_vocab_file(["a"], tmp_path, name="sci").name.startswith("kbench-sci-")
    with pytest.raises(InputError, match="no piece twice"):
        write_vocab_file(["a", "a"], tmp_path)
    with pytest.raises(InputError, match="at least one piece"):
        write_vocab_file([], tmp_path)
