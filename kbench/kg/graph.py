"""Knowledge graphs as ordered subject -> branch lookups (K-BERT §3.1, the KG ``K``).

Used by the K-BERT notebook (``01_k_bert``, section "The sentence tree"). The
authors' ``KnowledgeGraph`` keeps each subject's values in a Python ``set``, so
which branches survive ``max_entities`` depends on hash order; here a subject's
triples keep the order in which they first appear in the file, which makes
sentence trees reproducible.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kbench.errors import InputError, KGFormatError

Triple = tuple[str, str, str]


@dataclass
class LoadReport:
    """What a tolerant load (``on_error="skip"``) left out: counts and the first few offending lines."""

    path: str | None = None
    loaded: int = 0
    skipped: int = 0
    duplicates: int = 0
    examples: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        text = f"loaded {self.loaded} triples{where}; skipped {self.skipped} malformed, {self.duplicates} duplicate"
        return text + (f" (e.g. {'; '.join(self.examples)})" if self.examples else "")


class KnowledgeGraph:
    """Triples ``(subject, predicate, object)`` indexed by subject, keeping file order.

    Duplicate triples are dropped (the authors' set semantics); everything else is
    kept in the order it was read.
    """

    def __init__(self, name: str = "kg"):
        self.name = name
        self._by_subject: dict[str, list[tuple[str, str]]] = {}
        self._seen: set[Triple] = set()
        self.report = LoadReport()

    # ---- construction -------------------------------------------------
    @classmethod
    def from_triples(cls, triples: Iterable[Iterable[str]], name: str = "kg") -> "KnowledgeGraph":
        """Return a graph of the given triples; raise ``KGFormatError`` on one that is not 3 non-empty strings."""
        graph = cls(name)
        for index, triple in enumerate(triples):
            parts = tuple(triple) if not isinstance(triple, str) else (triple,)
            if len(parts) != 3 or not all(isinstance(p, str) and p.strip() for p in parts):
                raise KGFormatError(f"triple #{index} {parts!r} of {name!r} is not (subject, predicate, object) "
                                    "with three non-empty strings")
            graph._add(*(p.strip() for p in parts))
        return graph

    @classmethod
    def from_spo(cls, path: str | Path, on_error: str = "raise", name: str | None = None) -> "KnowledgeGraph":
        """Return the graph of a K-BERT ``.spo`` file: one ``subj<TAB>pred<TAB>obj`` a line."""
        return cls._from_lines(Path(path), on_error, name, header=False)

    @classmethod
    def from_tsv(cls, path: str | Path, on_error: str = "raise", header: bool = False,
                 name: str | None = None) -> "KnowledgeGraph":
        """Return the graph of a three-column TSV file (optionally with a header line)."""
        return cls._from_lines(Path(path), on_error, name, header=header)

    @classmethod
    def _from_lines(cls, path: Path, on_error: str, name: str | None, header: bool) -> "KnowledgeGraph":
        if on_error not in ("raise", "skip"):
            raise InputError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if not path.is_file():
            raise KGFormatError(f"triple file {path} does not exist; fetch it with `kbench data fetch` "
                                "or give the right path", str(path))
        graph = cls(name or path.stem)
        graph.report.path = str(path)
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if header and line_number == 1:
                    continue
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip():
                    continue
                parts = [p.strip() for p in line.split("\t")]
                if len(parts) != 3 or not all(parts):
                    problem = (f"{path}:{line_number}: expected 'subject<TAB>predicate<TAB>object', "
                               f"got {len(parts)} field(s): {line[:80]!r}")
                    if on_error == "raise":
                        raise KGFormatError(problem + " (pass on_error='skip' to skip such lines)",
                                            str(path), line_number)
                    graph.report.skipped += 1
                    if len(graph.report.examples) < 3:
                        graph.report.examples.append(f"line {line_number}")
                    continue
                graph._add(*parts)
        return graph

    def _add(self, subject: str, predicate: str, obj: str) -> None:
        triple = (subject, predicate, obj)
        if triple in self._seen:
            self.report.duplicates += 1
            return
        self._seen.add(triple)
        self._by_subject.setdefault(subject, []).append((predicate, obj))
        self.report.loaded += 1

    # ---- queries ------------------------------------------------------
    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, subject: object) -> bool:
        return subject in self._by_subject

    def __iter__(self) -> Iterator[Triple]:
        for subject, pairs in self._by_subject.items():
            for predicate, obj in pairs:
                yield subject, predicate, obj

    def __repr__(self) -> str:
        return f"KnowledgeGraph({self.name!r}, {len(self)} triples, {len(self._by_subject)} subjects)"

    @property
    def subjects(self) -> list[str]:
        """Return every subject, in the order it first appeared."""
        return list(self._by_subject)

    def lookup(self, subject: str) -> list[tuple[str, str]]:
        """Return the ``(predicate, object)`` pairs of ``subject`` in file order ([] when unknown)."""
        return list(self._by_subject.get(subject, ()))

    def branches(self, subject: str, predicate: bool = True, joiner: str = "",
                 limit: int | None = None) -> list[str]:
        """Return the first ``limit`` distinct branch texts of ``subject`` in file order.

        A branch text is ``predicate + joiner + object`` (K-BERT's ``pred+obj`` for
        character KGs) or the object alone when ``predicate`` is False.
        """
        texts: list[str] = []
        for pred, obj in self._by_subject.get(subject, ()):
            text = pred + joiner + obj if predicate else obj
            if text not in texts:
                texts.append(text)
                if limit is not None and len(texts) >= limit:
                    break
        return texts

    def to_tsv(self, path: str | Path) -> None:
        """Write the triples as ``subj<TAB>pred<TAB>obj`` lines (the ``.spo`` format)."""
        with Path(path).open("w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(f"{s}\t{p}\t{o}\n" for s, p, o in self)
