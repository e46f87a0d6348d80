"""SKEP's two profiles as data, for ``notebooks/19_skep.ipynb``.

The review world (:mod:`kbench.data.review_world`): unlabelled reviews to mine and pretrain on; a lexicon mined from
three seed words per polarity (:func:`kbench.models.skep.mine_lexicon`), scored against the world's hidden one;
then three pretrainings from one init on the same reviews for the same steps — random-token masking, SKEP over
the mined lexicon, SKEP over the true lexicon (the positive control) — each fine-tuned alike, with the untrained
init, on few labels whose sentiment words are the frequent ones, and tested on reviews whose sentiment words are
the rare ones: a sentence's polarity, and each aspect's polarity in reviews of two opposite opinions.

``smoke``: 3,000 reviews, the ``tiny`` size (2 layers, 128 wide), 400 steps of 16, fine-tuning 100 steps of 16
on 160 labelled reviews / 160 aspect examples (the 6 most frequent words of each polarity), 600 test examples
each. ``full``: 20,000 reviews, 3,000 steps of 32, 600 fine-tuning steps on twice the labels, and random-token
masking at SKEP's share of hidden tokens too (more masks against other masks).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kbench.profiles import Setup, choices

CHOICES = {
    "smoke": dict(reviews=3000, second_word=1.0, size="tiny", layers=0, steps=400, batch_size=16, learning_rate=2e-3, max_length=40, threads=1,
                  min_count=2, margin=1.0, frequent=6, train_examples=160, test_examples=600, tune_steps=100,
                  tune_learning_rate=1e-3, variants=("random", "skep", "skep_true")),
    "full": dict(reviews=20000, second_word=1.0, size="tiny", layers=0, steps=3000, batch_size=32, learning_rate=1e-3, max_length=40, threads=0,
                 min_count=2, margin=1.0, frequent=6, train_examples=320, test_examples=2000, tune_steps=600,
                 tune_learning_rate=5e-4, variants=("random", "random_more", "skep", "skep_true")),
}


@dataclass
class SkepSetup(Setup):
    """The reviews, the mined and true lexicons, the pretraining corpora marked by each, the labelled tasks."""

    reviews: list = field(default_factory=list)
    truth: dict = field(default_factory=dict)
    mined: dict = field(default_factory=dict)
    polarity: dict = field(default_factory=dict)        # WP(w) of every word mined over
    corpora: dict = field(default_factory=dict)         # "mined" / "true" -> SentimentSentence list
    tasks: dict = field(default_factory=dict)           # "sentence" / "aspect" -> (train, test)
    nouns: tuple = ()
    words: tuple = ((), ())                             # (frequent: fine-tuning's, rare: the tests')
    vocab: str = ""
    chosen: dict = field(default_factory=dict)


def setup(profile: str = "smoke", *, seed: int = 0, data_dir: str = "", device: str = "auto",
          **overrides) -> SkepSetup:
    """Generate the review world of the profile, mine its lexicon, mark the corpora and build the tasks
    (``data_dir`` is unused: the world is generated)."""
    from kbench.data.review_world import (NEGATIVE_SEEDS, NOUNS, POSITIVE_SEEDS, aspect_task, frequent_and_rare,
                                          lexicon, make_reviews, sentence_task)
    from kbench.encoders import load_tokenizer
    from kbench.models.skep import lexicon_of, sentiment_corpus, word_polarity
    from kbench.text.vocabulary import write_vocab_file
    from kbench.train import TrainConfig

    chosen = choices(CHOICES, profile, overrides)
    reviews = make_reviews(chosen["reviews"], seed, second_word=chosen["second_word"])
    texts = [r.text for r in reviews]
    split = [sentence.split() for t in texts for sentence in t.split(" . ")]      # co-occurrence: one sentence
    truth = lexicon()
    polarity = word_polarity(split, POSITIVE_SEEDS, NEGATIVE_SEEDS, chosen["min_count"])
    mined = lexicon_of(polarity, POSITIVE_SEEDS, NEGATIVE_SEEDS, chosen["margin"])
    frequent, rare = frequent_and_rare(chosen["frequent"])
    n_train, n_test = chosen["train_examples"], chosen["test_examples"]
    tasks = {"sentence": (sentence_task(n_train, frequent, seed + 1), sentence_task(n_test, rare, seed + 2)),
             "aspect": (aspect_task(n_train, frequent, seed + 3), aspect_task(n_test, rare, seed + 4))}
    every = sorted({w for t in texts for w in t.split()} | {w for task in tasks.values() for part in task
                                                           for e in part for w in (e[0] if isinstance(e, tuple) else e.text).split()})
    vocab = write_vocab_file(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + every, name="reviews")
    tokenizer = load_tokenizer(vocab=str(vocab))
    corpora = {name: sentiment_corpus(texts, tokenizer, lex, NOUNS, chosen["max_length"])
               for name, lex in (("mined", mined), ("true", truth))}
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         seed=seed, device=device, precision="no", max_steps=chosen["steps"])
    about = (f"the review world: {len(reviews):,} reviews, {len(truth)} sentiment words (hidden), seeds "
             f"{', '.join(POSITIVE_SEEDS)} / {', '.join(NEGATIVE_SEEDS)}; {chosen['size']} size from one init, "
             f"{chosen['steps']} steps of {chosen['batch_size']}")
    return SkepSetup(profile=profile, seed=seed, device=device, base_model=chosen["size"], labels=["negative", "positive"],
                     splits=(([], []), ([], []), ([], [])), config=config, about=about, reviews=reviews, truth=truth,
                     mined=mined, polarity=polarity, corpora=corpora, tasks=tasks, nouns=NOUNS, words=(frequent, rare),
                     vocab=str(vocab), chosen=chosen)
