"""Loaders for SciBERT's scientific tasks (declared in ``data_manifest/scibert.toml``) and their domain text.

Three of the tasks Beltagy et al. (EMNLP 2019) fine-tune on, as the authors'
repository (allenai/scibert, ``data/``) ships them:

- ``citation_intent`` (ACL-ARC, Jurgens et al. 2018): one JSON object a line,
  ``text`` and one of six intents as ``label``;
- ``sciie`` (SciERC relations, Luan et al. 2018): one JSON object a line, the
  two arguments marked in ``text`` as ``[[ head ]]`` and ``<< tail >>``, one of
  seven relations as ``label``;
- ``ncbi_disease`` (NCBI-disease NER, Doğan et al. 2014): CoNLL columns
  ``token POS chunk tag`` (BIO tags, one entity type ``Disease``), sentences
  separated by a blank line.

:func:`domain_sentences` turns the *training* splits into plain sentences (argument markers removed,
de-duplicated, and any sentence equal to a dev or test sentence of any of the three dropped): the only
scientific text this project may pretrain or build a vocabulary on.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from kbench.data.kbert_datasets import Split
from kbench.data.manifest import local_path
from kbench.errors import DataError, UnknownNameError

SPLITS = ("train", "dev", "test")
FILES = {"citation_intent": "scibert/text_classification/citation_intent/{split}.txt",
         "sciie": "scibert/text_classification/sciie-relation-extraction/{split}.txt",
         "ncbi_disease": "scibert/ner/NCBI-disease/{split}.txt"}
MARKERS = re.compile(r"\s*(?:\[\[|\]\]|<<|>>)\s*")


def _path(name: str, split: str, data_dir: str | Path | None) -> Path:
    if name not in FILES:
        raise UnknownNameError(f"unknown scientific dataset {name!r}: use one of {', '.join(FILES)}")
    if split not in SPLITS:
        raise UnknownNameError(f"unknown split {split!r}: use train, dev or test")
    return local_path(FILES[name].format(split=split), data_dir)


def _json_lines(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not a JSON object ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "label" not in row:
            raise DataError(f"{path}:{number}: expected an object with 'text' and 'label'")
        rows.append(row)
    return rows


def _conll(path: Path) -> Split:
    sentences, tags, tokens, labels = [], [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            if tokens:
                sentences.append(tokens)
                tags.append(labels)
            tokens, labels = [], []
            continue
        if len(fields) < 2 or not re.fullmatch(r"O|[BI]-\w+", fields[-1]):
            raise DataError(f"{path}:{number}: expected 'token ... tag' with a BIO tag last, got {line!r}")
        tokens.append(fields[0])
        labels.append(fields[-1])
    if tokens:
        sentences.append(tokens)
        tags.append(labels)
    return Split(sentences, tags)


def load_scientific(name: str, split: str, data_dir: str | Path | None = None, limit: int | None = None) -> Split:
    """Return one split: ``citation_intent`` / ``sciie`` as (text, label string), ``ncbi_disease`` as (tokens, tags)."""
    path = _path(name, split, data_dir)
    if name == "ncbi_disease":
        split_ = _conll(path)
        return Split(split_.texts[:limit], split_.labels[:limit])
    rows = _json_lines(path)[:limit]
    return Split([row["text"] for row in rows], [str(row["label"]) for row in rows])


def plain_text(item) -> str:
    """Return an example as one plain sentence: NER tokens joined, SciERC's argument markers removed."""
    text = " ".join(item) if isinstance(item, list) else item
    return " ".join(MARKERS.sub(" ", text).split())


def held_out_sentences(data_dir: str | Path | None = None) -> set[str]:
    """Return the plain dev and test sentences of every scientific dataset: text no pretraining may see."""
    return {plain_text(item) for name in FILES for split in ("dev", "test")
            for item in load_scientific(name, split, data_dir).texts}


def domain_sentences(names: tuple[str, ...] = tuple(FILES), data_dir: str | Path | None = None) -> list[str]:
    """Return the de-duplicated plain sentences of the *training* splits of ``names``, in file order, without any
    sentence that is also a dev or test sentence of one of the datasets."""
    held_out = held_out_sentences(data_dir)
    seen: dict[str, None] = {}
    for name in names:
        for item in load_scientific(name, "train", data_dir).texts:
            seen.setdefault(plain_text(item), None)
    return [text for text in seen if text and text not in held_out]
