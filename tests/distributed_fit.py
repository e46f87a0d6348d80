"""Run :func:`kbench.train.fit` in each process of a ``torchrun``/``accelerate launch`` job; write what it saw.

Used by ``tests/test_distributed.py``: ``python -m torch.distributed.run --standalone --nproc_per_node 2
tests/distributed_fit.py OUT``. Each process trains the same tiny classifier on the same
:class:`~kbench.train.Examples` (a collate that records the example indices of every batch it builds)
and writes ``OUT/rank<r>.pt``: its final weights, the indices of each batch it trained on, the
process count and its history's step count. With ``--pretrain CORPUS OUT [OBJECTIVE]`` each process runs
``kbench pretrain``'s :func:`~kbench.pretrain.run_pretraining` instead and writes the masks its collator drew.
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


class Recording:
    """A collator that records which positions of each batch it masked (MLM labels set), delegating the rest."""

    def __init__(self, inner):
        self.inner, self.masked = inner, []

    def __call__(self, sentences):
        batch = self.inner(sentences)
        self.masked.append((batch["labels"] != -100).tolist())
        return batch

    def get_state(self):
        return self.inner.get_state()

    def set_state(self, state):
        self.inner.set_state(state)


def pretrain_main(corpus: str, out: str, objective: str = "mlm") -> None:
    """``kbench pretrain``'s own code path (:func:`kbench.pretrain.run_pretraining`) in each process, recording the
    masks the rank's collator drew and a digest of torch's random state after its first forward (dropout's)."""
    import hashlib

    from accelerate import PartialState

    import kbench.pretrain as pipeline
    from kbench.models import load_objectives

    load_objectives()
    recorded, dropout = {}, []
    plain = pipeline.pretrain

    def recording(model, built, config, description="pretrain"):
        recorded["collate"] = model.collate = Recording(model.collate)
        handle = model.register_forward_hook(lambda *_: dropout.append(
            hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()))
        try:
            return plain(model, built, config, description)
        finally:
            handle.remove()
            model.collate = recorded["collate"].inner

    pipeline.pretrain = recording
    summary = pipeline.run_pretraining(corpus, base="tiny", objective=objective, steps=3, out=str(Path(out) / "model"),
                                       batch_size=4, max_length=24, seed=0, device="cpu", precision="no",
                                       checkpoint_every=0, progress=False)
    state = PartialState()
    torch.save({"masked": recorded["collate"].masked, "dropout": dropout, "summary": summary,
                "rank": state.process_index}, Path(out) / f"rank{state.process_index}.pt")


if __name__ == "__main__":
    if sys.argv[1] == "--pretrain":
        pretrain_main(*sys.argv[2:])
    else:
        main(sys.argv[1])
