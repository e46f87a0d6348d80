"""Named pretraining corpora for ``kbench pretrain``: text, its language, and the KG whose mentions are units.

- ``world``: the knowledge world's facts written with held-out probe templates
  (:func:`kbench.data.fact_corpus.fact_corpus`) plus its training sentences.
- ``kbert-zh``: the *training* splits of K-BERT's Chinese datasets
  (book_review, chnsenticorp, shopping, medical_ner) — never dev or test, so a
  base pretrained on it is fair to fine-tune and test on those sets. The
  datasets repeat texts across their splits (394 of ChnSentiCorp's 1,200 test
  reviews are also training texts of one of the four), so every text equal to a
  dev or test text of any of them is dropped, and repeats are kept once.
  Mentions of HowNet and the medical KG are its entity units.
- ``scientific``: the *training* sentences of SciBERT's tasks mirrored here
  (ACL-ARC citation intents, SciERC relations, NCBI-disease), without any
  sentence that is a dev or test sentence of one of them
  (:func:`kbench.data.scientific.domain_sentences`).
- a path: a UTF-8 text file, one text per line (language guessed from its
  characters: Chinese when most letters are CJK).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kbench.errors import InputError, UnknownNameError

NAMED = ("world", "kbert-zh", "scientific")
KBERT_PRETRAINING = ("book_review", "chnsenticorp", "shopping", "medical_ner")


@dataclass
class PretrainingText:
    """Texts to pretrain on, their language (``en``/``zh``), the KG names whose mentions are entities, a source."""

    texts: list[str]
    language: str
    entity_names: list[str]
    source: str
    vocab: str | None = None        # a vocabulary file the corpus needs (Chinese), None for the base's own


def pretraining_text(name: str, data_dir: str | None = None, kg_path: str | None = None,
                     seed: int = 0) -> PretrainingText:
    """Return the named corpus (``world``, ``kbert-zh``) or a one-text-per-line file's."""
    if name == "world":
        from kbench.data.fact_corpus import fact_corpus
        from kbench.data.world import make_world

        world = make_world(seed=seed)
        facts = fact_corpus(list(world.kg), seed=seed)
        names = sorted({s for s, _, _ in world.kg} | {o for _, _, o in world.kg})
        return PretrainingText(facts.texts + [e.text for e in world.train], "en", names, "the knowledge world's facts")
    if name == "kbert-zh":
        from kbench.data.kbert_datasets import KGS, VOCAB, load_kbert_dataset, text_of
        from kbench.data.manifest import local_path
        from kbench.kg import KnowledgeGraph

        joined = lambda split: [text_of(t) for t in split.texts]
        held_out = {text for dataset in KBERT_PRETRAINING for part in ("dev", "test")
                    for text in joined(load_kbert_dataset(dataset, part, data_dir))}
        texts = [text for dataset in KBERT_PRETRAINING for text in joined(load_kbert_dataset(dataset, "train", data_dir))]
        texts = [text for text in dict.fromkeys(texts) if text and text not in held_out]
        names = sorted({s for kg in KGS.values() for s in KnowledgeGraph.from_spo(local_path(kg, data_dir)).subjects})
        return PretrainingText(texts, "zh", names, "K-BERT's Chinese training splits", str(local_path(VOCAB, data_dir)))
    if name == "scientific":
        from kbench.data.scientific import domain_sentences

        return PretrainingText(domain_sentences(data_dir=data_dir), "en", [],
                               "the training sentences of ACL-ARC, SciERC and NCBI-disease")
    path = Path(name)
    if not path.is_file():
        raise UnknownNameError(f"unknown corpus {name!r}: use {', '.join(NAMED)} or a text file (one text a line)")
    texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise InputError(f"{path} has no text")
    sample = "".join(texts[:200])
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in sample)
    letters = sum(ch.isalpha() for ch in sample)
    names = []
    if kg_path:
        from kbench.kg import KnowledgeGraph

        kg = KnowledgeGraph.from_tsv(kg_path)
        names = sorted({s for s, _, _ in kg} | {o for _, _, o in kg})
    return PretrainingText(texts, "zh" if cjk > letters / 2 else "en", names, str(path))
