"""Choosing pretraining text near a task: kNN-TAPT (Gururangan et al., ACL 2020, §5).

*Don't Stop Pretraining* augments task-adaptive pretraining with domain
sentences chosen for their nearness to the task's own: every task sentence and
every domain sentence is embedded (the paper uses VAMPIRE, a bag-of-words VAE;
any fixed sentence encoder plays its part here), and the ``k`` nearest domain
sentences of each task sentence, by cosine, join the task's text.
:func:`nearest_indices` is that choice on given vectors; :func:`sentence_vectors`
embeds texts with a frozen encoder (mean of its output states over real tokens).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from kbench.errors import InputError
from kbench.train import eval_mode


def _unit_rows(vectors, what: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2 or len(array) == 0:
        raise InputError(f"the {what} vectors must be a non-empty 2-D array, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError(f"{int((norms == 0).sum())} of the {what} vectors are zero: cosine is undefined for them")
    return array / norms


def neighbours(task_vectors, domain_vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(indices, cosines)``, each ``(tasks, k)``: every task row's ``k`` nearest domain rows, nearest first.

    Ties go to the lower domain index. The view of what kNN-TAPT chose
    (``notebooks/15_dont_stop_pretraining``) reads it directly.
    """
    task, domain = _unit_rows(task_vectors, "task"), _unit_rows(domain_vectors, "domain")
    if task.shape[1] != domain.shape[1]:
        raise InputError(f"task vectors have {task.shape[1]} dimensions, domain vectors {domain.shape[1]}")
    if not 1 <= k <= len(domain):
        raise InputError(f"k must be between 1 and the {len(domain)} domain sentences, got {k}")
    similarity = task @ domain.T
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


def nearest_indices(task_vectors, domain_vectors, k: int) -> list[int]:
    """Return the domain rows among the ``k`` nearest (cosine) of any task row: each chosen once, nearest first.

    Order: task row by task row, each row's neighbours from the nearest; a domain
    row already chosen for an earlier task row is not repeated (ties: lower index).
    """
    order, _ = neighbours(task_vectors, domain_vectors, k)
    chosen: dict[int, None] = {}
    for row in order:
        for index in row:
            chosen.setdefault(int(index), None)
    return list(chosen)


@torch.no_grad()
def sentence_vectors(encoder: torch.nn.Module, tokenizer, texts: Sequence[str], max_length: int = 64,
                     batch_size: int = 64) -> np.ndarray:
    """Return one vector per text: the mean of ``encoder``'s last hidden states over its real tokens (eval mode)."""
    if not texts:
        raise InputError("no texts to embed")
    device = next(encoder.parameters()).device
    rows = []
    with eval_mode(encoder):
        for first in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[first:first + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            rows.append(((states * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return np.concatenate(rows)
