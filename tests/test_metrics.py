"""Entity-level F1 from BIO tags, and the tagging metric over logits."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.metrics import authors_ner_f1, bio_spans, span_f1, tagging_f1


def test_spans():
    assert bio_spans(["B-DIS", "I-DIS", "O", "B-SYM", "B-SYM", "I-DIS"]) == {
        (0, 2, "DIS"), (3, 4, "SYM"), (4, 5, "SYM"), (5, 6, "DIS")}
    assert bio_spans(["O", "I-X", "I-X"]) == {(1, 3, "X")}
    assert bio_spans([]) == set()


def test_f1_values():
    gold = [["B-X", "I-X", "O", "B-Y"]]
    assert span_f1(gold, gold) == 1.0
    assert span_f1(gold, [["B-X", "O", "O", "B-Y"]]) == pytest.approx(0.5)   # 1 hit of 2 gold, 2 predicted
    assert span_f1([["O"]], [["O"]]) == 1.0 and span_f1([["B-X"]], [["O"]]) == 0.0
    with pytest.raises(InputError):
        span_f1(gold, [])
    with pytest.raises(InputError):
        span_f1(gold, [["O"]])


@given(st.lists(st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B"]), max_size=8), max_size=5),
       st.randoms())
def test_f1_bounds_and_identity(gold, rng):
    predicted = [rng.sample(tags, len(tags)) for tags in gold]
    assert 0.0 <= span_f1(gold, predicted) <= 1.0
    assert span_f1(gold, gold) == 1.0


def test_tagging_metric_skips_knowledge_and_padding():
    tags = ["O", "B-X", "I-X", "[ENT]"]
    labels = torch.tensor([[-100, 1, 2, 3, 3, 0, -100]])
    logits = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 0, 1, 0, 1]]), 4).float()
    assert tagging_f1(tags)(logits, labels) == 1.0   # knowledge and padding predictions do not count
    wrong = torch.nn.functional.one_hot(torch.tensor([[0, 3, 2, 3, 3, 0, 0]]), 4).float()
    assert tagging_f1(tags)(wrong, labels) == 0.0    # [ENT] on a sentence token reads as O


def one_hot(ids, classes=5):
    return torch.nn.functional.one_hot(torch.tensor(ids), classes).float()


AUTHORS_TAGS = ["O", "B-X", "I-X", "B-Y", "[ENT]"]


def test_authors_f1_by_hand():
    """Their spans are untyped and step over knowledge tokens; precision counts B- on knowledge tokens too."""
    metric = authors_ner_f1(AUTHORS_TAGS)
    #             B-X I-X ENT ENT  O  B-Y  pad
    gold = torch.tensor([[1, 2, 4, 4, 0, 3, -100]])
    assert metric(one_hot([[1, 2, 4, 4, 0, 3, 0]]), gold) == 1.0
    # a B-Y where B-X is gold still matches: the spans carry no type
    assert metric(one_hot([[3, 2, 0, 0, 0, 3, 0]]), gold) == 1.0
    # the first span ends early (O on the I-X token): 1 of 2 spans right -> P = R = 0.5
    assert metric(one_hot([[1, 0, 4, 4, 0, 3, 0]]), gold) == pytest.approx(0.5)
    # a B- predicted on a knowledge token counts as a predicted entity: P = 2/3, R = 1 -> F1 = 0.8
    assert metric(one_hot([[1, 2, 1, 4, 0, 3, 0]]), gold) == pytest.approx(0.8)
    # padding predictions never count
    assert metric(one_hot([[1, 2, 4, 4, 0, 3, 1]]), gold) == 1.0


def test_authors_f1_differs_from_typed_f1():
    gold = torch.tensor([[1, 2, 0, 3]])
    swapped = one_hot([[3, 2, 0, 1]])
    assert authors_ner_f1(AUTHORS_TAGS)(swapped, gold) == 1.0
    assert tagging_f1(AUTHORS_TAGS)(swapped, gold) == 0.0


@given(st.lists(st.lists(st.sampled_from([0, 1, 2, 3, 4]), min_size=1, max_size=8), min_size=1, max_size=4),
       st.randoms())
def test_authors_f1_bounds_and_identity(rows, rng):
    width = max(len(r) for r in rows)
    gold = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
    predicted = torch.tensor([rng.sample(r, len(r)) + [0] * (width - len(r)) for r in rows])
    metric = authors_ner_f1(AUTHORS_TAGS)
    assert 0.0 <= metric(one_hot(predicted.tolist()), gold) <= 1.0
    assert metric(one_hot(gold.clamp(min=0).tolist()), gold) == 1.0


def test_majority_accuracy_answers_the_training_majority_on_the_test_split():
    from kbench.metrics import majority_accuracy

    # the training majority is "a"; on the test split "b" is the most common, and the prior still answers "a"
    assert majority_accuracy(["a", "a", "b"], ["b", "b", "a", "c"]) == 0.25
    assert majority_accuracy([0, 1, 1, 2], [1, 1, 1, 0]) == 0.75
    # a tie goes to the label seen first in training
    assert majority_accuracy(["b", "a", "a", "b"], ["b", "a", "a"]) == pytest.approx(1 / 3)
    with pytest.raises(InputError, match="majority-label"):
        majority_accuracy([], [1])


def test_random_like_keeps_each_rows_norm_and_drops_its_direction():
    from kbench.metrics import random_like

    table = torch.randn(50, 16) * torch.arange(1, 51).float()[:, None]
    table[3] = 0.0
    fresh = random_like(table, seed=1)
    assert fresh.shape == table.shape
    assert torch.allclose(fresh.norm(dim=-1), table.norm(dim=-1), atol=1e-4)
    cosine = torch.nn.functional.cosine_similarity(fresh, table, dim=-1)
    assert cosine[torch.arange(50) != 3].abs().mean() < 0.4    # unrelated directions (aligned rows give 1.0)
    assert torch.equal(random_like(table, seed=1), fresh) and not torch.equal(random_like(table, seed=2), fresh)
    with pytest.raises(InputError, match="rows, dim"):
        random_like(torch.zeros(3))
