"""Entity-level F1 from BIO tags, and the tagging metric over logits."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.metrics import bio_spans, span_f1, tagging_f1


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
