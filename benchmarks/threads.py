"""OpenMP's wait policy on a quiet and on a busy machine, as ratios against the default policy in the same run.

One fixed piece of work — fine-tuning plain BERT on the overview's linking world (2 MiniLM layers, 1 epoch of 32),
the kind of loop every smoke notebook runs — timed in a fresh process per measurement, since OpenMP reads its
environment once when torch loads it:

- ``default``: ``OMP_WAIT_POLICY`` unset in that process (kbench not imported before torch);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE``, what importing kbench sets (threads sleep while they wait);
- ``1 thread``: ``OMP_NUM_THREADS=1``, the other cure for a busy machine;

first on a quiet machine, then beside a second process that keeps every core busy with matrix products (another
notebook, a test run). Each row prints the median of ``--repeats`` runs and the ratio of the default's time to it
(above 1x: faster than the default). Run: ``python benchmarks/threads.py [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

WORK = """
import time, torch
from kbench.experiment import metrics_of
from kbench.head_to_head import entity_vectors, head_to_head_model
from kbench.profiles.overview import setup
from kbench.train import fit
s = setup("smoke", seed=0, epochs=1)
vectors, transe = entity_vectors(s)
model = head_to_head_model(len(s.labels), vectors, transe.entity_to_id, s.kg, s.base_model, "bert", seed=0,
                           **s.options)
data = [model.dataset(*split) for split in s.splits]
start = time.perf_counter()
fit(model, data[0], data[1], s.config, metric=next(iter(metrics_of(model).values())))
print(time.perf_counter() - start)
"""

#: Runs in the busy case: every core multiplies matrices until it is killed.
HOG = "import torch\nx = torch.randn(512, 512)\nwhile True:\n    x = torch.tanh(x @ x.T / 512)\n"

SETTINGS = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "1 thread": {"OMP_NUM_THREADS": "1"}}


def timed(extra: dict) -> float:
    """Return the seconds the work took in a fresh process with ``extra`` in its environment (kbench's own
    setting of the wait policy is bypassed: the process imports torch before kbench)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")} | extra
    code = "import torch\n" + WORK     # torch first: OpenMP starts with exactly this environment
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; the work: 1 epoch of the overview's plain BERT (median of {args.repeats})")
    for load in ("quiet", "busy"):
        hog = subprocess.Popen([sys.executable, "-c", HOG]) if load == "busy" else None
        try:
            if hog:
                time.sleep(2)
            seconds = {name: statistics.median(timed(extra) for _ in range(args.repeats))
                       for name, extra in SETTINGS.items()}
        finally:
            if hog:
                hog.kill()
                hog.wait()
        for name, value in seconds.items():
            print(f"{load:<6} {name:<9} {value:6.2f} s   {seconds['default'] / value:5.2f}x the default's speed")


if __name__ == "__main__":
    main()
