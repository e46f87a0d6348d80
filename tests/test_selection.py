"""kNN-TAPT's choice of domain sentences nearest to the task's (Don't Stop Pretraining, §5)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kbench.errors import InputError
from kbench.text.selection import nearest_indices, sentence_vectors


def test_nearest_domain_rows_by_cosine_each_once():
    domain = [[1, 0], [0, 1], [0.9, 0.1], [-1, 0], [0.1, 0.9]]
    assert nearest_indices([[1, 0]], domain, 2) == [0, 2]
    assert nearest_indices([[2, 0.05]], domain, 1) == [0]                       # cosine, not distance: length ignored
    assert nearest_indices([[1, 0], [0.95, 0.05]], domain, 2) == [0, 2]         # a row chosen twice appears once
    assert nearest_indices([[1, 0], [0, 1]], domain, 2) == [0, 2, 1, 4]          # task row by task row, nearest first


def test_selection_bad_input():
    with pytest.raises(InputError, match="k must be between 1 and the 2"):
        nearest_indices([[1, 0]], [[1, 0], [0, 1]], 3)
    with pytest.raises(InputError, match="dimensions"):
        nearest_indices([[1, 0, 0]], [[1, 0], [0, 1]], 1)
    with pytest.raises(InputError, match="zero"):
        nearest_indices([[0, 0]], [[1, 0]], 1)
    with pytest.raises(InputError, match="non-empty 2-D"):
        nearest_indices([], [[1, 0]], 1)


@given(arrays(np.float64, (3, 4), elements=st.floats(0.1, 10)), arrays(np.float64, (12, 4), elements=st.floats(0.1, 10)),
       st.integers(1, 12))
def test_every_chosen_row_beats_every_unchosen_for_some_task_row(task, domain, k):
    chosen = nearest_indices(task, domain, k)
    assert len(chosen) == len(set(chosen)) and k <= len(chosen) <= min(len(domain), 3 * k)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    similarity = unit(task) @ unit(domain).T
    for index in chosen:       # each chosen row is within the k best of at least one task row
        assert any((similarity[t] > similarity[t, index] + 1e-12).sum() < k for t in range(len(task)))


def test_sentence_vectors_mean_over_real_tokens_only():
    from kbench.encoders import load_encoder

    loaded = load_encoder("tiny", seed=0)
    encoder, tokenizer = loaded.model, loaded.tokenizer
    alone = sentence_vectors(encoder, tokenizer, ["a cell divides"])
    padded = sentence_vectors(encoder, tokenizer, ["a cell divides", "a much longer sentence about dividing cells here"])
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)                  # padding never counts
    assert not np.allclose(padded[0], padded[1])
    with pytest.raises(InputError, match="no texts"):
        sentence_vectors(encoder, tokenizer, [])


def test_neighbours_give_each_task_row_its_k_nearest_with_their_cosines():
    from kbench.text.selection import neighbours

    domain = [[1, 0], [0, 1], [0.9, 0.1], [-1, 0]]
    order, cosines = neighbours([[1, 0], [0, 2]], domain, 2)
    assert order.tolist() == [[0, 2], [1, 2]]
    np.testing.assert_allclose(cosines[0], [1.0, 0.9 / np.hypot(0.9, 0.1)])
    assert cosines[1, 0] == pytest.approx(1.0) and cosines[1, 1] == pytest.approx(0.1 / np.hypot(0.9, 0.1))
    with pytest.raises(InputError, match="k must be between"):
        neighbours([[1, 0]], domain, 5)
