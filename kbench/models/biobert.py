"""BioBERT: continue a general BERT on biomedical text, keep its vocabulary, fine-tune for biomedical NER.

Lee, Yoon, Kim, Kim, Kim, So, Kang. *BioBERT: a pre-trained biomedical language
representation model for biomedical text mining.* Bioinformatics 36(4), 2020.
https://arxiv.org/abs/1901.08746 — code: https://github.com/dmis-lab/biobert
(fine-tuning: ``run_ner.py``, ``biocodes/ner_detokenize.py``, ``biocodes/conlleval.pl``).

Taught in ``notebooks/14_biobert.ipynb``. The paper's mechanism has two steps (its Figure 1):

- **Continued pretraining** (§3.2). BioBERT is *initialised with BERT's weights* and
  pretrained further with BERT's masked LM on biomedical text (PubMed abstracts,
  PMC full texts). It **keeps BERT's WordPiece vocabulary** — the paper argues
  that a new vocabulary would break compatibility with BERT and that WordPiece can
  still spell any new biomedical word from pieces; the authors' README lists every
  BioBERT-Base as "based on BERT-base-Cased (same vocabulary)". A biomedical word
  is therefore cut into more pieces than a general word (:func:`mention_fragmentation`).
  :func:`general_checkpoint` writes the general start (the embedded MiniLM, or a
  prefix of its layers, with BERT's fresh MLM head — it has none) and
  :func:`continue_biomedical` continues it, refusing any held-out text and
  checking the vocabulary is the general one (:func:`same_vocabulary`).
- **Fine-tuning for NER** (§3.3). A token-classification layer over the final states,
  BIO tags, a word's tag read on its first WordPiece (``ner_detokenize.py`` reads
  each word's first piece back): :class:`kbench.models.kbert.KBertTagger` with
  ``kg=None`` and the options of the authors' ``run_ner.py`` (:data:`TAGGER`:
  ``[CLS] … [SEP]`` framing, dropout 0.1 before the output layer, the output layer
  initialised N(0, 0.02) with zero bias). Two differences remain: ``run_ner.py``
  trains a word's later pieces on a label ``X``, ours leaves them unlabelled
  (-100); and KBertTagger's output has an extra ``[ENT]`` class (for K-BERT's
  injected tokens), never a label here and read as ``O`` if predicted.
  Scores are entity-level exact-match precision, recall and F1 (the authors'
  ``conlleval.pl``): :func:`entity_scores`.

What the paper claims is that the adapted model is better at *biomedical
entities*. :func:`seen_unseen_scores` splits the scores by whether a test mention's
text occurs as a mention in the training split (the usual reading of "does it
generalise or remember"), and :func:`contrast_mentions` lists the mentions one
model finds and the other misses — the issue's "which entity words the
domain-adapted model gets right that the general one misses".

Deviations, at CPU scale (see the profiles): the general model is a 6-layer MiniLM
(a prefix of its layers in ``smoke``), not BERT-base; the biomedical text is
WordNet's biomedical glosses (``smoke``) or NCBI-disease's training sentences plus
those glosses (``full``), thousands of sentences, not billions of words; the word
embedding matrix can be frozen (``freeze_word_embeddings``) to fit the budget —
the vocabulary and the embeddings of its pieces are then the general model's
exactly; everything else moves (the transformer layers, the position and
token-type embeddings and their LayerNorm, the MLM head's transform and decoder
bias). In ``full`` the corpus is the task's own training text, which makes it
closer to task-adaptive pretraining (Gururangan et al. 2020) than to BioBERT's
separate domain corpus, and it holds about 3,400 training sentences that the
2,000-sentence fine-tuning sample leaves out. A same-budget control
(:data:`CONTROL`) continues the general model for the same steps on text of
another domain, to tell "biomedical text" apart from "more MLM steps".

The controls of the headline (BioBERT vs the same-budget control, test entity
F1): the general model (no continued pretraining) is the trivial baseline the
gain must also beat; the positive control is the masked-LM loss on the task's
held-out sentences (biomedical text no corpus holds; the same masks for every
checkpoint, :func:`kbench.models.dont_stop_pretraining.masked_lm_loss`):
BioBERT must score it below the control, whose head had the same steps. The
general start's own loss there is its untrained head's, shown for scale only.
:func:`corpus_mentions` and :func:`recall_on` give the recall on the unseen
test names the biomedical corpus names at all.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.metrics import bio_spans
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.vocabulary import pieces_per_word, text_key

CITATION = {
    "title": "BioBERT: a pre-trained biomedical language representation model for biomedical text mining",
    "authors": "Jinhyuk Lee, Wonjin Yoon, Sungdong Kim, Donghyeon Kim, Sunkyu Kim, Chan Ho So, Jaewoo Kang",
    "venue": "Bioinformatics 36(4)", "year": 2020, "url": "https://arxiv.org/abs/1901.08746",
    "code": "https://github.com/dmis-lab/biobert",
}
NOTEBOOK = "14_biobert"
PLACE = Place('BioBERT', 'data and vocabulary', ('domain',),
              "a general BERT's pretraining continued on biomedical text, its general vocabulary kept",
              survey='domain-specific', in_survey=False)
HEADLINE = Headline('disease mention tagging, F1 (vs the same steps of MLM on artifacts glosses)',
                    'biobert_f1', 'control_f1',
                    'a biomedical corpus for continued pretraining (nothing at run time)',
                    trivial=('general_f1',),
                    positive=PositiveControl(
                        "the masked-LM loss on the task's held-out sentences, which are biomedical text: continuing "
                        "on the biomedical corpus must leave it lower than the same steps on artifacts glosses "
                        "(both train the same fresh head, so the difference is the domain's)",
                        left='control_heldout_mlm_loss', right='biobert_heldout_mlm_loss', min_difference=0.1))

TAGS = ("O", "B-Disease", "I-Disease")
GENERAL, BIOMEDICAL, CONTROL = "general", "biobert", "control"
VARIANTS = (Variant(GENERAL, "BERT (general encoder)"),
            Variant(BIOMEDICAL, "BioBERT (general encoder + biomedical MLM)"),
            Variant(CONTROL, "control (general encoder + artifacts MLM, same steps)"))
# run_ner.py's token classifier: [CLS] ... [SEP], dropout 0.1 before the output, BERT's init of the output layer
TAGGER = {"frame": True, "head_dropout": 0.1, "bert_init": True}


def _as_text(item) -> str:
    return " ".join(item) if isinstance(item, (list, tuple)) else item


def pretraining_corpus(texts: Iterable[str | Sequence[str]], held_out: Iterable[str | Sequence[str]] = ()
                       ) -> list[str]:
    """Return ``texts`` as plain sentences, de-duplicated, without any text of ``held_out`` (compared by words).

    Texts may be sentences or word lists (an NER split's form). The corpus every
    continued pretraining reads: a task's dev and test sentences are never in it.
    """
    banned = {text_key(t) for t in held_out}
    seen, out = set(), []
    for item in texts:
        text = _as_text(item)
        key = text_key(text) if isinstance(text, str) else ""
        if key and key not in seen and key not in banned:
            seen.add(key)
            out.append(text)
    if not out:
        raise InputError(f"the pretraining corpus is empty once {len(banned)} held-out texts are removed")
    return out


def general_checkpoint(out: str | Path, base_model: str = "embedded", layers: int | None = None, seed: int = 0) -> Path:
    """Write the general encoder (``layers``: a prefix of its layers) with BERT's fresh MLM head; return its directory.

    The common start of both variants: the general model is fine-tuned from it as
    it is, BioBERT is continued from it (:func:`continue_biomedical`), so both share
    every weight and the vocabulary before adaptation.
    """
    from kbench.pretrain import mlm_model, save_pretrained

    model = mlm_model(base_model, "token", seed=seed, layers=layers)
    return save_pretrained(model, out, {"base": base_model, "layers": model.bert.config.num_hidden_layers,
                                        "role": "the general start (no biomedical pretraining)"})


def same_vocabulary(a, b) -> bool:
    """Return whether two tokenizers (or checkpoint directories) have the same vocabulary, token for token, id for id."""
    from kbench.encoders import load_tokenizer

    vocab = lambda x: (load_tokenizer(str(x)) if isinstance(x, (str, Path)) else x).get_vocab()
    return vocab(a) == vocab(b)


def continue_biomedical(general: str | Path, texts: Sequence[str], config, out: str | Path,
                        exclude: Iterable[str | Sequence[str]] = (), max_length: int = 64,
                        freeze_word_embeddings: bool = False):
    """Continue the general checkpoint with BERT's MLM on biomedical ``texts``; return ``(checkpoint dir, History)``.

    BioBERT §3.2: the general weights *and vocabulary* are the start (no new
    vocabulary is built: the checkpoint's tokenizer is used and saved unchanged,
    checked). ``exclude`` holds the task's dev and test texts: finding one in
    ``texts`` is an ``InputError``. ``freeze_word_embeddings`` leaves the word
    embedding matrix (tied to the MLM decoder) as the general model's: the CPU
    budget's knob, the same for every variant. The step is the shared
    :func:`kbench.pretrain.continue_pretraining`; this adds BioBERT's check that
    the vocabulary is kept.
    """
    import shutil

    from kbench.pretrain import continue_pretraining

    saved, history = continue_pretraining(str(general), texts, config, out, max_length=max_length, exclude=list(exclude),
                                          freeze_word_embeddings=freeze_word_embeddings,
                                          about={"objective": "continued biomedical pretraining"})
    if not same_vocabulary(general, saved):
        shutil.rmtree(saved, ignore_errors=True)        # never leave a checkpoint that fails the check
        raise InputError(f"{saved} does not keep the general vocabulary of {general}")
    return saved, history


@torch.no_grad()
def predict_tags(model, sentences: Sequence[Sequence[str]], batch_size: int = 64, device: str = "auto"
                 ) -> list[list[str]]:
    """Return a tagger's BIO tags for each word of ``sentences`` (read on each word's first piece).

    ``model`` is a :class:`~kbench.models.kbert.KBertTagger` (``kg=None``). A word
    cut off by ``max_length`` is tagged ``O``; a predicted ``[ENT]`` counts as ``O``.
    """
    from kbench.train import predict_with_labels

    if not len(sentences):
        raise InputError("no sentences to tag")
    dummy = [["O"] * len(words) for words in sentences]
    logits, labels = predict_with_labels(model, model.dataset(sentences, dummy), batch_size=batch_size, device=device,
                                         precision="no")
    predictions = logits.argmax(-1)
    out = []
    for row, words in enumerate(sentences):
        keep = (labels[row] != -100).nonzero().flatten().tolist()
        tags = [model.tags[int(predictions[row, i])] for i in keep][:len(words)]
        tags = [t if t in TAGS else "O" for t in tags]
        out.append(tags + ["O"] * (len(words) - len(tags)))
    return out


def _check_pairs(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], what: str = "predicted") -> None:
    if len(gold) != len(predicted):
        raise InputError(f"{len(gold)} gold sequences but {len(predicted)} {what}")
    for index, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise InputError(f"sentence #{index}: {len(g)} gold tags but {len(p)} {what}")


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def _scores(hits: int, gold: int, predicted: int) -> dict[str, float]:
    precision, recall = _ratio(hits, predicted), _ratio(hits, gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "gold": float(gold), "predicted": float(predicted),
            "correct": float(hits)}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Return entity-level exact-match precision, recall and F1 (conlleval's, as the authors score), with counts."""
    _check_pairs(gold, predicted)
    hits = n_gold = n_predicted = 0
    for g, p in zip(gold, predicted):
        gold_spans, predicted_spans = bio_spans(g), bio_spans(p)
        hits += len(gold_spans & predicted_spans)
        n_gold += len(gold_spans)
        n_predicted += len(predicted_spans)
    return _scores(hits, n_gold, n_predicted)


def mention_texts(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> set[str]:
    """Return the lower-cased texts of every mention the BIO ``tags`` mark in ``sentences``."""
    _check_pairs([list(w) for w in sentences], tags)
    return {" ".join(words[a:b]).lower() for words, t in zip(sentences, tags) for a, b, _ in bio_spans(t)}


def seen_unseen_scores(train_mentions: set[str], sentences: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                       predicted: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Return :func:`entity_scores` for mentions whose text is a training mention (``seen``) and for the rest (``unseen``).

    A gold or predicted span belongs to ``seen`` when its lower-cased words are
    in ``train_mentions``: recall asks how many gold mentions of each kind were
    found, precision how many predicted ones of each kind were right.
    """
    _check_pairs(gold, predicted)
    _check_pairs(gold, sentences, "words")
    counts = {kind: [0, 0, 0] for kind in ("seen", "unseen")}       # hits, gold, predicted
    for words, g, p in zip(sentences, gold, predicted):
        kind = lambda span: "seen" if " ".join(words[span[0]:span[1]]).lower() in train_mentions else "unseen"
        gold_spans, predicted_spans = bio_spans(g), bio_spans(p)
        for span in gold_spans:
            counts[kind(span)][1] += 1
            counts[kind(span)][0] += span in predicted_spans
        for span in predicted_spans:
            counts[kind(span)][2] += 1
    return {kind: _scores(*values) for kind, values in counts.items()}


@dataclass(frozen=True)
class MentionOutcome:
    """One gold mention of the test split: where it is, its text, whether its text was a training mention, who found it."""

    sentence: int
    start: int
    end: int
    text: str
    seen: bool
    found: dict


def contrast_mentions(sentences: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                      predictions: dict[str, Sequence[Sequence[str]]], train_mentions: set[str] = frozenset()
                      ) -> list[MentionOutcome]:
    """Return every gold mention with, per model of ``predictions``, whether it found exactly that span."""
    _check_pairs(gold, sentences, "words")
    for predicted in predictions.values():
        _check_pairs(gold, predicted)
    outcomes = []
    for index, (words, g) in enumerate(zip(sentences, gold)):
        found_by = {name: bio_spans(p[index]) for name, p in predictions.items()}
        for start, end, kind in sorted(bio_spans(g)):
            text = " ".join(words[start:end])
            outcomes.append(MentionOutcome(index, start, end, text, text.lower() in train_mentions,
                                           {name: (start, end, kind) in spans for name, spans in found_by.items()}))
    return outcomes


def corpus_mentions(mentions: Iterable[str], corpus: Iterable[str]) -> set[str]:
    """Return the ``mentions`` (lower-cased texts) that occur in ``corpus`` as whole words (any case, punctuation
    ignored): the names a continued pretraining on ``corpus`` could have taught the encoder."""
    import re

    normal = lambda text: " " + " ".join(re.findall(r"\w+", text.lower())) + " "
    text = "".join(normal(t) for t in corpus)
    return {m for m in mentions if normal(m).strip() and normal(m) in text}


def recall_on(names: set[str], sentences: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
              predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Return how many gold mentions have their lower-cased text in ``names`` (``gold``) and the share of those
    found exactly (``recall``; 0 when there are none)."""
    _check_pairs(gold, predicted)
    _check_pairs(gold, sentences, "words")
    hits = total = 0
    for words, g, p in zip(sentences, gold, predicted):
        found = bio_spans(p)
        for span in bio_spans(g):
            if " ".join(words[span[0]:span[1]]).lower() in names:
                total += 1
                hits += span in found
    return {"gold": float(total), "recall": _ratio(hits, total)}


def only_found_by(outcomes: Sequence[MentionOutcome], winner: str, loser: str) -> list[MentionOutcome]:
    """Return the mentions ``winner`` finds and ``loser`` misses."""
    return [o for o in outcomes if o.found[winner] and not o.found[loser]]


def mention_fragmentation(tokenizer, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                          stopwords: Iterable[str] | None = None, min_letters: int = 4) -> dict[str, dict[str, float]]:
    """Return :func:`~kbench.text.vocabulary.pieces_per_word` of the words inside entity mentions and of content words outside.

    Why BioBERT's words fragment: it keeps the general vocabulary, which spells
    "neuroblastoma" as several pieces where it keeps "hospital" whole. Mention
    words are the alphabetic words inside mentions; the comparison (``content``)
    is the alphabetic words outside mentions of at least ``min_letters`` letters
    that are not stopwords (spaCy's English list by default) — short function
    words ("the", "of") are always one piece and would make any word look cut.
    """
    if stopwords is None:
        from spacy.lang.en.stop_words import STOP_WORDS as stopwords
    stop = {w.lower() for w in stopwords}
    _check_pairs([list(w) for w in sentences], tags)
    inside, outside = [], []
    for words, t in zip(sentences, tags):
        for word, tag in zip(words, t):
            if tag != "O" and any(ch.isalpha() for ch in word):
                inside.append(word)
            elif tag == "O" and word.isalpha() and len(word) >= min_letters and word.lower() not in stop:
                outside.append(word)
    if not inside or not outside:
        raise InputError("the sentences need words both inside mentions and content words outside to compare their pieces")
    return {"mention": pieces_per_word(tokenizer, inside), "content": pieces_per_word(tokenizer, outside)}


def truncation(model, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> dict[str, int]:
    """Return how many ``sentences`` the tagger's ``max_length`` cuts and how many gold mentions it makes unreachable.

    A mention is unreachable when one of its words has no first piece left: the
    tagger cannot tag it, so it is a sure miss for every variant alike.
    """
    _check_pairs(tags, sentences, "words")
    examples = model.dataset(sentences, [["O"] * len(w) for w in sentences])
    cut = unreachable = 0
    for example, words, t in zip(examples.examples, sentences, tags):
        tagged = int((np.asarray(example.labels) != -100).sum())
        cut += tagged < len(words)
        unreachable += sum(end > tagged for _, end, _ in bio_spans(t))
    return {"sentences": len(sentences), "cut": cut, "mentions": sum(len(bio_spans(t)) for t in tags),
            "unreachable": unreachable}


def loss_means(losses: Sequence[float], window: int = 10) -> tuple[float, float]:
    """Return the mean of the first and of the last ``window`` losses of a pretraining run."""
    if len(losses) < 1:
        raise InputError("no losses: the run took no step")
    window = max(1, min(window, len(losses) // 2 or 1))
    return float(np.mean(losses[:window])), float(np.mean(losses[-window:]))


def weight_change(general, adapted) -> dict[str, float]:
    """Return how far training moved the encoder: ``||θ_adapted − θ_general|| / ||θ_general||``.

    Over the transformer layers (``layers``) and over the embeddings (``embeddings``:
    0 when the word embeddings were frozen and the position/LayerNorm weights did
    not move). Each side is a checkpoint directory or an encoder module (a fine-tuned
    tagger's ``.bert``: how far fine-tuning moved it). Both must have the same architecture.
    """
    from kbench.encoders import load_encoder

    state = lambda x: x.state_dict() if isinstance(x, torch.nn.Module) else load_encoder(str(x)).model.state_dict()
    a, b = state(general), state(adapted)
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise InputError(f"{general} and {adapted} are not the same architecture: continued pretraining keeps it")
    out = {}
    for part, prefix in (("layers", "encoder.layer."), ("embeddings", "embeddings.")):
        keys = [k for k in a if k.startswith(prefix) and a[k].is_floating_point()]
        change = sum(float(((b[k] - a[k]).float() ** 2).sum()) for k in keys) ** 0.5
        norm = sum(float((a[k].float() ** 2).sum()) for k in keys) ** 0.5
        out[part] = change / norm if norm else 0.0
    return out
