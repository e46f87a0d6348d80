"""Domains of real English text read straight from WordNet 3.0's files: the smoke profiles' domain corpora and tasks.

The domain papers — SciBERT, BioBERT, Don't Stop Pretraining (``notebooks/13_scibert``,
``14_biobert``, ``15_dont_stop_pretraining``) — need unlabelled text from more than one
domain and labelled tasks inside those domains. Their ``full`` profiles read the
mirrored SciERC, ACL-ARC and NCBI-disease (:mod:`kbench.data.scientific`); ``smoke``
runs offline on what is installed, and WordNet's glosses and example sentences are
real English grouped by topic: every synset sits in one lexicographer file
(``noun.body``, ``noun.substance``, ...). :data:`DOMAINS` groups those files into four
domains; :func:`domain_texts` is a domain's unlabelled text, :func:`gloss_task`
a labelled task inside it (a definition -> its lexicographer file),
:func:`disease_mentions` a disease-mention tagging task (BIO tags, NCBI-disease's
shape) over every gloss or example that names a disorder.

The files are parsed directly (``data.noun``: offset, lexicographer file, lemmas,
pointers, ``| gloss``), not through NLTK, whose reader takes several seconds to
load — most of a smoke notebook's budget.
"""
from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kbench.data.kbert_datasets import Split
from kbench.errors import DataError, InputError, UnknownNameError
from kbench.kg.wordnet import LEXNAMES, SOURCE, WORDNET_ENV
from kbench.text.vocabulary import text_key, words_of

#: Four domains of WordNet nouns, each a group of lexicographer files.
DOMAINS: dict[str, tuple[str, ...]] = {
    "biomedical": ("noun.body", "noun.state", "noun.animal", "noun.plant"),
    "science": ("noun.substance", "noun.process", "noun.phenomenon", "noun.quantity"),
    "society": ("noun.act", "noun.communication", "noun.group", "noun.possession"),
    "artifacts": ("noun.artifact", "noun.object", "noun.location", "noun.shape"),
}
#: The roots of the disorder hierarchy (noun offsets): illness (which covers disease), disorder, infection, symptom.
DISORDER_ROOTS = ("14061805", "14052403", "14174549", "14299637")
TAG = "Disease"


@dataclass(frozen=True)
class Gloss:
    """One noun synset: its offset, lexicographer file, lemmas, definition, examples and hyponym offsets."""

    offset: str
    lexname: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]
    hyponyms: tuple[str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.definition, *self.examples)


def _source(source: str | Path | None) -> Path:
    path = Path(source or os.environ.get(WORDNET_ENV) or SOURCE) / "data.noun"
    if not path.is_file():
        raise DataError(f"{path} does not exist: install Debian's wordnet-base (`make setup` does), or point "
                        f"{WORDNET_ENV} at a folder with WordNet 3.0's files")
    return path


@lru_cache(maxsize=2)
def read_glosses(source: str | None = None) -> tuple[Gloss, ...]:
    """Return every noun synset of WordNet 3.0's ``data.noun`` as a :class:`Gloss` (cached)."""
    path = _source(source)
    glosses = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.startswith(" "):
                continue                                    # the licence header
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            try:
                count = int(fields[3], 16)
                lemmas = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(count))
                at = 4 + 2 * count
                pointers = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(int(fields[at]))]
                lexname = LEXNAMES[int(fields[1])]
            except (IndexError, ValueError):
                raise DataError(f"{path}:{number}: not a WordNet data line") from None
            pieces = gloss.rstrip().split('"')
            definition = "".join(pieces[0::2]).replace("; ;", ";").strip().strip(";").strip()
            examples = tuple(e.strip() for e in pieces[1::2] if e.strip())
            hyponyms = tuple(p[1] for p in pointers if p[0] in ("~", "~i") and p[2] == "n")
            glosses.append(Gloss(fields[0], lexname, lemmas, definition, examples, hyponyms))
    return tuple(glosses)


def check_domain(domain: str) -> tuple[str, ...]:
    """Return the lexicographer files of ``domain``; an unknown name is an ``UnknownNameError``."""
    if domain not in DOMAINS:
        raise UnknownNameError(f"unknown domain {domain!r}: use one of {', '.join(DOMAINS)}")
    return DOMAINS[domain]


def domain_texts(domain: str, exclude: Iterable[str] = (), limit: int | None = None, seed: int = 0,
                 source: str | None = None) -> list[str]:
    """Return the definitions and examples of ``domain``'s synsets, de-duplicated, without any text in ``exclude``.

    ``exclude`` holds a task's texts or word lists (compared by their words, any case):
    every text of a synset one of whose texts is excluded is left out — not only
    the held-out definition but its examples too, which describe the same sense —
    so no dev or test item is pretrained on, even in other words. ``limit`` keeps a seeded
    random sample. An empty result is an ``InputError``.
    """
    files = set(check_domain(domain))
    banned = {text_key(t) for t in exclude}
    seen, texts = set(), []
    for gloss in read_glosses(source):
        if gloss.lexname not in files:
            continue
        keys = [text_key(text) for text in gloss.texts]
        if banned.intersection(keys):
            continue                            # a held-out text's synset: its other texts describe the same sense
        for text, key in zip(gloss.texts, keys):
            if key and key not in seen:
                seen.add(key)
                texts.append(text)
    if not texts:
        raise InputError(f"domain {domain!r} has no text left once {len(banned)} excluded texts are removed")
    if limit is not None and limit < len(texts):
        texts = random.Random(seed).sample(texts, limit)
    return texts


def _split(rows: list, seed: int, fractions: tuple[float, float]) -> tuple[list, list, list]:
    rng = random.Random(seed)
    rows = list(rows)
    rng.shuffle(rows)
    a, b = int(fractions[0] * len(rows)), int((fractions[0] + fractions[1]) * len(rows))
    return rows[:a], rows[a:b], rows[b:]


def gloss_task(domain: str, per_class: int = 200, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2),
               source: str | None = None) -> tuple[list[str], tuple[Split, Split, Split]]:
    """Return ``(labels, (train, dev, test))``: a definition of the domain labelled with its lexicographer file.

    ``per_class`` synsets are drawn at random from each file of the domain
    (de-duplicated by text), then split at random. The label names the topic
    the definition is about (``noun.body``: "the muscular back part of the
    shank"), so the task asks for the domain's vocabulary.
    """
    files = check_domain(domain)
    if per_class < 5:
        raise InputError(f"per_class={per_class}: a task needs at least 5 definitions of each label")
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, name in enumerate(files):
        pool = sorted({g.definition for g in read_glosses(source) if g.lexname == name and g.definition})
        pool = [t for t in pool if text_key(t) not in seen]
        chosen = rng.sample(pool, min(per_class, len(pool)))
        seen.update(text_key(t) for t in chosen)
        rows += [(text, label) for text in chosen]
    parts = _split(rows, seed, fractions)
    return list(files), tuple(Split([t for t, _ in p], [label for _, label in p]) for p in parts)


@lru_cache(maxsize=2)
def disorder_names(source: str | None = None) -> frozenset[str]:
    """Return the lower-cased lemmas every noun sense of which lies under :data:`DISORDER_ROOTS`.

    A lemma with another sense ("cold", "consumption") is left out: its
    mention would not always name a disorder.
    """
    glosses = {g.offset: g for g in read_glosses(source)}
    below, stack = set(), list(DISORDER_ROOTS)
    while stack:
        offset = stack.pop()
        if offset not in below and offset in glosses:
            below.add(offset)
            stack.extend(glosses[offset].hyponyms)
    senses: dict[str, set[str]] = {}
    for gloss in glosses.values():
        for lemma in gloss.lemmas:
            senses.setdefault(lemma.lower(), set()).add(gloss.offset)
    return frozenset(name for name, offsets in senses.items()
                     if offsets <= below and re.fullmatch(r"[a-z][a-z' -]*[a-z]", name))


def tag_mentions(words: Sequence[str], names: Set[str], longest: int = 4, starts: set[str] | None = None) -> list[str]:
    """Return BIO tags marking the longest runs of ``words`` (any case) that spell a name in ``names``.

    ``starts`` (the first words of the names) only saves time.
    """
    starts = {name.split()[0] for name in names} if starts is None else starts
    tags, i, lower = ["O"] * len(words), 0, [w.lower() for w in words]
    while i < len(words):
        if lower[i] not in starts:
            i += 1
            continue
        for n in range(min(longest, len(words) - i), 0, -1):
            if " ".join(lower[i:i + n]) in names:
                tags[i:i + n] = [f"B-{TAG}"] + [f"I-{TAG}"] * (n - 1)
                i += n
                break
        else:
            i += 1
    return tags


def disease_mentions(seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2), limit: int | None = None,
                     source: str | None = None) -> tuple[Split, Split, Split]:
    """Return ``(train, dev, test)`` of ``(words, BIO tags)``: every WordNet gloss or example naming a disorder.

    A disorder is a lemma of :func:`disorder_names`; the sentences come from
    every noun synset *outside* the disorder hierarchy's own lemmas' glosses as
    well as inside it, de-duplicated by text and split at random (seeded) —
    as NCBI-disease, a test mention may or may not occur in training.
    """
    names = disorder_names(source)
    starts = {name.split()[0] for name in names}
    rows, seen = [], set()
    for gloss in read_glosses(source):
        for text in gloss.texts:
            words = words_of(text)
            key = " ".join(words).lower()
            if key in seen or not starts.intersection(key.split()):
                continue
            seen.add(key)
            tags = tag_mentions(words, names, starts=starts)
            if any(t != "O" for t in tags):
                rows.append((words, tags))
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    parts = _split(rows, seed, fractions)
    return tuple(Split([w for w, _ in p], [t for _, t in p]) for p in parts)
