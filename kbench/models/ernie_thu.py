"""ERNIE (Tsinghua): token-entity alignment, the knowledgeable encoder, and the dEA objective.

Zhang, Han, Liu, Jiang, Sun, Liu. *ERNIE: Enhanced Language Representation with
Informative Entities.* ACL 2019. https://arxiv.org/abs/1905.07129
Code: https://github.com/thunlp/ERNIE (``code/knowledge_bert/modeling.py``).

Taught in ``notebooks/05_ernie_thu.ipynb``. The model (§3, Fig. 2):

- **Alignment**: each entity mention's KG entity is placed on the mention's
  *first* token (§3.1); every other token has no entity.
- **T-Encoder**: the lower ``N`` layers of BERT, unchanged (Eq. 1).
- **K-Encoder**: the upper ``M`` layers, each an *aggregator* (§3.3, Eq. 2-6)
  rebuilt from the BERT layer it replaces: multi-head self-attention over the
  tokens (the layer's own, pretrained) and over the entity vectors (new; the
  entity dimension, 4 heads, masked to the aligned positions), then the
  information fusion
  ``h_j = GELU(W_t w_j + W_e e_j + b)``, ``w'_j = LN(W_o h_j + w_j)``, ``e'_j = LN(W_oe h_j + e_j)``
  for tokens with an entity, and ``h_j = GELU(W_t w_j + b)`` for tokens without
  one. ``W_t, b`` are the layer's intermediate dense and ``W_o`` its output
  dense (the authors' code builds them that way, so the K-Encoder starts from
  BERT's weights); ``W_e`` has no bias of its own, so a token without an entity
  takes exactly the token path.
- **[CLS]'s entity slot**: [CLS] takes part in the entity stream with a zero
  vector, as in the authors' code (``ent_mask[0] = 1`` in ``run_typing.py``,
  ``run_fewrel.py`` and ``run_pretrain.py``'s collate, with entity 0 the zero
  vector). So in *every* aggregator [CLS]'s entity attention reads all the
  sentence's entities and the fusion (Eq. 4) passes them into the [CLS] state
  the classifier reads: one aggregator is enough for the entities to reach
  the logits (tested at ``k_layers=1``).
- **dEA** (§3.4, Eq. 7): for the aligned token-entity pairs of a sequence, 5% of
  the time the entity is replaced by a random one — drawn from the batch's
  entities, as the authors' ``run_pretrain.py`` collate does — 15% of the time
  the alignment is removed, and otherwise kept; every aligned token then
  predicts its (original) entity among the entities of the batch, through a
  Linear + GELU + LayerNorm head into the entity space (the authors'
  ``BertEntPredictionHead``) and a dot product with the entity vectors.
- **K-Encoder size**: half of the encoder's layers by default (the paper's
  BERT-base has N = 6 T-Encoder and M = 6 K-Encoder layers, §4.2).
- **Initialisation**: the new entity attention, ``W_e``, ``W_oe`` and LayerNorms
  as BERT's (``init_bert_weights``: N(0, 0.02), zero bias, LayerNorm 1/0), as
  the authors' ``PreTrainedBertModel.init_bert_weights`` does.
- **Entity vectors**: TransE on the KG, frozen (§4.1: Wikidata, dimension 100).
- **Fine-tuning** (§3.5, Fig. 3): the [CLS] state, with mark tokens in the
  input: ``[ENT]`` around the mention to type, ``[HD]``/``[TL]`` around the
  head and tail of a relation. The marks go on both sides of a mention, as the
  authors' fine-tuning code does; they are the vocabulary's unused tokens.

Where this follows the code over the paper: the authors' first aggregator
("mix") skips the entity self-attention; here every aggregator has it, as Fig. 2
and Eq. 3 describe.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.models.bert.modeling_bert import BertAttention

from kbench.encoders import EMBEDDED, HookedEncoder, entity_space_config, init_bert_weights, load_encoder
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.embeddings import frozen_entity_table
from kbench.metrics import random_like
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.train import Examples, labelled_examples, pad_rows, token_batch

CITATION = {
    "title": "ERNIE: Enhanced Language Representation with Informative Entities",
    "authors": "Zhang, Han, Liu, Jiang, Sun, Liu",
    "venue": "ACL", "year": 2019, "url": "https://arxiv.org/abs/1905.07129",
    "code": "https://github.com/thunlp/ERNIE",
}
NOTEBOOK = "05_ernie_thu"
PLACE = Place('ERNIE (THU)', 'fused entity vectors', ('KG',),
              'TransE entity vectors fused into the token states by aggregator layers, trained with a denoising '
              'entity auto-encoder',
              survey='factual')
HEADLINE = Headline('entity typing, accuracy (ERNIE after dEA pretraining vs BERT)', 'ernie_test_accuracy',
                    'bert_test_accuracy',
                    'an entity linker and TransE vectors of the KG at run time; dEA pretraining on linked text',
                    trivial=('majority_test_accuracy', 'ernie_random_kg_test_accuracy'),
                    positive=PositiveControl(
                        "the gold-linked person's TransE vector, which sits by its continent in the KG, fused at the "
                        "mention by aggregators fine-tuned on the task alone (no dEA): the fact is in the input",
                        'ernie_no_dea_test_accuracy', 'bert_test_accuracy', 0.3))

#: The paper's mark tokens, carried by the vocabulary's unused tokens (present in every BERT vocabulary).
MARKS = {"ENT": "[unused1]", "HD": "[unused2]", "TL": "[unused3]"}
TASKS = {"typing": ("ENT",), "relation": ("HD", "TL")}
#: dEA's noise (§3.4): replace the entity 5% of the time, remove the alignment 15% of the time.
REPLACE, REMOVE = 0.05, 0.15

#: BERT on the same marked input, and ERNIE with the upper half of the encoder as aggregators.
VARIANTS = (Variant("bert", "BERT", {"k_layers": 0}), Variant("ernie", "ERNIE", {}))
#: The label of ERNIE whose aggregators are fine-tuned from scratch on the task. The paper's "w/o dEA"
#: (Table 7) is something else: still pre-trained (MLM + NSP, with the entity input), only without dEA.
SCRATCH_LABEL = "ERNIE, fusion not pre-trained"


def control_variants(entity_embeddings: torch.Tensor, seed: int = 0) -> tuple[Variant, ...]:
    """Return the untrained module of the same shape: ERNIE (fusion fine-tuned from scratch) reading random
    entity vectors, each row the norm of its TransE row (:func:`kbench.metrics.random_like`). Every entity is
    still told apart; no vector holds a fact of the KG."""
    return (Variant("ernie_random_kg", "ERNIE, random entity vectors",
                    {"entity_embeddings": random_like(entity_embeddings, seed)}),)


def half_of(depth: int) -> int:
    """Return the K-Encoder size for an encoder of ``depth`` layers: half of it (at least one layer)."""
    return max(1, depth // 2)


class Aggregator(nn.Module):
    """One K-Encoder layer (Eq. 2-6), rebuilt around a pretrained ``BertLayer``.

    A replacing module for :class:`~kbench.encoders.HookedEncoder`:
    ``forward(states, mask, context)`` reads the entity stream from
    ``context["entity_states"]`` (``(B, L, E)``, zero where no entity) and
    ``context["entity_mask"]`` (``(B, L)`` bool), and writes the new entity stream back.
    """

    def __init__(self, layer: nn.Module, entity_dim: int, heads: int = 4):
        super().__init__()
        self.layer = layer
        config = entity_space_config(entity_dim, heads)
        intermediate = layer.intermediate.dense.out_features
        self.entity_attention = BertAttention(config)                       # MH-ATT over entities, Eq. 3
        self.entity_in = nn.Linear(entity_dim, intermediate, bias=False)    # W_e (b is the token path's)
        self.entity_out = nn.Linear(intermediate, entity_dim)               # W_oe
        self.entity_norm = nn.LayerNorm(entity_dim, eps=1e-12)
        self.dropout = nn.Dropout(layer.output.dropout.p)
        self.activation = ACT2FN["gelu"]
        init_bert_weights(self.entity_attention, self.entity_in, self.entity_out, self.entity_norm)

    def forward(self, states: torch.Tensor, mask, context: dict) -> torch.Tensor:
        aligned = context["entity_mask"]
        tokens = self.layer.attention(states, mask)[0]                      # MH-ATT over tokens, Eq. 2
        among = aligned[:, None, None, :] | torch.eye(aligned.shape[1], dtype=torch.bool, device=aligned.device)
        entities = self.entity_attention(context["entity_states"], among)[0]
        entities = entities * aligned[..., None]                            # no entity: token path only
        fused = self.activation(self.layer.intermediate.dense(tokens) + self.entity_in(entities))   # Eq. 4
        context["entity_states"] = self.entity_norm(self.dropout(self.entity_out(fused)) + entities)  # Eq. 5
        return self.layer.output(fused, tokens)                             # LN(W_o h + w), Eq. 5


class EntityPredictionHead(nn.Module):
    """dEA's head (Eq. 7): tokens into the entity space (Linear + GELU + LN), scored against entity vectors."""

    def __init__(self, hidden_size: int, entity_dim: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, entity_dim)
        self.norm = nn.LayerNorm(entity_dim, eps=1e-12)

    def forward(self, states: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Return ``(B, L, K)`` scores of every token against the ``(K, E)`` candidate entity vectors."""
        return self.norm(ACT2FN["gelu"](self.dense(states))) @ candidates.T


def dea_noise(entity_ids: np.ndarray, rng: np.random.Generator, pool: np.ndarray | int,
              replace: float = REPLACE, remove: float = REMOVE) -> np.ndarray:
    """Return a copy of ``entity_ids`` (-1: no entity) with dEA's noise on the aligned positions (§3.4).

    A replaced entity is drawn uniformly from ``pool``: the batch's entities in
    :meth:`ErnieDEA.collate`, as the authors' ``run_pretrain.py`` does (so a
    replacement is a plausible entity of the same text, and may be the original
    itself); an int ``n`` means the whole table ``0..n-1``.
    """
    if not (0 <= replace and 0 <= remove and replace + remove <= 1):
        raise InputError(f"replace ({replace}) and remove ({remove}) must be probabilities summing to at most 1")
    pool = np.arange(pool) if np.isscalar(pool) else np.asarray(pool)
    noisy = entity_ids.copy()
    flat = noisy.reshape(-1)   # a view: the noise lands in ``noisy``
    aligned = np.flatnonzero(flat >= 0)
    draw = rng.random(len(aligned))
    swapped = aligned[draw < replace]
    if len(swapped) and not len(pool):
        raise InputError("dEA's replacement pool is empty")
    flat[swapped] = pool[rng.integers(0, len(pool), len(swapped))]
    flat[aligned[(draw >= replace) & (draw < replace + remove)]] = -1
    return noisy


@dataclass
class AlignedText:
    """One example: word pieces with marks, the entity id aligned to each (-1: none), and the label."""

    input_ids: np.ndarray     # (L,)
    entity_ids: np.ndarray    # (L,)
    label: int | None = None


class ErnieEncoder(nn.Module):
    """A BERT whose last ``k_layers`` layers are aggregators, with frozen entity vectors (0: plain BERT).

    ``k_layers=None`` is half of the encoder (:func:`half_of`), the paper's split.
    """

    def __init__(self, entity_embeddings: torch.Tensor, entity_to_id: dict[str, int], base_model: str = EMBEDDED,
                 *, k_layers: int | None = None, layers: int | None = None, freeze_word_embeddings: bool = False,
                 max_length: int = 128, heads: int = 4, vocab: str | None = None, seed: int = 0):
        super().__init__()
        entities = frozen_entity_table(entity_embeddings, entity_to_id)
        torch.manual_seed(seed)
        encoder = load_encoder(base_model, vocab=vocab, seed=seed, layers=layers,
                               freeze_word_embeddings=freeze_word_embeddings)
        self.tokenizer, self.description = encoder.tokenizer, encoder.description
        depth = encoder.model.config.num_hidden_layers
        k_layers = half_of(depth) if k_layers is None else k_layers
        if not 0 <= k_layers <= depth:
            raise InputError(f"k_layers must be between 0 and {depth} (the encoder's layers), got {k_layers}")
        self.register_buffer("entities", entities)   # frozen TransE (§4.1)
        self.entity_to_id = dict(entity_to_id)
        blocks = encoder.model.encoder.layer
        replace = {i: Aggregator(blocks[i], entity_embeddings.shape[1], heads) for i in range(depth - k_layers, depth)}
        self.encoder = HookedEncoder(encoder.model, replace=replace)
        self.k_layers, self.max_length, self.hidden_size = k_layers, max_length, encoder.model.config.hidden_size
        self.description += (f"; T-Encoder {depth - k_layers} + K-Encoder {k_layers} layers" if k_layers else
                             "; no aggregator")
        self.mark_ids = {}
        for mark, token in MARKS.items():
            index = self.tokenizer.convert_tokens_to_ids(token)
            if index == self.tokenizer.unk_token_id:
                raise InputError(f"the vocabulary has no {token} to carry the mark [{mark}]")
            self.mark_ids[mark] = index

    def readable_tokens(self, input_ids) -> list[str]:
        """Return the word pieces of ``input_ids`` with the marks written as the paper writes them ([ENT], [HD], [TL])."""
        shown = {token: f"[{mark}]" for mark, token in MARKS.items()}
        return [shown.get(t, t) for t in self.tokenizer.convert_ids_to_tokens([int(i) for i in input_ids])]

    def entity_id(self, entity: str) -> int:
        if entity not in self.entity_to_id:
            raise InputError(f"entity {entity!r} is not in the embedding table")
        return self.entity_to_id[entity]

    def align(self, words: Sequence[str], mentions: Sequence, marks: Sequence[str] = ()) -> AlignedText:
        """Return word pieces with [CLS]/[SEP], each mention's entity (``chosen``) on its first piece.

        ``marks[k]`` (a key of :data:`MARKS`) surrounds mention ``k`` with its
        mark token on both sides. A mention with no chosen entity is marked but
        not aligned. A mention cut off by ``max_length`` loses its entity.
        """
        words = list(words)
        if not words:
            raise InputError("a sentence needs at least one word")
        if len(marks) > len(mentions):
            raise InputError(f"{len(marks)} marks for {len(mentions)} mentions")
        for mention in mentions:
            mention.check(len(words))
        opening, closing, first = {}, {}, {}
        for k, mention in enumerate(mentions):
            if k < len(marks):
                if marks[k] not in MARKS:
                    raise InputError(f"unknown mark {marks[k]!r}: use {', '.join(MARKS)}")
                opening.setdefault(mention.start, []).append(self.mark_ids[marks[k]])
                closing.setdefault(mention.end - 1, []).append(self.mark_ids[marks[k]])
            if mention.chosen is not None:
                first.setdefault(mention.start, self.entity_id(mention.chosen))
        pieces = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        sequence = [(self.tokenizer.cls_token_id, -1)]   # (token id, aligned entity id)
        previous = None
        for token, word in zip(pieces["input_ids"], pieces.word_ids()):
            starts = word != previous
            if starts:
                sequence += [(mark, -1) for mark in closing.get(previous, [])]
                sequence += [(mark, -1) for mark in opening.get(word, [])]
            sequence.append((token, first.get(word, -1) if starts else -1))
            previous = word
        sequence += [(mark, -1) for mark in closing.get(previous, [])]
        sequence = sequence[:self.max_length - 1] + [(self.tokenizer.sep_token_id, -1)]
        ids, entities = zip(*sequence)
        return AlignedText(np.asarray(ids, np.int64), np.asarray(entities, np.int64))

    def pad(self, examples: Sequence[AlignedText]) -> dict[str, np.ndarray]:
        """Return padded ``input_ids``, ``attention_mask`` and ``entity_ids`` (NumPy) for a batch."""
        batch = token_batch([e.input_ids for e in examples], self.tokenizer.pad_token_id)
        batch["entity_ids"] = pad_rows([e.entity_ids for e in examples], -1)
        return batch

    def forward(self, input_ids, attention_mask, entity_ids) -> torch.Tensor:
        """Return the last token states ``(B, L, H)``; the entity ids feed the aggregators.

        Position 0 ([CLS]) always has an entity slot holding the zero vector, as
        in the authors' code: it attends over the sentence's entities in every
        aggregator, so the [CLS] state sees them after one aggregator already.
        """
        aligned = entity_ids >= 0
        slots = aligned.clone()
        slots[:, 0] = True
        context = {"entity_mask": slots,
                   "entity_states": self.entities[entity_ids.clamp(min=0)] * aligned[..., None]}
        return self.encoder(input_ids, attention_mask, context=context)


class ErnieClassifier(nn.Module):
    """Entity typing or relation classification with ERNIE (``k_layers=0``: BERT on the same marked input).

    Texts are ``(words, mentions)`` with :class:`~kbench.text.LinkedMention` s
    whose ``chosen`` entity is aligned (the paper takes links from TAGME). The
    ``pretrained`` is the ``ernie`` state of an :class:`ErnieDEA`. The
    ``task`` marks mention 0 with ``[ENT]`` (``typing``), or mentions 0 and 1
    with ``[HD]`` and ``[TL]`` (``relation``). The head is BERT's: the [CLS]
    state through a ``tanh`` dense layer, dropout and a linear layer; the loss
    is cross-entropy (one label per example here; OpenEntity is multi-label).
    """

    def __init__(self, num_labels: int, entity_embeddings: torch.Tensor, entity_to_id: dict[str, int],
                 base_model: str = EMBEDDED, *, task: str = "typing", k_layers: int | None = None,
                 dropout: float = 0.1,
                 pretrained: dict | None = None, **options):
        super().__init__()
        if num_labels < 2:
            raise InputError(f"num_labels must be at least 2, got {num_labels}")
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}: use {', '.join(TASKS)}")
        self.task = task
        self.ernie = ErnieEncoder(entity_embeddings, entity_to_id, base_model, k_layers=k_layers, **options)
        self.description = self.ernie.description
        if pretrained is not None:   # an ErnieDEA's encoder, pre-trained with dEA (§3.4) before fine-tuning
            # the layers transfer; the entity table stays this task's KG's (pre-training may have used another)
            weights = {name: value for name, value in pretrained.items() if name != "entities"}
            try:
                missing, unexpected = self.ernie.load_state_dict(weights, strict=False)
            except RuntimeError as error:
                raise InputError(f"the pre-trained weights do not fit this encoder: {error}") from None
            if unexpected or set(missing) - {"entities"}:
                raise InputError(f"the pre-trained weights do not fit this encoder: missing {missing}, "
                                 f"unexpected {unexpected}")
            self.description += ", pre-trained with dEA"
        hidden = self.ernie.hidden_size
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, num_labels)
        init_bert_weights(self.dense, self.output)

    def dataset(self, texts: Sequence[tuple[Sequence[str], Sequence]], labels: Sequence[int] | None = None
                ) -> Examples:
        marks = TASKS[self.task]

        def build(index: int, text: tuple) -> AlignedText:
            words, mentions = text
            if len(mentions) < len(marks):
                raise InputError(f"the {self.task} task needs {len(marks)} mention(s) per text, text {index} has "
                                 f"{len(mentions)}")
            return self.ernie.align(words, mentions, marks)

        return labelled_examples(texts, labels, build)

    def collate(self, examples: Sequence[AlignedText]) -> dict[str, torch.Tensor]:
        out = {name: torch.from_numpy(value) for name, value in self.ernie.pad(examples).items()}
        if examples[0].label is not None:
            out["labels"] = torch.tensor([int(e.label) for e in examples])
        return out

    def forward(self, input_ids, attention_mask, entity_ids, labels=None):
        states = self.ernie(input_ids, attention_mask, entity_ids)
        logits = self.output(self.dropout(torch.tanh(self.dense(states[:, 0]))))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class ErnieDEA(nn.Module):
    """ERNIE pre-training with the denoising entity auto-encoder (§3.4) alone.

    The paper pre-trains with MLM + NSP + dEA; the embedded encoder ships no MLM
    head, so this trains the knowledge objective only. Examples are
    :class:`AlignedText` (see :func:`aligned_examples`); ``collate`` adds the
    noise while the model is training (none in ``eval()``) and builds the
    batch's candidate entities and each token's target among them.
    """

    def __init__(self, entity_embeddings: torch.Tensor, entity_to_id: dict[str, int], base_model: str = EMBEDDED,
                 *, replace: float = REPLACE, remove: float = REMOVE, seed: int = 0, **options):
        super().__init__()
        self.ernie = ErnieEncoder(entity_embeddings, entity_to_id, base_model, seed=seed, **options)
        if self.ernie.k_layers == 0:
            raise InputError("dEA needs at least one aggregator (k_layers >= 1)")
        self.head = EntityPredictionHead(self.ernie.hidden_size, entity_embeddings.shape[1])
        init_bert_weights(self.head)
        self.replace, self.remove = replace, remove
        self.rng = np.random.default_rng(seed)
        self.description = self.ernie.description

    def aligned_examples(self, sequences: Sequence[tuple[Sequence[int], Sequence[str | None]]]) -> Examples:
        """Return examples of word-piece ids with the entity on each (None: none), cut at ``max_length``."""
        examples = []
        cap = self.ernie.max_length - 2
        for ids, entities in sequences:
            if len(ids) != len(entities):
                raise InputError(f"{len(ids)} word pieces but {len(entities)} entity slots")
            tokens = [self.ernie.tokenizer.cls_token_id, *list(ids)[:cap], self.ernie.tokenizer.sep_token_id]
            aligned = [-1, *(-1 if e is None else self.ernie.entity_id(e) for e in list(entities)[:cap]), -1]
            examples.append(AlignedText(np.asarray(tokens, np.int64), np.asarray(aligned, np.int64)))
        return Examples(examples)

    def collate(self, examples: Sequence[AlignedText], noise: bool | None = None) -> dict[str, torch.Tensor]:
        """Return the batch with dEA's noise (when training, or ``noise=True``), candidates and targets."""
        batch = self.ernie.pad(examples)
        gold = batch["entity_ids"]
        candidates, targets = np.unique(gold[gold >= 0], return_inverse=True)
        labels = np.full(gold.shape, -100, np.int64)
        labels[gold >= 0] = targets
        if self.training if noise is None else noise:   # replacements drawn from the batch's entities
            batch["entity_ids"] = dea_noise(gold, self.rng, candidates, self.replace, self.remove)
        batch["candidates"], batch["labels"] = candidates.astype(np.int64), labels
        return {name: torch.from_numpy(value) for name, value in batch.items()}

    def forward(self, input_ids, attention_mask, entity_ids, candidates, labels=None):
        states = self.ernie(input_ids, attention_mask, entity_ids)
        scores = self.head(states, self.ernie.entities[candidates])
        out = {"logits": scores}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(scores.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out


@torch.no_grad()
def dea_accuracy(model: ErnieDEA, data: Examples, remove: bool, batch_size: int = 32) -> tuple[float, float]:
    """Return (accuracy, chance) of predicting each aligned token's entity among the batch's entities.

    ``remove=True`` removes every alignment first, so the entity must come from
    the text alone; ``False`` keeps them all. Chance is 1/(entities in the batch), averaged.
    """
    model.eval()
    device = next(model.parameters()).device
    hits = total = 0
    chance = 0.0
    for start in range(0, len(data), batch_size):
        batch = model.collate([data[i] for i in range(start, min(len(data), start + batch_size))], noise=False)
        if remove:
            batch["entity_ids"] = torch.full_like(batch["entity_ids"], -1)
        labels = batch.pop("labels")
        scores = model(**{k: v.to(device) for k, v in batch.items()})["logits"].cpu()
        known = labels >= 0
        hits += int((scores.argmax(-1)[known] == labels[known]).sum())
        total += int(known.sum())
        chance += int(known.sum()) / max(1, len(batch["candidates"]))
    if not total:
        raise InputError("no aligned token to score")
    return hits / total, chance / total
