"""The KGLM notebook's two profiles as data, for ``notebooks/20_kglm.ipynb``.

The linked world (:mod:`kbench.data.linked_world`): one annotated document per person, test people (and whom they
know) only in the KG; TransE vectors trained on the whole KG with PyKEEN (:func:`kbench.kg.embeddings.train_embeddings`:
its margin ranking loss with margin 1, as §4's; PyKEEN's TransE distance is L1 where §4 writes the squared L2);
the vocabulary is the training text's words seen at least three times.

``smoke``: 300 training people, 60 held out (each with an acquaintance named once), 32-dimensional TransE (200
epochs), one LSTM layer (64-wide words, so 64 + 2 x 32 units), 600 steps of 16 documents with Adam (AdamW without
weight decay; warm-up over a tenth of the steps, then linear decay) peaking at 3e-3 (the paper's rate, 1e-3 in §5.1,
needs more steps than the minute holds; the authors' ``experiments/kglm.jsonnet`` sets Adam at 3e-4), one torch
thread; fact completion on every held-out person and on 60 training people drawn at random. ``full``: 2,000 training
people and 400 held out, 48-dimensional TransE, two LSTM layers of 96-wide words (192 units), 2,500 steps of 32 at
the paper's 1e-3, the same on 400 training people, still one thread (on two shared cores a second thread slowed
these small models several-fold). No Linked WikiText-2 can be had here (``../shared/MACHINE.md``) and its baseline
was recorded on the CPU: ``full`` is a larger world.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from kbench.profiles import Setup, choices

CHOICES = {
    "smoke": dict(people=(300, 60), firms=12, cutoff=30, min_count=3, keep=0.5, entity_dim=32, transe_epochs=200,
                  transe_batch=1024, word_dim=64, layers=1, steps=600, batch_size=16, learning_rate=3e-3, threads=1,
                  train_probe=60),
    "full": dict(people=(2000, 400), firms=30, cutoff=30, min_count=3, keep=0.5, entity_dim=48, transe_epochs=200,
                 transe_batch=4096, word_dim=96, layers=2, steps=2500, batch_size=32, learning_rate=1e-3, threads=1,
                 train_probe=400),
}


@dataclass
class KglmSetup(Setup):
    """The linked world, its TransE vectors, the vocabulary, ``|U|``, the training people probed, and the choices."""

    world: object = None
    vectors: object = None
    words: list = field(default_factory=list)
    unknown_types: int = 1
    train_probe: list = field(default_factory=list)      # training documents whose blanks are asked
    chosen: dict = field(default_factory=dict)

    def model(self, knowledge: bool = True):
        """Return a fresh :class:`~kbench.models.kglm.KGLM` (or the same LSTM without KG heads) of the profile,
        from the setup's seed."""
        from kbench.models.kglm import KGLM

        c = self.chosen
        return KGLM(self.words, self.world.kg, self.world.aliases, self.vectors, word_dim=c["word_dim"],
                    layers=c["layers"], cutoff=c["cutoff"], knowledge=knowledge, unknown_types=self.unknown_types,
                    seed=self.seed)


def setup(profile: str = "smoke", *, seed: int = 0, data_dir: str = "", device: str = "auto",
          **overrides) -> KglmSetup:
    """The linked world of the profile, seeded (``data_dir`` is unused: the world is generated)."""
    from kbench.data.linked_world import make_linked_world
    from kbench.kg.embeddings import train_embeddings
    from kbench.train import TrainConfig, torch_threads

    chosen = choices(CHOICES, profile, overrides)
    world = make_linked_world(tuple(chosen["people"]), chosen["firms"], cutoff=chosen["cutoff"], keep=chosen["keep"],
                              seed=seed)
    with torch_threads(chosen["threads"]):
        vectors = train_embeddings(world.kg, "TransE", dim=chosen["entity_dim"], epochs=chosen["transe_epochs"],
                                   seed=seed, batch_size=chosen["transe_batch"], progress=False)
    words = world.vocabulary(chosen["min_count"])
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         weight_decay=0.0, seed=seed, device=device, precision="no", max_steps=chosen["steps"],
                         progress=None)
    probe = random.Random(seed).sample(world.train, min(chosen["train_probe"], len(world.train)))
    about = (f"the linked world: {len(world.train):,} training documents, {len(world.test):,} held out "
             f"({len(world.kg):,} triples, {len(world.edges):,} entities); {len(words):,} words, "
             f"TransE {chosen['entity_dim']}-d; an LSTM of {chosen['layers']} layer(s), {chosen['steps']} steps of "
             f"{chosen['batch_size']} documents")
    return KglmSetup(profile=profile, seed=seed, device=device, base_model="lstm", labels=[],
                     splits=(([], []), ([], []), ([], [])), config=config, kg=world.kg, about=about, world=world,
                     vectors=vectors, words=words, unknown_types=world.unknown_types(words), train_probe=probe,
                     chosen=chosen)
