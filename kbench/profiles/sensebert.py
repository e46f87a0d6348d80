"""SenseBERT's two profiles as data, for ``notebooks/10_sensebert.ipynb``.

Both pretrain a random-init BERT from scratch, as the paper does (§4: BERT's
hyperparameters, no BERT checkpoint), once with whole-word MLM and once with
SenseBERT's objective, on English text from WordNet itself — its glosses and
the example sentences that the probe does not use — and then probe both frozen
on WordNet's sense-labelled example sentences (a SemEval-SS analog, §5.2),
split by synset. ``smoke``: the ``tiny`` size (2 layers, 128 hidden), 3,000
texts, 100 steps of 16, 2,000 probe sentences. ``full``: the ``mini`` size
(4 layers, 256 hidden), 20,000 texts, 200 steps of 32, 4,000 probe sentences.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from kbench.errors import InputError
from kbench.kg.wordnet import LEXNAMES, WORD, find_lemma
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(size="tiny", corpus_size=3000, max_length=32, steps=100, batch_size=16, learning_rate=1e-3,
                  probe_size=2000, precision="no"),
    "full": dict(size="mini", corpus_size=20000, max_length=48, steps=200, batch_size=32, learning_rate=5e-4,
                 probe_size=4000, precision="auto"),
}
#: Sentences for the per-word view (§4, Fig. 3b): "bass" the fish and the instrument, and other ambiguous words.
VIEW_SENTENCES = ("Dan cooked a bass on the grill.", "She plays the bass in a jazz band.",
                  "The fishermen caught a large bass in the river.", "He sat on the bank of the river.",
                  "She deposited the money in the bank.", "The children run to school every morning.",
                  "They run a small restaurant downtown.")
PARTS = ("n", "v", "a", "r")


@dataclass
class ProbeData:
    """Sense-labelled words in context: each item ``((words, start, end), supersense index)``, by split."""

    train: list
    dev: list
    test: list

    def texts(self) -> set[str]:
        """Return every probe sentence, normalised (:func:`normalise`)."""
        return {normalise(" ".join(words)) for part in (self.train, self.dev, self.test) for (words, _, _), _ in part}


@dataclass
class SenseSetup(Setup):
    """SenseBERT's setup: WordNet's lexicon, the pretraining texts, the frozen probe's data, the pretraining config."""

    lexicon: object = None                            # a kbench.models.sensebert.SupersenseLexicon
    texts: list[str] = field(default_factory=list)    # the pretraining corpus (no probe sentence among them)
    probe: ProbeData | None = None
    view_sentences: tuple[str, ...] = VIEW_SENTENCES


def normalise(text: str) -> str:
    """Return ``text`` lowercased with its words and punctuation single-spaced: the key for content splits."""
    return " ".join(re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[^\sa-z0-9]", text.lower()))




def labelled_examples(lexicon, parts: tuple[str, ...] = PARTS) -> list[tuple[tuple[list[str], int, int], int, str]]:
    """Return WordNet's example sentences whose synset's lemma occurs in them: ``((words, start, end), label, synset)``.

    As :func:`kbench.kg.wordnet.sense_examples`: a multi-word lemma matches
    its words, a one-word lemma also an inflected form (``ran`` -> ``run``,
    by the lexicon's morphy); the label is the synset's supersense.
    """
    rows = []
    for synset in lexicon.synsets:
        if synset.pos not in parts:
            continue
        lemmas = [lemma.split("_") for lemma in synset.lemmas]
        for text in synset.examples:
            words = WORD.findall(text)
            match = find_lemma(words, lemmas, lambda word, lemma: lemma in lexicon.base_forms(word, synset.pos))
            if match is not None:
                rows.append(((words, match[0], match[1]), synset.supersense, synset.name))
    return rows


def probe_data(lexicon, size: int, seed: int = 0, parts: tuple[str, ...] = ("n", "v"),
               fractions: tuple[float, float] = (0.8, 0.1)) -> ProbeData:
    """Return ``size`` of WordNet's sense-labelled example sentences drawn at random, split 80/10/10 by synset.

    Each item is the sentence's words, the labelled word's span and its
    synset's supersense; ``parts``: nouns and verbs, as the entity papers'
    supersense task (adjectives are nearly all ``adj.all``). A sentence that two synsets share is kept once, so
    no sentence is in two splits; a test synset is never seen in training.
    """
    if size < 30:
        raise InputError(f"the probe needs at least 30 sentences, got {size}")
    examples, seen = labelled_examples(lexicon, parts), set()
    random.Random(seed).shuffle(examples)
    rows = []
    for item, label, synset in examples:
        key = normalise(" ".join(item[0]))
        if key in seen:
            continue
        seen.add(key)
        rows.append((item, label, synset))
        if len(rows) >= size:
            break
    synsets = sorted({synset for *_, synset in rows})
    random.Random(seed).shuffle(synsets)
    cut_train, cut_dev = int(fractions[0] * len(synsets)), int(sum(fractions) * len(synsets))
    part = {s: 0 if i < cut_train else 1 if i < cut_dev else 2 for i, s in enumerate(synsets)}
    splits = ([], [], [])
    for item, label, synset in rows:
        splits[part[synset]].append((item, label))
    return ProbeData(*splits)


def pretraining_texts(lexicon, size: int, exclude: set[str], seed: int = 0) -> list[str]:
    """Return ``size`` distinct WordNet glosses and example sentences, drawn at random, none of them in ``exclude``.

    ``exclude`` holds normalised sentences (the probe's): a text whose
    normalised form is among them is left out, so the corpus and the probe
    are disjoint by content, not by object identity.
    """
    if size < 1:
        raise InputError(f"the corpus size must be positive, got {size}")
    texts, seen = [], set(exclude)
    for synset in lexicon.synsets:
        for text in (synset.definition, *synset.examples):
            key = normalise(text)
            if key and key not in seen:
                seen.add(key)
                texts.append(text)
    random.Random(seed).shuffle(texts)
    return texts[:size]


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> SenseSetup:
    """Return SenseBERT's lexicon, pretraining texts, probe data and config for ``profile`` (overrides: CHOICES)."""
    chosen = choices(CHOICES, profile, overrides)
    from kbench.models.sensebert import load_lexicon

    lexicon = load_lexicon(data_dir or None)
    probe = probe_data(lexicon, chosen["probe_size"], seed)
    texts = pretraining_texts(lexicon, chosen["corpus_size"], probe.texts(), seed)
    base = base_model or chosen["size"]
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         max_steps=chosen["steps"], seed=seed, device=device, precision=chosen["precision"],
                         progress=None)
    splits = tuple(([item for item, _ in part], [label for _, label in part])
                   for part in (probe.train, probe.dev, probe.test))
    about = (f"base {base} pretrained {chosen['steps']} steps of {chosen['batch_size']} on {len(texts)} WordNet "
             f"glosses and examples (max {chosen['max_length']} tokens); frozen probe on {chosen['probe_size']} "
             "sense-labelled example sentences split by synset")
    return SenseSetup(profile=profile, seed=seed, device=device, base_model=base, labels=list(LEXNAMES),
                      splits=splits, options=dict(max_length=chosen["max_length"]), config=config, about=about,
                      lexicon=lexicon, texts=texts, probe=probe)
