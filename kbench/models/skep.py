"""SKEP: sentiment knowledge mined from unlabelled reviews, then pretraining that masks it and predicts it.

Hao Tian, Can Gao, Xinyan Xiao, Hao Liu, Bolei He, Hua Wu, Haifeng Wang, Feng Wu. *SKEP: Sentiment Knowledge
Enhanced Pre-training for Sentiment Analysis.* ACL 2020, arXiv 2005.05635; code: baidu/Senta.

Taught in ``notebooks/19_skep.ipynb``. The released pretraining code masks ERNIE-style spans only (the sentiment
fields of its reader are commented out; there is no mining, no polarity and no pair objective in it), so this
module follows the paper's text (§3), and says where the text leaves a choice:

- **Sentiment knowledge mining** (§3.1). From a handful of seed words of each polarity, a word's polarity is
  ``WP(w) = Σ_{s∈S+} PMI(w, s) − Σ_{s∈S−} PMI(w, s)`` with ``PMI(a, b) = log p(a, b) / (p(a) p(b))`` over the
  corpus (:func:`word_polarity`; PMI as Turney 2002 uses it). Here every word is a candidate (no part-of-speech
  patterns), a co-occurrence is two words in one text, the profiles passing sentences, and a seed a word never
  meets adds nothing (its PMI would be −∞). It does not say which words become sentiment words either: here a word
  seen ``min_count`` times whose ``|WP|`` reaches ``margin`` (:func:`mine_lexicon`). An aspect–sentiment pair is a
  sentiment word and its nearest noun, at most 3 tokens away (:func:`aspect_pairs`; counted in words, which are
  whole tokens in the review world).
- **Sentiment masking** (§3.2), per text, in order (:func:`sentiment_mask`): (1) at most 2 aspect–sentiment pairs,
  every token of both words replaced by [MASK]; (2) other sentiment words, [MASK]ed, up to 10% of the tokens; (3)
  when (2) masked fewer than 10%, ordinary tokens chosen at random make up the rest, replaced as BERT's (80%
  [MASK], 10% random, 10% kept). 10% of ``n`` tokens is taken as an expected share, ``floor(0.1 n + u)``.
- **Three objectives** (§3.3, summed): *sentiment word prediction*, the MLM softmax at the sentiment words of step
  (2) and the tokens of step (3); *word polarity*, ``softmax(x̃_i W_p + b_p)`` from the same final state at every
  masked sentiment word, those of the masked pairs included (whose words the pair objective predicts, so the
  paper leaves them out of the first loss); *aspect–sentiment pair prediction*, a multi-label
  ``sigmoid(x̃_1 W_ap + b_ap)`` over the vocabulary from [CLS]'s final state with the masked pairs' words as
  targets. The paper writes the pair loss with its positive terms only, summed; with a sigmoid that alone is
  minimised by answering "yes" to every word, so the multi-label loss here is the binary cross-entropy over the
  vocabulary, *averaged* over it (the framework's default): each word then weighs ``1/|V|`` of a positive term of
  the paper's sum. Summed over the vocabulary instead, the pair term outweighs the other two by about ``|V|`` at
  the start; measured in the smoke profile (seeds 0-4), it left the rare words' polarity in the embeddings
  (0.97-1.00) but made fine-tuning less steady: SKEP over the true lexicon fell level with random-token masking
  on the aspect task on one seed of five. ``pair_reduction`` chooses.
- **The control** (§4, "Random Token" masking): the same corpus and steps with BERT's random-token masking, from
  the same init.
"""
from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from kbench.encoders import init_bert_weights
from kbench.errors import InputError, UnknownNameError
from kbench.experiment import Variant
from kbench.pretrain import MaskedLM, MaskingCollator, Sentence, masked_lm
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import IGNORE, RATE, MaskVocab, Span
from kbench.train import pad_rows, token_batch

CITATION = {
    "title": "SKEP: Sentiment Knowledge Enhanced Pre-training for Sentiment Analysis",
    "authors": "Hao Tian, Can Gao, Xinyan Xiao, Hao Liu, Bolei He, Hua Wu, Haifeng Wang, Feng Wu",
    "venue": "ACL", "year": 2020, "url": "https://arxiv.org/abs/2005.05635",
    "code": "https://github.com/baidu/Senta",
}
NOTEBOOK = "19_skep"
PLACE = Place("SKEP", "objective", ("lexical",),
              "a sentiment lexicon and aspect-sentiment pairs mined by PMI from seed words decide what is masked, "
              "and the words, their polarity and the pairs are predicted",
              survey="semantic", in_survey=False)
HEADLINE = Headline(
    "aspect-level polarity on rare sentiment words, after few-label fine-tuning", "skep_aspect_accuracy",
    "random_aspect_accuracy",
    "a few seed words per polarity (the lexicon and pairs are mined from the unlabelled reviews)",
    trivial=("untrained_aspect_accuracy",),
    positive=PositiveControl(
        "the true lexicon handed to the masker (the nearest-noun pairs are the world's own, tested): SKEP's masking "
        "and objectives over knowledge that is certainly right, against random-token masking of the same reviews",
        left="skep_true_aspect_accuracy", right="random_aspect_accuracy", min_difference=0.1))

MAX_PAIRS = 2                 # §3.2 (1): at most two aspect-sentiment pairs per text
SENTIMENT_RATE = 0.10         # §3.2 (2)/(3): sentiment words, then ordinary tokens, up to 10%
PAIR_WINDOW = 3               # §3.1: a pair's two words at most 3 tokens apart
MORE_RATE = 0.30             # about the share of tokens SKEP's masking hides in the review world (notebook §2)
VARIANTS = (Variant("random", "random-token masking (MLM)", {"knowledge": None}),
            Variant("random_more", "random-token masking at SKEP's share (30%)", {"knowledge": None}),
            Variant("skep", "SKEP, mined lexicon", {"knowledge": "mined"}),
            Variant("skep_true", "SKEP, true lexicon (positive control)", {"knowledge": "true"}))
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


# --- §3.1 sentiment knowledge mining ---

def word_polarity(texts: Iterable[Sequence[str]], positive: Sequence[str], negative: Sequence[str],
                  min_count: int = 1) -> dict[str, float]:
    """``WP(w)`` of every word seen ``min_count`` times in ``texts`` (each a list of words; a co-occurrence is two
    words in one text), seeds excluded; a seed a word never meets adds nothing."""
    documents = [set(words) for words in texts]
    if not documents:
        raise InputError("mining needs at least one text")
    count = Counter(w for words in documents for w in words)
    missing = [s for s in (*positive, *negative) if count[s] == 0]
    if missing:
        raise InputError(f"seed words {missing} never occur in the corpus: choose seeds it uses")
    if set(positive) & set(negative):
        raise InputError(f"seed words {sorted(set(positive) & set(negative))} are given both polarities")
    seeds = {s: 1.0 for s in positive} | {s: -1.0 for s in negative}
    together = Counter()
    for words in documents:
        present = [s for s in seeds if s in words]
        for w in words:
            for s in present:
                together[w, s] += 1
    n = len(documents)
    polarity: dict[str, float] = {}
    for w, c in count.items():
        if w in seeds or c < min_count:
            continue
        polarity[w] = sum(sign * math.log(together[w, s] * n / (c * count[s]))
                          for s, sign in seeds.items() if together[w, s])
    return polarity


def mine_lexicon(texts: Iterable[Sequence[str]], positive: Sequence[str], negative: Sequence[str],
                 min_count: int = 2, margin: float = 1.0, candidates: Iterable[str] | None = None) -> dict[str, int]:
    """The mined lexicon: the seeds, and each candidate word (default: every word) whose ``|WP|`` reaches ``margin``,
    positive (1) when ``WP > 0``, negative (0) otherwise."""
    return lexicon_of(word_polarity(texts, positive, negative, min_count), positive, negative, margin, candidates)


def lexicon_of(scores: Mapping[str, float], positive: Sequence[str], negative: Sequence[str], margin: float = 1.0,
               candidates: Iterable[str] | None = None) -> dict[str, int]:
    """:func:`mine_lexicon` from word polarities already computed (:func:`word_polarity`)."""
    allowed = None if candidates is None else set(candidates)
    mined = {w: int(score > 0) for w, score in scores.items()
             if abs(score) >= margin and (allowed is None or w in allowed)}
    return mined | {s: 1 for s in positive} | {s: 0 for s in negative}


def aspect_pairs(words: Sequence[str], lexicon: Mapping[str, int], nouns: Iterable[str] | Mapping,
                 window: int = PAIR_WINDOW) -> list[tuple[int, int]]:
    """``(noun index, sentiment word index)`` for each sentiment word of ``words`` whose nearest noun is at most
    ``window`` words away (the nearer one first when two are equally near: the earlier)."""
    nouns = set(nouns)
    noun_at = [i for i, w in enumerate(words) if w in nouns]
    pairs = []
    for i, w in enumerate(words):
        if w not in lexicon or not noun_at:
            continue
        nearest = min(noun_at, key=lambda j: (abs(j - i), j))
        if 0 < abs(nearest - i) <= window:
            pairs.append((nearest, i))
    return pairs


def lexicon_scores(mined: Mapping[str, int], truth: Mapping[str, int], seeds: Iterable[str] = ()) -> dict[str, float]:
    """Precision (mined words that are sentiment words of the right polarity), recall (true words mined with the
    right polarity) and how many were mined — all over the words that are not ``seeds`` (mined by construction)."""
    seeds = set(seeds)
    mined = {w: p for w, p in mined.items() if w not in seeds}
    truth = {w: p for w, p in truth.items() if w not in seeds}
    if not truth:
        raise InputError("no sentiment word beyond the seeds to score the mining against")
    right = sum(1 for w, p in mined.items() if truth.get(w) == p)
    return {"precision": right / len(mined) if mined else float("nan"), "recall": right / len(truth),
            "mined": float(len(mined))}


# --- §3.2 sentiment masking ---

@dataclass
class SentimentSentence(Sentence):
    """A pretraining text with its sentiment words (token span, polarity) and aspect-sentiment pairs
    (aspect span, index into ``sentiment``)."""

    sentiment: list[tuple[int, int, int]] = field(default_factory=list)
    pairs: list[tuple[Span, int]] = field(default_factory=list)


def sentiment_corpus(texts: Sequence[str], tokenizer, lexicon: Mapping[str, int], nouns: Iterable[str],
                     max_length: int = 64, words_of=str.split) -> list[SentimentSentence]:
    """Tokenise ``texts`` word by word (``words_of``: whitespace, or a segmenter) and mark each one's sentiment
    words and aspect-sentiment pairs by the given ``lexicon`` (mined or true) and ``nouns``."""
    nouns = set(nouns)
    split = [list(words_of(text)) for text in texts]
    if any(not words for words in split):
        raise InputError("an empty text cannot be masked: drop it before building the corpus")
    encodings = tokenizer(split, is_split_into_words=True, truncation=True, max_length=max_length) if split else None
    out = []
    for index, (text, words) in enumerate(zip(texts, split)):
        spans: dict[int, list[int]] = {}
        for position, word in enumerate(encodings.word_ids(index)):
            if word is not None:
                spans.setdefault(word, []).append(position)
        span = {w: (ps[0], ps[-1] + 1) for w, ps in spans.items()}
        sentiment, index_of = [], {}
        for w, (start, end) in span.items():
            if words[w] in lexicon:
                index_of[w] = len(sentiment)
                sentiment.append((start, end, int(lexicon[words[w]])))
        pairs = [(span[a], index_of[s]) for a, s in aspect_pairs(words, lexicon, nouns) if a in span and s in span]
        out.append(SentimentSentence(text, np.asarray(encodings["input_ids"][index], np.int64), {}, sentiment, pairs))
    return out


def _share(rate: float, n: int, rng: np.random.Generator) -> int:
    """``rate`` of ``n`` as an expected count: ``floor(rate * n + u)``."""
    return int(math.floor(rate * n + rng.random()))


def sentiment_mask(sentence: SentimentSentence, rng: np.random.Generator, vocab: MaskVocab,
                   max_pairs: int = MAX_PAIRS, rate: float = SENTIMENT_RATE, pool: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Return ``(input_ids, token labels, polarity labels, pair target ids)`` of §3.2's three steps."""
    ids = sentence.ids
    inputs, tokens, polarity = ids.copy(), np.full(len(ids), IGNORE, np.int64), np.full(len(ids), IGNORE, np.int64)
    special = np.isin(ids, vocab.special_array)
    masked = special.copy()
    targets: list[int] = []
    pairs = sentence.pairs
    for k in (rng.permutation(len(pairs))[:max_pairs] if pairs else []):                 # (1) pairs
        (a0, a1), s = pairs[k]
        s0, s1, p = sentence.sentiment[s]
        inputs[a0:a1] = inputs[s0:s1] = vocab.mask_id
        polarity[s0:s1] = p
        masked[a0:a1] = masked[s0:s1] = True
        targets += ids[a0:a1].tolist() + ids[s0:s1].tolist()
    budget = _share(rate, int((~special).sum()), rng)
    spent = 0
    for s in rng.permutation(len(sentence.sentiment)):                                      # (2) sentiment words
        s0, s1, p = sentence.sentiment[s]
        if masked[s0:s1].any() or spent + (s1 - s0) > budget:
            continue
        inputs[s0:s1] = vocab.mask_id
        tokens[s0:s1], polarity[s0:s1], masked[s0:s1] = ids[s0:s1], p, True
        spent += s1 - s0
    free = np.flatnonzero(~masked)                                                          # (3) ordinary tokens
    if spent < budget and len(free):
        chosen = rng.permutation(free)[:budget - spent]
        tokens[chosen] = ids[chosen]
        action = rng.random(len(chosen))
        inputs[chosen[action < 0.8]] = vocab.mask_id
        replaced = chosen[(action >= 0.8) & (action < 0.9)]
        inputs[replaced] = rng.choice(vocab.replacement_pool() if pool is None else pool, size=len(replaced))
    return inputs, tokens, polarity, sorted(set(targets))


class SentimentCollator(MaskingCollator):
    """Batches of :class:`SentimentSentence` under sentiment masking: ``input_ids``, ``attention_mask``, ``labels``
    (token prediction), ``polarity_labels`` and ``pair_labels`` (multi-hot over the vocabulary)."""

    def __init__(self, vocab: MaskVocab, pad_id: int, seed: int = 0, max_pairs: int = MAX_PAIRS,
                 rate: float = SENTIMENT_RATE):
        super().__init__(vocab, pad_id, "token", seed, RATE)
        if max_pairs < 0 or not 0.0 < rate < 1.0:
            raise InputError(f"max_pairs must be 0 or more and the rate in (0, 1), got {max_pairs}, {rate}")
        self.max_pairs, self.sentiment_rate = max_pairs, rate

    def __call__(self, sentences: Sequence[SentimentSentence]) -> dict[str, torch.Tensor]:
        if any(not isinstance(s, SentimentSentence) for s in sentences):
            raise InputError("sentiment masking needs SentimentSentence examples: build them with sentiment_corpus")
        self.batches += 1
        rows = [sentiment_mask(s, self.rng, self.vocab, self.max_pairs, self.sentiment_rate, self.pool)
                for s in sentences]
        batch = token_batch([r[0] for r in rows], self.pad_id)
        pair_labels = torch.zeros(len(rows), self.vocab.vocab_size)
        for i, r in enumerate(rows):
            pair_labels[i, r[3]] = 1.0
        return {"input_ids": torch.from_numpy(batch["input_ids"]),
                "attention_mask": torch.from_numpy(batch["attention_mask"]),
                "labels": torch.from_numpy(pad_rows([r[1] for r in rows], IGNORE)),
                "polarity_labels": torch.from_numpy(pad_rows([r[2] for r in rows], IGNORE)),
                "pair_labels": pair_labels}


# --- §3.3 the three objectives ---

class SkepPretrainer(MaskedLM):
    """MLM's head at the predicted tokens (sentiment word prediction), a polarity head at every masked sentiment
    word, and the multi-label pair head on [CLS]'s final state; the loss is their sum."""

    def __init__(self, lm, tokenizer, collate: SentimentCollator, description: str = "", pair_reduction: str = "mean"):
        super().__init__(lm, tokenizer, collate, description)
        if pair_reduction not in ("mean", "sum"):
            raise InputError(f"pair_reduction is 'mean' or 'sum' (over the vocabulary), not {pair_reduction!r}")
        self.pair_reduction = pair_reduction
        hidden, size = lm.config.hidden_size, lm.config.vocab_size
        self.polarity_head = nn.Linear(hidden, 2)
        self.pair_head = nn.Linear(hidden, size)
        init_bert_weights(self.polarity_head, self.pair_head)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                polarity_labels: torch.Tensor | None = None, pair_labels: torch.Tensor | None = None) -> dict:
        states = self.hidden(input_ids, attention_mask, token_type_ids)
        if labels is None:
            return {"logits": self.lm.cls(states), "polarity": self.polarity_head(states),
                    "pairs": self.pair_head(states[:, 0])}
        zero = states.sum() * 0.0
        keep = labels != IGNORE
        word_loss = nn.functional.cross_entropy(self.lm.cls(states[keep]), labels[keep]) if keep.any() else zero
        marked = polarity_labels != IGNORE if polarity_labels is not None else keep & False
        polarity_loss = nn.functional.cross_entropy(self.polarity_head(states[marked]), polarity_labels[marked]) \
            if marked.any() else zero
        with_pairs = pair_labels.sum(-1) > 0 if pair_labels is not None else None
        pair_loss = zero
        if with_pairs is not None and with_pairs.any():                  # averaged over texts; over the vocabulary
            pair_loss = nn.functional.binary_cross_entropy_with_logits(  # averaged or summed (see the docstring)
                self.pair_head(states[with_pairs, 0]), pair_labels[with_pairs], reduction="none").sum(-1).mean()
            if self.pair_reduction == "mean":
                pair_loss = pair_loss / pair_labels.shape[-1]
        return {"loss": word_loss + polarity_loss + pair_loss, "word_loss": word_loss.detach(),
                "polarity_loss": polarity_loss.detach(), "pair_loss": pair_loss.detach()}


def pretrainer(variant: str, base_model: str = "tiny", vocab: str | None = None, seed: int = 0,
               layers: int | None = None, pair_reduction: str = "mean") -> MaskedLM:
    """``random``: BERT's random-token masking (``random_more``: at SKEP's share of hidden tokens, so that more
    masks are told apart from other masks); ``skep`` / ``skep_true``: sentiment masking and the three objectives (the lexicon they read is in their examples). Every variant draws the same encoder and MLM head."""
    if variant not in VARIANT_NAMES:
        raise UnknownNameError(f"unknown variant {variant!r}: use {', '.join(VARIANT_NAMES)}")
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    label = {v.name: v.label for v in VARIANTS}[variant]
    if variant in ("random", "random_more"):             # BERT's masking; at SKEP's share: more masks, not others
        rate = RATE if variant == "random" else MORE_RATE
        return MaskedLM(lm, tokenizer, MaskingCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, "token",
                                                       seed, rate), f"{description}, {label}")
    torch.manual_seed(seed + 1)
    collate = SentimentCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, seed)
    return SkepPretrainer(lm, tokenizer, collate, f"{description}, {label}", pair_reduction)


# --- fine-tuning: sentence and aspect polarity from [CLS] ---

class PolarityClassifier(nn.Module):
    """A pretrained encoder (copied) with a new ``Linear(d, 2)`` on [CLS]'s final state (N(0, 0.02)): a review, or
    ``[CLS] aspect [SEP] review [SEP]`` for the aspect-level task."""

    def __init__(self, pretrained: MaskedLM, seed: int = 0):
        super().__init__()
        self.bert = copy.deepcopy(pretrained.bert)
        self.tokenizer = pretrained.tokenizer
        torch.manual_seed(seed + 2)
        self.dropout = nn.Dropout(self.bert.config.hidden_dropout_prob)
        self.classifier = nn.Linear(self.bert.config.hidden_size, 2)
        init_bert_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> dict:
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(states[:, 0]))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def polarity_collate(tokenizer, max_length: int = 64):
    """Batch ``(text, label)`` pairs or :class:`~kbench.data.review_world.AspectExample` s."""
    def collate(examples):
        if hasattr(examples[0], "aspect"):
            encoded = tokenizer([e.aspect for e in examples], [e.text for e in examples], padding=True,
                                truncation=True, max_length=max_length, return_tensors="pt")
            labels = [e.label for e in examples]
        else:
            encoded = tokenizer([t for t, _ in examples], padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt")
            labels = [label for _, label in examples]
        return {**{k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")},
                "labels": torch.tensor(labels, dtype=torch.long)}
    return collate


def fine_tuned(pretrained: MaskedLM, train: Sequence, config, seed: int = 0, description: str = "fine-tune",
               threads: int = 0) -> PolarityClassifier:
    """Fine-tune a copy of ``pretrained``'s encoder on ``train`` (whole encoder, ``config``'s steps)."""
    from kbench.train import Examples, fit, torch_threads

    if not train:
        raise InputError("fine-tuning needs at least one labelled example")
    model = PolarityClassifier(pretrained, seed)
    with torch_threads(threads):
        fit(model, Examples(list(train)), None, config, description=description,
            collate=polarity_collate(pretrained.tokenizer))
    return model


def fine_tuned_variants(models: Mapping[str, MaskedLM], train: Sequence, config, seed: int = 0, task: str = "",
                        threads: int = 0) -> dict[str, PolarityClassifier]:
    """:func:`fine_tuned` for each model of ``models`` alike; a model listed twice (SKEP's two runs when the mined
    lexicon is the true one) is fine-tuned once."""
    done: dict[int, PolarityClassifier] = {}
    for name, model in models.items():
        if id(model) not in done:
            done[id(model)] = fine_tuned(model, train, config, seed, f"{task}: {name}".strip(": "), threads)
    return {name: done[id(model)] for name, model in models.items()}


def predictions(model: PolarityClassifier, examples: Sequence, batch_size: int = 256) -> list[int]:
    """The classifier's polarity for each example (:func:`kbench.train.predict`, in eval mode)."""
    from kbench.train import Examples, predict

    if not examples:
        raise InputError("no examples to score")
    device = str(next(model.parameters()).device)
    return predict(model, Examples(list(examples)), batch_size, device, "no",
                   polarity_collate(model.tokenizer)).argmax(-1).tolist()


def accuracy_of(model: PolarityClassifier, examples: Sequence) -> float:
    """Accuracy on ``(text, label)`` pairs or aspect examples."""
    labels = [e.label if hasattr(e, "aspect") else e[1] for e in examples]
    return float(np.mean([p == y for p, y in zip(predictions(model, examples), labels)]))


def lexicon_baseline(examples: Sequence, lexicon: Mapping[str, int], nouns: Iterable[str]) -> float:
    """Accuracy of reading the lexicon alone, no model: an aspect example takes the polarity of the sentiment word
    paired with its aspect (§3.1's pairs), a review the majority polarity of its lexicon words; no word or a tie:
    wrong."""
    nouns, right = set(nouns), []
    for e in examples:
        text, label = (e.text, e.label) if hasattr(e, "aspect") else e
        words = text.split()
        if hasattr(e, "aspect"):
            said = [lexicon[words[s]] for a, s in aspect_pairs(words, lexicon, nouns) if words[a] == e.aspect]
        else:
            said = [lexicon[w] for w in words if w in lexicon]
        share = float(np.mean(said)) if said else 0.5
        right.append(share != 0.5 and int(share > 0.5) == label)          # no word, or a tie: no answer
    return float(np.mean(right))


def pretrained_variants(s, names: Sequence[str] = VARIANT_NAMES, progress: bool | None = None) -> dict:
    """Pretrain each of ``names`` from one init on ``s``'s reviews (each with its own lexicon's marks) for the
    same steps and batches; ``"untrained"`` is the init itself. When mining found exactly the true lexicon, the
    two SKEP runs would be one run twice: ``skep_true`` is then the ``skep`` model."""
    from kbench.train import fit, torch_threads, Examples

    out, reference = {}, None
    for name in names:
        if name == "skep_true" and "skep" in out and s.mined == s.truth:
            out[name] = out["skep"]                  # the mined lexicon is the true one: the same run, not redone
            continue
        model = pretrainer("random" if name == "untrained" else name, s.chosen["size"], s.vocab, s.seed,
                           s.chosen["layers"] or None)
        initial = {k: v.clone() for k, v in model.bert.state_dict().items()}
        reference = reference or initial
        if any(not torch.equal(initial[k], reference[k]) for k in initial):
            raise InputError(f"variant {name!r} does not start from the first variant's encoder")
        if name != "untrained":
            corpus = s.corpora["true" if name == "skep_true" else "mined"]
            config = copy.copy(s.config)
            config.progress = progress if progress is not None else config.progress
            with torch_threads(s.chosen["threads"]):
                fit(model, Examples(corpus), None, config, description=f"pretrain {name}")
        out[name] = model
    return out


def word_polarity_probe(model: MaskedLM, train_words: Sequence[str], test_words: Sequence[str],
                        truth: Mapping[str, int], seed: int = 0) -> float:
    """Accuracy of a linear probe on the frozen input embeddings of words: trained on the polarity of
    ``train_words`` (the frequent ones), scored on ``test_words`` (the rare ones). Whether the pretraining put each
    rare word's polarity where its frequent words' is, before any fine-tuning."""
    from kbench.sentence_pairs import linear_probe

    vocabulary = model.tokenizer.get_vocab()
    unknown = [w for w in (*train_words, *test_words) if w not in vocabulary or w not in truth]
    if unknown:
        raise InputError(f"words {unknown[:5]} are not whole tokens of the vocabulary with a known polarity")
    table = model.bert.embeddings.word_embeddings.weight.detach().cpu().numpy()
    rows = lambda words: table[[vocabulary[w] for w in words]]
    predicted = linear_probe(rows(train_words), [truth[w] for w in train_words], rows(test_words),
                             [truth[w] for w in test_words], seed=seed)
    return float(np.mean(predicted == np.asarray([truth[w] for w in test_words])))
