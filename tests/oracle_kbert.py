"""A straightforward per-word re-implementation of the authors' ``add_knowledge_with_vm``.

It is the oracle ``KnowledgeLayer.build`` must match exactly, and the baseline
of ``benchmarks/bench_kbert.py``: index trees built word by word, then the
visible matrix filled token by token, as in ``brain/knowgraph.py``.
"""
from __future__ import annotations

import numpy as np

from kbench.text import SPECIAL_TOKENS


def branch_texts(kg, word, max_entities, predicate, joiner):
    """Return a word's first ``max_entities`` distinct branch texts, in KG order (the authors use a set)."""
    branches = []
    for pred, obj in kg.lookup(word):
        text = pred + joiner + obj if predicate else obj
        if text not in branches:
            branches.append(text)
    return branches[:max_entities]


def build_oracle(words, kg, tokenize, max_entities, max_length, predicate=True, joiner=""):
    """Return ``(tokens, soft_positions, visible_matrix, segments)`` as the authors' code computes them."""
    sentence_tree, position_tree, index_tree, sentence_indices = [], [], [], []
    position, index = -1, -1
    for word in words:
        branches = branch_texts(kg, word, max_entities, predicate, joiner)
        word_tokens = [word] if word in SPECIAL_TOKENS else (tokenize(word) or ["[UNK]"])
        branch_tokens = [tokenize(b) or ["[UNK]"] for b in branches]
        sentence_tree.append((word_tokens, branch_tokens))
        word_positions = [position + i for i in range(1, len(word_tokens) + 1)]
        word_indices = [index + i for i in range(1, len(word_tokens) + 1)]
        index = word_indices[-1]
        branch_positions, branch_indices = [], []
        for pieces in branch_tokens:
            branch_positions.append([word_positions[-1] + i for i in range(1, len(pieces) + 1)])
            indices = [index + i for i in range(1, len(pieces) + 1)]
            index = indices[-1]
            branch_indices.append(indices)
        position_tree.append((word_positions, branch_positions))
        position = word_positions[-1]
        index_tree.append((word_indices, branch_indices))
        sentence_indices += word_indices
    tokens, positions, segments = [], [], []
    for (word_tokens, branch_tokens), (word_positions, branch_positions) in zip(sentence_tree, position_tree):
        tokens += word_tokens
        segments += [0] * len(word_tokens)
        positions += word_positions
        for pieces, piece_positions in zip(branch_tokens, branch_positions):
            tokens += pieces
            segments += [1] * len(pieces)
            positions += piece_positions
    count = len(tokens)
    visible = np.zeros((count, count), dtype=bool)
    for word_indices, branch_indices in index_tree:
        for i in word_indices:
            for j in sentence_indices + [k for branch in branch_indices for k in branch]:
                visible[i, j] = True
        for branch in branch_indices:
            for i in branch:
                for j in branch + word_indices:
                    visible[i, j] = True
    if count < max_length:
        pad = max_length - count
        tokens += ["[PAD]"] * pad
        segments += [0] * pad
        positions += [max_length - 1] * pad
        visible = np.pad(visible, ((0, pad), (0, pad)))
    else:
        tokens, segments, positions = tokens[:max_length], segments[:max_length], positions[:max_length]
        visible = visible[:max_length, :max_length]
    return tokens, np.array(positions), visible, np.array(segments)


def build_rowwise(words, kg, tokenize, max_entities, max_length, predicate=True, joiner=""):
    """The same as :func:`build_oracle`, with the matrix filled a row at a time by numpy fancy indexing.

    A reasonable straightforward implementation (per-word loop, no caches), and
    the reference ``benchmarks/bench_kbert.py`` measures the compact examples against.
    """
    tokens, positions, segments, word_rows, branch_rows = [], [], [], [], []
    sentence_columns = []
    position = -1
    for word in words:
        branches = branch_texts(kg, word, max_entities, predicate, joiner)
        word_tokens = [word] if word in SPECIAL_TOKENS else (tokenize(word) or ["[UNK]"])
        own = list(range(len(tokens), len(tokens) + len(word_tokens)))
        tokens += word_tokens
        segments += [0] * len(word_tokens)
        positions += range(position + 1, position + 1 + len(word_tokens))
        position += len(word_tokens)
        sentence_columns += own
        hanging = []
        for text in branches:
            pieces = tokenize(text) or ["[UNK]"]
            indices = list(range(len(tokens), len(tokens) + len(pieces)))
            tokens += pieces
            segments += [1] * len(pieces)
            positions += range(position + 1, position + 1 + len(pieces))
            hanging.append(indices)
        word_rows.append((own, [i for branch in hanging for i in branch]))
        branch_rows += [(branch, own) for branch in hanging]
    count = len(tokens)
    visible = np.zeros((count, count), dtype=bool)
    sentence_columns = np.asarray(sentence_columns, dtype=np.int64)
    for own, knowledge in word_rows:
        columns = np.concatenate([sentence_columns, np.asarray(knowledge, dtype=np.int64)])
        for row in own:
            visible[row, columns] = True
    for branch, own in branch_rows:
        columns = np.asarray(branch + own, dtype=np.int64)
        for row in branch:
            visible[row, columns] = True
    kept = min(count, max_length)
    matrix = np.zeros((max_length, max_length), dtype=bool)
    matrix[:kept, :kept] = visible[:kept, :kept]
    pad = max_length - kept
    return (tokens[:kept] + ["[PAD]"] * pad, np.array(positions[:kept] + [max_length - 1] * pad), matrix,
            np.array(segments[:kept] + [0] * pad))
