"""Run :func:`kbench.train.fit` in each process of a ``torchrun``/``accelerate launch`` job; write what it saw.

Used by ``tests/test_distributed.py``: ``python -m torch.distributed.run --standalone --nproc_per_node 2
tests/distributed_fit.py OUT``. Each process trains the same tiny classifier on the same
:class:`~kbench.train.Examples` (a collate that records the example indices of every batch it builds)
and writes ``OUT/rank<r>.pt``: its final weights, the indices of each batch it trained on, the
process count and its history's step count.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from kbench.train import Examples, TrainConfig, fit

EXAMPLES, BATCH, EPOCHS = 64, 8, 3      # 64 = 4 x (2 processes x 8): every process gets whole, equal batches


@dataclass
class Example:
    index: int
    x: torch.Tensor
    label: int


class Classifier(nn.Module):
    """A linear classifier whose ``collate`` records the indices of the examples in each batch it builds."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(4, 2)
        self.seen: list[list[int]] = []

    def collate(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        self.seen.append([e.index for e in examples])
        return {"x": torch.stack([e.x for e in examples]), "labels": torch.tensor([e.label for e in examples])}

    def forward(self, x, labels=None):
        logits = self.layer(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def examples(n: int = EXAMPLES) -> Examples:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=generator)
    return Examples([Example(i, x[i], int(x[i, 0] > 0)) for i in range(n)])


def main(out: str) -> None:
    from accelerate import PartialState

    model = Classifier()
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, learning_rate=0.05, device="cpu", precision="no",
                         progress=False)
    history = fit(model, examples(), None, config)
    state = PartialState()      # after fit: a PartialState() made first, without cpu=True, would see no DDP on a CPU
    Path(out).mkdir(parents=True, exist_ok=True)
    torch.save({"weights": {k: v.detach().clone() for k, v in model.state_dict().items()}, "seen": model.seen,
                "processes": state.num_processes, "rank": state.process_index, "steps": history.steps,
                "backend": str(state.backend)},
               Path(out) / f"rank{state.process_index}.pt")


if __name__ == "__main__":
    main(sys.argv[1])
