"""KnowBert (Peters et al. 2019): the two profiles as data, for ``notebooks/02_knowbert.ipynb``.

``smoke``: kbench's linking world (generated: people who share family names,
a sentence naming one by family name and occupation, the label the continent
they come from — a KG fact; people disjoint between splits), TransE of
dimension 64 on its KG, the first 2 layers of the embedded MiniLM with frozen
word embeddings. ``full``: WordNet's own sense-labelled example sentences as a
supersense task (split by synset; the label is the gold synset's lexicographer
file), TransE of dimension 128 on the candidates' WordNet neighbourhood, all 6
MiniLM layers. In ``full`` the gold synset determines the label, so the
linker's gold-link loss carries the label: the ``knowbert_no_link`` variant
(no link supervision) is the comparison that holds there.

The KG probe is a seeded random sample of the triples of one relation
(``comes from`` / ``hypernym``) that TransE trained on: it asks whether the
vectors KnowBert reads hold those facts, not whether TransE generalises.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from kbench.encoders import EMBEDDED
from kbench.profiles import Setup, choices, supersense_data
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(data="linking world", limit=0, kg_dim=64, kg_epochs=200, probe_relation="comes from",
                  probe_size=300, layers=2, max_length=32, freeze_word_embeddings=True, epochs=12, batch_size=8,
                  learning_rate=1e-3, patience=12, precision="no"),
    "full": dict(data="WordNet supersenses", limit=2000, kg_dim=128, kg_epochs=200, probe_relation="hypernym",
                 probe_size=300, layers=None, max_length=64, freeze_word_embeddings=False, epochs=6, batch_size=16,
                 learning_rate=2e-4, patience=2, precision="auto"),
}
#: what tells a mention's candidates apart, by data set: the column the link view shows
FACTS_LABEL = {"linking world": "works as", "WordNet supersenses": "supersense: gloss"}


@dataclass
class KnowBertSetup(Setup):
    """KnowBert's setup: also TransE's options, the KG probe, and what tells candidates apart.

    ``splits`` hold ``((words, [LinkedMention]), label)`` pairs whose mentions'
    ``chosen`` is the gold entity; ``facts[entity]`` is the KG's fact that tells
    an entity from the other candidates of its alias (a person's occupation, a
    synset's supersense and gloss), for the link view.
    """

    kg_options: dict = field(default_factory=dict)
    probe: list = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    facts_label: str = ""

    def majority(self) -> float:
        """Return the share of the most common label in the test split (what always guessing it scores)."""
        labels = list(self.splits[2][1])
        return Counter(labels).most_common(1)[0][1] / len(labels)

    def gold(self, split: int = 2) -> list[list[str | None]]:
        """Return each sentence's gold entity per mention, for one split (0 train, 1 dev, 2 test)."""
        return [[mention.chosen for mention in mentions] for _, mentions in self.splits[split][0]]

    def gold_only(self) -> tuple:
        """Return the three splits with each mention's gold entity as its only candidate (prior 1).

        The positive control: the linker cannot miss, so the right entity vector is certainly in reach and a
        working KAR must carry its fact to the label. The sentences and labels are those of ``splits``.
        """
        from dataclasses import replace

        from kbench.text.links import Candidate

        def only_gold(mention):
            if mention.chosen is None:
                return replace(mention, candidates=[])
            return replace(mention, candidates=[Candidate(mention.chosen, 1.0)])

        return tuple(([(words, [only_gold(m) for m in mentions]) for words, mentions in texts], list(labels))
                     for texts, labels in self.splits)

    def prior_accuracy(self, split: int = 2) -> float:
        """Return how often a mention's highest-prior candidate is its gold entity (the linking baseline)."""
        mentions = [m for _, found in self.splits[split][0] for m in found]
        return sum(max(m.candidates, key=lambda c: c.prior).entity == m.chosen for m in mentions) / len(mentions)


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> KnowBertSetup:
    """Return the linked sentences, KG, probe, model options and training config of ``profile``.

    ``overrides`` are keys of :data:`CHOICES` (``limit``, ``epochs``, ...); a
    value of 0 or "" keeps the profile's.
    """
    chosen = choices(CHOICES, profile, overrides)
    base = base_model or EMBEDDED
    if chosen["data"] == "linking world":
        from kbench.data import make_linking_world

        world = make_linking_world(seed=seed)
        labels, kg = world.labels, world.kg
        splits = tuple(([(e.words, [e.mention]) for e in part], [e.label for e in part])
                       for part in (world.train, world.dev, world.test))
        facts = {head: tail for head, relation, tail in kg if relation == "works as"}
        about = (f"the linking world (generated; people disjoint between splits): {kg}; the label is the continent "
                 "the mentioned person comes from")
    else:
        wordnet, task, splits, kg = supersense_data(data_dir, chosen["limit"], seed)
        labels = task.labels
        facts = {name: f"{wordnet.synset(name).lexname()}: {wordnet.synset(name).definition()[:50]}"
                 for name in task.synsets}
        about = (f"{sum(len(t) for t, _ in splits)} WordNet example sentences (nouns and verbs, split by synset), "
                 f"the sense-labelled word a mention of its candidate synsets: {kg}; the label is the gold "
                 "synset's supersense")
    relation = [t for t in kg if t[1] == chosen["probe_relation"]]
    probe = random.Random(seed).sample(relation, min(chosen["probe_size"], len(relation)))
    options = dict(layers=chosen["layers"] if base == EMBEDDED else None, max_length=chosen["max_length"],
                   freeze_word_embeddings=chosen["freeze_word_embeddings"])
    config = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["batch_size"],
                         learning_rate=chosen["learning_rate"], patience=chosen["patience"], device=device,
                         precision=chosen["precision"], seed=seed)
    kg_options = dict(model="TransE", dim=chosen["kg_dim"], epochs=chosen["kg_epochs"], batch_size=4096, seed=seed,
                      progress=False)
    return KnowBertSetup(profile=profile, seed=seed, device=device, base_model=base, labels=list(labels),
                         splits=splits, options=options, config=config, kg=kg, about=about, kg_options=kg_options,
                         probe=probe, facts=facts, facts_label=FACTS_LABEL[chosen["data"]])
