"""Loaders for the K-BERT authors' datasets and KGs (declared in ``data_manifest/kbert.toml``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kbench.data.manifest import local_path
from kbench.errors import DataError, UnknownNameError
from kbench.kg import KnowledgeGraph

CLASSIFICATION = ("book_review", "chnsenticorp", "shopping")
NER = ("medical_ner",)
#: NER sets of the authors' repository whose train split is not in the manifest (nor the mirror): dev and test only.
NER_EVALUATION_ONLY = ("msra_ner", "financial_ner")
KGS = {"HowNet": "kbert/kgs/HowNet.spo", "Medical": "kbert/kgs/Medical.spo"}
VOCAB = "kbert/vocab/google_vocab.txt"


@dataclass
class Split:
    """Sentences with labels (classification: one label; NER: units with a tag each)."""

    texts: list
    labels: list


def _rows(path: Path, header: list[str]) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != header:
        raise DataError(f"{path}:1: expected the header {'<TAB>'.join(header)!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataError(f"{path}:{number}: expected {len(header)} tab-separated fields, got {len(fields)}")
        rows.append(fields)
    return rows


def load_kbert_dataset(name: str, split: str, data_dir: str | Path | None = None, limit: int | None = None) -> Split:
    """Return one split of a K-BERT dataset: ``label<TAB>text_a`` or NER ``text_a<TAB>label`` rows."""
    if split not in ("train", "dev", "test"):
        raise UnknownNameError(f"unknown split {split!r}: use train, dev or test")
    if name in CLASSIFICATION:
        rows = _rows(local_path(f"kbert/datasets/{name}/{split}.tsv", data_dir), ["label", "text_a"])[:limit]
        return Split([text for _, text in rows], [int(label) for label, _ in rows])
    if name in NER_EVALUATION_ONLY and split == "train":
        raise UnknownNameError(f"{name} has no train split in kbench's data manifest (only dev and test are "
                               "declared): train on medical_ner, or evaluate a model trained elsewhere")
    if name in NER + NER_EVALUATION_ONLY:
        rows = _rows(local_path(f"kbert/datasets/{name}/{split}.tsv", data_dir), ["text_a", "label"])[:limit]
        units = [text.split(" ") for text, _ in rows]
        tags = [label.split(" ") for _, label in rows]
        return Split(units, tags)
    raise UnknownNameError(f"unknown K-BERT dataset {name!r}: use one of {', '.join(CLASSIFICATION + NER + NER_EVALUATION_ONLY)}")


def text_of(item) -> str:
    """Return a classification text or an NER sentence (its units joined) as one stripped string."""
    return ("".join(item) if isinstance(item, list) else item).strip()


def without_texts(split: Split, texts: set[str]) -> tuple[Split, int]:
    """Return ``split`` without the examples whose text is in ``texts``, and how many were dropped.

    K-BERT's released splits share texts: 331 of ChnSentiCorp's 1,200 test
    reviews and 329 of Medical NER's 755 test sentences are also training texts,
    so a test score partly measures recall of the training set. Dropping them
    from dev and test keeps evaluation on texts the model has not seen.
    """
    keep = [i for i, item in enumerate(split.texts) if text_of(item) not in texts]
    return Split([split.texts[i] for i in keep], [split.labels[i] for i in keep]), len(split.texts) - len(keep)


def unseen_dev_test(splits: list[Split], seen: set[str]) -> tuple[list[Split], int]:
    """Return ``[train, dev, test]`` with dev and test cleared of the texts in ``seen``, and how many were dropped."""
    kept = [without_texts(part, seen) for part in splits[1:]]
    return [splits[0]] + [part for part, _ in kept], sum(count for _, count in kept)


def load_kg(name: str, data_dir: str | Path | None = None) -> KnowledgeGraph:
    """Return a named KG: ``HowNet`` or ``Medical`` (fetched through the manifest), or ``world``."""
    if name == "world":
        from kbench.data.world import make_world

        return make_world().kg
    if name not in KGS:
        raise UnknownNameError(f"unknown KG {name!r}: use one of {', '.join([*KGS, 'world'])}")
    return KnowledgeGraph.from_spo(local_path(KGS[name], data_dir), name=name)
