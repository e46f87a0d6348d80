"""The one training loop: seeded, deterministic on CPU, mixed precision on CUDA, early stopping on dev.

Written on Hugging Face Accelerate, so the same notebook code runs on a CPU, a
GPU, or several under ``accelerate launch``. A model is any ``nn.Module`` whose
``forward(**batch)`` returns a dict with ``logits`` and, given ``labels``,
``loss``; data is a dict of equally long tensors (what ``encode`` returns).
"""
from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from kbench.encoders import resolve_device
from kbench.errors import InputError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and make CPU kernels deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


class TensorDict(Dataset):
    """A dataset over a dict of tensors that share their first dimension."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        sizes = {name: len(t) for name, t in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise InputError(f"all inputs must have the same length, got {sizes}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: t[index] for name, t in self.tensors.items()}


@dataclass
class TrainConfig:
    """How to fit: epochs, batch size, learning rate, patience (epochs without dev gain), device, seed."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    patience: int = 2
    device: str = "auto"
    seed: int = 0
    progress: bool = True


@dataclass
class History:
    """What happened while fitting: losses per step, dev metric per epoch, the best epoch."""

    train_loss: list[float] = field(default_factory=list)
    dev_metric: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_dev: float = float("-inf")
    seconds: float = 0.0


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the fraction of rows whose argmax equals the label (tokens labelled -100 are skipped)."""
    predictions = logits.argmax(-1)
    keep = labels != -100
    if not keep.any():
        raise InputError("no labelled examples to score")
    return (predictions[keep] == labels[keep]).float().mean().item()


def _accelerator(device: str) -> Accelerator:
    resolved = resolve_device(device)
    precision = "bf16" if resolved.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    return Accelerator(cpu=resolved.type == "cpu", mixed_precision=precision)


def _can_fuse(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether AdamW's fused kernel applies: every parameter a floating tensor, on a CPU or CUDA device.

    On 2 CPU cores the fused step of a 22M-parameter encoder is ~6x faster than
    the per-tensor one (0.04 s vs 0.22 s), a third of each training step.
    """
    return device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in model.parameters())


@torch.no_grad()
def predict(model: torch.nn.Module, data: dict[str, torch.Tensor], batch_size: int = 64,
            device: str = "auto") -> torch.Tensor:
    """Return the model's logits for every example of ``data`` (on the CPU)."""
    accelerator = _accelerator(device)
    model = accelerator.prepare(model)
    model.eval()
    inputs = {k: v for k, v in data.items() if k != "labels"}
    loader = DataLoader(TensorDict(inputs), batch_size=batch_size)
    outputs = [model(**{k: v.to(accelerator.device) for k, v in batch.items()})["logits"].float().cpu()
               for batch in loader]
    return torch.cat(outputs)


def evaluate(model: torch.nn.Module, data: dict[str, torch.Tensor],
             metric: Callable[[torch.Tensor, torch.Tensor], float] = accuracy, batch_size: int = 64,
             device: str = "auto") -> float:
    """Return ``metric(logits, labels)`` of the model on ``data``."""
    if "labels" not in data:
        raise InputError("evaluate() needs data with 'labels'")
    return metric(predict(model, data, batch_size, device), data["labels"])


def fit(model: torch.nn.Module, train: dict[str, torch.Tensor], dev: dict[str, torch.Tensor] | None = None,
        config: TrainConfig | None = None, metric: Callable[[torch.Tensor, torch.Tensor], float] = accuracy,
        description: str = "fit") -> History:
    """Train ``model`` with AdamW and linear warm-up/decay; keep the weights of the best dev epoch.

    Returns the :class:`History`; the model ends holding its best-on-dev weights.
    """
    import time

    config = config or TrainConfig()
    if "labels" not in train:
        raise InputError("fit() needs training data with 'labels'")
    seed_everything(config.seed)
    accelerator = _accelerator(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(TensorDict(train), batch_size=config.batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=_can_fuse(model, accelerator.device))
    total = config.epochs * len(loader)
    warm = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    history, best_state, stale = History(), None, 0
    start = time.perf_counter()
    bar = tqdm(total=total, desc=description, disable=not config.progress, leave=False)
    for epoch in range(config.epochs):
        model.train()
        for batch in loader:
            loss = model(**batch)["loss"]
            accelerator.backward(loss)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            history.train_loss.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if dev is None:
            continue
        score = evaluate(model, dev, metric, device=config.device)
        history.dev_metric.append(score)
        if score > history.best_dev:
            history.best_dev, history.best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    bar.close()
    if best_state is not None:
        accelerator.unwrap_model(model).load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history
