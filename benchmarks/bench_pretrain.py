"""Pretraining throughput per objective, as ratios against plain MLM measured in the same run.

1. Tokens per CPU second of a pretraining step for every objective of ``kbench.pretrain.OBJECTIVES``
   (and any extra objective module given), on the same corpus, model size, batches and seed,
   divided by plain token-masking MLM's (target for masking-only objectives: >= 0.9x).
2. The share of a training step spent masking in ``collate`` (target: <= 5%), per objective.
3. For objectives that encode more than the MLM text (KEPLER's entity descriptions, ``ke_mask``), the
   tokens/s counting those extra tokens too; the first column counts the MLM text only, so it is the
   rate at which the *text* is read, the second the rate of everything the encoder reads.

``mlm_nsp`` is LIBERT's baseline (``kbench.models.libert``: MLM + BERT's next sentence prediction), so
NSP's cost is seen apart from LRC's. Tokens/s counts the text tokens of a step; LIBERT also encodes an
LRC batch of word pairs (``[CLS] w1 [SEP] w2 [SEP]``) per step, which its tokens/s does not count.
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
from kbench.models import load_objectives
from kbench.pretrain import OBJECTIVES, build_corpus, pretrain
from kbench.text.mentions import MentionDetector
from kbench.train import TrainConfig


def _mlm_nsp(size: str, steps: int, seed: int = 0):
    from kbench.models.libert import pretrainer

    return pretrainer(size, "bert", seed=seed)


def _pn(size: str, steps: int, seed: int = 0):
    from kbench.models.symmetric import pretrainer

    return pretrainer("pn", size, seed=seed)


#: Objectives measured beside OBJECTIVES: name -> (units, builder), as OBJECTIVES. ``pn`` is the symmetric
#: paper's BERT-PN (MLM + next / previous / other document).
EXTRA = {"mlm_nsp": (("word",), _mlm_nsp), "pn": (("word",), _pn)}
load_objectives()          # every paper's objective (StructBERT's among them) in OBJECTIVES


class TimedCollate:
    """A model's collator, timed: the same state and the same masks, plus the seconds spent in it."""

    def __init__(self, collate):
        self.collate, self.seconds, self.extra_tokens = collate, 0.0, 0

    def __getattr__(self, attribute):
        return getattr(self.collate, attribute)

    def __call__(self, batch):
        start = time.process_time()
        out = self.collate(batch)
        self.seconds += time.process_time() - start
        if "ke_mask" in out:                        # KEPLER's descriptions: encoded every step as well
            self.extra_tokens += int(out["ke_mask"].sum())
        return out


def prepare(name: str, size: str, corpus_text, steps: int):
    """Return the objective's model (its collator timed) and its corpus."""
    units, build = OBJECTIVES[name] if name in OBJECTIVES else EXTRA[name]
    model = build(size, steps, seed=0)
    detector = MentionDetector(corpus_text.entity_names) if "entity" in units else None
    corpus = build_corpus(corpus_text.texts, model.tokenizer, units, detector, corpus_text.language)
    model.collate = TimedCollate(model.collate)
    return model, corpus


def measure(model, corpus, steps: int, batch_size: int) -> tuple[float, float, float]:
    """Return (text tokens per CPU second, share of the CPU time in collate, all tokens per CPU second) of
    ``steps`` more steps of ``model``.

    CPU time of this process, not wall time: on a machine shared with other work, wall time swings with
    their load while CPU time stays close to the work done, so the ratios hold there too.
    """
    model.collate.seconds, model.collate.extra_tokens = 0.0, 0
    start = time.process_time()
    history = pretrain(model, corpus, TrainConfig(max_steps=steps, batch_size=batch_size, learning_rate=1e-4,
                                                  device="cpu", progress=False))
    seconds = time.process_time() - start
    return (history.tokens / seconds, model.collate.seconds / seconds,
            (history.tokens + model.collate.extra_tokens) / seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--objectives", default=",".join([*OBJECTIVES, *EXTRA]))
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
                      "collate_share": statistics.median(r[1] for r in rows),
                      "all_tokens_per_second": statistics.median(r[2] for r in rows)} for name, rows in runs.items()}
    reference = results["mlm"]["tokens_per_second"] if "mlm" in results else None
    print(f"pretraining throughput, size {args.size}, batch {args.batch_size}, median of {args.rounds} x {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'objective':<12} {'tok/CPU s':>10} {'vs mlm: median [min, max] over rounds':>38} {'collate share':>14} "
          f"{'all tok/CPU s':>14}")
    for name, result in results.items():
        ratio = "-"
        if reference:                                        # each round's ratio against mlm of the same round
            ratios = [own[0] / base[0] for own, base in zip(runs[name], runs["mlm"])]
            middle, low, high = statistics.median(ratios), min(ratios), max(ratios)
            ratio = f"{middle:.2f}x [{low:.2f}, {high:.2f}]"
            if (high - low) / middle > 0.2:
                ratio += " (spread > 20%: not measured)"
        print(f"{name:<12} {result['tokens_per_second']:>10.0f} {ratio:>38} {result['collate_share']:>13.1%} "
              f"{result['all_tokens_per_second']:>14.0f}")
    print("targets: masking-only objectives >= 0.90x mlm; collate <= 5% of a step")


if __name__ == "__main__":
    main()
