"""Domain vocabularies: train a WordPiece vocabulary on domain text and compare it with another.

Two papers ask the same question of a vocabulary — does it fit the domain's text?

- SciBERT (Beltagy, Lo, Cohan, EMNLP 2019, §2): a new WordPiece vocabulary
  (SciVocab) built on scientific text, the same size as BERT's (BaseVocab);
  the paper reports their token overlap, 42%. :func:`train_wordpiece` builds
  one with Hugging Face ``tokenizers`` (the paper used SentencePiece to build
  its WordPiece vocabulary); :func:`vocabulary_overlap` is the overlap, as the
  share of one vocabulary's tokens found in the other, special tokens left out;
  :func:`pieces_per_word` is how finely each vocabulary cuts the same held-out
  domain words (a word of 1 piece is whole, more pieces are fragments).
- Don't Stop Pretraining (Gururangan et al., ACL 2020, §2, Figure 2): the
  similarity of two domains as the overlap of their top 10K most frequent
  words, stopwords excluded (:func:`top_words`, :func:`domain_overlap`).
"""
from __future__ import annotations

import hashlib
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from kbench.errors import InputError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*|\d+|[^\w\s]", re.UNICODE)    # words, numbers, punctuation marks


def _texts(texts: Iterable[str], what: str) -> list[str]:
    texts = [text for text in texts if isinstance(text, str) and text.strip()]
    if not texts:
        raise InputError(f"the {what} is empty: give at least one non-blank text")
    return texts


def train_wordpiece(texts: Iterable[str], size: int, lowercase: bool = True, min_frequency: int = 2):
    """Return a ``BertTokenizerFast`` with a WordPiece vocabulary of at most ``size`` tokens learned on ``texts``.

    BERT's normaliser (accents stripped, lower case when ``lowercase``) and
    pre-tokeniser (whitespace and punctuation), ``##`` continuation pieces, and
    BERT's five special tokens first, so the result drops in wherever a BERT
    tokenizer goes (``kbench pretrain --vocab``, :func:`kbench.pretrain.masked_lm`).
    The other pieces follow in sorted order: the same pieces get the same ids
    in every process (the trainer may still break a tie between equally
    frequent merges at the size limit differently from one process to the
    next; on the smoke notebook's corpus at its size the pieces are the same in
    two fresh processes with different hash seeds, which a test checks).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    texts = _texts(texts, "domain corpus")
    if size <= len(SPECIALS):
        raise InputError(f"a vocabulary of {size} tokens has no room beside the {len(SPECIALS)} special tokens "
                         f"{', '.join(SPECIALS)}: ask for more than {len(SPECIALS)}")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=size, min_frequency=min_frequency, special_tokens=list(SPECIALS),
                                        continuing_subword_prefix="##", show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    # The trainer's pieces are stable run to run but their ids are not (a hash map's order in each process): give
    # them one order — the specials, then the pieces sorted — so that a seeded model gives every piece the same row.
    # WordPiece's greedy longest match reads only the set of pieces, so the tokens are unchanged.
    learned = tokenizer.get_vocab()
    pieces = list(SPECIALS) + sorted(set(learned) - set(SPECIALS))
    tokenizer.model = models.WordPiece({piece: i for i, piece in enumerate(pieces)}, unk_token="[UNK]",
                                      continuing_subword_prefix="##")
    return BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=lowercase, unk_token="[UNK]",
                             sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def write_vocab_file(pieces: Sequence[str], directory: str | Path | None = None, name: str = "vocab") -> Path:
    """Return a ``vocab.txt`` holding ``pieces`` one per line, in order (line ``i`` is id ``i``).

    The file is named by its content's hash (``kbench-<name>-<hash>.txt`` in
    ``directory``, default the temporary directory) and written once, through a
    rename, so every process asking for the same vocabulary shares one file.
    """
    if not pieces or len(set(pieces)) != len(pieces):
        raise InputError("a vocabulary needs at least one piece and no piece twice")
    content = "\n".join(pieces) + "\n"
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    path = Path(directory or tempfile.gettempdir()) / f"kbench-{name}-{digest}.txt"
    if not path.is_file():
        partial = path.with_suffix(".part")
        partial.write_text(content, encoding="utf-8")
        partial.replace(path)
    return path


def tokens_of(tokenizer) -> set[str]:
    """Return a tokenizer's vocabulary without its special tokens."""
    return set(tokenizer.get_vocab()) - set(tokenizer.all_special_tokens) - set(SPECIALS)


def vocabulary_overlap(a, b) -> float:
    """Return the share of ``a``'s tokens (special tokens left out) that ``b`` also has (SciBERT §2: 42%)."""
    mine, theirs = tokens_of(a), tokens_of(b)
    if not mine:
        raise InputError("the first vocabulary has no tokens besides its special tokens")
    return len(mine & theirs) / len(mine)


def words_of(text: str) -> list[str]:
    """Return the words, numbers and punctuation marks of ``text``: one segmentation for every vocabulary."""
    return WORD.findall(text)


def text_key(text: str | Sequence[str], punctuation: bool = True) -> str:
    """Return a text's identity for de-duplication and leak checks: its :func:`words_of`, lower-cased.

    A sentence and its word list (a tagging task's form) compare equal, whatever the spacing or case.
    With ``punctuation=False`` the punctuation marks (tokens with no letter or digit) are dropped too, so
    "A cell divides ." and "a cell divides" are one text: the stricter key a pretraining corpus's leak
    check needs, where one source punctuates a sentence and another does not.
    """
    words = words_of(text) if isinstance(text, str) else list(text)
    if not punctuation:
        words = [word for word in words if any(ch.isalnum() for ch in word)]
    return " ".join(words).lower()


def pieces_per_word(tokenizer, texts: Iterable[str]) -> dict[str, float]:
    """Return how ``tokenizer`` cuts the words of ``texts``: mean pieces per word, the share cut into 2+ pieces,
    and the share it cannot spell at all (a single [UNK]: one "piece", yet no word kept whole).

    Words come from :func:`words_of` (not the tokenizer's own pre-tokeniser), so
    two vocabularies are measured on exactly the same words.
    """
    words = [word for text in _texts(texts, "held-out text") for word in words_of(text)]
    if not words:
        raise InputError("the held-out text has no words")
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    counts = np.array([len(ids) for ids in pieces])
    unknown = np.array([ids == [tokenizer.unk_token_id] for ids in pieces])
    return {"pieces_per_word": float(counts.mean()), "split_share": float((counts > 1).mean()),
            "unknown_share": float(unknown.mean()), "words": int(len(words))}


def top_words(texts: Iterable[str], k: int = 10_000, stopwords: Iterable[str] | None = None) -> list[str]:
    """Return the ``k`` most frequent lower-cased alphabetic words of ``texts``, stopwords excluded (ties: first seen).

    ``stopwords`` defaults to spaCy's English list, the one kbench uses elsewhere.
    """
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    if stopwords is None:
        from spacy.lang.en.stop_words import STOP_WORDS as stopwords
    stop = {word.lower() for word in stopwords}
    counts = Counter(word for text in _texts(texts, "domain corpus") for word in (w.lower() for w in words_of(text))
                     if word.isalpha() and word not in stop)
    return [word for word, _ in counts.most_common(k)]


def domain_overlap(domains: Mapping[str, Sequence[str]], k: int = 10_000,
                   stopwords: Iterable[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Return the domains' names and the matrix of their top-``k`` word overlaps (Gururangan et al., Figure 2).

    Entry ``(i, j)`` is ``|V_i ∩ V_j| / min(|V_i|, |V_j|)`` with ``V`` a domain's
    top ``k`` words; with ``k`` words in every domain, as in the paper, that is
    the share ``|V_i ∩ V_j| / k``. The diagonal is 1.
    """
    if len(domains) < 2:
        raise InputError(f"an overlap needs at least two domains, got {len(domains)}")
    stop = None if stopwords is None else list(stopwords)
    vocabularies = {name: set(top_words(texts, k, stop)) for name, texts in domains.items()}
    empty = [name for name, words in vocabularies.items() if not words]
    if empty:
        raise InputError(f"domain {empty[0]!r} has no words besides stopwords: give it real text")
    names = list(vocabularies)
    matrix = np.array([[len(vocabularies[a] & vocabularies[b]) / min(len(vocabularies[a]), len(vocabularies[b]))
                        for b in names] for a in names])
    return names, matrix
