"""BERT-MK's two profiles as data, for ``notebooks/07_bert_mk.ipynb``.

Both profiles learn UMLS (PyKEEN's copy: 135 concepts, 46 relations) with TransE
and with the KG-Transformer, and compare the two vectors downstream in ERNIE's
fusion on the linking world (the paper's medical texts are not offline).
``smoke``: 64-dimensional vectors, 6-triple sub-graphs, a random probe of 100
UMLS test triples, two MiniLM layers (one of them an aggregator: half the
encoder). ``full``: 12-triple sub-graphs, three times the KG budget, every UMLS
test triple, all six MiniLM layers (three aggregators).

Equal budgets (CHECKLIST 6): the KG-Transformer starts from TransE trained for
``S`` optimiser steps and trains ``S`` more; the TransE it is compared with, and
that ERNIE fuses, is trained for ``2 S`` steps with the same seed. Steps are
counted as optimiser updates (TransE: ``epochs x ceil(triples / batch)``).

The KG-Transformer's learning rate was chosen between 1e-3 and 3e-3 on 100
random UMLS *validation* triples (seed 0): 3e-3 for the smoke profile's 200
steps (MRR 0.446 vs 0.377), 1e-3 for the full profile's 600 steps with larger
sub-graphs (0.498 vs 0.370; at 3e-3 the full model fell below the TransE it
started from).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from kbench.encoders import EMBEDDED
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(dim=64, kg_layers=2, kg_heads=4, max_triples=6, transe_epochs=100, transe_batch=4096,
                  kg_batch=16, kg_learning_rate=3e-3, probe_size=100, world_max_triples=8, world_transe_epochs=100,
                  world_probe_size=30, layers=2, max_length=32, freeze_word_embeddings=True, epochs=8,
                  batch_size=16, learning_rate=5e-4, patience=8, precision="no"),
    "full": dict(dim=64, kg_layers=2, kg_heads=4, max_triples=12, transe_epochs=300, transe_batch=4096,
                 kg_batch=16, kg_learning_rate=1e-3, probe_size=0, world_max_triples=12, world_transe_epochs=300,
                 world_probe_size=200, layers=None, max_length=32, freeze_word_embeddings=False, epochs=10,
                 batch_size=8, learning_rate=1e-4, patience=3, precision="auto"),
}


@dataclass
class KGChoices:
    """How one KG is learned: sizes of the KG-Transformer and the shared step budget."""

    dim: int
    layers: int
    heads: int
    max_triples: int
    transe_epochs: int
    transe_batch: int
    kg_batch: int
    kg_learning_rate: float

    def transe_steps(self, triples: int, epochs: int | None = None) -> int:
        """Return TransE's optimiser steps for ``epochs`` (default: the profile's) over ``triples`` triples."""
        return (self.transe_epochs if epochs is None else epochs) * math.ceil(triples / self.transe_batch)


@dataclass
class Knowledge:
    """One KG learned both ways on the same budget."""

    start: object            # TransE after S steps: the KG-Transformer's input embeddings
    transe: object           # TransE after 2 S steps: the comparison and ERNIE's vectors
    graph: object            # the KG-Transformer: from ``start``, S more steps
    losses: list
    steps: int               # S


@dataclass
class BertMKSetup(Setup):
    """BERT-MK's setup: UMLS and its probe, the KG choices for UMLS and the world, the linking world."""

    umls: tuple = ()                                      # (train, valid, test) KnowledgeGraphs
    probe: list = field(default_factory=list)             # UMLS test triples, a seeded random sample (all in full)
    umls_choices: KGChoices | None = None
    world_choices: KGChoices | None = None
    world: object = None                                   # the linking world (its KG is ``kg``)
    world_probe: list = field(default_factory=list)       # 'comes from' triples of the world, a seeded sample


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> BertMKSetup:
    """Return BERT-MK's KGs, probes, model options and training config for ``profile`` (overrides: CHOICES keys)."""
    from kbench.data import make_linking_world
    from kbench.kg.embeddings import load_pykeen_dataset

    chosen = choices(CHOICES, profile, overrides)
    base = base_model or EMBEDDED
    umls = load_pykeen_dataset("UMLS")
    test = list(umls[2])
    probe = random.Random(seed).sample(test, min(chosen["probe_size"], len(test))) if chosen["probe_size"] else test
    kg_part = lambda triples, epochs: KGChoices(chosen["dim"], chosen["kg_layers"], chosen["kg_heads"], triples,
                                                epochs, chosen["transe_batch"], chosen["kg_batch"],
                                                chosen["kg_learning_rate"])
    world = make_linking_world(seed=seed)
    facts = [t for t in world.kg if t[1] == "comes from"]
    world_probe = random.Random(seed).sample(facts, min(chosen["world_probe_size"], len(facts)))
    as_texts = lambda split: ([(e.words, e.mentions()) for e in split], [e.label for e in split])
    splits = tuple(as_texts(part) for part in (world.train, world.dev, world.test))
    options = dict(layers=chosen["layers"] if base == EMBEDDED else None, max_length=chosen["max_length"],
                   freeze_word_embeddings=chosen["freeze_word_embeddings"])
    config = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["batch_size"],
                         learning_rate=chosen["learning_rate"], patience=chosen["patience"], device=device,
                         precision=chosen["precision"], seed=seed)
    about = (f"UMLS (PyKEEN: {len(umls[0])} training triples, probe of {len(probe)} test triples); "
             f"KG-Transformer {chosen['kg_layers']} layers of {chosen['dim']}, sub-graphs of "
             f"{chosen['max_triples']} triples; downstream: the linking world ({world.kg})")
    return BertMKSetup(profile=profile, seed=seed, device=device, base_model=base, labels=list(world.labels),
                       splits=splits, options=options, config=config, kg=world.kg, about=about, umls=umls,
                       probe=probe, umls_choices=kg_part(chosen["max_triples"], chosen["transe_epochs"]),
                       world_choices=kg_part(chosen["world_max_triples"], chosen["world_transe_epochs"]),
                       world=world, world_probe=world_probe)


def learn(kg, part: KGChoices, seed: int = 0, device: str = "cpu", objective: str = "translation") -> Knowledge:
    """Learn ``kg`` with TransE (``2 S`` steps) and the KG-Transformer (TransE's ``S`` steps, then ``S`` of its own)."""
    from kbench.kg.embeddings import train_embeddings
    from kbench.kg.kg_transformer import KGTransformer

    transe = lambda epochs: train_embeddings(kg, "TransE", dim=part.dim, epochs=epochs, seed=seed,
                                             batch_size=part.transe_batch, progress=False)
    start, longer = transe(part.transe_epochs), transe(2 * part.transe_epochs)
    steps = part.transe_steps(len(kg))
    graph = KGTransformer(kg, dim=part.dim, layers=part.layers, heads=part.heads, max_triples=part.max_triples,
                          seed=seed, objective=objective, init_from=start)
    losses = graph.fit(steps=steps, batch_size=part.kg_batch, learning_rate=part.kg_learning_rate, device=device,
                       progress=False)
    return Knowledge(start, longer, graph, losses, steps)
