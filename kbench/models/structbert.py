"""StructBERT: two structural objectives beside masked LM — put shuffled words back, and tell a sentence's
neighbour from the one before it.

Wei Wang, Bin Bi, Ming Yan, Chen Wu, Jiangnan Xia, Zuyi Bao, Liwei Peng, Luo Si. *StructBERT: Incorporating
Language Structures into Pre-training for Deep Language Understanding.* ICLR 2020 (arXiv 1908.04577). No
pretraining code was released (alibaba/AliceMind holds fine-tuning code only), so this follows the paper's §2.2
and Figure 1, and says where it reads it.

- **Word structural objective** (§2.2, Figure 1a): after BERT's 15% masking, 5% of the trigrams made only of
  unmasked tokens are shuffled (K = 3), and the final state at every position of a shuffled trigram predicts the
  token that was there, ``argmax Σ log P(pos_i = t_i | t_1 … t_K)``. The prediction goes through the MLM
  softmax (Figure 1a draws the shuffled positions' states into the same output as the masked ones; the paper
  does not say that the two share a classifier — our reading). "5% of the trigrams" is read as an expected share:
  ``floor(0.05 · n + u)`` non-overlapping trigrams for ``n`` candidate windows (every start of three unmasked,
  non-special tokens; windows overlap, so about 5% of the tokens' trigram windows, not 5% of a partition into
  trigrams) and ``u`` uniform, so short pairs are shuffled too, at that rate on average. Shuffles are drawn from a generator of their own, so a
  variant with the word objective sees the masks and pairs of the same variant without it.
- **Sentence structural objective** (§2.2, Figure 1b): the pair ``(S1, S2)`` is the next sentence, the previous
  one (drawn as ``[CLS] S2 [SEP] S1 [SEP]``) or a sentence of another document, 1/3 each; a 3-way classifier on
  the [CLS] state — the shared :mod:`kbench.sentence_pairs` with scheme ``order3`` (BERT's pooled output into
  ``Linear(d, 3)``, as ``BertForPreTraining``'s NSP head with three outputs).
- The losses are summed with equal weights: ``L = L_MLM + L_word + L_sentence``. The baseline is BERT's
  MLM + NSP (scheme ``nsp``); the ablations drop one objective each. All four start from one init (the seeded
  ``masked_lm``, then the pooler and pair head from ``seed + 1``) and see the same documents in the same order
  for the same steps.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from kbench.errors import InputError, UnknownNameError
from kbench.experiment import Variant
from kbench.pretrain import masked_lm, register_objective
from kbench.sentence_pairs import PairCollator, PairPretrainer
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import IGNORE, RATE, MaskVocab

CITATION = {
    "title": "StructBERT: Incorporating Language Structures into Pre-training for Deep Language Understanding",
    "authors": "Wei Wang, Bin Bi, Ming Yan, Chen Wu, Jiangnan Xia, Zuyi Bao, Liwei Peng, Luo Si",
    "venue": "ICLR", "year": 2020,
    "url": "https://openreview.net/forum?spm=ata.13261165.0.0.70ad797aLr6IZC&id=BJgQ4lSFPH",   # the seed list's link
    "arxiv": "https://arxiv.org/abs/1908.04577",
    "code": "https://github.com/alibaba/AliceMind (fine-tuning only)",
}
NOTEBOOK = "17_structbert"
PLACE = Place("StructBERT", "objective", ("linguistic",),
              "word order and sentence order as pretraining objectives: restore shuffled trigrams, tell next from "
              "previous", survey="linguistic", in_survey=False)
HEADLINE = Headline(
    "acceptability: a sentence vs the same with two words swapped (frozen probe)", "structbert_swap_accuracy",
    "bert_swap_accuracy",
    "nothing beyond the text: two objectives over the order of its words and sentences",
    trivial=("untrained_swap_accuracy",),
    positive=PositiveControl(
        "held-out sentences with one trigram shuffled, read without a mask: the word objective was trained to put "
        "the tokens back, MLM only to copy an unmasked token",
        left="structbert_restored", right="bert_restored", min_difference=0.25))

SHUFFLE_RATE = 0.05        # the share of unmasked trigrams shuffled
SPAN = 3                   # K: trigrams
VARIANTS = (Variant("bert", "BERT (MLM + NSP)", {"scheme": "nsp", "word": False}),
            Variant("word", "MLM + NSP + word objective", {"scheme": "nsp", "word": True}),
            Variant("sentence", "MLM + sentence objective", {"scheme": "order3", "word": False}),
            Variant("structbert", "StructBERT (MLM + word + sentence)", {"scheme": "order3", "word": True}))
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


def _moved(span: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``span`` permuted, never left as it was (a permutation that changes nothing is drawn again); the caller
    makes sure the span holds two different tokens."""
    while True:
        order = rng.permutation(len(span))
        if (span[order] != span).any():
            return span[order]


def shuffle_trigrams(ids: np.ndarray, labels: np.ndarray, special: np.ndarray, rng: np.random.Generator,
                     rate: float = SHUFFLE_RATE, span: int = SPAN) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Shuffle ``rate`` of the spans of ``span`` unmasked, non-special tokens (non-overlapping); return the new
    ids, the word labels (the original token at every position of a shuffled span, :data:`IGNORE` elsewhere)
    and the spans' starts. A span whose tokens are all equal cannot change and is not drawn."""
    if span < 2:
        raise InputError(f"a shuffled span needs at least two tokens, got {span}")
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"the shuffle rate must be in [0, 1], got {rate}")
    ids = np.asarray(ids, np.int64)
    if not len(ids) == len(labels) == len(special):
        raise InputError(f"ids, labels and the special mask must be one length, got {len(ids)}, {len(labels)}, "
                         f"{len(special)}")
    free = (np.asarray(labels) == IGNORE) & ~np.asarray(special, bool)
    starts = [s for s in range(len(ids) - span + 1) if free[s:s + span].all() and len(set(ids[s:s + span])) > 1]
    count = int(np.floor(rate * len(starts) + rng.random()))
    out, word_labels, taken, chosen = ids.copy(), np.full(len(ids), IGNORE, np.int64), np.zeros(len(ids), bool), []
    for start in rng.permutation(starts).tolist() if count else []:
        if len(chosen) == count:
            break
        if taken[start:start + span].any():
            continue
        original = ids[start:start + span]
        out[start:start + span] = _moved(original, rng)
        word_labels[start:start + span] = original
        taken[start:start + span] = True
        chosen.append(start)
    return out, word_labels, sorted(chosen)


class WordStructureCollator(PairCollator):
    """The pair batch of :class:`~kbench.sentence_pairs.PairCollator` with trigrams shuffled after masking and
    their original tokens as ``word_labels``; the shuffles come from a generator of their own."""

    def __init__(self, vocab: MaskVocab, pad_id: int, cls_id: int, sep_id: int, seed: int = 0, rate: float = RATE,
                 max_length: int = 64, scheme: str = "nsp", shuffle_rate: float = SHUFFLE_RATE, span: int = SPAN,
                 aligned: bool = False):
        super().__init__(vocab, pad_id, cls_id, sep_id, seed, rate, max_length, scheme, aligned=aligned)
        self.shuffle_rate, self.span = shuffle_rate, span
        self.word_rng = np.random.default_rng([seed, 1])

    def after_masking(self, ids: np.ndarray, labels: np.ndarray, types: np.ndarray) -> dict[str, np.ndarray]:
        special = np.isin(ids, self.vocab.special_array)
        shuffled, word_labels, _ = shuffle_trigrams(ids, labels, special, self.word_rng, self.shuffle_rate,
                                                    self.span)
        return {"input_ids": shuffled, "word_labels": word_labels}

    def get_state(self) -> dict:
        return {**super().get_state(), "word_rng": self.word_rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.word_rng.bit_generator.state = state["word_rng"]


class StructBERT(PairPretrainer):
    """MLM + the pair scheme's classification + the word objective (the shuffled positions' states through the
    MLM head, each predicting its original token)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                pair_label: torch.Tensor | None = None, word_labels: torch.Tensor | None = None) -> dict:
        out = super().forward(input_ids, attention_mask, labels, token_type_ids, pair_label)
        if word_labels is not None and labels is not None:
            keep = word_labels != IGNORE
            states = out["states"]
            out["word_loss"] = (nn.functional.cross_entropy(self.lm.cls(states[keep]), word_labels[keep])
                                if keep.any() else states.sum() * 0.0)
            out["loss"] = out["loss"] + out["word_loss"]
        return out


def pretrainer(variant: str, base_model: str = "tiny", vocab: str | None = None, seed: int = 0,
               max_length: int = 64, rate: float = RATE, aligned: bool = False) -> PairPretrainer:
    """Return one of :data:`VARIANTS` over a seeded random init (every variant gets the same encoder and pooler);
    ``aligned``: random partners from the same place of another document (:class:`~kbench.sentence_pairs.PairCollator`)."""
    chosen = {v.name: v for v in VARIANTS}.get(variant)
    if chosen is None:
        raise UnknownNameError(f"unknown StructBERT variant {variant!r}: use {', '.join(VARIANT_NAMES)}")
    lm, tokenizer, description = masked_lm(base_model, vocab, seed)
    args = (MaskVocab.of(tokenizer), tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id)
    kwargs = dict(seed=seed, rate=rate, max_length=max_length, scheme=chosen.options["scheme"], aligned=aligned)
    collate = WordStructureCollator(*args, **kwargs) if chosen.options["word"] else PairCollator(*args, **kwargs)
    torch.manual_seed(seed + 1)
    model = (StructBERT if chosen.options["word"] else PairPretrainer)(lm, tokenizer, collate,
                                                                       f"{description}, {chosen.label}")
    model.variant = variant
    return model


# --- evaluation: restoring a shuffled trigram, telling a sentence from its two-word swap ---

def shuffled_sentences(texts: Sequence[str], tokenizer, seed: int = 0, span: int = SPAN) -> list[dict]:
    """For each text, ``[CLS] text [SEP]`` with one span of ``span`` tokens shuffled (never left as it was):
    ``{"ids", "shuffled", "positions"}`` with the positions whose token changed. Texts too short are skipped."""
    rng = np.random.default_rng(seed)
    out = []
    for ids in tokenizer(list(texts))["input_ids"]:
        ids = np.asarray(ids, np.int64)
        starts = [s for s in range(1, len(ids) - span) if len(set(ids[s:s + span])) > 1]
        if not starts:
            continue
        start = int(rng.choice(starts))
        shuffled = ids.copy()
        shuffled[start:start + span] = _moved(ids[start:start + span], rng)
        changed = [start + i for i in range(span) if shuffled[start + i] != ids[start + i]]
        out.append({"ids": ids, "shuffled": shuffled, "positions": changed})
    if not out:
        raise InputError(f"no text has {span} tokens to shuffle")
    return out


@torch.no_grad()
def restored_share(model: PairPretrainer, items: Sequence[dict], batch_size: int = 128) -> float:
    """The share of the moved tokens of :func:`shuffled_sentences` that the model's MLM head puts back: its
    argmax at each changed position is the token that was there (no [MASK] anywhere)."""
    from kbench.train import eval_mode, token_batch

    if not items:
        raise InputError("no shuffled sentences to score")
    right = total = 0
    device = next(model.parameters()).device
    with eval_mode(model):
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            batch = token_batch([item["shuffled"] for item in chunk], model.tokenizer.pad_token_id)
            logits = model(torch.as_tensor(batch["input_ids"], device=device),
                           torch.as_tensor(batch["attention_mask"], device=device))["logits"]
            for row, item in enumerate(chunk):
                at = item["positions"]
                right += int((logits[row, at].argmax(-1).cpu().numpy() == item["ids"][at]).sum())
                total += len(at)
    return right / total


def swapped_words(texts: Sequence[str], seed: int = 0, distance: int = 3) -> list[tuple[str, str]]:
    """For each text, ``(text, the same with two different words at least ``distance`` apart swapped)`` — a
    change no trigram shuffle makes (a trigram's words are at most two apart). Punctuation never moves (a full stop
    in mid-sentence would give the swap away). Texts without such a pair are skipped."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        words = text.split()
        pairs = [(i, j) for i in range(len(words)) for j in range(i + distance, len(words))
                 if words[i] != words[j] and words[i].isalnum() and words[j].isalnum()]     # words, never punctuation
        if not pairs:
            continue
        i, j = pairs[int(rng.integers(len(pairs)))]
        words[i], words[j] = words[j], words[i]
        out.append((text, " ".join(words)))
    if not out:
        raise InputError(f"no text has two different words {distance} or more apart")
    return out


def swap_probe(model: PairPretrainer, train: Sequence[tuple[str, str]], test: Sequence[tuple[str, str]],
               seed: int = 0) -> float:
    """Accuracy of a linear probe on the frozen mean state of ``[CLS] text [SEP]``: original (1) or swapped (0),
    trained on ``train``'s texts and their swaps, scored on ``test``'s (other sentences)."""
    from kbench.sentence_pairs import linear_probe, pooled_features

    def data(pairs):
        texts = [t for pair in pairs for t in pair]
        return pooled_features(model, texts, read="mean"), [1, 0] * len(pairs)

    train_x, train_y = data(train)
    test_x, test_y = data(test)
    return float((linear_probe(train_x, train_y, test_x, test_y, seed=seed) == np.asarray(test_y)).mean())


def pretrained_variants(s, names: Sequence[str] = VARIANT_NAMES, progress: bool | None = None) -> dict:
    """Pretrain each variant of ``names`` on ``s``'s documents (:mod:`kbench.profiles.structbert`) from one init,
    same documents, order and steps; return ``{name: model}`` and the untrained init as ``"untrained"``."""
    from kbench.sentence_pairs import pretrained_from_one_init

    chosen = s.chosen
    build = lambda name: pretrainer(name, chosen["size"], s.vocab, s.seed, chosen["max_length"],
                                    aligned=chosen["aligned"])
    return pretrained_from_one_init(build, names, s.train_documents, s.config, chosen["max_length"], chosen["threads"],
                                    "bert", progress)


def _objective(base_model: str, steps: int, data_dir: str | None = None, seed: int = 0, max_length: int = 64,
               **kw) -> PairPretrainer:
    """``kbench pretrain --objective structbert``: MLM + the word and sentence objectives on any text (a one-text
    corpus is split at a random word boundary into a pair, as for NSP)."""
    return pretrainer("structbert", base_model, kw.get("vocab"), seed, max_length)


register_objective("structbert", ("word",), _objective)
