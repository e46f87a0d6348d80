"""The one training loop: seeded, deterministic on CPU, mixed precision on CUDA, early stopping on dev.

Written on Hugging Face Accelerate, so the same notebook code runs on a CPU, a
GPU, or several under ``accelerate launch``. A model is any ``nn.Module`` whose
``forward(**batch)`` returns a dict with ``logits`` and, given ``labels``,
``loss``. Data is either a dict of equally long tensors, or a
``torch.utils.data.Dataset`` of compact examples that the model's ``collate``
turns into a batch dict (K-BERT builds its visible matrix there, per batch).
"""
from __future__ import annotations

import contextlib

import copy
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from kbench import BATCH
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
    full precision), ``no``, ``bf16`` or ``fp16``. ``max_steps`` trains for
    that many optimizer steps (pretraining's budget; ``epochs`` is then ignored
    and the learning-rate schedule spans the steps). ``checkpoint_dir`` with
    ``checkpoint_every`` saves a resumable checkpoint every that many steps; a
    later ``fit`` with the same data and configuration resumes from it and ends
    with the same weights as a run never interrupted (see :func:`fit`).
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
    progress: bool | None = True   # None: shown live, hidden in a batch run (`kbench run` sets KBENCH_BATCH=1)
    max_steps: int | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0


@dataclass
class History:
    """What happened while fitting: loss and learning rate per step, dev metric per epoch, the best epoch."""

    train_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    dev_metric: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_dev: float = float("-inf")
    seconds: float = 0.0
    steps: int = 0
    tokens: int = 0                     # real (non-padding) input tokens trained on, this process
    resumed_from: int = 0               # the step a checkpoint resumed from (0: a fresh run)

    @property
    def tokens_per_second(self) -> float:
        """Return the training throughput of this process: real input tokens per second of the steps run here."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


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


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Run the block with ``model`` in eval mode (no dropout), then put back the mode it had, even on an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def evaluate(model: torch.nn.Module, data, metric: Callable[[torch.Tensor, torch.Tensor], float] = accuracy,
             batch_size: int = 64, device: str = "auto", precision: str = "auto",
             collate: Callable | None = None) -> float:
    """Return ``metric(logits, labels)`` of the model on ``data``."""
    logits, labels = predict_with_labels(model, data, batch_size, device, precision, collate)
    if labels is None:
        raise InputError("evaluate() needs data with 'labels'")
    return metric(logits, labels)


def show_progress(progress: bool | None) -> bool:
    """Whether to draw a progress bar: ``progress`` when given; ``None`` draws it in a live session (a reader
    waiting on a cell sees it move, and it clears when done) and not in a batch run (:data:`BATCH` set)."""
    return progress if progress is not None else os.environ.get(BATCH) != "1"


def fit(model: torch.nn.Module, train, dev=None, config: TrainConfig | None = None,
        metric: Callable[[torch.Tensor, torch.Tensor], float] = accuracy, description: str = "fit",
        collate: Callable | None = None) -> History:
    """Train ``model`` with AdamW and linear warm-up/decay; keep the weights of the best dev epoch.

    ``train``/``dev`` are dicts of tensors or Datasets of examples batched by
    ``collate`` (default: the model's own ``collate``). Returns the
    :class:`History`; the model ends holding its best-on-dev weights, unwrapped.

    Resuming: with ``config.checkpoint_dir`` set, a checkpoint found there is
    loaded (weights, optimizer, schedule, history and random states), the
    interrupted epoch's batches are drawn again in the same order (through
    ``collate``, so a masking collator's random state replays too; a collate
    object with ``get_state``/``set_state`` has that state saved at each epoch
    start) and skipped, and training carries on. Under several processes
    (``torchrun``, ``accelerate launch``: Accelerate's DDP), every process
    restores the same checkpoint, written by the main process.
    """
    config = config or TrainConfig()
    collate = collate or getattr(model, "collate", None)
    if isinstance(train, dict) and "labels" not in train:
        raise InputError("fit() needs training data with 'labels'")
    if config.max_steps is not None and config.max_steps < 1:
        raise InputError(f"max_steps must be at least 1, got {config.max_steps}")
    if config.checkpoint_every < 0 or (config.checkpoint_every and not config.checkpoint_dir):
        raise InputError("checkpoint_every needs a checkpoint_dir and must not be negative")
    seed_everything(config.seed)
    accelerator = accelerator_for(config.device, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    loader = _loader(train, config.batch_size, collate, shuffle=True, generator=generator)
    if len(loader) == 0:
        raise InputError("no training examples")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=_can_fuse(model, accelerator.device))
    prepared, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    # Steps are this process's optimizer steps; the schedule is stepped once per step (not prepared by
    # Accelerate, which would step it once per process), so it spans the run whatever the process count.
    per_epoch = len(loader)
    total = config.max_steps if config.max_steps is not None else config.epochs * per_epoch
    epochs = -(-total // per_epoch) if config.max_steps is not None else config.epochs
    warm = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
    history, best_state, stale = History(), None, 0
    saver = _Checkpoints(config, accelerator, generator, collate)
    resume = saver.load(accelerator.unwrap_model(prepared), optimizer, schedule)
    if resume is not None:
        history = resume["history"]
        history.resumed_from = history.steps
        best_state, stale = resume["best_state"], resume["stale"]
    first_epoch, skip = (resume["epoch"], resume["batch"]) if resume is not None else (0, 0)
    start, done = time.perf_counter(), history.seconds
    bar = tqdm(total=total, initial=history.steps, desc=description, disable=not show_progress(config.progress),
               leave=False)
    try:
        for epoch in range(first_epoch, epochs):
            prepared.train()
            if skip:
                saver.restore_epoch_start(resume)
            else:
                saver.mark_epoch_start()
            for index, batch in enumerate(loader):
                if index < skip:
                    continue        # drawn again (same order, same masks) and skipped: the checkpoint holds them
                if skip:
                    saver.restore_random_state(resume)
                    skip = 0
                history.learning_rate.append(optimizer.param_groups[0]["lr"])
                loss = prepared(**batch)["loss"]
                accelerator.backward(loss)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                history.train_loss.append(loss.item())
                history.steps += 1
                history.tokens += _tokens_in(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if saver.due(history.steps) and history.steps < total:
                    history.seconds = done + time.perf_counter() - start
                    saver.save(accelerator.unwrap_model(prepared), optimizer, schedule, history, epoch, index + 1,
                               best_state, stale)
                if history.steps >= total:
                    break
            skip = 0
            if dev is None:
                if history.steps >= total:
                    break
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
            if history.steps >= total:
                break
    finally:
        bar.close()
        accelerator.unwrap_model(prepared, keep_fp32_wrapper=False)  # hand the model back without autocast
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = done + time.perf_counter() - start
    saver.finish()
    return history


def _tokens_in(batch: dict) -> int:
    """Return the real input tokens of a batch: its attention mask's ones, else its input ids' count."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    if "input_ids" in batch:
        return int(batch["input_ids"].numel())
    return 0


class _Checkpoints:
    """Resumable checkpoints of a ``fit``: one file, written atomically by the main process."""

    NAME = "checkpoint.pt"

    def __init__(self, config: TrainConfig, accelerator: Accelerator, generator: torch.Generator, collate):
        self.config, self.accelerator, self.generator = config, accelerator, generator
        self.collate = collate if hasattr(collate, "get_state") and hasattr(collate, "set_state") else None
        self.path = None if not config.checkpoint_dir else os.path.join(config.checkpoint_dir, self.NAME)
        self.epoch_start: dict | None = None

    def due(self, step: int) -> bool:
        return bool(self.path and self.config.checkpoint_every and step % self.config.checkpoint_every == 0)

    def mark_epoch_start(self) -> None:
        """Remember the random states that decide this epoch's order and masks."""
        self.epoch_start = {"generator": self.generator.get_state(),
                            "collate": self.collate.get_state() if self.collate else None}

    def restore_epoch_start(self, resume: dict) -> None:
        self.epoch_start = resume["epoch_start"]
        self.generator.set_state(self.epoch_start["generator"])
        if self.collate is not None and self.epoch_start["collate"] is not None:
            self.collate.set_state(self.epoch_start["collate"])

    def restore_random_state(self, resume: dict) -> None:
        """Put back the process's random states of the moment the checkpoint was taken (dropout continues)."""
        states = resume["random"]
        random.setstate(states["python"])
        np.random.set_state(states["numpy"])
        torch.set_rng_state(states["torch"])
        if torch.cuda.is_available() and states.get("cuda") is not None:
            torch.cuda.set_rng_state_all(states["cuda"])

    def save(self, model, optimizer, schedule, history: History, epoch: int, batch: int, best_state, stale: int) -> None:
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "history": history, "epoch": epoch, "batch": batch,
                     "epoch_start": self.epoch_start, "best_state": best_state, "stale": stale,
                     "random": {"python": random.getstate(), "numpy": np.random.get_state(),
                                "torch": torch.get_rng_state(),
                                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                     "processes": self.accelerator.num_processes}
            temporary = self.path + ".tmp"
            torch.save(state, temporary)
            os.replace(temporary, self.path)   # a kill mid-write leaves the previous checkpoint whole
        self.accelerator.wait_for_everyone()

    def load(self, model, optimizer, schedule) -> dict | None:
        if not self.path or not os.path.isfile(self.path):
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        if state["processes"] != self.accelerator.num_processes:
            raise InputError(f"the checkpoint in {self.config.checkpoint_dir} was written by "
                             f"{state['processes']} process(es); resume it with the same number")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        return state

    def finish(self) -> None:
        """Remove the checkpoint of a run that ended: its result is the model itself."""
        self.accelerator.wait_for_everyone()
        if self.path and self.accelerator.is_main_process and os.path.isfile(self.path):
            os.remove(self.path)
            if os.path.isfile(self.path + ".tmp"):     # a write a kill interrupted
                os.remove(self.path + ".tmp")
            if not os.listdir(os.path.dirname(self.path)):
                os.rmdir(os.path.dirname(self.path))


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with ``count`` torch threads (0: leave them), then put the number back. Tiny models' operations
    are too small for a second thread to pay for waking it (kbench sets OpenMP's passive wait): one thread trained
    DeBERTa's ``micro`` models about 1.8x faster on two quiet cores (notebook 16's smoke profile)."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
