"""The symmetric-regularization notebook's two profiles as data, for ``notebooks/18_symmetric_regularization.ipynb``.

The story world of :mod:`kbench.profiles.structbert` (lives whose sentence order is fixed by content), pretrained
from one init with each pair scheme; then a frozen probe of (A, B) against (B, A) on held-out lives (the positive
control) and fine-tuning on entailment pairs about training people, scored on held-out people's pairs and their
swaps (:func:`kbench.data.story_world.entailment_pairs`). One specific animal of each family
(:data:`~kbench.data.story_world.HELD_OUT_ANIMALS`) is kept out of fine-tuning and is the only one tested: which kind
it is, the test's pairs can learn only from the pretraining text ("... kept a carp , a kind of fish .").

``smoke``: 1,500 lives, the ``tiny`` size, 500 steps of 16, NSP and PN only (two pretrainings fit the minute;
PNsmth, whose five draws give the adjacent classes two fifths of the pairs, had not learned the swap at these
steps); fine-tuning 150 steps of 16 on 150 groups (450 pairs), 300 test groups; the order probes on 60 held-out
lives per half. ``full``: 8,000 lives, 3,000
steps of 32, all four variants; 400 fine-tuning steps on 300 groups, 1,000 test groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kbench.profiles import choices
from kbench.profiles.structbert import StructbertSetup, story_setup

CHOICES = {
    "smoke": dict(people=(1500, 300), stages=8, aligned=True, size="tiny", steps=500, batch_size=16, learning_rate=2e-3,
                  max_length=40, threads=1, variants=("nsp", "pn"), epsilon=0.2, kinds=True, train_groups=150,
                  test_groups=300, tune_steps=150, tune_learning_rate=1e-3, probe_lives=60),
    "full": dict(people=(8000, 1000), stages=8, aligned=True, size="tiny", steps=3000, batch_size=32, learning_rate=1e-3,
                 max_length=40, threads=0, variants=("nsp", "pn", "pn5", "smooth"), epsilon=0.2, kinds=True, train_groups=300,
                 test_groups=1000, tune_steps=600, tune_learning_rate=5e-4, probe_lives=500),
}


@dataclass
class SymmetricSetup(StructbertSetup):
    """The story world's documents and probe halves, and the entailment pairs (training people / held out)."""

    entailment: tuple = ((), ())


def setup(profile: str = "smoke", *, seed: int = 0, data_dir: str = "", device: str = "auto",
          **overrides) -> SymmetricSetup:
    """The story world as in notebook 17, and entailment pairs about its training and held-out people."""
    from kbench.data.story_world import FAMILIES, HELD_OUT_ANIMALS, entailment_pairs

    chosen = choices(CHOICES, profile, overrides)
    base, world = story_setup(profile, chosen, seed, device)
    seen = tuple(a for specific in FAMILIES.values() for a in specific if a not in HELD_OUT_ANIMALS)
    train = entailment_pairs(world.train_people, world.cities, chosen["train_groups"], seed, animals=seen)
    test = entailment_pairs(world.test_people, world.cities, chosen["test_groups"], seed + 1, animals=HELD_OUT_ANIMALS)
    about = base.about + f"; fine-tuning on {len(train)} entailment pairs, {len(test)} held out"
    lives = chosen["probe_lives"]
    probes = tuple(half[:lives] for half in base.probe_documents)
    return SymmetricSetup(**{**vars(base), "about": about, "probe_documents": probes}, entailment=(train, test))
