"""KEPLER's two profiles as data, for ``notebooks/03_kepler.ipynb``.

Both pretrain the same random-init BERT three times from the same seed — MLM only,
KEPLER (KE + MLM), and MLM on the text and on KEPLER's descriptions (no KE loss) —
for the same steps on the same MLM text, then score
each encoder's description embeddings on inductive and transductive link
prediction (:func:`kbench.kg.described.ke_split`), beside PyKEEN's TransE on
the transductive triples.

``smoke``: the knowledge world's entities with generated descriptions
(:func:`kbench.kg.described.world_described_kg`); MLM text: fact statements of
the KE *training* triples only — no test fact and no unseen entity is written
in it — with each fact's probe template held out
(:func:`kbench.data.fact_corpus.fact_corpus`), so the knowledge probe runs too;
a ``tiny`` BERT (2 layers, 128 hidden) over the word pieces the world uses. The unseen
entities are drawn among those no other description names (``unnamed_only``: people and
companies), so no description KE training encodes writes an unseen entity's name.
``full``: 3,000 WordNet noun synsets grown from random seeds, each described
by its lemmas and gloss, WordNet's relations between them as triples; MLM
text: WordNet's example sentences and glosses of synsets *outside* the KG
(no text of a KG synset, so none of an unseen test synset); the ``mini`` size (4 layers, 256 hidden) over the full
uncased vocabulary. Its unseen synsets are drawn among all (WordNet glosses rarely name
another KG synset's lemma; the notebook prints how many training descriptions do). No probe in ``full`` (WordNet has no held-out fact
statements).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(kg="world", size="tiny", people=(40, 10, 20), unseen_share=0.15, transductive_share=0.1,
                  unnamed_only=True,
                  steps=150, batch_size=16, ke_batch_size=8, learning_rate=2e-3, max_length=32,
                  description_length=24, synsets=0, texts=0, transe_dim=32, transe_epochs=100, precision="no"),
    "full": dict(kg="wordnet", size="mini", people=(0, 0, 0), unseen_share=0.1, transductive_share=0.1,
                 unnamed_only=False,
                 steps=300, batch_size=16, ke_batch_size=16, learning_rate=5e-4, max_length=48,
                 description_length=32, synsets=3000, texts=8000, transe_dim=64, transe_epochs=100,
                 precision="auto"),
}


@dataclass
class KeplerSetup(Setup):
    """KEPLER's setup: the described KG, its split, the MLM texts, the probe and the pretraining config."""

    described: object = None                       # kbench.kg.described.DescribedKG
    split: object = None                           # kbench.kg.described.KESplit
    texts: list[str] = field(default_factory=list)
    probe: list = field(default_factory=list)      # kbench.probes.ProbeItem s (smoke only)
    vocab: str | None = None
    ke_batch_size: int = 16
    max_length: int = 32
    description_length: int = 48
    transe: dict = field(default_factory=dict)


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> KeplerSetup:
    """Return KEPLER's described KG, split, MLM text, probe and config for ``profile`` (overrides: keys of CHOICES)."""
    from kbench.kg.described import ke_split, world_described_kg

    chosen = choices(CHOICES, profile, overrides)
    base = base_model or chosen["size"]
    probe, vocab = [], None
    if chosen["kg"] == "world":
        from kbench.data import make_world
        from kbench.data.fact_corpus import WORLD_TEMPLATES, fact_corpus
        from kbench.profiles.ernie_baidu import corpus_vocabulary

        world = make_world(people=tuple(chosen["people"]), sentences_per_person=1, countries_per_continent=1,
                           seed=seed)
        described = world_described_kg(world.kg, seed)
        split = ke_split(described, chosen["unseen_share"], chosen["transductive_share"], seed,
                         chosen["unnamed_only"])
        # MLM text states the KE training facts only: no test fact (inductive or transductive) is written in it
        facts = fact_corpus(list(split.train), WORLD_TEMPLATES, 2, seed)
        texts, probe = facts.texts, facts.probe
        if not base_model:
            vocab = str(corpus_vocabulary([*texts, *described.descriptions.values(),
                                           *(item.statement for item in probe), *described.entities]))
        source = f"the knowledge world ({len(described.entities)} entities with generated descriptions)"
    else:
        from kbench.kg.wordnet import load_wordnet
        from kbench.kg.described import wordnet_described_kg

        wordnet = load_wordnet(data_dir or None)
        described = wordnet_described_kg(wordnet, chosen["synsets"], seed)
        texts = wordnet_texts(wordnet, set(described.entities), set(described.descriptions.values()),
                              chosen["texts"], seed)
        source = f"WordNet ({len(described.entities)} noun synsets, glosses as descriptions)"
        split = ke_split(described, chosen["unseen_share"], chosen["transductive_share"], seed,
                         chosen["unnamed_only"])
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         max_steps=chosen["steps"], seed=seed, device=device, precision=chosen["precision"],
                         progress=None)
    about = (f"{source}, {len(described.triples)} triples: {len(split.train)} train, {len(split.transductive)} "
             f"transductive test, {len(split.inductive)} inductive test ({len(split.unseen)} unseen entities); MLM on "
             f"{len(texts)} texts; base {base}, {chosen['steps']} steps of {chosen['batch_size']} sentences + "
             f"{chosen['ke_batch_size']} triples")
    return KeplerSetup(profile=profile, seed=seed, device=device, base_model=base, labels=[],
                       splits=(([], []), ([], []), ([], [])), config=config, about=about, described=described,
                       split=split, texts=texts, probe=probe, vocab=vocab, ke_batch_size=chosen["ke_batch_size"],
                       max_length=chosen["max_length"], description_length=chosen["description_length"],
                       transe=dict(dim=chosen["transe_dim"], epochs=chosen["transe_epochs"]))


def wordnet_texts(wordnet, kg_synsets: set[str], descriptions: set[str], size: int, seed: int = 0) -> list[str]:
    """Return ``size`` distinct WordNet texts for MLM: example sentences and glosses of synsets outside the KG.

    No text belongs to a synset of the KG (neither its gloss nor its examples,
    so no unseen test synset's text reaches MLM), and no text is the gloss part
    of a description (``lemmas: gloss``; checked by content).
    """
    glosses = {d.split(": ", 1)[-1] for d in descriptions}
    texts = []
    for synset in wordnet.all_synsets():
        if synset.name() not in kg_synsets:
            texts.extend(synset.examples())
            texts.append(synset.definition())
    texts = [t for t in dict.fromkeys(texts) if t.strip() and t not in glosses and t not in descriptions]
    random.Random(seed).shuffle(texts)
    return texts[:size]
