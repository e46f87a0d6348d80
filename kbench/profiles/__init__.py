"""Profiles are data: each paper's ``smoke`` and ``full`` choices, returned by one call.

A notebook's cells must read the same in both profiles (DESIGN.md, "Profiles,
not forks"): what differs between them — the data, the KG, the sizes, the
training configuration — lives here, one module per paper, each with a table
of choices (``CHOICES[profile]``) and one ``setup(profile, seed=..., base_model=...,
data_dir=..., device=..., **overrides)`` that loads what the table names and
returns a :class:`Setup` (a paper subclasses it with fields of its own). The
notebook calls ``setup`` once in its first code cell and then only reads it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kbench.errors import InputError, UnknownNameError

PROFILES = ("smoke", "full")


def check_profile(profile: str) -> str:
    """Return ``profile`` when it is ``smoke`` or ``full``; raise ``UnknownNameError`` otherwise."""
    if profile not in PROFILES:
        raise UnknownNameError(f"unknown profile {profile!r}: use {' or '.join(PROFILES)}")
    return profile


def choices(table: dict[str, dict], profile: str, overrides: dict | None = None) -> dict:
    """Return a copy of ``table[profile]`` with ``overrides`` applied; an unknown override is an error.

    An override whose value is ``None``, ``0`` or ``""`` (a notebook parameter
    left at "the profile's default") keeps the table's value.
    """
    chosen = dict(table[check_profile(profile)])
    for name, value in (overrides or {}).items():
        if name not in chosen:
            raise InputError(f"{name!r} is not a choice of the {profile} profile: use {', '.join(sorted(chosen))}")
        if value not in (None, 0, ""):
            chosen[name] = value
    return chosen


@dataclass
class Setup:
    """What a notebook reads for one profile: splits, labels, KG, model options and training config.

    ``splits`` are ``(train, dev, test)``, each ``(texts, labels)``, the shape
    :func:`kbench.experiment.compare_variants` takes; ``options`` are the model's
    keyword options; ``about`` is one sentence naming the data, KG and sizes, for
    the notebook to print.
    """

    profile: str
    seed: int
    device: str
    base_model: str
    labels: list[str]
    splits: tuple[tuple[Sequence, Sequence], tuple[Sequence, Sequence], tuple[Sequence, Sequence]]
    options: dict = field(default_factory=dict)
    config: object = None            # a kbench.train.TrainConfig
    kg: object = None                # a kbench.kg.KnowledgeGraph, when the paper has one
    about: str = ""

    def sizes(self) -> str:
        """Return ``'train / dev / test'`` example counts."""
        return " / ".join(str(len(part[0])) for part in self.splits)


def finetune_and_pretrain_configs(chosen: dict, device: str, seed: int, pretrain_seed: int | None = None):
    """Return ``(fine-tuning, pretraining)`` :class:`~kbench.train.TrainConfig` s from a pretraining paper's choices.

    The fine-tuning config reads ``epochs``, ``finetune_batch_size``,
    ``finetune_learning_rate`` and ``patience``; the pretraining one
    ``batch_size``, ``learning_rate`` and ``steps`` (10% warm-up); both
    ``precision``. ``pretrain_seed`` (default ``seed``) lets pretraining draw
    batches and masks of its own.
    """
    from kbench.train import TrainConfig

    precision = chosen["precision"]
    finetune = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["finetune_batch_size"],
                           learning_rate=chosen["finetune_learning_rate"], patience=chosen["patience"], device=device,
                           precision=precision, seed=seed, progress=None)
    pretrain = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                           device=device, precision=precision, seed=seed if pretrain_seed is None else pretrain_seed,
                           progress=None, max_steps=chosen["steps"])
    return finetune, pretrain


def supersense_data(data_dir: str, limit: int, seed: int):
    """Return ``(wordnet, task, splits, kg)``: WordNet's sense-labelled examples typed by supersense.

    The full profile of the entity papers (KnowBert, ERNIE): ``splits`` are
    ``(texts, labels)`` per split (split by synset), ``kg`` the examples'
    synsets with their WordNet neighbourhood.
    """
    from kbench.data.supersenses import supersense_task
    from kbench.kg.wordnet import load_wordnet, neighbourhood_kg

    wordnet = load_wordnet(data_dir or None)
    task = supersense_task(wordnet, limit=limit, seed=seed)
    splits = tuple(([text for text, _ in part], [label for _, label in part]) for part in (task.train, task.dev, task.test))
    return wordnet, task, splits, neighbourhood_kg(wordnet, task.synsets)
