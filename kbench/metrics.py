"""Task metrics computed from logits and labels (the ``metric`` argument of ``kbench.train.fit``)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from kbench.errors import InputError


def bio_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Return the entity spans ``(start, end, type)`` of a BIO tag sequence (an I- after O starts a span)."""
    spans, start, kind = set(), None, None
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start is not None and not (prefix == "I" and label == kind):
            spans.add((start, index, kind))
            start = kind = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = index, label
    return spans


def span_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Return the entity-level F1 of predicted BIO sequences against gold ones (1.0 when both have none)."""
    if len(gold) != len(predicted):
        raise InputError(f"{len(gold)} gold sequences but {len(predicted)} predicted")
    hits = gold_count = predicted_count = 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        if len(gold_tags) != len(predicted_tags):
            raise InputError("a predicted sequence differs in length from its gold sequence")
        gold_spans, predicted_spans = bio_spans(gold_tags), bio_spans(predicted_tags)
        hits += len(gold_spans & predicted_spans)
        gold_count += len(gold_spans)
        predicted_count += len(predicted_spans)
    if gold_count == predicted_count == 0:
        return 1.0
    return 2 * hits / (gold_count + predicted_count)


def tagging_f1(tags: Sequence[str], ignore: Sequence[str] = ("[ENT]",)):
    """Return a ``metric(logits, labels)`` giving entity F1 over tokens labelled with a tag not in ``ignore``.

    Knowledge tokens (the ``[ENT]`` tag) and padding (-100) are left out, as the
    K-BERT authors do; a prediction of an ignored tag on a sentence token counts as ``O``.
    """
    skip = {tags.index(tag) for tag in ignore if tag in tags}

    def metric(logits: torch.Tensor, labels: torch.Tensor) -> float:
        predictions = logits.argmax(-1)
        gold, predicted = [], []
        for row_labels, row_predictions in zip(labels.tolist(), predictions.tolist()):
            keep = [i for i, label in enumerate(row_labels) if label != -100 and label not in skip]
            gold.append([tags[row_labels[i]] for i in keep])
            predicted.append(["O" if row_predictions[i] in skip else tags[row_predictions[i]] for i in keep])
        return span_f1(gold, predicted)

    return metric


def authors_ner_f1(tags: Sequence[str], entity: str = "[ENT]"):
    """Return a ``metric(logits, labels)``: the K-BERT authors' NER F1 (``evaluate()`` in ``run_kbert_ner.py``).

    Unlike :func:`tagging_f1` (typed spans, conlleval), their spans are
    untyped, in token positions, and start only at a ``B-`` tag. A gold span
    runs from a ``B-`` until an ``O`` or another ``B-``; a predicted span starts
    at a predicted ``B-`` on a sentence token and runs until a predicted ``O`` or
    ``B-``; both step over knowledge tokens (gold ``[ENT]``) and end at the
    row's end. Precision counts every predicted ``B-`` on a labelled token,
    knowledge tokens included, as theirs does. Our unlabelled tokens inside a
    row (a unit's later word pieces, which their character tokens never have)
    are stepped over like knowledge tokens.
    """
    begins = {i for i, tag in enumerate(tags) if tag.startswith("B-")}
    outside = tags.index("O") if "O" in tags else -1
    ent = tags.index(entity) if entity in tags else -2

    def spans(stop: list[int], gold: list[int], starts: list[bool]) -> set[tuple[int, int]]:
        found = set()
        for j, is_start in enumerate(starts):
            if not is_start:
                continue
            end = len(gold) - 1
            for k in range(j + 1, len(gold)):
                if gold[k] in (ent, -100):
                    continue
                if stop[k] == outside or stop[k] in begins:
                    end = k - 1
                    break
            found.add((j, end))
        return found

    def metric(logits: torch.Tensor, labels: torch.Tensor) -> float:
        predictions = logits.argmax(-1).tolist()
        correct = gold_count = predicted_count = 0
        for gold, predicted in zip(labels.tolist(), predictions):
            length = max((i + 1 for i, label in enumerate(gold) if label != -100), default=0)
            gold, predicted = gold[:length], predicted[:length]
            gold_count += sum(label in begins for label in gold)
            predicted_count += sum(p in begins and g != -100 for p, g in zip(predicted, gold))
            gold_spans = spans(gold, gold, [label in begins for label in gold])
            predicted_spans = spans(predicted, gold, [p in begins and g not in (-100, ent)
                                                      for p, g in zip(predicted, gold)])
            correct += len(gold_spans & predicted_spans)
        if gold_count == predicted_count == 0:
            return 1.0
        precision = correct / predicted_count if predicted_count else 0.0
        recall = correct / gold_count if gold_count else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    return metric


def majority_accuracy(train_labels: Sequence, test_labels: Sequence) -> float:
    """Return the accuracy on ``test_labels`` of always answering the most common of ``train_labels``.

    The answer prior every classifier must beat: what a model learns from the label distribution alone,
    with no input read. Ties go to the label seen first in training, so the value does not depend on
    hash order.
    """
    train_labels, test_labels = list(train_labels), list(test_labels)
    if not train_labels or not test_labels:
        raise InputError(f"the majority-label accuracy needs training and test labels, got {len(train_labels)} "
                         f"and {len(test_labels)}")
    counts: dict = {}
    for label in train_labels:
        counts[label] = counts.get(label, 0) + 1
    majority = max(counts, key=lambda label: (counts[label], -train_labels.index(label)))
    return sum(label == majority for label in test_labels) / len(test_labels)


def random_like(vectors: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Return random vectors with the same shape and the same norm, row by row, as ``vectors``.

    The untrained module of the same shape: an entity table that tells entities apart as well as the trained
    one (each row its own direction, on the same scale) but holds no fact of the KG. A model that gains as much
    from it as from the trained table gains from the entity's identity, not from the knowledge.
    """
    vectors = vectors.detach().float()
    if vectors.dim() != 2:
        raise InputError(f"random_like takes a (rows, dim) table, got shape {tuple(vectors.shape)}")
    generator = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(vectors.shape, generator=generator), dim=-1)
    return directions * vectors.norm(dim=-1, keepdim=True)
