"""Training-step cost of SKEP and KGLM, as ratios against the plain model each extends, measured in the same run.

1. SKEP's step (sentiment masking; word, polarity and pair losses) against random-token MLM's step on the same
   review batches, model and seed (:mod:`kbench.models.skep`); and the share of each step spent in ``collate``
   (target: <= 5%).
2. KGLM's step (mention type, new entity, parent and relation, copy) against the same LSTM without KG heads on
   the same linked documents (:mod:`kbench.models.kglm`).

Each ratio is the median [min, max] over ``--rounds`` alternating rounds of ``--steps`` steps at one torch thread;
a spread past 20% is printed as not measured (CHECKLIST 15).
Run: ``python benchmarks/bench_skep_kglm.py [--steps 200] [--rounds 5]`` (60-step rounds spread past 20%).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def timed_steps(model, batches, collate) -> tuple[float, float]:
    """Seconds of CPU for the steps (forward, backward, AdamW) and of them in ``collate``."""
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    model.train()
    total = collating = 0.0
    for examples in batches:
        start = time.process_time()
        batch = collate(examples)
        middle = time.process_time()
        model(**batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        end = time.process_time()
        total += end - start
        collating += middle - start
    return total, collating


def spread(ratios: list[float]) -> str:
    middle = statistics.median(ratios)
    text = f"{middle:.2f}x [{min(ratios):.2f}, {max(ratios):.2f}]"
    return text if (max(ratios) - min(ratios)) / middle <= 0.2 else text + " (spread > 20%: not measured)"


def skep_rounds(steps: int, rounds: int) -> None:
    from kbench.models.skep import pretrainer
    from kbench.profiles.skep import setup

    s = setup("smoke")
    rng = np.random.default_rng(0)
    corpus = s.corpora["mined"]
    batches = [[corpus[i] for i in rng.choice(len(corpus), s.chosen["batch_size"], replace=False)] for _ in range(steps)]
    models = {name: pretrainer(name, s.chosen["size"], s.vocab, 0) for name in ("random", "skep")}
    ratios, shares = [], {name: [] for name in models}
    for _ in range(rounds):
        seconds = {}
        for name, model in models.items():
            seconds[name], collating = timed_steps(model, batches, model.collate)
            shares[name].append(collating / seconds[name])
        ratios.append(seconds["random"] / seconds["skep"])
    print(f"SKEP step rate / random-token MLM's (review world, tiny, batch {s.chosen['batch_size']}): {spread(ratios)}")
    for name, values in shares.items():
        print(f"  collate share of a step, {name}: {statistics.median(values):.1%} [{min(values):.1%}, {max(values):.1%}]")


def kglm_rounds(steps: int, rounds: int) -> None:
    from kbench.profiles.kglm import setup

    s = setup("smoke")
    models = {"lstm": s.model(False), "kglm": s.model(True)}
    encoded = {name: list(model.dataset(s.world.train)) for name, model in models.items()}
    size = s.chosen["batch_size"]
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(s.world.train), size, replace=False) for _ in range(steps)]
    ratios = []
    for _ in range(rounds):
        seconds = {}
        for name, model in models.items():
            batches = [[encoded[name][i] for i in pick] for pick in picks]
            seconds[name], _ = timed_steps(model, batches, model.collate)
        ratios.append(seconds["lstm"] / seconds["kglm"])
    print(f"KGLM step rate / the same LSTM's without KG heads (linked world, batch {size}): {spread(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    skep_rounds(args.steps, args.rounds)
    kglm_rounds(args.steps, args.rounds)


if __name__ == "__main__":
    main()
