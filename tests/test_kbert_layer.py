"""K-BERT's knowledge layer: Figure 2, the authors' semantics (oracle), invariants, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.kg import KnowledgeGraph
from kbench.models.kbert import KnowledgeLayer, attention_mask, collate
from oracle_kbert import build_oracle, build_rowwise

import torch

FIGURE2_WORDS = ["[CLS]", "Tim Cook", "is", "visiting", "Beijing", "now"]


def figure2_layer(kg, **kw):
    options = dict(max_entities=2, max_length=16, tokenize=str.split, joiner=" ")
    options.update(kw)
    return KnowledgeLayer(kg, **options)


def test_figure2_soft_positions(figure2_kg):
    tree = figure2_layer(figure2_kg).build(FIGURE2_WORDS)
    assert tree.soft_positions[:13].tolist() == [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 6, 7, 6]
    assert tree.tokens[:13] == ["[CLS]", "Tim", "Cook", "CEO", "Apple", "is", "visiting", "Beijing", "capital",
                                "China", "is_a", "City", "now"]
    assert tree.segments[:13].tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0]
    assert tree.length == 13 and tree.tokens[13:] == ["[PAD]"] * 3
    assert tree.soft_positions[13:].tolist() == [15, 15, 15]


def test_figure2_visible_matrix(figure2_kg):
    m = figure2_layer(figure2_kg).build(FIGURE2_WORDS).visible_matrix
    sentence = [0, 1, 2, 5, 6, 7, 12]
    assert m[np.ix_(sentence, sentence)].all()
    assert m[1, 3] and m[2, 4] and not m[0, 3] and not m[5, 3]       # Tim Cook sees CEO Apple; [CLS], is do not
    assert m[3].nonzero()[0].tolist() == [1, 2, 3, 4]                 # CEO sees its branch and Tim Cook only
    assert m[8].nonzero()[0].tolist() == [7, 8, 9]                    # capital China: not is_a City
    assert m[10].nonzero()[0].tolist() == [7, 10, 11]
    assert m[7].nonzero()[0].tolist() == [0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12]
    assert not m[13:].any() and not m[:, 13:].any()                  # padding sees and is seen by nothing


def test_raw_sentence_uses_mention_detection(figure2_kg):
    layer = figure2_layer(figure2_kg)
    assert layer.build("[CLS] Tim Cook is visiting Beijing now").words == FIGURE2_WORDS
    tree_a = layer.build("[CLS] Tim Cook is visiting Beijing now")
    tree_b = layer.build(FIGURE2_WORDS)
    assert np.array_equal(tree_a.visible_matrix, tree_b.visible_matrix)


def test_max_entities_keeps_file_order(figure2_kg):
    tree = figure2_layer(figure2_kg, max_entities=1).build(FIGURE2_WORDS)
    assert tree.branches[4] == ["capital China"]
    assert "is_a" not in tree.tokens


def test_predicate_off_and_joiner(figure2_kg):
    tree = figure2_layer(figure2_kg, predicate=False).build(FIGURE2_WORDS)
    assert tree.branches[1] == ["Apple"] and tree.branches[4] == ["China", "City"]
    glued = KnowledgeLayer(figure2_kg, 2, 16, tokenize=list, joiner="").build(["Beijing"])
    assert glued.branches[0] == ["capitalChina", "is_aCity"]


def test_no_knowledge_is_plain_bert(figure2_kg):
    tree = figure2_layer(figure2_kg, max_entities=0).build(FIGURE2_WORDS)
    assert tree.soft_positions[:tree.length].tolist() == list(range(7))
    assert tree.visible_matrix[:7, :7].all() and tree.segments.sum() == 0


def test_distinct_branches_only():
    kg = KnowledgeGraph.from_triples([("a", "p", "x"), ("a", "p", "x"), ("a", "q", "y")])
    layer = KnowledgeLayer(kg, 2, 16, tokenize=list, joiner="")
    assert layer.build(["a"]).branches == [["px", "qy"]]
    kg2 = KnowledgeGraph.from_triples([("a", "p", "x"), ("a", "q", "x")])
    assert KnowledgeLayer(kg2, 2, 16, tokenize=list, predicate=False).build(["a"]).branches == [["x"]]


def test_truncation_is_after_building(figure2_kg):
    full = figure2_layer(figure2_kg, max_length=32).build(FIGURE2_WORDS)
    cut = figure2_layer(figure2_kg, max_length=6).build(FIGURE2_WORDS)
    assert cut.length == 6 and cut.truncated == 7
    assert cut.tokens == full.tokens[:6]
    assert np.array_equal(cut.visible_matrix, full.visible_matrix[:6, :6])
    assert np.array_equal(cut.soft_positions, full.soft_positions[:6])


def test_overflow_error_names_the_lengths(figure2_kg):
    with pytest.raises(InputError, match="13 tokens, over max_length=6"):
        figure2_layer(figure2_kg, max_length=6, overflow="error").build(FIGURE2_WORDS)


@pytest.mark.parametrize("bad", ["", "   ", [], ["ok", ""], ["ok", 3], 42])
def test_bad_sentences(figure2_kg, bad):
    with pytest.raises(InputError):
        figure2_layer(figure2_kg).build(bad)


@pytest.mark.parametrize("kwargs", [dict(max_entities=-1), dict(max_length=0), dict(overflow="wrap")])
def test_bad_layer_options(figure2_kg, kwargs):
    with pytest.raises(InputError):
        figure2_layer(figure2_kg, **kwargs)


def test_special_tokens_are_one_token():
    kg = KnowledgeGraph.from_triples([("[SEP]", "p", "o")])
    tree = KnowledgeLayer(kg, 2, 8, tokenize=list).build(["[CLS]", "ab", "[SEP]"])
    assert tree.tokens[:6] == ["[CLS]", "a", "b", "[SEP]", "p", "o"]


def test_attention_mask_lets_padding_see_itself_only(figure2_kg):
    tree = figure2_layer(figure2_kg).build(FIGURE2_WORDS)
    mask = attention_mask(tree.visible_matrix[None])
    assert mask.shape == (1, 1, 16, 16) and mask.dtype == torch.bool
    assert torch.equal(mask[0, 0, :13, :13], torch.from_numpy(tree.visible_matrix[:13, :13]))
    assert mask[0, 0, 14].nonzero().flatten().tolist() == [14]


# ---- property tests: the fast layer equals the oracle, and the matrix keeps its invariants ----
WORDS = st.sampled_from(["a", "b", "ab", "bc", "abc", "d", "[CLS]", "[SEP]", "x y", "z"])
TRIPLES = st.lists(st.tuples(st.sampled_from(["a", "ab", "abc", "x y", "[SEP]", "q"]),
                             st.sampled_from(["p", "rel", "is a"]), st.sampled_from(["o", "obj", "c d e"])),
                   max_size=12)


def tokenize_chars(text: str) -> list[str]:
    return [c for c in text if c != " "]


@given(words=st.lists(WORDS, min_size=1, max_size=12), triples=TRIPLES, max_entities=st.integers(0, 3),
       max_length=st.integers(1, 40), predicate=st.booleans(), joiner=st.sampled_from(["", " "]))
def test_layer_matches_authors_semantics(words, triples, max_entities, max_length, predicate, joiner):
    kg = KnowledgeGraph.from_triples(triples)
    tree = KnowledgeLayer(kg, max_entities, max_length, tokenize_chars, predicate, joiner).build(words)
    tokens, positions, visible, segments = build_oracle(words, kg, tokenize_chars, max_entities, max_length,
                                                        predicate, joiner)
    assert tree.tokens == tokens
    assert tree.soft_positions.tolist() == positions.tolist()
    assert np.array_equal(tree.visible_matrix, visible)
    assert tree.segments.tolist() == segments.tolist()


@given(words=st.lists(WORDS, min_size=1, max_size=12), triples=TRIPLES, max_entities=st.integers(0, 3),
       max_length=st.integers(1, 40), predicate=st.booleans())
def test_rowwise_reference_equals_the_oracle(words, triples, max_entities, max_length, predicate):
    """The benchmark's reference loop computes the authors' semantics too."""
    kg = KnowledgeGraph.from_triples(triples)
    ours = build_rowwise(words, kg, tokenize_chars, max_entities, max_length, predicate, " ")
    oracle = build_oracle(words, kg, tokenize_chars, max_entities, max_length, predicate, " ")
    assert ours[0] == oracle[0] and all(np.array_equal(a, b) for a, b in zip(ours[1:], oracle[1:]))


@given(words=st.lists(WORDS, min_size=1, max_size=12), triples=TRIPLES, max_entities=st.integers(0, 3),
       max_length=st.integers(2, 48))
def test_visible_matrix_invariants(words, triples, max_entities, max_length):
    kg = KnowledgeGraph.from_triples(triples)
    tree = KnowledgeLayer(kg, max_entities, max_length, tokenize_chars).build(words)
    m, n = tree.visible_matrix, tree.length
    sentence = (tree.segments[:n] == 0)
    assert m.shape == (max_length, max_length) and m.dtype == bool
    assert np.array_equal(m, m.T)                                    # seeing is mutual
    assert m[np.arange(n), np.arange(n)].all()                       # every real token sees itself
    assert not m[n:].any() and not m[:, n:].any()                    # padding is invisible and blind
    assert m[:n, :n][np.ix_(sentence, sentence)].all()               # the sentence sees itself whole
    for i in np.flatnonzero(~sentence):                              # a branch token sees only its own word
        seen_sentence = np.flatnonzero(m[i, :n] & sentence)
        assert set(tree.word_index[seen_sentence]) == {tree.word_index[i]}
        seen_knowledge = np.flatnonzero(m[i, :n] & ~sentence)
        assert set(tree.word_index[seen_knowledge]) == {tree.word_index[i]}
    positions = tree.soft_positions[:n][sentence]
    assert np.all(np.diff(positions) == 1) and (positions[0] == 0 if sentence[0] else True)
    assert (tree.soft_positions[n:] == max_length - 1).all()


def test_layer_matches_oracle_on_real_hownet(real_data):
    from kbench.data import load_kbert_dataset, load_kg
    from kbench.encoders import load_tokenizer

    kg = load_kg("HowNet", real_data)
    tokenize = load_tokenizer(vocab=str(real_data / "kbert/vocab/google_vocab.txt")).tokenize
    layer = KnowledgeLayer(kg, max_entities=2, max_length=128, tokenize=tokenize)
    sentences = load_kbert_dataset("chnsenticorp", "test", real_data, limit=60).texts
    injected = 0
    for sentence in sentences:
        words = layer.words(sentence)
        tree = layer.build(words)
        tokens, positions, visible, segments = build_oracle(words, kg, tokenize, 2, 128)
        assert tree.tokens == tokens and tree.soft_positions.tolist() == positions.tolist()
        assert np.array_equal(tree.visible_matrix, visible) and tree.segments.tolist() == segments.tolist()
        injected += int(tree.segments.sum())
    assert injected > 0  # HowNet does inject knowledge into these sentences


# ---- compact examples and per-batch masks: the same rule as the sentence tree ----
def vocab_of(words_lists, triples):
    tokens = {"[PAD]", "[UNK]"} | set(SPECIAL_TOKENS_FOR_VOCAB)
    for words in words_lists:
        for word in words:
            tokens |= set(tokenize_chars(word))
    for s, p, o in triples:
        tokens |= set(tokenize_chars(s + p + o))
    return {token: index for index, token in enumerate(sorted(tokens))}


SPECIAL_TOKENS_FOR_VOCAB = ["[CLS]", "[SEP]"]


@given(batch=st.lists(st.lists(WORDS, min_size=1, max_size=10), min_size=1, max_size=4), triples=TRIPLES,
       max_entities=st.integers(0, 3), max_length=st.integers(1, 40), use_vm=st.booleans())
def test_collate_equals_stacked_trees(batch, triples, max_entities, max_length, use_vm):
    """The batch mask is the stacked ``build`` matrices cut to the longest row, padding seeing itself."""
    kg = KnowledgeGraph.from_triples(triples)
    vocab = vocab_of(batch, triples)
    layer = KnowledgeLayer(kg, max_entities, max_length, tokenize_chars, vocab=vocab)
    examples = [layer.example(words) for words in batch]
    inputs = collate(examples, max_length, vocab["[PAD]"], use_visible_matrix=use_vm)
    trees = [layer.build(words) for words in batch]
    width = max(tree.length for tree in trees)
    if use_vm:
        stacked = np.stack([tree.visible_matrix[:width, :width] for tree in trees])
    else:
        real = np.stack([np.arange(width) < tree.length for tree in trees])
        stacked = real[:, :, None] & real[:, None, :]
    assert inputs["attention_mask"].shape == (len(batch), 1, width, width)
    assert np.array_equal(inputs["attention_mask"][:, 0].numpy(), stacked | np.eye(width, dtype=bool))
    assert inputs["input_ids"].tolist() == [[vocab[t] for t in tree.tokens[:width]] for tree in trees]
    assert inputs["position_ids"].tolist() == [tree.soft_positions[:width].tolist() for tree in trees]
    assert [e.truncated for e in examples] == [tree.truncated for tree in trees]


def test_example_is_compact_and_needs_a_vocab(figure2_kg):
    layer = figure2_layer(figure2_kg, max_length=512)
    with pytest.raises(InputError, match="vocab"):
        layer.example(FIGURE2_WORDS)
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "Tim", "Cook", "CEO", "Apple", "is", "visiting",
                                         "Beijing", "capital", "China", "is_a", "City", "now"])}
    example = figure2_layer(figure2_kg, max_length=512, vocab=vocab).example(FIGURE2_WORDS)
    assert example.input_ids.tolist() == list(range(2, 15))[:3] + [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert example.soft_positions.tolist() == [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 6, 7, 6]
    assert example.branch_index.tolist() == [-1, -1, -1, 0, 0, -1, -1, -1, 1, 1, 2, 2, -1]
    assert example.word_index.tolist() == [0, 1, 1, 1, 1, 2, 3, 4, 4, 4, 4, 4, 5]
    nbytes = sum(a.nbytes for a in (example.input_ids, example.soft_positions, example.word_index,
                                    example.branch_index))
    assert nbytes == 13 * 4 * 4  # O(L): four int32 per token, whatever max_length is
