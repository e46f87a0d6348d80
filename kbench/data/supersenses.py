"""WordNet's own example sentences as a supersense task with linked mentions (KnowBert's ``full`` profile).

Each example is one of WordNet's example sentences with its sense-labelled word
quoted (``the " bank " was steep``), nouns and verbs by default,, that word as a mention whose candidates are
the synsets it may mean (priors from the sense counts, add-one smoothed) and
whose gold entity is the labelled synset; the label is the synset's
lexicographer file (its supersense, 45 classes). Splits are by synset, so a
test sense never appears in training.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from kbench.errors import InputError
from kbench.kg.wordnet import LEXNAMES, lemma_candidates, sense_examples
from kbench.text.links import LinkedMention


@dataclass
class SupersenseTask:
    """Train/dev/test lists of ``((words, [mention]), label)``, the label names, and every candidate synset."""

    train: list
    dev: list
    test: list
    labels: list[str]
    synsets: list[str]


def supersense_task(wordnet, limit: int = 3000, seed: int = 0, parts: tuple[str, ...] = ("n", "v"),
                    fractions: tuple[float, float] = (0.8, 0.1)) -> SupersenseTask:
    """Return ``limit`` usable examples (an equal share of each part of speech), split by synset."""
    if limit < 10:
        raise InputError(f"limit must be at least 10 examples, got {limit}")
    rows = []
    rng = random.Random(seed)
    for pos in parts:
        rows += _rows(wordnet, pos, limit // len(parts), rng)
    return _split(rows, seed, fractions)


def _rows(wordnet, pos: str, limit: int, rng: random.Random) -> list:
    """Return ``limit`` examples drawn at random (WordNet's own order groups them by supersense)."""
    examples = list(sense_examples(wordnet, pos=pos))
    rng.shuffle(examples)
    rows = []
    for example in examples:
        word = " ".join(example.words[example.start:example.end])
        candidates = lemma_candidates(wordnet, word.replace(" ", "_"))
        if example.synset not in [c.entity for c in candidates]:
            continue   # the word's base form does not lead back to its synset (a rare morphy miss)
        words = example.words[:example.start] + ['"'] + example.words[example.start:example.end] + ['"'] \
            + example.words[example.end:]
        mention = LinkedMention(example.start + 1, example.end + 1, word, candidates, chosen=example.synset)
        rows.append(((words, [mention]), LEXNAMES.index(example.supersense), example.synset))
        if len(rows) >= limit:
            break
    return rows


def _split(rows: list, seed: int, fractions: tuple[float, float]) -> SupersenseTask:
    rng = random.Random(seed)
    synsets = sorted({synset for *_, synset in rows})
    rng.shuffle(synsets)
    cut_train, cut_dev = int(fractions[0] * len(synsets)), int((fractions[0] + fractions[1]) * len(synsets))
    part = {s: (0 if i < cut_train else 1 if i < cut_dev else 2) for i, s in enumerate(synsets)}
    splits = [[], [], []]
    for text, label, synset in rows:
        splits[part[synset]].append((text, label))
    for split in splits:
        rng.shuffle(split)
    every = sorted({c.entity for (_, mentions), _ in sum(splits, []) for c in mentions[0].candidates})
    return SupersenseTask(*splits, labels=list(LEXNAMES), synsets=every)
