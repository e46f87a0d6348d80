"""The one training loop: seeded, deterministic on CPU, mixed precision on CUDA, early stopping on dev.

Written on Hugging Face Accelerate, so the same notebook code runs on a CPU, a
GPU, or several under ``accelerate launch``. A model is any ``nn.Module`` whose
``forward(**batch)`` returns a dict with ``logits`` and, given ``labels``,
``loss``. Data is either a dict of equally long tensors, or a
``torch.utils.data.Dataset`` of compact examples that the model's ``collate``
turns into a batch dict (K-BERT builds its visible matrix there, per batch).
"""
from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from kbench.encoders import resolve_device
from kbench.errors import InputError

PRECISIONS = ("auto", "no", "bf16", "fp16")


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


class Examples(Dataset):
    """A list of a model's compact examples, batched by the model's ``collate`` (what ``model.dataset`` returns)."""

    def __init__(self, examples: list):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int):
        return self.examples[index]


def labelled_examples(texts: Sequence, labels: Sequence[int] | None, build: Callable[[int, object], object],
                      noun: str = "texts") -> Examples:
    """Return ``Examples`` of ``build(index, text)`` for each text, each with its ``label`` (None without labels).

    The shared body of the models' ``dataset``: the counts are checked before any example is built.
    """
    if labels is not None and len(labels) != len(texts):
        raise InputError(f"{len(texts)} {noun} but {len(labels)} labels")
    examples = []
    for index, text in enumerate(texts):
        example = build(index, text)
        example.label = None if labels is None else int(labels[index])
        examples.append(example)
    return Examples(examples)


def pad_rows(rows: Sequence[np.ndarray], value: int, minimum: int = 0) -> np.ndarray:
    """Return the 1-D ``rows`` as one int64 matrix, right-padded with ``value`` to the longest (at least ``minimum``)."""
    if not len(rows):
        raise InputError("cannot collate an empty batch")
    out = np.full((len(rows), max(minimum, max(len(row) for row in rows))), value, np.int64)
    for index, row in enumerate(rows):
        out[index, :len(row)] = row
    return out


def token_batch(rows: Sequence[np.ndarray], pad_id: int) -> dict[str, np.ndarray]:
    """Return ``input_ids`` padded with ``pad_id`` and the ``attention_mask`` of their real tokens (NumPy)."""
    ids = pad_rows(rows, pad_id)
    lengths = np.asarray([len(row) for row in rows])
    return {"input_ids": ids, "attention_mask": (np.arange(ids.shape[1]) < lengths[:, None]).astype(np.int64)}


@dataclass
class TrainConfig:
    """How to fit: epochs, batch size, learning rate, patience (epochs without dev gain), device, precision, seed.

    ``precision`` is ``auto`` (bf16 on a CUDA device that supports it, else
    full precision), ``no``, ``bf16`` or ``fp16``.
    """

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    patience: int = 2
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    progress: bool = True


@dataclass
class History:
    """What happened while fitting: loss and learning rate per step, dev metric per epoch, the best epoch."""

    train_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
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


_CURRENT: tuple[tuple[str, str], Accelerator] | None = None


def accelerator_for(device: str = "auto", precision: str = "auto") -> Accelerator:
    """Return this process's accelerator for ``device`` and ``precision``, made once per pair in a row.

    Accelerate keeps one state per process and refuses a second accelerator
    with another device or precision; switching (a bf16 GPU fit, then a CPU one)
    resets that state first.
    """
    global _CURRENT
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    resolved = resolve_device(device)
    if precision == "auto":
        precision = "bf16" if resolved.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    key = (str(resolved), precision)
    if _CURRENT is not None and _CURRENT[0] == key:
        return _CURRENT[1]
    if _CURRENT is not None:
        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=resolved.type == "cpu", mixed_precision=precision)
    _CURRENT = (key, accelerator)
    return accelerator


def _can_fuse(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether AdamW's fused kernel applies: every parameter a floating tensor, on a CPU or CUDA device.

    On 2 CPU cores the fused step of a 22M-parameter encoder is ~6x faster than
    the per-tensor one (0.04 s vs 0.22 s), a third of each training step.
    """
    return device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in model.parameters())


def _loader(data, batch_size: int, collate: Callable | None, shuffle: bool = False,
            generator: torch.Generator | None = None) -> DataLoader:
    """Return a loader over a dict of tensors (stacked rows) or a dataset of examples (``collate``)."""
    if isinstance(data, dict):
        return DataLoader(TensorDict(data), batch_size=batch_size, shuffle=shuffle, generator=generator)
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a dict of tensors or a torch Dataset, not {type(data).__name__}")
    if collate is None:
        raise InputError("a Dataset of examples needs a collate function (the model's `collate`)")
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)


def _pad_cat(tensors: list[torch.Tensor], value: float) -> torch.Tensor:
    """Concatenate batches along dim 0, padding dim 1 (per-token outputs of different lengths) with ``value``."""
    if tensors[0].dim() < 2 or len({t.shape[1] for t in tensors}) == 1:
        return torch.cat(tensors)
    width = max(t.shape[1] for t in tensors)
    return torch.cat([torch.nn.functional.pad(t, [0, 0] * (t.dim() - 2) + [0, width - t.shape[1]], value=value)
                      for t in tensors])


@torch.no_grad()
def predict_with_labels(model: torch.nn.Module, data, batch_size: int = 64, device: str = "auto",
                        precision: str = "auto", collate: Callable | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return the model's logits for every example of ``data`` and the labels of the same batches (on the CPU).

    Per-token outputs of batches of different lengths are padded (labels with
    -100). The model is moved, not prepared: nothing is wrapped around it.
    """
    accelerator = accelerator_for(device, precision)
    collate = collate or getattr(model, "collate", None)
    loader = _loader(data, batch_size, collate)
    was_training = model.training
    model.to(accelerator.device).eval()
    logits, labels = [], []
    try:
        with accelerator.autocast():
            for batch in loader:
                if "labels" in batch:
                    labels.append(batch.pop("labels"))
                logits.append(model(**{k: v.to(accelerator.device) for k, v in batch.items()})["logits"].float().cpu())
    finally:
        model.train(was_training)
    if not logits:
        raise InputError("no examples to predict")
    return _pad_cat(logits, 0.0), (_pad_cat(labels, -100) if labels else None)


def predict(model: torch.nn.Module, data, batch_size: int = 64, device: str = "auto", precision: str = "auto",
            collate: Callable | None = None) -> torch.Tensor:
    """Return the model's logits for every example of ``data`` (on the CPU)."""
    return predict_with_labels(model, data, batch_size, device, precision, collate)[0]


def evaluate(model: torch.nn.Module, data, metric: Callable[[torch.Tensor, torch.Tensor], float] = accuracy,
             batch_size: int = 64, device: str = "auto", precision: str = "auto",
             collate: Callable | None = None) -> float:
    """Return ``metric(logits, labels)`` of the model on ``data``."""
    logits, labels = predict_with_labels(model, data, batch_size, device, precision, collate)
    if labels is None:
        raise InputError("evaluate() needs data with 'labels'")
    return metric(logits, labels)


def fit(model: torch.nn.Module, train, dev=None, config: TrainConfig | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], float] = accuracy, description: str = "fit",
        collate: Callable | None = None) -> History:
    """Train ``model`` with AdamW and linear warm-up/decay; keep the weights of the best dev epoch.

    ``train``/``dev`` are dicts of tensors or Datasets of examples batched by
    ``collate`` (default: the model's own ``collate``). Returns the
    :class:`History`; the model ends holding its best-on-dev weights, unwrapped.
    """
    config = config or TrainConfig()
    collate = collate or getattr(model, "collate", None)
    if isinstance(train, dict) and "labels" not in train:
        raise InputError("fit() needs training data with 'labels'")
    seed_everything(config.seed)
    accelerator = accelerator_for(config.device, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    loader = _loader(train, config.batch_size, collate, shuffle=True, generator=generator)
    if len(loader) == 0:
        raise InputError("no training examples")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=_can_fuse(model, accelerator.device))
    total = config.epochs * len(loader)
    warm = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
    prepared, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    history, best_state, stale = History(), None, 0
    start = time.perf_counter()
    bar = tqdm(total=total, desc=description, disable=not config.progress, leave=False)
    try:
        for epoch in range(config.epochs):
            prepared.train()
            for batch in loader:
                history.learning_rate.append(optimizer.param_groups[0]["lr"])
                loss = prepared(**batch)["loss"]
                accelerator.backward(loss)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                history.train_loss.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if dev is None:
                continue
            score = evaluate(model, dev, metric, device=config.device, precision=config.precision, collate=collate)
            history.dev_metric.append(score)
            if score > history.best_dev:
                history.best_dev, history.best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(accelerator.unwrap_model(prepared).state_dict())
            else:
                stale += 1
                if stale >= config.patience:
                    break
    finally:
        bar.close()
        accelerator.unwrap_model(prepared, keep_fp32_wrapper=False)  # hand the model back without autocast
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history
