"""StructBERT's two profiles as data, for ``notebooks/17_structbert.ipynb``.

Four variants (BERT's MLM + NSP, + word objective, MLM + sentence objective, both) pretrained from one random
init on the same documents for the same steps; then three frozen probes on held-out text: restoring a shuffled
trigram (the positive control of the word objective), a sentence vs the same with two words swapped (the
acceptability probe), and next / previous / other document on held-out document pairs.

``smoke``: the story world (:mod:`kbench.data.story_world`: 1,500 training lives of all eight stages, 300
held out), the ``tiny`` size (2 layers, 128 wide), 650 steps of 16, BERT and StructBERT only (two pretrainings
fit the minute; the sentence objective needs about this many steps before its head leaves chance: at 300-400
steps the 3-way loss had not left ln 3). ``full``: 8,000 lives, 3,000 steps of 32, all four variants.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kbench.profiles import Setup, choices

CHOICES = {
    "smoke": dict(people=(1500, 300), stages=8, aligned=True, size="tiny", steps=650, batch_size=16, learning_rate=1.5e-3,
                  max_length=40, probe_sentences=600, threads=1, variants=("bert", "structbert")),
    "full": dict(people=(8000, 1000), stages=8, aligned=True, size="tiny", steps=3000, batch_size=32, learning_rate=1e-3,
                 max_length=40, probe_sentences=2000, threads=0, variants=("bert", "word", "sentence", "structbert")),
}


@dataclass
class StructbertSetup(Setup):
    """The story world's training documents, the held-out documents split for probe training / testing, the
    vocabulary over all of it and every choice of the profile."""

    train_documents: list = field(default_factory=list)
    probe_documents: tuple = ((), ())          # held-out documents: (probe training, probe test)
    vocab: str = ""
    chosen: dict = field(default_factory=dict)


def story_setup(profile: str, chosen: dict, seed: int, device: str):
    """Generate the story world of ``chosen``, split its held-out lives in two (probe training, probe test),
    build the word-piece vocabulary over every text; return the setup and the world."""
    from kbench.data.story_world import make_story_world
    from kbench.train import TrainConfig

    world = make_story_world(tuple(chosen["people"]), chosen["stages"], seed=seed, kinds=chosen.get("kinds", False))
    half = len(world.test) // 2
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         seed=seed, device=device, precision="no", max_steps=chosen["steps"])
    about = (f"the story world: {len(world.train):,} training lives, {len(world.test):,} held out "
             f"({chosen['stages']} sentences each); {chosen['size']} size from one init, {chosen['steps']} steps "
             f"of {chosen['batch_size']} pairs")
    return StructbertSetup(profile=profile, seed=seed, device=device, base_model=chosen["size"], labels=[],
                           splits=(([], []), ([], []), ([], [])), config=config, about=about,
                           train_documents=world.train, probe_documents=(world.test[:half], world.test[half:]),
                           vocab=str(story_vocabulary(world)), chosen=chosen), world


def story_vocabulary(world):
    """The word pieces of the world's texts (:func:`kbench.profiles.ernie_baidu.corpus_vocabulary`) and every
    person's name as one piece: whether two sentences are about the same person is then one token compared
    with one, as a topic is to BERT's NSP on real text, and sentence order is left to the stages they tell."""
    from pathlib import Path

    from kbench.profiles.ernie_baidu import corpus_vocabulary
    from kbench.text.vocabulary import write_vocab_file

    from kbench.data.story_world import FRAMES

    frames = [frame.format(P="", C="", A="", Q="") for frame in FRAMES]          # the entailment pairs' words too
    pieces = Path(corpus_vocabulary(world.texts + frames)).read_text(encoding="utf-8").split()
    names = sorted({name.lower() for name in world.train_people + world.test_people} - set(pieces))
    return write_vocab_file(pieces + names)


def setup(profile: str = "smoke", *, seed: int = 0, data_dir: str = "", device: str = "auto",
          **overrides) -> StructbertSetup:
    """The story world of the profile (``data_dir`` is unused: the world is generated)."""
    return story_setup(profile, choices(CHOICES, profile, overrides), seed, device)[0]
