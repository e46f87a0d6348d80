"""SciBERT: a vocabulary built on the domain's text, and BERT pretrained from scratch on that text with it.

Beltagy, Lo, Cohan. *SciBERT: A Pretrained Language Model for Scientific Text.*
EMNLP-IJCNLP 2019. https://arxiv.org/abs/1903.10676
Code: https://github.com/allenai/scibert (the released vocabularies, fine-tuning
configs ``allennlp_config/``, the task data ``data/`` mirrored here).

Taught in ``notebooks/13_scibert.ipynb``. SciBERT keeps BERT's architecture and
objective and changes the two things a pretrained model learns *from* (§2):

- **SciVocab** (§2, "Vocabulary"): a new WordPiece vocabulary built on the
  scientific corpus, cased and uncased, its size set to 30K to match BERT's
  (BaseVocab); the paper reports a token overlap of 42% between the two
  (§2, which also gives the corpus: 1.14M papers, 3.17B tokens; the authors'
  README rounds it to 3.1B).
  :func:`build_scivocab` builds it with Hugging Face ``tokenizers``'
  WordPiece trainer (:func:`kbench.text.vocabulary.train_wordpiece`); the paper
  built its WordPiece vocabulary with the SentencePiece library (the authors'
  ``scripts/cheatsheet.txt``: ``--model_type=bpe --vocab_size=31000
  --character_coverage=0.9999``, BPE merges then written as a WordPiece
  ``vocab.txt``) — a different learner of the same kind of subword table
  (merges chosen by corpus statistics), so the pieces differ in detail, not in
  what the vocabulary is for. We build the **uncased** version, the one the paper uses for every task
  but NER and the one the authors' README recommends; BERT's uncased
  vocabulary is the BaseVocab we have offline (the embedded MiniLM's).
- **Equal sizes** (§2): the paper sets SciVocab's size to BaseVocab's. A few
  thousand domain sentences cannot fill 30K pieces, so at our scale both are
  made the same size ``K``: SciVocab is trained to ``K`` on the domain text and
  BaseVocab is cut to ``K`` (:func:`base_vocabulary`): BERT's ``vocab.txt``
  lists its pieces in the order its WordPiece learner ranked them on general
  text (``the, of, and, in, to, was, he, ...``: ``the`` is id 1996, the ``##s``
  suffix id 2015, the 20th piece after the single characters), so its first
  ``K`` pieces stand in for a general vocabulary of size ``K``; the characters
  (and ``##`` characters) of the domain text are kept first so that both
  vocabularies can spell every domain word. Equal sizes also make the two
  models' parameters the same shapes, so "the same random init" is literally
  the same tensors (tested).
- **Pretraining from scratch on the domain** (§2, "Corpus"; §3.3): SciBERT
  with SciVocab is trained from scratch on 1.14M papers (3.17B tokens as two
  summaries of the paper report it, 3.1B in the authors' README) with BERT's
  objectives (masked LM and next sentence: Google's ``run_pretraining.py``). In the paper the BaseVocab variants start from BERT-base's
  weights instead; we pretrain *both* from the same random init on the same
  domain text for the same steps, so that the vocabulary is the only
  difference (the paper's Table 1 "SciBERT BaseVocab vs SciVocab"
  comparison, at equal budget). BERT's next-sentence objective is left out,
  as everywhere in kbench's pretraining (single sentences): so no loss ever
  trains the [CLS] state the classifier reads (the notebook measures it).
- **Fine-tuning** (§3.3): BERT's own fine-tuning, a classifier on [CLS] for
  text and relation classification, a tagger on the tokens for NER; the same
  configuration for every variant. Two differences from the authors' allennlp
  configs (``allennlp_config/``): their ``BertTextClassifier`` head is [CLS] ->
  dropout 0.2 -> one linear layer, ours is ``KBertClassifier``'s [CLS] -> tanh
  dense -> linear (BERT's pooler shape, no dropout of its own); and they
  fine-tune at 2e-5 (``bert_adam``, slanted triangular schedule), we at 1e-3
  (50 times higher: a 2-layer model briefly pretrained, 3 epochs of a few
  hundred examples; the notebook's closing section says what lower rates gave). Classification is scored by macro-F1 (the
  mean of the per-label F1s: the authors' ``bert_text_classifier.py``
  ``average_F1``, their ``validation_metric``), NER by entity-level F1.

Left out: the cased vocabulary (the paper uses it for NER only), BERT's
next-sentence objective, the frozen-embedding (BiLSTM/CRF) setting of the
paper's Table 1, and the 512-token second stage of pretraining.

:func:`frozen_probe` reads each start frozen (a logistic regression on its
sentence vectors), beside the fine-tune: what the pretrained weights offer
before fine-tuning can discard it. The headline's trivial baseline is the
same random init fine-tuned with no pretraining; its positive control is the
vocabulary half of the mechanism (SciVocab cuts held-out domain words into
fewer pieces than BaseVocab of the same size): no run here makes the
pretraining half certain to win, and the notebook says so.

:func:`matched_vocabularies` returns the pair, :func:`write_vocab` the file a
random-init base reads, :func:`vocabulary_report` the numbers the notebook
shows (overlap, pieces per word, share of words cut), :func:`fragmented_words`
the domain words BaseVocab cuts and SciVocab keeps whole.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from kbench.errors import InputError
from kbench.models.kbert import KBertClassifier
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.vocabulary import (SPECIALS, pieces_per_word, tokens_of, train_wordpiece, vocabulary_overlap,
                                    words_of)

CITATION = {
    "title": "SciBERT: A Pretrained Language Model for Scientific Text",
    "authors": "Beltagy, Lo, Cohan",
    "venue": "EMNLP-IJCNLP", "year": 2019, "url": "https://arxiv.org/abs/1903.10676",
    "code": "https://github.com/allenai/scibert",
}
NOTEBOOK = "13_scibert"
PLACE = Place('SciBERT', 'data and vocabulary', ('domain',),
              'pretrained from scratch on scientific text with its own in-domain WordPiece vocabulary (SciVocab)',
              survey='domain-specific', in_survey=False)
HEADLINE = Headline('definition classification, macro-F1 (SciVocab vs BaseVocab, both pretrained on the domain)',
                    'scivocab_gloss_macro_f1', 'basevocab_gloss_macro_f1',
                    "a domain corpus and a vocabulary built on it; pretraining from scratch",
                    full=('scivocab_citation_intent_macro_f1', 'basevocab_citation_intent_macro_f1'),
                    full_task='ACL-ARC citation intent, macro-F1 (SciVocab vs BaseVocab, both pretrained on the domain)',
                    trivial=('scratch_gloss_macro_f1',),
                    positive=PositiveControl(
                        "the domain's words are certainly in the text SciVocab is built on: on the tasks' held-out "
                        "domain text, a vocabulary built on the domain must cut words into fewer pieces than BaseVocab "
                        "of the same size (the vocabulary half of the mechanism; the pretraining half has no run here "
                        "in which it must win, see the notebook)",
                        left='base_pieces_per_word', right='sci_pieces_per_word', min_difference=0.3))

PAPER_SIZE = 30_000         # §2: SciVocab's size, set to match BaseVocab's
PAPER_OVERLAP = 0.42        # §2: the token overlap of BaseVocab and SciVocab
def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the mean of every label's F1 (the authors' ``average_F1``: each label of the task, one absent from both
    gold and prediction scoring 0 as allennlp's ``F1Measure`` does)."""
    predicted = logits.argmax(-1).cpu().numpy()
    gold = labels.cpu().numpy()
    scores = []
    for label in range(logits.shape[-1]):
        tp = float(((predicted == label) & (gold == label)).sum())
        wrong = float(((predicted == label) & (gold != label)).sum() + ((predicted != label) & (gold == label)).sum())
        scores.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return float(np.mean(scores))


class DomainClassifier(KBertClassifier):
    """BERT's sentence classifier (``KBertClassifier`` with no KG: [CLS], tanh dense, linear) scored by macro-F1
    first (the selection metric), then accuracy.

    The authors' ``BertTextClassifier`` reads [CLS] through dropout 0.2 and one
    linear layer; this head adds a tanh dense layer before the linear one and
    no dropout of its own (the same head for every variant, so the comparison
    is unaffected; the absolute scores may be)."""

    def metrics(self):
        from kbench.train import accuracy

        return {"macro_f1": macro_f1, "accuracy": accuracy}


def _bert_tokenizer(pieces: Sequence[str], lowercase: bool = True):
    """Return a ``BertTokenizerFast`` over ``pieces`` (ids in order), BERT's normaliser and pre-tokeniser."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(pieces)}, unk_token="[UNK]",
                                           continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=lowercase, unk_token="[UNK]",
                             sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def general_pieces() -> list[str]:
    """Return BERT's uncased vocabulary (the embedded encoder's ``vocab.txt``) in file order, [unused] slots dropped."""
    from kbench.encoders import embedded_model_dir

    lines = (Path(embedded_model_dir()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("[unused")]


def alphabet(texts: Iterable[str], lowercase: bool = True) -> set[str]:
    """Return the characters of ``texts`` after BERT's normaliser (lower case, accents stripped), blanks left out."""
    from tokenizers import normalizers

    normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    return {c for text in texts for c in normalizer.normalize_str(text) if not c.isspace()}


def base_vocabulary(size: int | None = None, spell: Iterable[str] = ()):
    """Return BaseVocab: BERT's uncased vocabulary, whole (``size=None``, 30,522 with its [unused] slots) or cut to
    ``size`` pieces.

    The cut keeps the five special tokens, then every character of ``spell``
    (a text sample) that BERT has, alone and as a ``##`` continuation, then
    BERT's pieces of two or more characters in their file order — the order
    of its learner's ranking on general text — until ``size`` (BERT's thousand
    other characters, CJK and the like, would only take room). A size with no room for the
    specials and the alphabet is an ``InputError``.
    """
    if size is None:
        from kbench.encoders import EMBEDDED, load_tokenizer

        return load_tokenizer(EMBEDDED)
    pieces = general_pieces()
    known = set(pieces)
    letters = sorted(alphabet(spell))
    chars = [p for c in letters for p in (c, "##" + c) if p in known and p not in SPECIALS]
    if size < len(SPECIALS) + len(chars) + 1:
        raise InputError(f"a vocabulary of {size} tokens has no room beside the {len(SPECIALS)} special tokens and "
                         f"the {len(chars)} characters of the text: ask for more than {len(SPECIALS) + len(chars)}")
    chosen = list(SPECIALS) + chars
    taken = set(chosen)
    for piece in pieces:
        if len(chosen) >= size:
            break
        if piece not in taken and len(piece.removeprefix("##")) > 1:     # other characters: not the text's
            chosen.append(piece)
            taken.add(piece)
    return _bert_tokenizer(chosen)


def build_scivocab(texts: Sequence[str], size: int = PAPER_SIZE, lowercase: bool = True, min_frequency: int = 2):
    """Return SciVocab: a WordPiece vocabulary of at most ``size`` pieces learned on the domain ``texts`` (§2).

    ``texts`` must hold training text only (the notebook passes the domain
    corpus that excludes every dev and test text). A size no larger than the
    special tokens, or an empty corpus, is an ``InputError``.
    """
    return train_wordpiece(texts, size, lowercase=lowercase, min_frequency=min_frequency)


def matched_vocabularies(texts: Sequence[str], size: int, min_frequency: int = 2):
    """Return ``(base, sci)`` of the same size: SciVocab trained on ``texts`` to at most ``size`` pieces, and
    BaseVocab cut to exactly as many (the paper matches the two sizes, §2).

    When the text cannot fill ``size`` pieces, both take SciVocab's size.
    """
    sci = build_scivocab(texts, size, min_frequency=min_frequency)
    base = base_vocabulary(len(sci), spell=texts)
    if len(base) != len(sci):
        raise InputError(f"BERT's vocabulary has {len(base)} pieces to give, SciVocab {len(sci)}: ask for a size "
                         f"of at most {len(base)}")
    return base, sci


def write_vocab(tokenizer, directory: str | Path | None = None, name: str = "vocab") -> Path:
    """Return a ``vocab.txt`` of ``tokenizer``'s pieces in id order (for ``load_encoder(size, vocab=...)``).

    The file is named by its content's hash, written once, atomically.
    """
    from kbench.text.vocabulary import write_vocab_file

    vocab = tokenizer.get_vocab()
    pieces = sorted(vocab, key=vocab.get)
    if [vocab[p] for p in pieces] != list(range(len(pieces))):
        raise InputError("the tokenizer's ids are not 0..n-1: it cannot be written as a vocab.txt")
    return write_vocab_file(pieces, directory, name)


def vocabulary_report(vocabularies: Mapping[str, object], held_out: Sequence[str],
                      reference: str | None = None) -> list[dict]:
    """Return one row per vocabulary: its size, the share of ``reference``'s pieces it also has (specials left
    out: the paper's overlap, symmetric when the sizes are equal), and how it cuts the words of ``held_out``
    (:func:`pieces_per_word`)."""
    if reference is not None and reference not in vocabularies:
        raise InputError(f"unknown reference vocabulary {reference!r}: use one of {', '.join(vocabularies)}")
    rows = []
    for name, tokenizer in vocabularies.items():
        cut = pieces_per_word(tokenizer, held_out)
        rows.append({"vocabulary": name, "size": len(tokenizer),
                     "overlap": None if reference is None else vocabulary_overlap(vocabularies[reference], tokenizer),
                     **cut})
    return rows


def fragmented_words(base, sci, texts: Sequence[str], k: int = 10,
                     min_length: int = 4) -> list[tuple[str, int, list[str], list[str]]]:
    """Return the ``k`` most frequent words of ``texts`` (any case, letters only, ``min_length`` or longer) that
    ``base`` cuts into pieces and ``sci`` keeps whole: ``(word, count, base pieces, sci pieces)``."""
    counts = Counter(w.lower() for text in texts for w in words_of(text) if w.isalpha() and len(w) >= min_length)
    rows = []
    for word, count in counts.most_common():
        base_pieces, sci_pieces = base.tokenize(word), sci.tokenize(word)
        if len(base_pieces) > 1 and len(sci_pieces) == 1:
            rows.append((word, count, base_pieces, sci_pieces))
            if len(rows) == k:
                break
    return rows


def shared_pieces(a, b) -> set[str]:
    """Return the pieces (specials left out) two vocabularies have in common."""
    return tokens_of(a) & tokens_of(b)


def mean_cosine(vectors) -> float:
    """Return the mean cosine similarity over every pair of distinct rows of ``vectors`` (1: all alike).

    The notebook's measure of how distinguishable held-out sentences are to
    the classifier at the start of fine-tuning: early masked-LM training first
    learns the pieces' frequencies, and sentences' states can drift toward one
    common direction. (In ``smoke`` the mean order of the three starts matches
    the mean order of their fine-tuned scores; seed by seed it does not: it is
    a description of the start, not a predictor of the fine-tune.)
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise InputError(f"mean_cosine needs at least two vectors (rows), got shape {vectors.shape}")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    n = len(unit)
    return float((similarity.sum() - np.trace(similarity)) / (n * (n - 1)))


def cls_vectors(encoder: torch.nn.Module, tokenizer, texts: Sequence[str], max_length: int = 64,
                batch_size: int = 64) -> np.ndarray:
    """Return one vector per text: ``encoder``'s last hidden state at [CLS] (position 0), the state the classifier's
    head reads (eval mode)."""
    from kbench.train import eval_mode

    if not texts:
        raise InputError("no texts to embed")
    device = next(encoder.parameters()).device
    rows = []
    with eval_mode(encoder), torch.no_grad():
        for first in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[first:first + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            rows.append(states[:, 0].float().cpu().numpy())
    return np.concatenate(rows)


POOLINGS = ("cls", "mean")


def sentence_cosine(base_model: str, texts: Sequence[str], vocab: str | None = None, seed: int = 0,
                    max_length: int = 64, pooling: str = "cls") -> float:
    """Return :func:`mean_cosine` of ``base_model``'s sentence vectors of ``texts``: the [CLS] state (``cls``, what
    the classifier reads) or the mean of the token states (``mean``).

    kbench pretrains with masked LM only (no next-sentence objective), so no
    pretraining loss ever trains the [CLS] state; the authors' BERT
    pretraining (Google's ``run_pretraining.py``) trains it through NSP.
    An unknown ``pooling`` is an ``InputError``.
    """
    from kbench.encoders import load_encoder
    from kbench.text.selection import sentence_vectors

    if pooling not in POOLINGS:
        raise InputError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
    encoder = load_encoder(base_model, vocab=vocab, seed=seed)
    read = cls_vectors if pooling == "cls" else sentence_vectors
    return mean_cosine(read(encoder.model, encoder.tokenizer, list(texts), max_length=max_length))


def frozen_probe(base_model: str, train: tuple[Sequence[str], Sequence[int]], test: tuple[Sequence[str], Sequence[int]],
                 vocab: str | None = None, seed: int = 0, max_length: int = 64, pooling: str = "mean") -> float:
    """Return the test macro-F1 of a logistic regression on ``base_model``'s frozen sentence vectors.

    What the pretrained weights offer the task before any fine-tuning moves
    them: each text's [CLS] state (``cls``) or mean token state (``mean``),
    standardised on the training texts, and scikit-learn's
    ``LogisticRegression`` (L2, C = 1) fitted on ``train`` and scored on
    ``test`` with :func:`macro_f1` (every label of the training set). An
    unknown ``pooling`` is an ``InputError``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from kbench.encoders import load_encoder
    from kbench.text.selection import sentence_vectors

    if pooling not in POOLINGS:
        raise InputError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
    encoder = load_encoder(base_model, vocab=vocab, seed=seed)
    read = cls_vectors if pooling == "cls" else sentence_vectors
    x_train = read(encoder.model, encoder.tokenizer, list(train[0]), max_length=max_length)
    x_test = read(encoder.model, encoder.tokenizer, list(test[0]), max_length=max_length)
    scaler = StandardScaler().fit(x_train)
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), list(train[1]))
    labels = sorted(set(train[1]))
    scores = classifier.predict_proba(scaler.transform(x_test))
    logits = torch.full((len(test[1]), max(labels) + 1), -1e9)
    logits[:, classifier.classes_] = torch.as_tensor(scores, dtype=torch.float32)
    return macro_f1(logits, torch.as_tensor(list(test[1])))
