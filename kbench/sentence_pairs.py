"""Sentence-pair pretraining shared by the papers that classify ``[CLS] A [SEP] B [SEP]``: BERT's next sentence
prediction (LIBERT's baseline), StructBERT's sentence structural objective and the symmetric-regularization
variants. One collator draws the pairs and masks them; one head on the pooled output scores them.

**Relations.** A document is a list of segments in order. For a segment ``A`` at index ``i`` the collator can
build five pairs: ``next`` (A, segment i+1), ``previous`` (segment i+1, A — A is then the later one, so B
precedes it), ``next_inadjacent`` (A, segment i+2), ``previous_inadjacent`` (segment i+2, A) and ``random`` (A, a
segment of another document). In-adjacent is the symmetric paper's text ("there is a sentence between A and B");
the authors' data script instead takes a chunk of text further ahead — we follow the text. A :class:`PairScheme` names the relations
it draws, how often, and the soft target each one has over the head's classes:

- ``nsp`` — Devlin et al. (2019), transformers' ``BertForPreTraining``: next / random, 1:1, two classes
  (class 0: B follows A).
- ``order3`` — StructBERT's sentence structural objective (Wang et al. 2020, §2.2) and the symmetric
  paper's BERT-PN: next / previous / random, 1:1:1, three classes.
- ``order5`` — the symmetric paper's BERT-PN5cls: the two in-adjacent relations too, 1:1:1:1:1, five classes.
- ``order5_smooth`` — BERT-PNsmth: the five relations drawn as in ``order5``, three classes; an in-adjacent
  pair's target is its adjacent counterpart at ``1 − ε`` and ``ε`` spread evenly over the other two
  (:func:`smoothed_scheme`; the paper's text gives 0.8 on the counterpart, ε = 0.2; the authors'
  ``run_pretraining_PNsmth.py`` uses 0.9 and 0.05 each, ε = 0.1).

``aligned`` (a choice of the data, off for LIBERT): the random partner is taken, when the batch has one, from an
example at the same place in its own document as ``A`` in ``A``'s — the next segment of the same stage of another
life. In documents that all tell the same stages in order (:mod:`kbench.data.story_world`), a partner from any
place would be told apart by its stage alone, and a model would learn sentence order *to detect a random partner*;
aligned, the partner differs from the true next in whose life it is, as a random sentence of real text differs
in its topic, and order is left to the objectives that ask for it.

When a segment lacks what a relation needs (no segment i+2), the relation is drawn among those it has, their
shares renormalised, and with only one left no number is drawn: for ``nsp`` this is exactly LIBERT's draw
(a segment without a next one always gets a random partner), so LIBERT's batches are unchanged by the move
here. ``random``'s partner is the true next segment of another example of the batch whose document differs.

**Head.** :class:`PairPretrainer` is ``BertForPreTraining``'s shape with a ``k``-way head: the pooled output
(``BertPooler``: dense + tanh of [CLS]) into ``Linear(d, k)``, new layers as BERT's (N(0, 0.02), zero bias),
loss ``L_MLM + L_pair`` where ``L_pair`` is the cross-entropy against the relation's soft target (a one-hot row
for every scheme but ``order5_smooth``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertPooler

from kbench.encoders import init_bert_weights
from kbench.errors import InputError, UnknownNameError
from kbench.pretrain import Corpus, MaskedLM, Sentence
from kbench.text.masking import IGNORE, RATE, MaskVocab, mask_units
from kbench.train import pad_rows

RELATIONS = ("next", "previous", "random", "next_inadjacent", "previous_inadjacent")


@dataclass(frozen=True)
class PairScheme:
    """Which relations a collator draws (``relations``, with ``shares``) and each one's target over ``classes``."""

    name: str
    relations: tuple[str, ...]
    shares: tuple[float, ...]
    classes: tuple[str, ...]
    targets: tuple[tuple[float, ...], ...]       # one row per relation, over ``classes``, summing to 1

    def __post_init__(self):
        unknown = [r for r in self.relations if r not in RELATIONS]
        if unknown or "random" not in self.relations:
            raise InputError(f"a scheme draws from {RELATIONS} and always has 'random'; got {self.relations}")
        if len(self.shares) != len(self.relations) or min(self.shares) <= 0:
            raise InputError(f"one positive share per relation, got {self.shares} for {self.relations}")
        if len(self.targets) != len(self.relations) or any(len(row) != len(self.classes) for row in self.targets):
            raise InputError(f"one target row over {len(self.classes)} classes per relation")
        if any(min(row) < 0 or abs(sum(row) - 1) > 1e-6 for row in self.targets):
            raise InputError(f"each target row is a distribution (non-negative, summing to 1): {self.targets}")

    @property
    def target_matrix(self) -> torch.Tensor:
        return torch.tensor(self.targets, dtype=torch.float32)

    def hard_class(self, relation: int) -> int:
        """The class a relation is counted as when scoring: its target's largest entry."""
        return int(np.argmax(self.targets[relation]))


def _one_hot(count: int) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(i == j) for j in range(count)) for i in range(count))


def smoothed_scheme(epsilon: float = 0.2) -> PairScheme:
    """BERT-PNsmth: five relations drawn 1:1:1:1:1, three classes; an in-adjacent pair's target is its adjacent
    class at ``1 − epsilon``, the rest spread evenly over the other two classes."""
    if not 0.0 <= epsilon < 1.0:
        raise InputError(f"the smoothing epsilon must be in [0, 1), got {epsilon}")
    side = epsilon / 2
    return PairScheme("order5_smooth", RELATIONS, (1.0,) * 5, ("next", "previous", "random"),
                      _one_hot(3) + ((1 - epsilon, side, side), (side, 1 - epsilon, side)))


SCHEMES: dict[str, PairScheme] = {
    "nsp": PairScheme("nsp", ("next", "random"), (0.5, 0.5), ("next", "random"), _one_hot(2)),
    "order3": PairScheme("order3", ("next", "previous", "random"), (1.0,) * 3, ("next", "previous", "random"),
                         _one_hot(3)),
    "order5": PairScheme("order5", RELATIONS, (1.0,) * 5, RELATIONS, _one_hot(5)),
    "order5_smooth": smoothed_scheme(0.2),
}


def scheme_of(scheme: str | PairScheme) -> PairScheme:
    if isinstance(scheme, PairScheme):
        return scheme
    if scheme not in SCHEMES:
        raise UnknownNameError(f"unknown pair scheme {scheme!r}: use {', '.join(SCHEMES)}")
    return SCHEMES[scheme]


@dataclass
class PairedSentence(Sentence):
    """A :class:`Sentence` (segment ``A``: [CLS] ... [SEP]) with the ids of the segments after it (no specials)."""

    next_ids: np.ndarray | None = None
    document: int = -1                  # which document it comes from (-1: unknown, a plain one-text sentence)
    later_ids: np.ndarray | None = None  # the segment after the next one (an in-adjacent partner), if any
    position: int = -1                   # the segment's index in its document (-1: unknown)


def document_corpus(documents: Sequence[Sequence[str]], tokenizer, max_length: int = 64,
                    source: str = "documents") -> Corpus:
    """Return a :class:`Corpus` of :class:`PairedSentence` s: every segment of a document but its last, with its
    next (and the one after, when there is one).

    A document is a list of texts in order. ``max_length`` bounds one segment; the pair is cut to
    ``max_length`` again in the collator.
    """
    documents = [[t for t in doc if isinstance(t, str) and t.strip()] for doc in documents]
    documents = [doc for doc in documents if len(doc) >= 2]
    if not documents:
        raise InputError("sentence pairs need documents of at least two non-blank texts")
    texts = [t for doc in documents for t in doc]
    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    sentences, at = [], 0
    for number, doc in enumerate(documents):
        ids = [np.asarray(encoded[at + i], np.int64) for i in range(len(doc))]
        for i in range(len(doc) - 1):
            later = ids[i + 2][1:-1] if i + 2 < len(doc) else None
            sentences.append(PairedSentence(doc[i], ids[i], {}, ids[i + 1][1:-1], number, later, i))
        at += len(doc)
    return Corpus(sentences, tokenizer, source)


def split_segments(sentence: Sentence, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(A, B)``: the segment's tokens and its true next segment's, both without specials.

    A :class:`PairedSentence` gives its own next segment. A plain sentence is cut at a random word boundary
    (its ``word`` units; every token is a word without them): ``A`` before, ``B`` after. ``B`` is None when
    there is no next segment (a plain sentence of one word).
    """
    body = sentence.ids[1:-1]
    if isinstance(sentence, PairedSentence) and sentence.next_ids is not None:
        return body, sentence.next_ids
    starts = [start - 1 for start, _ in sentence.units.get("word", [])] or list(range(len(body)))
    cuts = [s for s in starts if 0 < s < len(body)]
    if not cuts:
        return body, None
    cut = int(rng.choice(cuts))
    return body[:cut], body[cut:]


def truncate_pair(first: np.ndarray, second: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the two segments cut to ``budget`` tokens together, the longer one losing its last token first."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        (first if len(first) >= len(second) else second).pop()
    return np.asarray(first, np.int64), np.asarray(second, np.int64)


def document_of(sentence: Sentence, index: int) -> tuple:
    """Return a key naming ``sentence``'s document: its ``document`` number, else its place in the batch."""
    number = getattr(sentence, "document", -1)
    return ("document", number) if number >= 0 else ("alone", index)


def encode_rows(ids: Sequence[np.ndarray], types: Sequence[np.ndarray], pad_id: int,
                labels: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Return padded ``input_ids``, ``attention_mask``, ``token_type_ids`` (and ``labels``) tensors."""
    out = {"input_ids": torch.from_numpy(pad_rows(ids, pad_id)),
           "attention_mask": torch.from_numpy(pad_rows([np.ones(len(r), np.int64) for r in ids], 0)),
           "token_type_ids": torch.from_numpy(pad_rows(types, 0))}
    if labels is not None:
        out["labels"] = torch.as_tensor(labels, dtype=torch.long)
    return out


def draw_relation(scheme: PairScheme, available: set[str], rng: np.random.Generator) -> int:
    """Index (in ``scheme.relations``) of the relation drawn among the ``available`` ones, shares renormalised;
    with only one available, no number is drawn."""
    allowed = [i for i, r in enumerate(scheme.relations) if r in available]
    if len(allowed) == 1:
        return allowed[0]
    shares = np.asarray([scheme.shares[i] for i in allowed])
    draw = rng.random() * shares.sum()
    return allowed[min(int(np.searchsorted(np.cumsum(shares), draw, side="right")), len(allowed) - 1)]


class PairCollator:
    """One pretraining batch of sentence pairs drawn by ``scheme``, with BERT's MLM over each pair.

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids``, ``labels`` (MLM) and ``pair_label`` (the
    relation's index in ``scheme.relations``). ``extra`` (an object with ``batch(size, pad_id)``,
    ``get_state``, ``set_state``: LIBERT's LRC examples) adds a batch of its own under ``extra_prefix``.
    ``after_masking(ids, labels, rng)`` may return more tensors per row (StructBERT's word objective).
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, cls_id: int, sep_id: int, seed: int = 0, rate: float = RATE,
                 max_length: int = 64, scheme: str | PairScheme = "nsp", extra=None, extra_prefix: str = "lrc",
                 aligned: bool = False):
        if max_length < 5:
            raise InputError(f"a pair needs max_length of at least 5 tokens, got {max_length}")
        self.vocab, self.pad_id, self.cls_id, self.sep_id, self.rate = vocab, pad_id, cls_id, sep_id, rate
        self.max_length, self.extra, self.extra_prefix, self.aligned = max_length, extra, extra_prefix, aligned
        self.scheme = scheme_of(scheme)
        self.pool = vocab.replacement_pool()
        self.rng = np.random.default_rng(seed)
        self.batches = 0

    def pair(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``[CLS] A [SEP] B [SEP]`` and its segment ids, cut to ``max_length``."""
        first, second = truncate_pair(first, second, self.max_length - 3)
        ids = np.concatenate([[self.cls_id], first, [self.sep_id], second, [self.sep_id]]).astype(np.int64)
        types = np.concatenate([np.zeros(len(first) + 2, np.int64), np.ones(len(second) + 1, np.int64)])
        return ids, types

    def draw_pair(self, index: int, sentences: Sequence[Sentence], segments: list, documents: list
                  ) -> tuple[np.ndarray, np.ndarray, int]:
        """Draw example ``index``'s relation and return ``(first segment, second segment, relation index)``."""
        first, second = segments[index]
        later = getattr(sentences[index], "later_ids", None)
        available = {"random"} | ({"next", "previous"} if second is not None else set()) | \
            ({"next_inadjacent", "previous_inadjacent"} if later is not None else set())
        relation = draw_relation(self.scheme, available, self.rng)
        name = self.scheme.relations[relation]
        if name == "random":
            others = [i for i in range(len(segments)) if documents[i] != documents[index]] or \
                [i for i in range(len(segments)) if i != index]          # another document; itself never
            if self.aligned:                                             # ... at the same place in it, if any
                here = getattr(sentences[index], "position", -1)
                others = [i for i in others if getattr(sentences[i], "position", -2) == here] or others
            other = others[int(self.rng.integers(len(others)))]
            candidate = segments[other][1] if segments[other][1] is not None else segments[other][0]
            return first, candidate, relation
        partner = second if name in ("next", "previous") else later
        return (first, partner, relation) if name.startswith("next") else (partner, first, relation)

    def after_masking(self, ids: np.ndarray, labels: np.ndarray, types: np.ndarray) -> dict[str, np.ndarray]:
        """Hook for objectives over the masked pair (none here)."""
        return {}

    def __call__(self, sentences: Sequence[Sentence]) -> dict[str, torch.Tensor]:
        if len(sentences) < 2:
            raise InputError("random partners come from the other examples of a batch: use batches of 2+")
        self.batches += 1
        segments = [split_segments(s, self.rng) for s in sentences]
        documents = [document_of(s, i) for i, s in enumerate(sentences)]
        rows, types, labels, relations, more = [], [], [], [], []
        for index in range(len(sentences)):      # each pair drawn, then masked, before the next (LIBERT's order)
            first, second, relation = self.draw_pair(index, sentences, segments, documents)
            ids, segment_ids = self.pair(first, second)
            inputs, targets = mask_units(ids, [], self.rng, self.vocab, self.rate, self.pool)
            more.append(self.after_masking(inputs, targets, segment_ids))
            rows.append(more[-1].pop("input_ids", inputs))
            types.append(segment_ids)
            labels.append(targets)
            relations.append(relation)
        batch = encode_rows(rows, types, self.pad_id)
        batch["labels"] = torch.from_numpy(pad_rows(labels, IGNORE))
        batch["pair_label"] = torch.tensor(relations, dtype=torch.long)
        for key in more[0]:
            batch[key] = torch.from_numpy(pad_rows([m[key] for m in more], IGNORE))
        if self.extra is not None:
            side = self.extra.batch(len(sentences), self.pad_id)
            batch.update({f"{self.extra_prefix}_{key}": value for key, value in side.items()})
        return batch

    def get_state(self) -> dict:
        state = {"rng": self.rng.bit_generator.state, "batches": self.batches}
        if self.extra is not None:
            state[self.extra_prefix] = self.extra.get_state()
        return state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = state["batches"]
        if self.extra is not None and self.extra_prefix in state:
            self.extra.set_state(state[self.extra_prefix])


class PairPretrainer(MaskedLM):
    """MLM at masked positions and the scheme's pair classification on the pooled output (``BertForPreTraining``'s
    shape with ``len(scheme.classes)`` outputs)."""

    def __init__(self, lm, tokenizer, collate: PairCollator, description: str = ""):
        super().__init__(lm, tokenizer, collate, description)
        config = lm.config
        self.scheme = collate.scheme
        self.pooler = BertPooler(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)        # drawn as BertForPreTraining's NSP head,
        init_bert_weights(self.pooler, self.seq_relationship)           # so every scheme gets the same pooler
        if len(self.scheme.classes) != 2:
            self.seq_relationship = nn.Linear(config.hidden_size, len(self.scheme.classes))
            init_bert_weights(self.seq_relationship)
        self.register_buffer("pair_targets", self.scheme.target_matrix, persistent=False)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the output states and the pooled output (dense + tanh of [CLS]) the pair head reads."""
        states = self.hidden(input_ids, attention_mask, token_type_ids)
        return states, self.pooler(states)

    def pair_loss(self, pair_logits: torch.Tensor, pair_label: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the head against each relation's (soft) target."""
        targets = self.pair_targets.to(pair_logits.dtype)[pair_label]
        return -(targets * pair_logits.log_softmax(-1)).sum(-1).mean()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                pair_label: torch.Tensor | None = None, **more) -> dict:
        states, pooled = self.pooled(input_ids, attention_mask, token_type_ids)
        pair_logits = self.seq_relationship(pooled)
        if labels is None:
            return {"logits": self.lm.cls(states), "pair_logits": pair_logits, "states": states}
        keep = labels != IGNORE
        logits = self.lm.cls(states[keep])
        mlm_loss = nn.functional.cross_entropy(logits, labels[keep]) if keep.any() else states.sum() * 0.0
        out = {"logits": logits, "pair_logits": pair_logits, "mlm_loss": mlm_loss, "loss": mlm_loss,
               "states": states}
        if pair_label is not None:
            out["pair_loss"] = self.pair_loss(pair_logits, pair_label)
            out["loss"] = out["loss"] + out["pair_loss"]
        return out


# --- frozen probes of what a pair's pooled output knows (StructBERT's and the symmetric paper's controls) ---

ORDER_LABELS = ("next", "previous", "random")


def order_pairs(documents: Sequence[Sequence[str]], relations: Sequence[str] = ORDER_LABELS, seed: int = 0
                ) -> list[tuple[str, str, int]]:
    """One pair per adjacent pair of sentences of held-out ``documents``: ``(A, B, label)`` with the label the
    index in ``relations`` drawn evenly — ``next`` (A, its next), ``previous`` (the next, A), ``random`` (A, a
    sentence of another document)."""
    unknown = [r for r in relations if r not in ORDER_LABELS]
    if unknown or len(relations) < 2:
        raise InputError(f"an order probe tells apart two or more of {ORDER_LABELS}, got {tuple(relations)}")
    documents = [list(doc) for doc in documents if len(doc) >= 2]
    if len(documents) < 2:
        raise InputError("an order probe needs at least two documents of two sentences or more")
    rng = np.random.default_rng(seed)
    out = []
    for number, doc in enumerate(documents):
        for first, second in zip(doc, doc[1:]):
            label = int(rng.integers(len(relations)))
            name = relations[label]
            if name == "previous":
                first, second = second, first
            elif name == "random":
                other = documents[(number + 1 + int(rng.integers(len(documents) - 1))) % len(documents)]
                second = other[int(rng.integers(len(other)))]
            out.append((first, second, label))
    return out


@torch.no_grad()
def pooled_features(model: PairPretrainer, pairs: Sequence[tuple[str, str]] | Sequence[str], max_length: int = 64,
                    batch_size: int = 128, read: str = "pooled") -> np.ndarray:
    """The frozen pooled output (``read="pooled"``) or the mean of the last layer's states (``"mean"``) of
    ``[CLS] A [SEP] B [SEP]`` for each pair (or ``[CLS] A [SEP]`` for a plain text), in eval mode."""
    from kbench.train import eval_mode

    if not len(pairs):
        raise InputError("no pairs to encode")
    if read not in ("pooled", "mean"):
        raise UnknownNameError(f"read 'pooled' or 'mean', not {read!r}")
    tokenizer, device = model.tokenizer, next(model.parameters()).device
    rows = []
    with eval_mode(model):
        for start in range(0, len(pairs), batch_size):
            chunk = list(pairs[start:start + batch_size])
            texts = [p if isinstance(p, str) else p[0] for p in chunk]
            seconds = None if isinstance(chunk[0], str) else [p[1] for p in chunk]
            encoded = tokenizer(texts, seconds, padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt").to(device)
            states, pooled = model.pooled(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
            if read == "pooled":
                rows.append(pooled.float().cpu().numpy())
            else:
                mask = encoded["attention_mask"].unsqueeze(-1).float()
                rows.append(((states * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return np.concatenate(rows)


def linear_probe(train_x: np.ndarray, train_y: Sequence[int], test_x: np.ndarray, test_y: Sequence[int],
                 C: float = 1.0, seed: int = 0) -> np.ndarray:
    """Fit a standardised logistic regression on frozen features; return its test predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(set(train_y)) < 2:
        raise InputError("a probe needs at least two classes among its training labels")
    scaler = StandardScaler().fit(train_x)
    classifier = LogisticRegression(C=C, max_iter=1000, random_state=seed).fit(scaler.transform(train_x), train_y)
    return classifier.predict(scaler.transform(test_x))


def order_probe(model: PairPretrainer, train: Sequence[tuple[str, str, int]], test: Sequence[tuple[str, str, int]],
                max_length: int = 64, seed: int = 0) -> dict[str, float]:
    """Accuracy of a linear probe on the frozen pooled output over :func:`order_pairs` (trained on ``train``,
    scored on ``test``): overall and per label."""
    predicted = linear_probe(pooled_features(model, [(a, b) for a, b, _ in train], max_length), [y for *_, y in train],
                             pooled_features(model, [(a, b) for a, b, _ in test], max_length), [y for *_, y in test],
                             seed=seed)
    gold = np.asarray([y for *_, y in test])
    out = {"all": float((predicted == gold).mean())}
    for label in sorted(set(gold.tolist())):
        out[label] = float((predicted[gold == label] == label).mean())
    return out


@torch.no_grad()
def follows_auc(model: PairPretrainer, documents: Sequence[Sequence[str]], max_length: int = 64,
                batch_size: int = 256) -> float:
    """ROC AUC of the model's own ``p(next)`` — its head's answer to "does B follow A?" — telling each adjacent pair
    of held-out ``documents`` in order (A, B) from the same pair swapped (B, A). No probe is trained: NSP's head
    and PN's answer the same question, and 0.5 is a head that gives a pair and its swap the same answer."""
    from sklearn.metrics import roc_auc_score

    if "next" not in model.scheme.classes:
        raise InputError(f"the {model.scheme.name} head has no 'next' class to ask")
    pairs = [(a, b) for doc in documents for a, b in zip(doc, doc[1:])]
    if not pairs:
        raise InputError("no adjacent sentences in the documents")
    pooled = np.concatenate([pooled_features(model, ordered, max_length, batch_size)       # in order, then swapped
                             for ordered in (pairs, [(b, a) for a, b in pairs])])
    head = model.seq_relationship(torch.as_tensor(pooled).to(next(model.parameters()).device))
    scores = head.softmax(-1)[:, model.scheme.classes.index("next")].float().cpu().tolist()
    return float(roc_auc_score([1] * len(pairs) + [0] * len(pairs), scores))


def pretrained_from_one_init(build, names: Sequence[str], documents: Sequence[Sequence[str]], config,
                             max_length: int, threads: int = 0, untrained: str = "nsp",
                             progress: bool | None = None) -> dict[str, PairPretrainer]:
    """Pretrain ``build(name)`` for each of ``names`` on ``documents`` with ``config`` (a copy, its steps), one after
    another on ``threads`` torch threads; every build draws the same seeded init, and every model reads the same
    pairs in the same order. ``"untrained"`` is ``build(untrained)``, never trained (the trivial baseline)."""
    import copy

    from kbench.pretrain import pretrain
    from kbench.train import torch_threads

    models = {"untrained": build(untrained)}
    corpus = document_corpus(documents, models["untrained"].tokenizer, max_length, "documents")
    config = copy.copy(config)
    config.progress = progress
    with torch_threads(threads):
        for name in names:
            models[name] = build(name)
            pretrain(models[name], corpus, config, description=f"pretrain {name}")
    return models
