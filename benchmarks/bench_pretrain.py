"""Pretraining throughput per objective, as ratios against plain MLM measured in the same run.

1. Tokens per second of a pretraining step for every objective of ``kbench.pretrain.OBJECTIVES``
   (and any extra objective module given), on the same corpus, model size, batches and seed,
   divided by plain token-masking MLM's (target for masking-only objectives: >= 0.9x).
2. The share of a training step spent masking in ``collate`` (target: <= 5%), per objective.

The corpus is the knowledge world's facts (``kbench.data.corpora``: ``world``), whose words,
noun phrases and KG mentions give every strategy its units (and ``wklm`` its typed mentions: the
world's entities typed by their roles). WKLM predicts 5% of the tokens outside mentions where MLM
predicts 15% of all, so its step is cheaper wherever the vocabulary softmax weighs (a ratio above 1x).
Run: ``python benchmarks/bench_pretrain.py [--size tiny|mini] [--steps 60] [--batch-size 32]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from kbench.data.corpora import pretraining_text
from kbench.pretrain import OBJECTIVES, build_corpus, pretrain
from kbench.text.mentions import MentionDetector
from kbench.train import TrainConfig


class TimedCollate:
    """A model's collator, timed: the same state and the same masks, plus the seconds spent in it."""

    def __init__(self, collate):
        self.collate, self.seconds = collate, 0.0

    def __getattr__(self, attribute):
        return getattr(self.collate, attribute)

    def __call__(self, batch):
        start = time.perf_counter()
        out = self.collate(batch)
        self.seconds += time.perf_counter() - start
        return out


def prepare(name: str, size: str, corpus_text, steps: int):
    """Return the objective's model (its collator timed) and its corpus."""
    units, build = OBJECTIVES[name]
    model = build(size, steps, seed=0)
    detector = MentionDetector(corpus_text.entity_names) if "entity" in units else None
    corpus = build_corpus(corpus_text.texts, model.tokenizer, units, detector, corpus_text.language)
    model.collate = TimedCollate(model.collate)
    return model, corpus


def measure(model, corpus, steps: int, batch_size: int) -> tuple[float, float]:
    """Return (tokens/s, share of the time in collate) of ``steps`` more steps of ``model``."""
    model.collate.seconds = 0.0
    history = pretrain(model, corpus, TrainConfig(max_steps=steps, batch_size=batch_size, learning_rate=1e-4,
                                                  device="cpu", progress=False))
    return history.tokens_per_second, model.collate.seconds / history.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    text = pretraining_text("world")
    names = [n for n in args.objectives.split(",") if n]
    prepared = {name: prepare(name, args.size, text, args.steps) for name in names}
    for model, corpus in prepared.values():
        measure(model, corpus, 5, args.batch_size)          # warm-up: allocator, kernels
    runs = {name: [] for name in names}
    for _ in range(args.rounds):                             # interleaved, so a busy moment hits every objective
        for name, (model, corpus) in prepared.items():
            runs[name].append(measure(model, corpus, args.steps, args.batch_size))
    results = {name: {"tokens_per_second": statistics.median(r[0] for r in rows),
                      "collate_share": statistics.median(r[1] for r in rows)} for name, rows in runs.items()}
    reference = results["mlm"]["tokens_per_second"] if "mlm" in results else None
    print(f"pretraining throughput, size {args.size}, batch {args.batch_size}, median of {args.rounds} x {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'objective':<12} {'tokens/s':>10} {'vs mlm':>8} {'collate share':>14}")
    for name, result in results.items():
        ratio = f"{result['tokens_per_second'] / reference:.2f}x" if reference else "-"
        print(f"{name:<12} {result['tokens_per_second']:>10.0f} {ratio:>8} {result['collate_share']:>13.1%}")
    print("targets: masking-only objectives >= 0.90x mlm; collate <= 5% of a step")


if __name__ == "__main__":
    main()
