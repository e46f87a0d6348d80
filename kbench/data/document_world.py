"""The document world: short documents with authors, a co-author network, and metadata, for document classification.

Ostendorff et al. (2019) classify books from their blurb, their metadata and
the KG embeddings of their authors. Here authors belong to research groups,
each group writing mostly on one topic; authors write with co-authors of their
own group, and the KG holds who co-authored with whom (``co-author of``) and
who belongs to which group (``member of``) — never the topic. A document's text
names its topic only sometimes (a topic word, else generic words), its metadata
(number of authors, length) leans weakly towards a topic, and its authors
are new: the train, dev and test documents are written by disjoint sets of
authors, so an author's topic reaches a test document only through the KG —
through their co-authors and group, whose documents were in training.
No text occurs twice in the world (a repeated draw is drawn again), so no
split shares a text with another, nor repeats one.
Used by ``notebooks/04_doc_classification_kg.ipynb`` (smoke profile).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from kbench.data.world import _names
from kbench.errors import InputError
from kbench.kg import KnowledgeGraph

TOPICS = {"physics": ["quantum", "particle", "laser", "gravity"], "biology": ["protein", "cell", "gene", "enzyme"],
          "history": ["empire", "treaty", "dynasty", "revolution"], "economics": ["market", "inflation", "trade", "tax"]}
GENERIC = ["study", "new", "results", "analysis", "report", "approach", "review", "data", "method", "evidence",
           "model", "survey"]
#: per topic, the most likely number of authors and a typical length: metadata that leans, never decides
LEANING = {"physics": (3, 9), "biology": (3, 7), "history": (1, 9), "economics": (2, 7)}


@dataclass
class Document:
    """One document: its words, metadata features, author entities and topic label."""

    words: list[str]
    metadata: list[float]   # number of authors, length in words
    authors: list[str]
    label: int


def coauthorship(one: str, other: str) -> tuple[str, str, str]:
    """Return the one triple for a symmetric relation: the names in order."""
    first, second = sorted((one, other))
    return (first, "co-author of", second)


def draw_words(rng: random.Random, length: int, topic: str, topic_word: float) -> list[str]:
    """Return ``length`` generic words, one of them replaced by a word of ``topic`` with probability ``topic_word``."""
    words = [rng.choice(GENERIC) for _ in range(length)]
    if rng.random() < topic_word:
        words[rng.randrange(length)] = rng.choice(TOPICS[topic])
    return words


@dataclass
class DocumentWorld:
    kg: KnowledgeGraph
    labels: list[str]
    train: list[Document]
    dev: list[Document]
    test: list[Document]


def make_document_world(authors: tuple[int, int, int] = (96, 32, 32), groups: int = 16, documents_per_author: int = 3,
                        topic_word: float = 0.3, loyalty: float = 0.9, seed: int = 0) -> DocumentWorld:
    """Return a document world; ``topic_word`` is how often a text names its topic, ``loyalty`` how often a group
    writes on its own topic."""
    if min(authors) < 1 or groups < len(TOPICS) or documents_per_author < 1:
        raise InputError(f"need at least one author per split, {len(TOPICS)} groups and one document per author "
                         f"(got {authors}, {groups}, {documents_per_author})")
    if not (0 <= topic_word <= 1 and 0 <= loyalty <= 1):
        raise InputError(f"topic_word ({topic_word}) and loyalty ({loyalty}) must be probabilities")
    rng = random.Random(seed)
    labels = list(TOPICS)
    taken = {w for words in TOPICS.values() for w in words} | set(GENERIC)
    group_names = [f"group {name}" for name in _names(rng, groups, 1, taken)]
    topic_of_group = {g: labels[i % len(labels)] for i, g in enumerate(group_names)}
    people = _names(rng, sum(authors), 1, taken)
    group_of = {person: group_names[i % groups] for i, person in enumerate(people)}
    rng.shuffle(people)
    n_train, n_dev, _ = authors
    splits = [people[:n_train], people[n_train:n_train + n_dev], people[n_train + n_dev:]]
    split_of = {p: k for k, part in enumerate(splits) for p in part}
    triples = {(p, "member of", group_of[p]) for p in people}
    out: list[list[Document]] = [[], [], []]
    texts: set[tuple[str, ...]] = set()
    for person in people:
        group = group_of[person]
        peers = [p for p in people if group_of[p] == group and p != person and split_of[p] == split_of[person]]
        for _ in range(documents_per_author):
            topic = topic_of_group[group] if rng.random() < loyalty else rng.choice(labels)
            usual_count, usual_length = LEANING[topic]
            count = max(1, min(3, usual_count + rng.choice([-1, 0, 0, 1])))
            coauthors = rng.sample(peers, min(len(peers), count - 1))
            for other in coauthors:
                triples.add(coauthorship(person, other))
            length = max(4, usual_length + rng.randint(-2, 2))
            words = draw_words(rng, length, topic, topic_word)
            for _ in range(1000):   # every text once in the whole world: no split repeats another's
                if tuple(words) not in texts:
                    break
                words = draw_words(rng, length, topic, topic_word)
            else:
                raise InputError(f"could not draw {sum(authors) * documents_per_author} distinct texts from "
                                 f"{len(GENERIC)} generic words: ask for fewer documents")
            texts.add(tuple(words))
            out[split_of[person]].append(Document(words, [float(1 + len(coauthors)), float(length)],
                                                  [person, *coauthors], labels.index(topic)))
    # co-authorship across splits too: authors of one group meet at conferences (the KG knows; no shared documents)
    for group in group_names:
        members = [p for p in people if group_of[p] == group]
        for person in members:
            for other in rng.sample(members, min(2, len(members))):
                if other != person:
                    triples.add(coauthorship(person, other))
    kg = KnowledgeGraph.from_triples(sorted(triples), name="document world")
    for part in out:
        rng.shuffle(part)
    return DocumentWorld(kg, labels, *out)
