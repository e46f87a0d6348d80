"""The overview's two profiles as data, for ``notebooks/12_overview.ipynb``.

Both read every notebook's recorded baseline of the same profile (the head-to-head
table) and retrain, on one base and one task, every method that needs no
pretraining of its own to apply there: the linking world's entity typing
(:func:`kbench.data.make_linking_world`: the continent a mentioned person was born
on, reached only through the KG), with one TransE of the world's KG fused by ERNIE
and KnowBert and K-BERT reading the same KG by name, each handed the same link
(:mod:`kbench.head_to_head`), and plain BERT, all from the same encoder, seed, data
and training budget. ``smoke``: the first 2 layers of the embedded
MiniLM, a 4-epoch budget; ``full``: all 6 layers, 8 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass

from kbench.encoders import EMBEDDED
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

#: The head-to-head's variants (:data:`kbench.head_to_head.HEAD_TO_HEAD`) under equal inputs; ``full`` adds
#: KnowBert given the prior's link and each method's own input as its paper has it (KnowBert's candidates,
#: K-BERT's words alone).
EQUAL_INPUTS = ("bert", "ernie", "knowbert_gold", "kbert_gold", "ernie_prior", "kbert_prior")
CHOICES = {
    "smoke": dict(layers=2, max_length=32, entity_dim=64, transe_epochs=200, epochs=4, batch_size=32,
                  learning_rate=8e-4, cost_sentences=32, cost_repeats=5, precision="no", variants=EQUAL_INPUTS),
    "full": dict(layers=None, max_length=32, entity_dim=64, transe_epochs=200, epochs=8, batch_size=8,
                 learning_rate=2e-4, cost_sentences=128, cost_repeats=5, precision="auto",
                 variants=EQUAL_INPUTS + ("knowbert_prior", "knowbert", "kbert")),
}


@dataclass
class OverviewSetup(Setup):
    """The overview's setup: the linking world, TransE's size and budget, and how costs are timed."""

    world: object = None
    entity_dim: int = 64
    transe_epochs: int = 200
    layers: int | None = 2
    cost_sentences: int = 32
    cost_repeats: int = 5
    variants: tuple = ()


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> OverviewSetup:
    """Return the head-to-head's data, options and training config for ``profile`` (overrides: keys of CHOICES)."""
    from kbench.data import make_linking_world

    chosen = choices(CHOICES, profile, overrides)
    base = base_model or EMBEDDED
    world = make_linking_world(seed=seed)
    as_texts = lambda split: ([(e.words, e.mentions()) for e in split], [e.label for e in split])
    splits = tuple(as_texts(part) for part in (world.train, world.dev, world.test))
    layers = chosen["layers"] if base == EMBEDDED else None
    config = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["batch_size"],
                         learning_rate=chosen["learning_rate"], patience=chosen["epochs"], device=device,
                         precision=chosen["precision"], seed=seed, progress=None)
    about = (f"the linking world (generated; every method handed the gold entity, then the prior's top candidate): "
             f"{world.kg}; "
             f"{'the first ' + str(layers) + ' layers of ' if layers else ''}{base}, {chosen['epochs']} epochs of "
             f"{chosen['batch_size']} at {chosen['learning_rate']:g}")
    return OverviewSetup(profile=profile, seed=seed, device=device, base_model=base, labels=list(world.labels),
                         splits=splits, options=dict(layers=layers, max_length=chosen["max_length"],
                                                     freeze_word_embeddings=True),
                         config=config, kg=world.kg, about=about, world=world, entity_dim=chosen["entity_dim"],
                         transe_epochs=chosen["transe_epochs"], layers=layers,
                         cost_sentences=chosen["cost_sentences"], cost_repeats=chosen["cost_repeats"],
                         variants=tuple(chosen["variants"]))
