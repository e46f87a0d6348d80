"""BioBERT's two profiles as data, for ``notebooks/14_biobert.ipynb``.

Both continue the same general encoder — the embedded all-MiniLM-L6-v2, uncased
BERT vocabulary, no MLM head (BERT's fresh head is added) — with BERT's masked LM
on biomedical text, then fine-tune the general and the adapted encoder alike for
disease NER (BIO tags).

- ``smoke`` (offline, built-in): the disease-mention task of WordNet sentences
  (:func:`kbench.data.wordnet_domains.disease_mentions`, NCBI-disease's shape: one
  entity type, ``Disease``) and, as biomedical text, WordNet's biomedical domain
  (glosses and examples of ``noun.body``, ``noun.state``, ``noun.animal``,
  ``noun.plant``: :func:`~kbench.data.wordnet_domains.domain_texts`) without any
  dev or test sentence of the task; the first layer of MiniLM (the budget's knob).
- ``full``: NCBI-disease from the mirror (SciBERT's copy, CoNLL columns), dev and
  test cleared of any sentence that is also a training sentence; the biomedical
  text is NCBI-disease's *training* sentences (its abstracts are PubMed abstracts,
  BioBERT's kind of text) — the task's own text, so closer to task-adaptive
  pretraining than to BioBERT's separate corpus, and holding ~3,400 training
  sentences the fine-tuning sample leaves out — never a dev or test one; a 3-layer prefix of MiniLM (all
  six do not fit the ten-minute CPU budget together with two fine-tunings) and a
  sample of the training sentences for fine-tuning.

The word embedding matrix (30,522 pieces x 384) is frozen in both pretraining and
fine-tuning, for every variant alike: its optimizer step is most of a CPU step.

Both profiles also build the same-budget control's corpus: WordNet's ``artifacts``
domain (glosses and examples of ``noun.artifact``, ``noun.object``, ``noun.location``,
``noun.shape``), text that is not biomedical, read for the same steps.

The fine-tuning learning rates (1e-3 smoke, 1e-4 full) are far above the 1e-5 the authors
recommend (README, for 50+ epochs): a fresh output layer over a 1- or 3-layer encoder has 2 epochs to learn the
task here, and at 1e-5 it would not; the notebook records how far fine-tuning
moves the encoder beside how far continued pretraining did. ``max_length`` is
40 (smoke) and 64 (full) pieces against the authors' 128, to fit the CPU budget;
the notebook records how many test sentences and gold mentions that cuts.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from kbench.errors import InputError
from kbench.profiles import Setup, choices, finetune_and_pretrain_configs
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(task="wordnet", task_limit=500, train_limit=0, layers=1, corpus_limit=4000, steps=40,
                  batch_size=16, learning_rate=2e-4, max_length=40, epochs=2, finetune_batch_size=32,
                  finetune_learning_rate=1e-3, patience=3, freeze_word_embeddings=True, precision="no"),
    "full": dict(task="ncbi_disease", task_limit=0, train_limit=2000, layers=3, corpus_limit=0, steps=150,
                 batch_size=32, learning_rate=1e-4, max_length=64, epochs=2, finetune_batch_size=32,
                 finetune_learning_rate=1e-4, patience=2, freeze_word_embeddings=True, precision="auto"),
}


@dataclass
class BioBERTSetup(Setup):
    """BioBERT's setup: the NER splits (word lists, BIO tags), the biomedical corpus and the two configs."""

    corpus: list = field(default_factory=list)          # plain biomedical sentences, no dev/test text
    control_corpus: list = field(default_factory=list)  # plain non-biomedical sentences (the same-budget control)
    held_out: list = field(default_factory=list)        # the task's dev and test sentences (word lists)
    layers: int | None = None                           # the general encoder's layer prefix
    pretrain_config: TrainConfig | None = None
    max_length: int = 64
    freeze_word_embeddings: bool = True
    corpus_source: str = ""
    dropped: int = 0                                    # dev/test sentences dropped for being training sentences


def _clear(split, seen: set[str]):
    from kbench.data.kbert_datasets import Split
    from kbench.text.vocabulary import text_key

    keep = [i for i, words in enumerate(split.texts) if text_key(words) not in seen]
    return Split([split.texts[i] for i in keep], [split.labels[i] for i in keep]), len(split.texts) - len(keep)


def _task(chosen: dict, seed: int, data_dir: str):
    """Return ``(train, dev, test, dropped, description)`` of the profile's NER task."""
    from kbench.text.vocabulary import text_key

    if chosen["task"] == "wordnet":
        from kbench.data.wordnet_domains import disease_mentions

        train, dev, test = disease_mentions(seed, limit=chosen["task_limit"] or None)
        about = "WordNet sentences naming a disorder (BIO, one type: Disease)"
    elif chosen["task"] == "ncbi_disease":
        from kbench.data.scientific import load_scientific

        train, dev, test = (load_scientific("ncbi_disease", split, data_dir or None) for split in ("train", "dev", "test"))
        about = "NCBI-disease (Doğan et al. 2014; SciBERT's copy), BIO, one type: Disease"
    else:
        raise InputError(f"unknown task {chosen['task']!r}: use 'wordnet' or 'ncbi_disease'")
    seen = {text_key(words) for words in train.texts}
    dev, dropped_dev = _clear(dev, seen)
    test, dropped_test = _clear(test, seen)
    return train, dev, test, dropped_dev + dropped_test, about


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> BioBERTSetup:
    """Return BioBERT's NER splits, biomedical corpus and configs for ``profile`` (overrides: any key of CHOICES)."""
    from kbench.data.kbert_datasets import Split
    from kbench.models.biobert import TAGS, pretraining_corpus

    chosen = choices(CHOICES, profile, overrides)
    train, dev, test, dropped, about = _task(chosen, seed, data_dir)
    held_out = [list(w) for w in dev.texts + test.texts]
    if chosen["task"] == "wordnet":
        from kbench.data.wordnet_domains import domain_texts

        texts = domain_texts("biomedical", exclude=[" ".join(w) for w in held_out], limit=chosen["corpus_limit"] or None,
                             seed=seed)
        corpus_source = "WordNet's biomedical domain (glosses and examples of noun.body, noun.state, noun.animal, noun.plant)"
    else:
        texts = train.texts
        corpus_source = "NCBI-disease's training sentences (PubMed abstracts)"
    corpus = pretraining_corpus(texts, held_out)
    from kbench.data.wordnet_domains import domain_texts

    control = pretraining_corpus(domain_texts("artifacts", exclude=[" ".join(w) for w in held_out],
                                              limit=chosen["corpus_limit"] or None, seed=seed), held_out)
    if chosen["corpus_limit"] and len(corpus) > chosen["corpus_limit"]:
        corpus = random.Random(seed).sample(corpus, chosen["corpus_limit"])
    if chosen["train_limit"] and len(train.texts) > chosen["train_limit"]:
        keep = sorted(random.Random(seed).sample(range(len(train.texts)), chosen["train_limit"]))
        train = Split([train.texts[i] for i in keep], [train.labels[i] for i in keep])
    config, pretrain_config = finetune_and_pretrain_configs(chosen, device, seed)
    splits = tuple((list(part.texts), list(part.labels)) for part in (train, dev, test))
    setup_ = BioBERTSetup(
        profile=profile, seed=seed, device=device, base_model=base_model or "embedded", labels=list(TAGS),
        splits=splits, config=config, corpus=corpus, control_corpus=control, held_out=held_out, layers=chosen["layers"],
        pretrain_config=pretrain_config, max_length=chosen["max_length"],
        freeze_word_embeddings=chosen["freeze_word_embeddings"], corpus_source=corpus_source, dropped=dropped,
        about="")
    setup_.about = (f"{about}: {setup_.sizes()} sentences ({dropped} dev/test sentences dropped as training "
                    f"sentences); biomedical corpus: {len(corpus)} sentences of {corpus_source}; control corpus: "
                    f"{len(control)} sentences of WordNet's artifacts domain; general encoder: "
                    f"{setup_.base_model}, first {chosen['layers']} layers")
    return setup_


def tagger_options(s: BioBERTSetup) -> dict:
    """Return the options of the NER tagger (``KBertTagger`` with no KG, run_ner.py's head) shared by every variant."""
    from kbench.models.biobert import TAGGER

    return dict(tags=list(s.labels), kg=None, max_length=s.max_length, freeze_word_embeddings=s.freeze_word_embeddings,
                **TAGGER)
