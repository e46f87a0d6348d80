"""Symmetric regularization: replace BERT's next-sentence task by one that also asks for the *previous*
sentence, so a pair's two orders are told apart.

Weidi Xu, Xingyi Cheng, Kunlong Chen, Wei Wang, Bin Bi, Ming Yan, Chen Wu, Luo Si, Wei Chu, Taifeng Wang.
*Symmetric Regularization based BERT for Pair-wise Semantic Reasoning.* arXiv 1909.03405 (2019); code:
ACL2020Anonymous/SymBERT (its README and ``run_pretraining_PNsmth.py``).

The paper's argument (§1, §3): BERT is order-sensitive, ``f(A, B) ≠ f(B, A)``, but NSP is one-directional —
(A, B) and (B, A) of two adjacent sentences are both "belong together" or neither is ever seen. Its variants
(§4, "Experiment Settings"), all MLM plus one pair task on the pooled [CLS] output, here from one init with the
same documents and steps (the shared :mod:`kbench.sentence_pairs`):

- **BERT** — NSP: next / other document, 1:1 (scheme ``nsp``).
- **BERT-PN** — IsNext / IsPrev / DiffDoc, 1:1:1 (``order3``); IsPrev's input is IsNext's reversed. The
  "symmetric regularization" is this label: the paper adds no loss term tying (A, B) to (B, A).
- **BERT-PN5cls** — plus IsNextInadj / IsPrevInadj (one sentence between A and B), 1:1:1:1:1 (``order5``).
- **BERT-PNsmth** — the five draws of PN5cls mapped onto PN's three classes with label smoothing: an in-adjacent
  pair's target is its adjacent class at ``1 − ε`` (``order5_smooth``; :func:`kbench.sentence_pairs.smoothed_scheme`).
  The paper's text reads a smoothing factor of 0.8 ("from (1.0, 0.0) to (0.8, 0.2)": ε = 0.2, spread here evenly
  over the other two classes); the authors' script writes (0.05, 0.9, 0.05), ε = 0.1. ``epsilon`` is a parameter;
  the profiles use the text's 0.2. The paper's best GLUE average is PNsmth's (81.0).

The downstream check the paper motivates (HANS, the swap test): premise/hypothesis pairs where overlap misleads.
Here: a frame filled with a specific animal and its general word ("Kovi kept a poodle ." ⇒ "Kovi kept a dog .")
entails; the swap (general ⇒ specific) uses the same words and does not (:mod:`kbench.data.story_world`). Each
pretrained encoder, and the untrained init, is fine-tuned the same way on training people's pairs and scored on
held-out people's; a pair and its swap are both right only for a model that reads the order.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from kbench.encoders import init_bert_weights
from kbench.errors import InputError, UnknownNameError
from kbench.experiment import Variant
from kbench.pretrain import masked_lm
from kbench.sentence_pairs import PairCollator, PairPretrainer, smoothed_scheme
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import RATE, MaskVocab

CITATION = {
    "title": "Symmetric Regularization based BERT for Pair-wise Semantic Reasoning",
    "authors": "Weidi Xu, Xingyi Cheng, Kunlong Chen, Wei Wang, Bin Bi, Ming Yan, Chen Wu, Luo Si, Wei Chu, "
               "Taifeng Wang",
    "venue": "arXiv", "year": 2019, "url": "https://arxiv.org/abs/1909.03405",
    "code": "https://github.com/ACL2020Anonymous/SymBERT",
}
NOTEBOOK = "18_symmetric_regularization"
PLACE = Place("Symmetric regularization", "objective", ("linguistic",),
              "sentence order as a pretraining objective: next, previous (the swap of next) and in-adjacent "
              "pairs instead of NSP", survey="linguistic", in_survey=False)
HEADLINE = Headline(
    "entailment pairs whose swap flips the label, after fine-tuning", "pn_entail_accuracy", "nsp_entail_accuracy",
    "nothing beyond the text: a third pair class (the swap of next) instead of NSP's two",
    trivial=("untrained_entail_accuracy",),
    positive=PositiveControl(
        "each pretrained head's own p(next) on held-out adjacent sentences in order vs the same pairs swapped: "
        "PN was trained to call the swap 'previous', NSP never saw one",
        left="pn_follows_auc", right="nsp_follows_auc", min_difference=0.25))

EPSILON = 0.2              # the paper's text: 0.8 on the adjacent class
VARIANTS = (Variant("nsp", "BERT (NSP)", {"scheme": "nsp"}),
            Variant("pn", "BERT-PN (next / previous / other)", {"scheme": "order3"}),
            Variant("pn5", "BERT-PN5cls (five classes)", {"scheme": "order5"}),
            Variant("smooth", "BERT-PNsmth (five draws, three classes, smoothed)", {"scheme": "order5_smooth"}))
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


def pretrainer(variant: str, base_model: str = "tiny", vocab: str | None = None, seed: int = 0,
               max_length: int = 64, epsilon: float = EPSILON, rate: float = RATE, aligned: bool = False
               ) -> PairPretrainer:
    """One of :data:`VARIANTS` over a seeded random init (the same encoder and pooler for every variant);
    ``aligned``: random partners from the same place of another document (:class:`~kbench.sentence_pairs.PairCollator`)."""
    chosen = {v.name: v for v in VARIANTS}.get(variant)
    if chosen is None:
        raise UnknownNameError(f"unknown variant {variant!r}: use {', '.join(VARIANT_NAMES)}")
    scheme = smoothed_scheme(epsilon) if chosen.options["scheme"] == "order5_smooth" else chosen.options["scheme"]
    lm, tokenizer, description = masked_lm(base_model, vocab, seed)
    collate = PairCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, tokenizer.cls_token_id,
                           tokenizer.sep_token_id, seed, rate, max_length, scheme=scheme, aligned=aligned)
    torch.manual_seed(seed + 1)
    model = PairPretrainer(lm, tokenizer, collate, f"{description}, {chosen.label}")
    model.variant = variant
    return model


class EntailmentClassifier(nn.Module):
    """A pretrained pair model's encoder and pooler (copied) with a new ``Linear(d, 2)`` (BERT's fine-tuning
    head, N(0, 0.02)): ``[CLS] premise [SEP] hypothesis [SEP]`` → entails (1) or not (0)."""

    def __init__(self, pretrained: PairPretrainer, seed: int = 0):
        super().__init__()
        self.encoder = copy.deepcopy(pretrained)
        self.tokenizer = pretrained.tokenizer
        torch.manual_seed(seed + 2)
        self.dropout = nn.Dropout(pretrained.lm.config.hidden_dropout_prob)
        self.classifier = nn.Linear(pretrained.lm.config.hidden_size, 2)
        init_bert_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> dict:
        _, pooled = self.encoder.pooled(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(pooled))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def pair_collate(tokenizer, max_length: int = 64):
    """Batch :class:`~kbench.data.story_world.EntailmentPair` s for :class:`EntailmentClassifier`."""
    def collate(pairs):
        encoded = tokenizer([p.premise for p in pairs], [p.hypothesis for p in pairs], padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
        return {**{k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")},
                "labels": torch.tensor([p.label for p in pairs], dtype=torch.long)}
    return collate


def entailment_scores(model: EntailmentClassifier, pairs: Sequence, batch_size: int = 256) -> dict[str, float]:
    """Accuracy overall, per kind, and ``swap``: the share of groups whose specific→general pair and its swap are
    both right (an order-blind reader gives the two the same answer and never gets both)."""
    from kbench.train import Examples, predict

    if not pairs:
        raise InputError("no entailment pairs to score")
    device = str(next(model.parameters()).device)
    predicted = predict(model, Examples(list(pairs)), batch_size, device, "no",
                        pair_collate(model.tokenizer)).argmax(-1).tolist()
    right = [int(p == pair.label) for p, pair in zip(predicted, pairs)]
    out = {"all": float(np.mean(right))}
    for kind in sorted({p.kind for p in pairs}):
        out[kind] = float(np.mean([r for r, p in zip(right, pairs) if p.kind == kind]))
    groups: dict[int, list[int]] = {}
    for r, p in zip(right, pairs):
        if p.kind in ("specific→general", "general→specific"):
            groups.setdefault(p.group, []).append(r)
    both = [all(rs) for rs in groups.values() if len(rs) == 2]
    out["swap"] = float(np.mean(both)) if both else float("nan")
    return out


def fine_tuned(pretrained: PairPretrainer, train: Sequence, config, seed: int = 0, description: str = "fine-tune",
               threads: int = 0) -> EntailmentClassifier:
    """Fine-tune a copy of ``pretrained`` on the entailment pairs ``train`` (whole encoder, ``config``'s steps) on
    ``threads`` torch threads (0: as they are)."""
    from kbench.train import Examples, fit, torch_threads

    model = EntailmentClassifier(pretrained, seed)
    with torch_threads(threads):
        fit(model, Examples(list(train)), None, config, description=description,
            collate=pair_collate(pretrained.tokenizer))
    return model


def pretrained_variants(s, names: Sequence[str] = VARIANT_NAMES, progress: bool | None = None) -> dict:
    """Pretrain each variant of ``names`` on ``s``'s documents from one init; ``"untrained"`` is the init."""
    from kbench.sentence_pairs import pretrained_from_one_init

    chosen = s.chosen
    build = lambda name: pretrainer(name, chosen["size"], s.vocab, s.seed, chosen["max_length"], chosen["epsilon"],
                                    aligned=chosen["aligned"])
    return pretrained_from_one_init(build, names, s.train_documents, s.config, chosen["max_length"], chosen["threads"],
                                    "nsp", progress)
