"""Costs: parameters counted once per tensor, frozen ones apart, and speeds relative to the reference."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kbench.cost import parameter_counts, relative_cost
from kbench.errors import InputError
from kbench.pretrain import masked_lm


class Toy(nn.Module):
    def __init__(self, width: int, frozen: bool = False):
        super().__init__()
        self.embed = nn.Embedding(10, width)
        self.out = nn.Linear(width, 10)
        if frozen:
            self.embed.weight.requires_grad_(False)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.out(self.embed(input_ids))
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten()) if labels is not None else None
        return {"loss": loss, "logits": logits}


def batches(n=2):
    ids = torch.randint(0, 10, (4, 6))
    mask = torch.ones_like(ids)
    mask[0, 3:] = 0
    return [{"input_ids": ids, "attention_mask": mask, "labels": ids} for _ in range(n)]


def test_tied_weights_count_once_and_frozen_ones_apart():
    lm, _, _ = masked_lm("tiny", seed=0)
    total, trainable = parameter_counts(lm)
    assert lm.cls.predictions.decoder.weight is lm.bert.embeddings.word_embeddings.weight
    with_duplicates = sum(p.numel() for _, p in lm.named_parameters(remove_duplicate=False))
    head = lm.cls.predictions
    assert head.decoder.bias is head.bias                       # the decoder's bias is tied too
    assert total == trainable == with_duplicates - head.decoder.weight.numel() - head.bias.numel()
    toy = Toy(8, frozen=True)
    assert parameter_counts(toy) == (10 * 8 + 8 * 10 + 10, 8 * 10 + 10)


def test_costs_are_relative_to_the_reference_run_alongside():
    small, large = Toy(4), Toy(64)
    costs = relative_cost({"small": (small, batches()), "large": (large, batches())}, reference="small", repeats=1)
    assert costs["small"].train_speed == 1.0 and costs["small"].infer_speed == 1.0 and costs["small"].added == 0
    assert costs["large"].added == parameter_counts(large)[0] - parameter_counts(small)[0] == 60 * 10 + 60 * 10
    assert costs["large"].train_tokens_per_second > 0 and costs["large"].infer_tokens_per_second > 0
    assert not small.training and not large.training
    assert all(p.grad is None for p in large.parameters())          # timing leaves no gradients behind


def test_bad_inputs_are_named():
    toy = Toy(4)
    with pytest.raises(InputError, match="reference 'base'"):
        relative_cost({"toy": (toy, batches())}, reference="base")
    with pytest.raises(InputError, match="no batches"):
        relative_cost({"toy": (toy, [])}, reference="toy")
    with pytest.raises(InputError, match="needs labels"):
        relative_cost({"toy": (toy, [{"input_ids": torch.zeros(1, 2, dtype=torch.long)}])}, reference="toy")
    with pytest.raises(InputError, match="repeats"):
        relative_cost({"toy": (toy, batches())}, reference="toy", repeats=0)


def test_speed_is_per_example_so_a_longer_reading_of_the_same_sentences_is_slower(monkeypatch):
    clock = [0.0]                                   # a clock the models advance by their tokens: no real timing

    class Counted(Toy):
        def forward(self, input_ids, attention_mask=None, labels=None):
            clock[0] += input_ids.numel() * 1e-3
            return super().forward(input_ids, attention_mask, labels)

    monkeypatch.setattr("kbench.cost.time.perf_counter", lambda: clock[0])
    toy = Counted(8)
    short = batches()
    long = [{k: v.repeat(1, 8) for k, v in batch.items()} for batch in short]     # the same 4 rows, 8x the tokens
    costs = relative_cost({"short": (toy, short), "long": (toy, long)}, reference="short", repeats=2)
    assert costs["long"].infer_speed == pytest.approx(1 / 8) and costs["long"].train_speed == pytest.approx(1 / 8)
    assert costs["long"].infer_tokens_per_second == pytest.approx(costs["short"].infer_tokens_per_second)
    assert costs["long"].added == 0


def test_models_must_be_timed_on_the_same_examples():
    with pytest.raises(InputError, match="same examples"):
        relative_cost({"a": (Toy(4), batches(2)), "b": (Toy(4), batches(3))}, reference="a")


class Ticking(Toy):
    """A toy whose forward advances a fake clock by the seconds it is given, one value per call, and logs its name."""

    def __init__(self, name, clock, log, seconds):
        super().__init__(4)
        self.name, self.clock, self.log, self.seconds = name, clock, log, list(seconds)

    def forward(self, input_ids, attention_mask=None, labels=None):
        self.clock[0] += self.seconds.pop(0) if self.seconds else 1.0
        self.log.append(self.name)
        return super().forward(input_ids, attention_mask, labels)


def test_the_warm_up_round_is_not_timed_and_the_order_changes_between_rounds():
    clock, log = [0.0], []
    # one batch each; rounds: warm-up + 5 timed, train then inference. The plain model's warm-up call takes 100 s.
    plain = Ticking("plain", clock, log, [100.0] + [1.0] * 11)
    slow = Ticking("slow", clock, log, [2.0] * 12)
    costs = relative_cost({"plain": (plain, batches(1)), "slow": (slow, batches(1))}, "plain", repeats=5, seed=1,
                          clock=lambda: clock[0])
    assert costs["slow"].train_speed == pytest.approx(0.5) and costs["slow"].train_range == pytest.approx((0.5, 0.5))
    assert costs["slow"].measured(True) and costs["slow"].speed_text(True) == "0.50x [0.50, 0.50]"
    rounds = [tuple(log[i:i + 2]) for i in range(0, len(log), 2)]
    assert len(rounds) == 12 and {("plain", "slow"), ("slow", "plain")} <= set(rounds)   # neither always first


def test_a_ratio_whose_rounds_disagree_is_not_measured():
    clock, log = [0.0], []
    plain = Ticking("plain", clock, log, [1.0] * 12)
    noisy = Ticking("noisy", clock, log, [1.0, 1.0, 2.0, 1.0, 0.8, 1.0] * 2)
    costs = relative_cost({"plain": (plain, batches(1)), "noisy": (noisy, batches(1))}, "plain", repeats=5,
                          clock=lambda: clock[0])
    assert not costs["noisy"].measured(True) and costs["noisy"].speed_text(True).startswith("not measured")
    assert costs["plain"].measured(True)                      # the reference against itself: always 1.0
    one_round = relative_cost({"plain": (plain, batches(1))}, "plain", repeats=1, clock=lambda: clock[0])
    assert not one_round["plain"].measured(False)             # one round has no spread to judge
