"""ERNIE's Wikipedia pre-training sample (``data_manifest/ernie_thu.toml``): word pieces aligned to Wikidata entities.

The ERNIE authors' ``pretrain_data/wiki_token`` and ``wiki_entity`` hold the
same 100 documents: a line is a document, tab-separated — its number of
sentences, then for each sentence its length and its bert-base-uncased word
piece ids (``wiki_token``), or a Wikidata QID per piece, ``#UNK#`` where none
(``wiki_entity``). A mention's QID is on each of its pieces; ERNIE aligns the
entity with the mention's *first* piece (§3.1), which is what this loader returns.
Used by ``notebooks/05_ernie_thu.ipynb`` (full profile) to show dEA on real text.
"""
from __future__ import annotations

from pathlib import Path

from kbench.data.manifest import local_path
from kbench.errors import DataError

FILES = ("ernie_thu/pretrain_data/wiki_token", "ernie_thu/pretrain_data/wiki_entity")
NONE = "#UNK#"


def _documents(path: Path) -> list[list[list[str]]]:
    documents = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        try:
            count, at, sentences = int(fields[0]), 1, []
            for _ in range(count):
                length = int(fields[at])
                sentences.append(fields[at + 1:at + 1 + length])
                if len(sentences[-1]) != length:
                    raise ValueError
                at += 1 + length
        except (ValueError, IndexError):
            raise DataError(f"{path}:{number}: expected a sentence count, then each sentence's length and "
                            "its fields") from None
        documents.append(sentences)
    return documents


def first_piece_entities(entities: list[str]) -> list[str | None]:
    """Keep each mention's entity on its first piece only (a run of one QID is one mention)."""
    return [e if e != NONE and (i == 0 or entities[i - 1] != e) else None for i, e in enumerate(entities)]


def load_ernie_wiki(data_dir: str | Path | None = None, documents: int | None = None
                    ) -> list[tuple[list[int], list[str | None]]]:
    """Return sentences as ``(piece ids, entity or None per piece)``, entities on first pieces only."""
    tokens, entities = (_documents(local_path(name, data_dir)) for name in FILES)
    if len(tokens) != len(entities):
        raise DataError(f"{FILES[0]} has {len(tokens)} documents but {FILES[1]} has {len(entities)}")
    sentences = []
    for number, (doc_tokens, doc_entities) in enumerate(list(zip(tokens, entities))[:documents], start=1):
        if [len(s) for s in doc_tokens] != [len(s) for s in doc_entities]:
            raise DataError(f"document {number}: the token and entity files disagree on sentence lengths")
        for ids, qids in zip(doc_tokens, doc_entities):
            sentences.append(([int(i) for i in ids], first_piece_entities(qids)))
    return sentences
