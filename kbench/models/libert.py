"""LIBERT: BERT pretrained from scratch with lexical relation classification beside MLM and NSP.

Lauscher, Vulić, Ponti, Korhonen, Glavaš. *Specializing Unsupervised Pretraining Models for Word-Level
Semantic Similarity.* COLING 2020. https://arxiv.org/abs/1909.02339
Code: https://github.com/anlausch/LIBERT (``code/preprocess_wn.py``, ``code/run_pretraining_libert.py``).

Taught in ``notebooks/09_libert.ipynb``. The mechanism:

- **Three tasks, summed at every step** (a stated deviation from the authors' code): BERT's masked LM and next
  sentence prediction on text, plus **lexical relation classification** (LRC) on word pairs, the losses summed:
  ``L = L_MLM + L_NSP + L_LRC``, each a mean cross-entropy over its batch. The LRC batch has the text
  batch's size, as in the authors' multi-task input (``bert/code/run_pretraining_wordnet.py``: both input
  functions read ``params["batch_size"]``). That code trains the two *alternately*: in
  ``multitask_model_fn_builder`` it computes ``task_id = global_step mod 2`` and hands both losses and the
  task id to ``optimization.create_optimizer_multitask``, which updates on the text loss (MLM + NSP) at one step
  and on the LRC loss at the next (that optimizer file is not in our index: that it clips each task's gradient
  on its own is not checked here). We sum the three losses at every step
  with one clipping instead, so that at equal steps LIBERT gets every MLM + NSP update its baseline gets and
  differs from it by the LRC term alone; alternating would give LIBERT half of BERT's text updates at equal
  steps (the authors' released run script ``code/poc_pretraining_libert.sh`` calls
  ``run_pretraining_libert.py``, which is not in our index to check against).
- **NSP** as transformers' ``BertForPreTraining`` (Devlin et al. 2019; the shared :mod:`kbench.sentence_pairs`, scheme ``nsp``): ``[CLS] A [SEP] B [SEP]`` with
  segment ids 0/1; half of the time ``B`` is the segment that follows ``A`` (label 0), else a segment of
  another document (label 1: ours is the next segment of another example of the same shuffled batch whose
  document differs, when the batch has one);
  the **pooled output** (``BertPooler``: dense + tanh of the [CLS] state) feeds ``Linear(d, 2)``. MLM masks
  15% of the pair's tokens (80/10/10), never [CLS]/[SEP]. A document here is a WordNet synset's entry
  (its gloss, then its example sentences); a plain one-text corpus (``kbench pretrain``) is split at a
  random word boundary into ``A`` and its true next ``B``.
- **LRC**: a pair ``(w1, w2)`` is fed as ``[CLS] w1 [SEP] w2 [SEP]`` (segments 0/1); the *same*
  pooled output, then dropout (0.1, the config's), then ``Linear(d, 2)`` (N(0, 0.02), zero bias, as the
  authors' ``model_fn_builder_bert_wordnet``), softmax cross-entropy: is the pair a WordNet synonym or hyponym-hypernym
  pair (1) or not (0)? Binary, not multi-class. Negatives are the authors' smart negatives
  (:mod:`kbench.data.lexical_relations`: batch-nearest words by static vectors, never a true partner), with
  the embedded MiniLM's input word-piece embeddings standing in for fastText.
- **From scratch**, as the paper: both LIBERT and its baseline BERT (MLM + NSP, the same collator and
  masks) start from one seeded random init and see the same text in the same order for the same steps;
  only the LRC loss differs. LIBERT's extra LRC forward draws its dropout masks inside
  ``torch.random.fork_rng``, so it leaves torch's global random state as it found it and the text batch's
  dropout masks stay BERT's, step after step (LRC's masks reuse numbers the next text step draws too: the
  two are different tensors and different inputs, so nothing follows from it). New layers (pooler, NSP and
  LRC classifiers) are initialised as BERT's (N(0, 0.02), zero bias); the pooler and NSP head are drawn from one seed, so both variants share them.
- **Saved** (``save_pretrained``): the encoder and its MLM head as a ``BertForMaskedLM``; the pooler and
  the NSP/LRC classifiers are pretraining heads and are not part of it.
"""
from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kbench.data.lexical_relations import LexicalPair, StaticVectors
from kbench.encoders import init_bert_weights
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.pretrain import MaskedLM, masked_lm, register_objective
from kbench.sentence_pairs import (PairCollator, PairedSentence, document_corpus, encode_rows,  # noqa: F401
                                   split_segments, truncate_pair)
from kbench.sentence_pairs import PairPretrainer as BertPretrainer
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import RATE, MaskVocab
from kbench.train import eval_mode, pad_rows

CITATION = {
    "title": "Specializing Unsupervised Pretraining Models for Word-Level Semantic Similarity",
    "authors": "Lauscher, Vulić, Ponti, Korhonen, Glavaš",
    "venue": "COLING", "year": 2020, "url": "https://arxiv.org/abs/1909.02339",
    "code": "https://github.com/anlausch/LIBERT",
}
NOTEBOOK = "09_libert"
PLACE = Place('LIBERT', 'objective', ('lexical',),
              'a lexical relation classification task (WordNet synonyms and hypernyms) trained beside MLM and NSP',
              survey='linguistic')
HEADLINE = Headline(
    'topic classification, accuracy', 'libert_topic_accuracy', 'bert_topic_accuracy',
    'WordNet synonym and hypernym pairs while pretraining (nothing at run time)',
    # the same frozen probe on the untrained encoder, the majority topic, and a bag of words (no encoder at all)
    trivial=('untrained_topic_accuracy', 'majority_topic_accuracy', 'surface_topic_accuracy'),
    positive=PositiveControl(
        "relations the LRC task certainly taught: a LIBERT whose LRC pool is small enough to be seen about ten "
        "times in the same steps, probed (frozen pooled output, a linear probe trained on half of the pool's pairs) "
        "on the other half of the pool, against BERT (MLM + NSP) probed on the same pairs",
        left='libert_taught_pairs_auc', right='bert_taught_pairs_auc', min_difference=0.3))

#: The positive control's LRC pool: this many training positives (about 2.9 examples each with their smart
#: negatives), drawn about ten times each over smoke's 100 steps of 16.
TAUGHT_POSITIVES = 50
TAUGHT = Variant("libert_taught", "LIBERT, small LRC pool (taught pairs)", {"objective": "libert"})
NEXT, RANDOM_NEXT = 0, 1            # the "nsp" scheme's pair_label (kbench.sentence_pairs): 0 = B follows A
VARIANTS = (Variant("bert", "BERT (MLM + NSP)", {"objective": "bert"}),
            Variant("libert", "LIBERT (MLM + NSP + LRC)", {"objective": "libert"}))


LRC_MAX_LENGTH = 24                 # tokens of [CLS] w1 [SEP] w2 [SEP], in training and in every evaluation


class LRCExamples:
    """LRC examples encoded once as ``[CLS] w1 [SEP] w2 [SEP]`` (segments 0/1), drawn batch by batch."""

    def __init__(self, pairs: Sequence[LexicalPair], tokenizer, seed: int = 0, max_length: int = LRC_MAX_LENGTH):
        if not pairs:
            raise InputError("LRC needs at least one word pair")
        labels = {p.label for p in pairs}
        if not labels <= {0, 1}:
            raise InputError(f"LRC labels are binary (1: related, 0: negative), got {sorted(labels)}")
        self.pairs = list(pairs)
        encoded = tokenizer([p.w1 for p in pairs], [p.w2 for p in pairs], truncation=True, max_length=max_length)
        self.ids = [np.asarray(row, np.int64) for row in encoded["input_ids"]]
        self.types = [np.asarray(row, np.int64) for row in encoded["token_type_ids"]]
        self.labels = np.asarray([p.label for p in pairs], np.int64)
        self.rng = np.random.default_rng(seed)
        self.order, self.at = self.rng.permutation(len(pairs)), 0

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, size: int, pad_id: int) -> dict[str, torch.Tensor]:
        """Return the next ``size`` examples of a shuffled pass (a new shuffle each pass) as tensors."""
        chosen = []
        while len(chosen) < size:
            if self.at == len(self.order):
                self.order, self.at = self.rng.permutation(len(self.pairs)), 0
            take = self.order[self.at:self.at + size - len(chosen)]
            chosen.extend(int(i) for i in take)
            self.at += len(take)
        return encode_rows([self.ids[i] for i in chosen], [self.types[i] for i in chosen], pad_id,
                           self.labels[chosen])

    def reseeded(self) -> None:
        """Redraw the first pass's order from a generator just reseeded (a rank of a multi-process run)."""
        if self.at == 0:
            self.order = self.rng.permutation(len(self.pairs))

    def get_state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "order": self.order.tolist(), "at": self.at}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order, self.at = np.asarray(state["order"], np.int64), state["at"]


class LIBERT(BertPretrainer):
    """BERT's MLM + NSP plus lexical relation classification: pooled output -> dropout -> ``Linear(d, 2)``."""

    def __init__(self, lm, tokenizer, collate: PairCollator, description: str = ""):
        super().__init__(lm, tokenizer, collate, description)
        config = lm.config
        self.lrc_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.lrc_classifier = nn.Linear(config.hidden_size, 2)
        init_bert_weights(self.lrc_classifier)

    def lrc_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Return the LRC scores ``(n, 2)`` of ``[CLS] w1 [SEP] w2 [SEP]`` inputs (column 1: related)."""
        _, pooled = self.pooled(input_ids, attention_mask, token_type_ids)
        return self.lrc_classifier(self.lrc_dropout(pooled))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                pair_label: torch.Tensor | None = None, lrc_input_ids: torch.Tensor | None = None,
                lrc_attention_mask: torch.Tensor | None = None, lrc_token_type_ids: torch.Tensor | None = None,
                lrc_labels: torch.Tensor | None = None) -> dict:
        out = super().forward(input_ids, attention_mask, labels, token_type_ids, pair_label)
        if lrc_input_ids is not None:
            cuda = [lrc_input_ids.device.index or 0] if lrc_input_ids.is_cuda else []
            with torch.random.fork_rng(devices=cuda):    # LRC's dropout leaves the text's random state to BERT's
                lrc_logits = self.lrc_logits(lrc_input_ids, lrc_attention_mask, lrc_token_type_ids)
            out["lrc_logits"] = lrc_logits
            if lrc_labels is not None and "loss" in out:
                out["lrc_loss"] = nn.functional.cross_entropy(lrc_logits, lrc_labels)
                out["loss"] = out["loss"] + out["lrc_loss"]
        return out


def pretrainer(base_model: str = "tiny", objective: str = "libert", pairs: Sequence[LexicalPair] | None = None,
               seed: int = 0, layers: int | None = None, vocab: str | None = None, rate: float = RATE,
               max_length: int = 64) -> BertPretrainer:
    """Return LIBERT (``libert``: MLM + NSP + LRC on ``pairs``) or its baseline (``bert``: MLM + NSP), same init.

    Both take the same seeded ``masked_lm`` and draw the pooler and NSP head from ``seed + 1``; LIBERT's LRC
    classifier is drawn after them, so everything the two share starts equal.
    """
    if objective not in ("bert", "libert"):
        raise InputError(f"unknown objective {objective!r}: use 'libert' or 'bert'")
    if objective == "libert" and not pairs:
        raise InputError("LIBERT needs LRC word pairs (kbench.data.lexical_relations)")
    if objective == "bert" and pairs:
        raise InputError("the MLM + NSP baseline has no LRC task: give pairs only to objective 'libert'")
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    lrc = LRCExamples(pairs, tokenizer, seed + 2) if objective == "libert" else None
    collate = PairCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, tokenizer.cls_token_id,
                           tokenizer.sep_token_id, seed, rate, max_length, scheme="nsp", extra=lrc)
    torch.manual_seed(seed + 1)
    if objective == "bert":
        return BertPretrainer(lm, tokenizer, collate, description + ", MLM + NSP heads")
    return LIBERT(lm, tokenizer, collate, description + ", MLM + NSP + LRC heads")


# --- evaluation: held-out lexical relations, word similarity, the pair view ---

@torch.no_grad()
def encode_pairs(model: BertPretrainer, pairs: Sequence[LexicalPair], read, batch_size: int = 128) -> np.ndarray:
    """Return ``read(model, input_ids, attention_mask, token_type_ids)`` of ``[CLS] w1 [SEP] w2 [SEP]`` for each pair,
    eval mode, cut to :data:`LRC_MAX_LENGTH` tokens as in training."""
    if not pairs:
        raise InputError("no word pairs to encode")
    tokenizer, device = model.tokenizer, next(model.parameters()).device
    rows = []
    with eval_mode(model):
        for first in range(0, len(pairs), batch_size):
            chunk = pairs[first:first + batch_size]
            encoded = tokenizer([p.w1 for p in chunk], [p.w2 for p in chunk], padding=True, truncation=True,
                                max_length=LRC_MAX_LENGTH, return_tensors="pt")
            rows.append(read(model, *(encoded[k].to(device) for k in ("input_ids", "attention_mask",
                                                                       "token_type_ids"))).float().cpu().numpy())
    return np.concatenate(rows)


def pair_features(model: BertPretrainer, pairs: Sequence[LexicalPair], batch_size: int = 128) -> np.ndarray:
    """Return the frozen pooled output of ``[CLS] w1 [SEP] w2 [SEP]`` for each pair (the input LRC reads)."""
    return encode_pairs(model, pairs, lambda m, *inputs: m.pooled(*inputs)[1], batch_size)


def lrc_probabilities(model: LIBERT, pairs: Sequence[LexicalPair], batch_size: int = 128) -> np.ndarray:
    """Return LIBERT's own LRC head's probability that each pair is related (no dropout)."""
    if not isinstance(model, LIBERT):
        raise InputError("only LIBERT has a lexical relation head: probe a baseline with relation_probe")
    return encode_pairs(model, pairs, lambda m, *inputs: m.lrc_logits(*inputs).softmax(-1)[:, 1], batch_size)


@dataclass
class RelationProbe:
    """A frozen linear probe of lexical relations: accuracy and ROC AUC on held-out pairs, and the majority rate."""

    accuracy: float
    auc: float
    majority: float
    C: float
    scores: np.ndarray | None = None      # the probe's p(related) for each test pair, in order


def single_word(pair: LexicalPair) -> bool:
    """Whether both terms are single words (so the two share no word)."""
    return len(pair.w1.split()) == len(pair.w2.split()) == 1


def subset_auc(pairs: Sequence[LexicalPair], scores: Sequence[float], keep=single_word) -> tuple[float, int]:
    """Return the ROC AUC of ``scores`` on the pairs ``keep`` accepts (default: single-word pairs), and how many."""
    from sklearn.metrics import roc_auc_score

    if len(pairs) != len(scores):
        raise InputError(f"{len(pairs)} pairs but {len(scores)} scores")
    chosen = [i for i, p in enumerate(pairs) if keep(p)]
    labels = [pairs[i].label for i in chosen]
    if len(set(labels)) < 2:
        raise InputError(f"the {len(chosen)} chosen pairs need both labels, positives and negatives")
    return float(roc_auc_score(labels, np.asarray(scores)[chosen])), len(chosen)


SURFACE_FEATURES = ("share a word", "words in w1", "words in w2", "w1 before w2 alphabetically",
                    "characters in w1", "characters in w2")


def surface_features(pairs: Sequence[LexicalPair]) -> np.ndarray:
    """Return each pair's surface features (:data:`SURFACE_FEATURES`): what a model could use without any relation."""
    if not pairs:
        raise InputError("no word pairs to describe")
    return np.asarray([[bool(set(p.w1.split()) & set(p.w2.split())), len(p.w1.split()), len(p.w2.split()),
                        p.w1 < p.w2, len(p.w1), len(p.w2)] for p in pairs], np.float64)


def surface_probe(train: Sequence[LexicalPair], test: Sequence[LexicalPair], seed: int = 0) -> RelationProbe:
    """Return logistic regression on :func:`surface_features` alone, trained and tested as :func:`relation_probe`:
    the share of the held-out AUC that needs no model."""
    return fit_probe(surface_features(train), surface_features(test), train, test, seed=seed)


def relation_probe(model: BertPretrainer, train: Sequence[LexicalPair], test: Sequence[LexicalPair],
                   Cs: Sequence[float] = (0.1, 1.0), seed: int = 0) -> RelationProbe:
    """Train logistic regression on frozen pooled pair features of ``train``; score it on ``test``.

    The same probe for LIBERT and for BERT (which has no LRC head). ``C`` is chosen on the last fifth of
    ``train`` (a dev part), then the probe is refit on all of ``train``; features are standardised on
    ``train``. ``test`` pairs should use held-out words only.
    """
    for name, part in (("train", train), ("test", test)):
        if len({p.label for p in part}) < 2:
            raise InputError(f"the probe's {name} pairs need both labels, positives and negatives")
    return fit_probe(pair_features(model, train), pair_features(model, test), train, test, Cs, seed)


def fit_probe(train_features: np.ndarray, test_features: np.ndarray, train: Sequence[LexicalPair],
              test: Sequence[LexicalPair], Cs: Sequence[float] = (0.1, 1.0), seed: int = 0) -> RelationProbe:
    """Return logistic regression's :class:`RelationProbe` from features of ``train`` to those of ``test``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    labels = [np.asarray([p.label for p in part]) for part in (train, test)]
    for name, part in (("train", labels[0]), ("test", labels[1])):
        if len(set(part.tolist())) < 2:
            raise InputError(f"the probe's {name} pairs need both labels, positives and negatives")
    features = [train_features, test_features]
    scaler = StandardScaler().fit(features[0])
    train_x, test_x = scaler.transform(features[0]), scaler.transform(features[1])
    cut = int(0.8 * len(train_x))

    def fitted(C: float, x, y):
        with warnings.catch_warnings():      # at most 300 L-BFGS iterations, converged or not: the same for every model
            warnings.simplefilter("ignore", ConvergenceWarning)
            return LogisticRegression(C=C, max_iter=300, random_state=seed).fit(x, y)

    C = max(Cs, key=lambda c: roc_auc_score(labels[0][cut:], fitted(c, train_x[:cut], labels[0][:cut])
                                            .predict_proba(train_x[cut:])[:, 1]))
    classifier = fitted(C, train_x, labels[0])
    accuracy = float((classifier.predict(test_x) == labels[1]).mean())
    scores = classifier.predict_proba(test_x)[:, 1]
    auc = float(roc_auc_score(labels[1], scores))
    majority = float(max(labels[1].mean(), 1 - labels[1].mean()))
    return RelationProbe(accuracy, auc, majority, float(C), scores)


@torch.no_grad()
def text_vectors(model: MaskedLM, texts: Sequence[str], max_length: int = 16, batch_size: int = 128) -> np.ndarray:
    """Return each text's vector: the mean output state of its tokens ([CLS] and [SEP] left out), encoded alone."""
    if not texts:
        raise InputError("no texts to encode")
    tokenizer, device = model.tokenizer, next(model.parameters()).device
    rows = []
    with eval_mode(model):
        for first in range(0, len(texts), batch_size):
            encoded = tokenizer(list(texts[first:first + batch_size]), padding=True, truncation=True,
                                max_length=max_length, return_tensors="pt")
            mask = encoded["attention_mask"].clone()
            mask[:, 0] = 0                                                            # [CLS]
            mask[torch.arange(len(mask)), encoded["attention_mask"].sum(1) - 1] = 0   # [SEP]
            states = model.hidden(encoded["input_ids"].to(device), encoded["attention_mask"].to(device)).float().cpu()
            rows.append(((states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)).numpy())
    return np.concatenate(rows)


def word_vectors(model: MaskedLM, words: Sequence[str]) -> np.ndarray:
    """Return each word's vector: the mean output state of its pieces, the word encoded alone (``[CLS] w [SEP]``)."""
    return text_vectors(model, words, max_length=16)


def sentence_probe(model: MaskedLM, splits, Cs: Sequence[float] = (0.1, 1.0), max_length: int = 64,
                   seed: int = 0) -> float:
    """Return the test accuracy of logistic regression on frozen text vectors (:func:`text_vectors`).

    ``splits`` are ``(train, dev, test)``, each ``(texts, labels)``; ``C`` is chosen on dev. The downstream
    sentence task, the same frozen probe for every model (no fine-tuning: a smoke budget).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features = [text_vectors(model, list(texts), max_length) for texts, _ in splits]
    labels = [np.asarray(part_labels) for _, part_labels in splits]
    scaler = StandardScaler().fit(features[0])
    features = [scaler.transform(f) for f in features]
    best = None
    for C in Cs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier = LogisticRegression(C=C, max_iter=300, random_state=seed).fit(features[0], labels[0])
        dev = float((classifier.predict(features[1]) == labels[1]).mean())
        if best is None or dev > best[0]:
            best = (dev, classifier)
    return float((best[1].predict(features[2]) == labels[2]).mean())


def word_similarity(model: MaskedLM, pairs: Sequence[tuple[str, str]], gold: Sequence[float]) -> float:
    """Return Spearman's rho between the cosine of the words' vectors (:func:`word_vectors`) and ``gold``."""
    from scipy.stats import spearmanr

    if len(pairs) != len(gold) or len(pairs) < 3:
        raise InputError(f"word similarity needs at least 3 pairs with one gold score each, got {len(pairs)} "
                         f"pairs and {len(gold)} scores")
    words = sorted({w for pair in pairs for w in pair})
    vectors = word_vectors(model, words)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    at = {w: i for i, w in enumerate(words)}
    cosine = [float(vectors[at[a]] @ vectors[at[b]]) for a, b in pairs]
    return float(spearmanr(cosine, gold).statistic)


def hard_negatives(word: str, partner: str, candidates: Sequence[str], vectors: StaticVectors, known: set,
                   k: int = 3) -> list[str]:
    """Return the ``k`` candidates most similar to ``word`` by static vectors that are neither it, its partner,
    nor a true partner of it: the smart negatives it would get in a batch of ``candidates``."""
    target = vectors.vector(word)
    scored = sorted(((float(vectors.vector(c) @ target), c) for c in dict.fromkeys(candidates)
                     if c not in (word, partner) and (word, c) not in known), reverse=True)
    return [c for _, c in scored[:k]]


def pair_view_rows(model: LIBERT, word: str, partner: str, candidates: Sequence[str], vectors: StaticVectors,
                   known: set, k: int = 3) -> list[dict]:
    """Return the view's rows: the pair's LRC probability, then its ``k`` nearest hard negatives.

    ``(word, partner)`` must be a true WordNet pair (in ``known``): the row says "true pair"."""
    if (word, partner) not in known:
        raise InputError(f"({word!r}, {partner!r}) is not a WordNet synonym or hyponym-hypernym pair: the view shows "
                         "true pairs only (take them from the split's test positives)")
    negatives = hard_negatives(word, partner, candidates, vectors, known, k)
    pairs = [LexicalPair(word, partner, "", 1)] + [LexicalPair(word, n, "", 0) for n in negatives]
    probabilities = lrc_probabilities(model, pairs)
    return [{"pair": f"{p.w1} – {p.w2}", "kind": "true pair" if p.label else "hard negative",
             "static cosine": f"{float(vectors.vector(p.w1) @ vectors.vector(p.w2)):.2f}",
             "LRC p(related)": f"{prob:.2f}"} for p, prob in zip(pairs, probabilities)]


def training_pairs(data_dir: str | None = None, seed: int = 0) -> list[LexicalPair]:
    """Return every WordNet positive with static vectors and its smart negatives: ``kbench pretrain``'s LRC data."""
    from kbench.data.lexical_relations import smart_negatives, wordnet_relations

    positives, known, vectors = wordnet_relations(data_dir)
    return smart_negatives(positives, vectors, known, seed=seed)


# --- controls: a positive control on taught pairs, and the topic task's trivial baselines ---

def taught_pool(train: Sequence[LexicalPair], positives: int = TAUGHT_POSITIVES, seed: int = 0
                ) -> tuple[list[LexicalPair], list[LexicalPair], list[LexicalPair]]:
    """Return the positive control's LRC pool (``positives`` training positives with their negatives) and its
    two halves: ``(pool, first, second)``, split by positive with its negatives (a group), the pool in a seeded order.

    LIBERT trained on the whole pool is probed with a linear probe trained on ``first`` and tested on ``second``:
    every tested pair was taught, many times."""
    from kbench.data.lexical_relations import groups

    chosen = list(groups(train))
    random.Random(seed).shuffle(chosen)
    chosen = chosen[:positives]
    if len(chosen) < 4:
        raise InputError(f"the positive control needs at least 4 positives with negatives, got {len(chosen)}")
    half = len(chosen) // 2
    first = [p for group in chosen[:half] for p in group]
    second = [p for group in chosen[half:] for p in group]
    return first + second, first, second


def bag_of_words_probe(splits, Cs: Sequence[float] = (0.1, 1.0), seed: int = 0) -> float:
    """Return the test accuracy of logistic regression on the texts' TF-IDF bag of words (no encoder at all),
    ``C`` chosen on dev as :func:`sentence_probe`: what the topic task gives away to surface words."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    (train, train_labels), (dev, dev_labels), (test, test_labels) = splits
    vectorizer = TfidfVectorizer(lowercase=True).fit(train)
    x = [vectorizer.transform(texts) for texts in (train, dev, test)]
    best = None
    for C in Cs:
        classifier = LogisticRegression(C=C, max_iter=300, random_state=seed).fit(x[0], train_labels)
        dev_accuracy = float((classifier.predict(x[1]) == np.asarray(dev_labels)).mean())
        if best is None or dev_accuracy > best[0]:
            best = (dev_accuracy, classifier)
    return float((best[1].predict(x[2]) == np.asarray(test_labels)).mean())


def _objective(base_model: str, steps: int, data_dir: str | None = None, seed: int = 0, **kw) -> MaskedLM:
    """``kbench pretrain --objective libert``: MLM + NSP + LRC on every WordNet pair with its smart negatives."""
    return pretrainer(base_model, "libert", training_pairs(data_dir, seed), seed=seed, **kw)


register_objective("libert", ("word",), _objective)
