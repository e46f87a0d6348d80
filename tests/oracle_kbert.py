"""A straightforward per-word re-implementation of the authors' ``add_knowledge_with_vm``.

It is the oracle ``KnowledgeLayer.build`` must match exactly, and the baseline
of ``benchmarks/bench_kbert.py``: index trees built word by word, then the
visible matrix filled token by token, as in ``brain/knowgraph.py``.
"""
from __future__ import annotations

import numpy as np

from kbench.text import SPECIAL_TOKENS


def build_oracle(words, kg, tokenize, max_entities, max_length, predicate=True, joiner=""):
    """Return ``(tokens, soft_positions, visible_matrix, segments)`` as the authors' code computes them."""
    sentence_tree, position_tree, index_tree, sentence_indices = [], [], [], []
    position, index = -1, -1
    for word in words:
        branches = []
        for pred, obj in kg.lookup(word):
            text = pred + joiner + obj if predicate else obj
            if text not in branches:
                branches.append(text)
        branches = branches[:max_entities]
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
