"""What a method costs beside what it gains: parameters added, and throughput against the plain base.

The head-to-head of every method (``notebooks/12_overview``) sets each one's gain
against its cost: how many parameters it adds to the base (frozen ones counted, since
they are carried at run time, and shown apart from the trainable ones), and how many
tokens per second it trains and infers at, relative to the plain base on the same
sentences in the same run. Timings on a shared machine vary run to run; the ratio of
two models timed alternately in one run is what is reported (never asserted by a
test), and only with its spread: a ratio is taken in every timed round (the models
in a seeded random order within each round, after one untimed warm-up round), and
the median with its [min, max] over the rounds is reported. A ratio whose range
exceeds :data:`MAX_SPREAD` of its median is *not measured* — the rounds disagree
more than the difference they would show. The batches are each model's own (its ``collate`` of the same examples), so
K-BERT's injected branches or ERNIE's entity slots count as the extra work they are:
the speed ratio is of *examples* per second (every model must get the same number),
since a model that reads each sentence as more tokens (K-BERT's tree) is slower per
sentence even when its tokens per second are higher.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from kbench.errors import InputError
from kbench.train import eval_mode

#: The largest (max − min) / median of a speed ratio over the rounds that still counts as measured.
MAX_SPREAD = 0.2


@dataclass(frozen=True)
class Cost:
    """One model's size and speed, and both relative to the reference model of the same run."""

    parameters: int                 # every parameter, tied ones once
    trainable: int                  # those with requires_grad
    added: int                      # parameters beyond the reference's
    train_tokens_per_second: float
    infer_tokens_per_second: float
    train_speed: float              # train examples/s relative to the reference (1.0: as fast), median of rounds
    infer_speed: float
    train_range: tuple[float, float] = (float("nan"), float("nan"))   # the ratio's min and max over the rounds
    infer_range: tuple[float, float] = (float("nan"), float("nan"))
    rounds: int = 0

    def measured(self, train: bool) -> bool:
        """Whether the train (or inference) ratio's range over the rounds is within :data:`MAX_SPREAD` of its median."""
        low, high = self.train_range if train else self.infer_range
        median = self.train_speed if train else self.infer_speed
        return self.rounds > 1 and median > 0 and (high - low) / median <= MAX_SPREAD

    def speed_text(self, train: bool) -> str:
        """The ratio as ``'1.23x [1.10, 1.35]'``, or ``'not measured (rounds 0.90-1.60x)'`` when its spread is too wide."""
        low, high = self.train_range if train else self.infer_range
        median = self.train_speed if train else self.infer_speed
        if not self.measured(train):
            return f"not measured (rounds {low:.2f}-{high:.2f}x)"
        return f"{median:.2f}x [{low:.2f}, {high:.2f}]"


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """Return ``(all, trainable)`` parameter counts, a tied or shared tensor counted once."""
    parameters = list(model.parameters())          # nn.Module.parameters() yields a shared tensor once
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    return total, trainable


def _tokens(batch: Mapping[str, torch.Tensor]) -> int:
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        return int(mask.sum())
    return int(batch["input_ids"].numel())


def _examples(batches: Sequence[Mapping[str, torch.Tensor]]) -> int:
    return sum(int(batch["input_ids"].shape[0]) for batch in batches)


def _step(model: nn.Module, batch: Mapping[str, torch.Tensor], train: bool) -> None:
    if train:
        out = model(**batch)
        loss = out["loss"] if isinstance(out, Mapping) else out.loss
        loss.backward()
        model.zero_grad(set_to_none=True)
    else:
        with torch.no_grad():
            model(**{k: v for k, v in batch.items() if k != "labels"})


def relative_cost(models: Mapping[str, tuple[nn.Module, Sequence[Mapping[str, torch.Tensor]]]], reference: str,
                  repeats: int = 5, seed: int = 0, clock=None) -> dict[str, Cost]:
    """Return each model's :class:`Cost` against ``models[reference]``.

    ``models`` maps a name to ``(model, batches)``; each model's batches carry
    ``labels`` so its forward returns a loss. Training (forward and backward, no
    optimizer step) then inference (no grad, eval mode) are timed in ``repeats``
    rounds after one untimed warm-up round; within a round every model makes one
    pass over its batches, in an order shuffled per round (``seed``), so neither
    runs always first. Each round gives each model a speed ratio (the reference's
    seconds over its own in that round); the :class:`Cost` holds the median ratio
    and its [min, max]. Every model's batches must hold the same number of
    examples (its own collate of the same ones). ``clock`` (default
    ``time.perf_counter``) is there for tests.
    """
    import random
    import statistics

    if reference not in models:
        raise InputError(f"the reference {reference!r} is not among the models ({', '.join(models)})")
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, got {repeats}")
    for name, (_, batches) in models.items():
        if not batches:
            raise InputError(f"model {name!r} has no batches to time")
        if any("labels" not in batch for batch in batches):
            raise InputError(f"model {name!r}: every batch needs labels, so its forward returns a loss")
    counts = {name: _examples(batches) for name, (_, batches) in models.items()}
    if len(set(counts.values())) > 1:
        raise InputError(f"time every model on the same examples: their batches hold {counts} examples")
    clock = clock or time.perf_counter
    rng = random.Random(seed)
    tokens = {name: sum(_tokens(batch) for batch in batches) for name, (_, batches) in models.items()}
    seconds: dict[bool, list[dict[str, float]]] = {True: [], False: []}      # per mode: one {name: s} per round
    for train in (True, False):
        for round_ in range(repeats + 1):
            order = list(models)
            rng.shuffle(order)
            timed = {}
            for name in order:
                model, batches = models[name]
                model.train(train)
                start = clock()
                for batch in batches:
                    _step(model, batch, train)
                timed[name] = clock() - start
            if round_:                                  # round 0 warms up: caches, allocator, lazy init
                seconds[train].append(timed)
    for model, _ in models.values():
        model.eval()
    base_total = parameter_counts(models[reference][0])[0]
    out = {}
    for name, (model, _) in models.items():
        total, trainable = parameter_counts(model)
        ratios = {train: [r[reference] / r[name] for r in seconds[train]] for train in (True, False)}
        median_seconds = {train: statistics.median(r[name] for r in seconds[train]) for train in (True, False)}
        out[name] = Cost(total, trainable, total - base_total, tokens[name] / median_seconds[True],
                         tokens[name] / median_seconds[False], statistics.median(ratios[True]),
                         statistics.median(ratios[False]), (min(ratios[True]), max(ratios[True])),
                         (min(ratios[False]), max(ratios[False])), repeats)
    return out
