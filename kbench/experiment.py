"""The experiment harness: variants of one model, trained and scored on one split and seed.

Every notebook's comparison goes through here (first in ``01_k_bert``, section
"The experiment"). A :class:`Variant` is a configuration difference of one
model — knowledge on or off, an ablation — given as keyword options that
override the model's defaults. :func:`compare_variants` builds each variant
with the same seed, turns the same ``(texts, labels)`` splits into its own
examples (``model.dataset``), trains it with :func:`kbench.train.fit` (batches
from ``model.collate``) and scores it on test with every metric the model
declares (``model.metrics()``; accuracy when it declares none). The first
metric selects the best dev epoch and is the result's ``test_score``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from kbench.errors import InputError

Split = tuple[Sequence, Sequence]


@dataclass(frozen=True)
class Variant:
    """One model configuration: a metric-safe ``name``, a display ``label`` (the paper's), and its options."""

    name: str
    label: str
    options: dict = field(default_factory=dict)


@dataclass
class VariantResult:
    """One variant trained and tested: its scores, training history, the model, and the time it took."""

    name: str
    label: str
    test_score: float                  # the first metric's test value
    test_scores: dict[str, float]      # every metric's test value
    history: object
    model: torch.nn.Module
    seconds: float = 0.0


def chosen_variants(variants: Sequence[Variant], only: Sequence[str] | None) -> tuple[dict[str, Variant], list[str]]:
    """Return the variants by name and the names ``only`` picks (all when None); bad names are an ``InputError``."""
    known = {v.name: v for v in variants}
    if len(known) != len(variants):
        raise InputError("variant names must be distinct")
    chosen = list(only) if only is not None else list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise InputError(f"unknown variant {unknown[0]!r}: use {', '.join(known)}")
    return known, chosen


def metrics_of(model: torch.nn.Module) -> dict[str, Callable[[torch.Tensor, torch.Tensor], float]]:
    """Return the model's metrics (``model.metrics()``), or accuracy alone."""
    from kbench.train import accuracy

    declared = model.metrics() if hasattr(model, "metrics") else {"accuracy": accuracy}
    if not declared:
        raise InputError(f"{type(model).__name__}.metrics() declares no metric")
    return dict(declared)


def compare_variants(make_model: Callable[..., torch.nn.Module], variants: Sequence[Variant], train: Split,
                     dev: Split, test: Split, config=None, only: Sequence[str] | None = None
                     ) -> dict[str, VariantResult]:
    """Train and test each variant of ``make_model`` on the same splits and seed; return results by name.

    ``make_model(seed=..., **variant.options)`` builds one variant; ``only``
    picks variants by name. ``train``/``dev``/``test`` are ``(texts, labels)``.
    """
    from kbench.train import TrainConfig, fit, predict_with_labels

    config = config or TrainConfig()
    known, chosen = chosen_variants(variants, only)
    for split_name, split in (("train", train), ("dev", dev), ("test", test)):
        if len(split) != 2 or len(split[0]) != len(split[1]) or not len(split[0]):
            raise InputError(f"the {split_name} split must be (texts, labels) of the same, non-zero length")
    results = {}
    for name in chosen:
        variant = known[name]
        start = time.perf_counter()
        model = make_model(seed=config.seed, **variant.options)
        metrics = metrics_of(model)
        select = next(iter(metrics.values()))
        train_data, dev_data, test_data = (model.dataset(*split) for split in (train, dev, test))
        history = fit(model, train_data, dev_data, config, metric=select, description=variant.label)
        logits, labels = predict_with_labels(model, test_data, device=config.device, precision=config.precision)
        scores = {metric_name: metric(logits, labels) for metric_name, metric in metrics.items()}
        results[name] = VariantResult(name, variant.label, next(iter(scores.values())), scores, history, model,
                                      time.perf_counter() - start)
    return results


@dataclass
class ObjectiveResult:
    """One pretraining variant: its model, history, probe result and saved checkpoint directory."""

    name: str
    label: str
    model: torch.nn.Module
    history: object
    probe: object = None                 # a kbench.probes.ProbeResult when probe items were given
    checkpoint: str | None = None        # where it was saved (a base_model for any notebook), if saved
    seconds: float = 0.0


def compare_objectives(make_pretrainer: Callable[..., torch.nn.Module], variants: Sequence[Variant], corpus,
                       config, probe: Sequence | None = None, save_dir: str | None = None,
                       only: Sequence[str] | None = None) -> dict[str, ObjectiveResult]:
    """Pretrain each variant on the same corpus from the same init for the same steps; probe and save each.

    The fair comparison of objectives: ``make_pretrainer(seed=config.seed,
    **variant.options)`` builds each variant (a :class:`kbench.pretrain.MaskedLM`
    or a subclass), so every variant starts from the same weights where they
    share parameters (checked: the encoder's initial weights must be equal), sees
    the same sentences in the same order for ``config.max_steps`` steps, and
    only its objective differs. Each is then scored on ``probe`` items
    (:mod:`kbench.probes`) and, with ``save_dir``, saved to
    ``save_dir/<name>`` — a ``base_model`` the fine-tuning harness
    (:func:`compare_variants`) takes, so every variant is fine-tuned the same way.
    """
    from kbench.pretrain import pretrain, save_pretrained
    from kbench.probes import probe_model

    known, chosen = chosen_variants(variants, only)
    results, reference = {}, None
    for name in chosen:
        variant = known[name]
        start = time.perf_counter()
        model = make_pretrainer(seed=config.seed, **variant.options)
        if len(model.tokenizer) != len(corpus.tokenizer):
            raise InputError(f"variant {name!r} has a vocabulary of {len(model.tokenizer)} tokens, the corpus "
                             f"{len(corpus.tokenizer)}: build the corpus with the variants' tokenizer")
        initial = {k: v.detach().clone() for k, v in model.bert.state_dict().items()}
        if reference is None:
            reference = initial
        elif initial.keys() != reference.keys() or any(not torch.equal(initial[k], reference[k]) for k in initial):
            raise InputError(f"variant {name!r} does not start from the same encoder weights as the first: "
                             "an objective comparison needs the same init")
        history = pretrain(model, corpus, config, description=variant.label)
        probed = probe_model(model.lm, model.tokenizer, probe) if probe else None
        saved = str(save_pretrained(model, f"{save_dir}/{name}", {"objective": variant.label,
                                                                 "steps": history.steps})) if save_dir else None
        results[name] = ObjectiveResult(name, variant.label, model, history, probed, saved,
                                        time.perf_counter() - start)
    return results
