"""DeBERTa's two mechanisms, from a random init: disentangled attention and the enhanced mask decoder.

Pengcheng He, Xiaodong Liu, Jianfeng Gao, Weizhu Chen. *DeBERTa: Decoding-enhanced BERT with Disentangled
Attention.* ICLR 2021 (arXiv 2006.03654); code: microsoft/DeBERTa.

**Disentangled attention** (§3.1, eq. 2-4). Each token is two vectors, its content ``H`` and its position relative
to every other token, embedded by one table ``P`` of ``2k`` relative distances shared by all layers. With
``δ(i, j) = clamp(i − j, −k, k − 1) + k`` the attention logit is

    Ã_ij = Q^c_i · K^c_j  +  Q^c_i · K^r_δ(i,j)  +  K^c_j · Q^r_δ(j,i)          (content-to-content, c2p, p2c)

scaled by ``1/√(3d)`` (eq. 4: three terms), where ``K^r = P W_k,r`` and ``Q^r = P W_q,r``. transformers'
``DebertaModel`` (v1) builds all of it from a config (``relative_attention``, ``pos_att_type``,
``position_biased_input=False``) — except one index: its p2c term, like the authors' v1 code
(``disentangled_attention.py``: ``p2c_pos = clamp(-r_pos + att_span)`` then a transpose), reads
``Q^r_δ(i,j)``, the distance from the query to the key, where eq. 4 and the text below it ("we use δ(j, i) rather
than δ(i, j) ... the relative distance from j to i") read ``Q^r_δ(j,i)``. :class:`PaperDisentangledAttention`
keeps transformers' code and takes eq. 4's index (one sign); ``tests/test_models_deberta.py`` checks both terms
against an O(n²) loop over eq. 4.

**Enhanced mask decoder** (§3.2, Figure 2; the authors' ``EnhancedMaskDecoder`` in
``apps/models/masked_language_model.py``). Absolute positions enter only at decoding: the last layer is applied
twice more with shared weights, keys and values the second-to-last layer's states ``H^{L−1}``, the first query
``I = z + H^{L−1}`` with ``z`` an absolute position embedding, the second query the first's output; the MLM head
reads the second output. transformers does not run it (``z_steps`` is fixed at 0, and its query path calls
``.t()`` on a batch), so :func:`attend_with_query` writes the layer's forward with a separate query.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import DebertaConfig, DebertaModel
from transformers.models.deberta.modeling_deberta import DisentangledSelfAttention, build_relative_position

from kbench.encoders import SIZES as ENCODER_SIZES
from kbench.encoders import init_bert_weights
from kbench.errors import InputError, UnknownNameError
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import IGNORE
from kbench.train import torch_threads  # noqa: F401  (the profile's thread count, used below)

CITATION = {
    "title": "DeBERTa: Decoding-enhanced BERT with Disentangled Attention",
    "authors": "Pengcheng He, Xiaodong Liu, Jianfeng Gao, Weizhu Chen",
    "venue": "ICLR", "year": 2021, "url": "https://arxiv.org/abs/2006.03654",
    "code": "https://github.com/microsoft/DeBERTa",
}
NOTEBOOK = "16_deberta"
PLACE = Place("DeBERTa", "attention", ("linguistic",),
              "word order as relative positions inside attention (c2p, p2c); absolute positions only at decoding",
              survey="linguistic", in_survey=False)
HEADLINE = Headline(
    "held-out masked-word accuracy", "deberta_mlm_accuracy", "bert_mlm_accuracy",
    "nothing beyond the text: a relative-position table and two projections per layer, an absolute one at decoding",
    # the answer prior (the most frequent training piece at every mask) and the shared init, untrained
    trivial=("prior_mlm_accuracy", "untrained_mlm_accuracy"),
    positive=PositiveControl(
        "the same held-out sentences moved 10-20 filler tokens right, where pretraining moved them 0-3: attention "
        "that reads relative positions sees the same sentence, absolute position embeddings see new positions",
        left="deberta_shifted_mlm_accuracy", right="bert_shifted_mlm_accuracy", min_difference=0.1))


#: The encoders' sizes and ``micro`` (2 layers, 64 wide), small enough for five pretrainings in a smoke run.
SIZES = {**ENCODER_SIZES, "micro": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                                        intermediate_size=256)}


@dataclass(frozen=True)
class Variant:
    """One row of the paper's ablation (Table 4 of arXiv v6): which position signals the model has."""

    label: str
    relative: tuple[str, ...]        # the disentangled terms beside content-to-content: c2p, p2c
    absolute_input: bool             # BERT: absolute positions added to the input embeddings
    emd: bool                        # absolute positions only at decoding, the last layer applied twice


VARIANTS: dict[str, Variant] = {
    "bert": Variant("BERT (absolute positions at the input)", (), True, False),
    "deberta": Variant("DeBERTa (c2p + p2c + EMD)", ("c2p", "p2c"), False, True),
    "no_emd": Variant("DeBERTa − EMD", ("c2p", "p2c"), False, False),
    "no_c2p": Variant("DeBERTa − c2p", ("p2c",), False, True),
    "no_p2c": Variant("DeBERTa − p2c", ("c2p",), False, True),
}


def delta(i: int, j: int, k: int) -> int:
    """Eq. 3's bucket of the relative distance ``i − j``: clamped to ``[−k, k − 1]``, shifted by ``k``."""
    return min(max(i - j, -k), k - 1) + k


class PaperDisentangledAttention(DisentangledSelfAttention):
    """transformers' disentangled self-attention with eq. 4's p2c index ``δ(j, i)`` (see the module docstring).

    The relative scores are picked from the ``[.., n, 2k]`` products by a one-hot ``[n, n, 2k]`` product rather
    than a gather: the same numbers (tested against eq. 4's loop), and a backward pass that stays fast where
    ``seed_everything`` asks torch for deterministic kernels (a gather's backward is a slow scatter there)."""

    def disentangled_att_bias(self, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
        if query_layer.size(-2) != key_layer.size(-2):
            raise InputError("the disentangled bias here needs queries and keys of one length (self-attention)")
        if relative_pos is None:
            relative_pos = build_relative_position(query_layer, key_layer)
        while relative_pos.dim() < 4:
            relative_pos = relative_pos.unsqueeze(0)
        span = min(max(query_layer.size(-2), key_layer.size(-2)), self.max_relative_positions)
        table = rel_embeddings[self.max_relative_positions - span:self.max_relative_positions + span].unsqueeze(0)
        relative_pos = relative_pos.long()
        score = 0
        if "c2p" in self.pos_att_type:           # Q^c_i · K^r_δ(i,j)
            pos_key = self.transpose_for_scores(self.pos_proj(table))
            c2p = torch.matmul(query_layer, pos_key.transpose(-1, -2))
            score = score + torch.einsum("bhir,ijr->bhij", c2p, _one_hot_of(relative_pos, span, c2p.dtype))
        if "p2c" in self.pos_att_type:           # K^c_j · Q^r_δ(j,i): row j, column δ(j, i), then transposed
            pos_query = self.transpose_for_scores(self.pos_q_proj(table))
            pos_query = pos_query / math.sqrt(pos_query.size(-1) * scale_factor)
            p2c = torch.matmul(key_layer, pos_query.transpose(-1, -2))
            # relative_pos[j, i] = j - i: row j of the one-hot picks δ(j, i); written out as [i, j]
            score = score + torch.einsum("bhjr,jir->bhij", p2c, _one_hot_of(relative_pos, span, p2c.dtype))
        return score


def _one_hot_of(relative_pos: torch.Tensor, span: int, dtype) -> torch.Tensor:
    """``[n, n, 2·span]``: position ``(i, j)`` one-hot at ``clamp(relative_pos[i, j] + span)`` (eq. 3's δ)."""
    index = torch.clamp(relative_pos.reshape(relative_pos.shape[-2:]) + span, 0, 2 * span - 1)
    return nn.functional.one_hot(index, 2 * span).to(dtype)


@torch.no_grad()
def attention_terms(model: "DebertaMLM", input_ids: torch.Tensor, layer: int = 0, head: int = 0) -> dict:
    """One head's terms of eq. 4 for one sequence (``input_ids`` of shape ``[1, n]``), each ``[n, n]`` and divided
    by ``√(3d)`` as the layer adds them: ``c2c``, and ``c2p`` / ``p2c`` where the variant has them. Their sum is the
    head's attention logits before the mask and softmax (tested)."""
    if input_ids.dim() != 2 or input_ids.size(0) != 1:
        raise InputError(f"attention_terms reads one sequence, shape [1, n]; got {tuple(input_ids.shape)}")
    encoder = model.deberta.encoder
    if not 0 <= layer < len(encoder.layer) or not 0 <= head < model.config.num_attention_heads:
        raise InputError(f"no layer {layer} / head {head} in a {len(encoder.layer)}-layer, "
                         f"{model.config.num_attention_heads}-head model")
    was_training = model.training
    model.eval()
    hidden = model.deberta(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                           output_hidden_states=True).hidden_states[layer]
    attention = encoder.layer[layer].attention.self
    factor = 1 + len(attention.pos_att_type)
    q, k, _ = attention.transpose_for_scores(attention.in_proj(hidden)).chunk(3, dim=-1)
    q = (q + attention.transpose_for_scores(attention.q_bias[None, None, :])) / math.sqrt(q.size(-1) * factor)
    terms = {"c2c": torch.matmul(q, k.transpose(-1, -2))[0, head]}
    if attention.relative_attention:
        relative, table = encoder.get_rel_pos(hidden), encoder.get_rel_embedding()
        every = attention.pos_att_type
        try:
            for term in every:
                attention.pos_att_type = [term]
                terms[term] = attention.disentangled_att_bias(q, k, relative, table, factor)[0, head]
        finally:
            attention.pos_att_type = every
    model.train(was_training)
    return {name: value.float().cpu().numpy() for name, value in terms.items()}


def attend_with_query(layer, keys: torch.Tensor, query: torch.Tensor, mask: torch.Tensor,
                      relative_pos: torch.Tensor | None, rel_embeddings: torch.Tensor | None) -> torch.Tensor:
    """One DeBERTa layer whose queries come from ``query`` and keys and values from ``keys`` (the EMD's step);
    with ``query`` = ``keys`` it is the layer's own forward (tested)."""
    attention = layer.attention.self
    q = attention.transpose_for_scores(attention.in_proj(query)).chunk(3, dim=-1)[0]
    _, k, v = attention.transpose_for_scores(attention.in_proj(keys)).chunk(3, dim=-1)
    q = q + attention.transpose_for_scores(attention.q_bias[None, None, :])
    v = v + attention.transpose_for_scores(attention.v_bias[None, None, :])
    factor = 1 + len(attention.pos_att_type)
    q = q / math.sqrt(q.size(-1) * factor)
    scores = torch.matmul(q, k.transpose(-1, -2))
    if attention.relative_attention and rel_embeddings is not None:
        scores = scores + attention.disentangled_att_bias(q, k, relative_pos, attention.pos_dropout(rel_embeddings),
                                                          factor)
    scores = scores.masked_fill(~mask.bool(), torch.finfo(scores.dtype).min)
    context = torch.matmul(attention.dropout(scores.softmax(-1)), v).permute(0, 2, 1, 3).flatten(2)
    attended = layer.attention.output(context, query)
    return layer.output(layer.intermediate(attended), attended)


def deberta_config(variant: str, vocab_size: int, size: str = "tiny", max_positions: int = 128, k: int = 32,
                   pad_id: int = 0, dropout: float = 0.1) -> DebertaConfig:
    """The transformers config of ``variant`` at ``size`` (``kbench.encoders.SIZES``); ``k`` is eq. 3's maximum
    relative distance (the paper's 512-token models use k = 512; a table of ``2k`` rows)."""
    if variant not in VARIANTS:
        raise UnknownNameError(f"unknown DeBERTa variant {variant!r}: use {', '.join(VARIANTS)}")
    if size not in SIZES:
        raise UnknownNameError(f"unknown size {size!r}: use {', '.join(SIZES)}")
    dims = SIZES[size]
    if k < 1:
        raise InputError(f"the maximum relative distance k must be at least 1, got {k}")
    chosen = VARIANTS[variant]
    return DebertaConfig(vocab_size=vocab_size, **dims, max_position_embeddings=max_positions,
                         relative_attention=bool(chosen.relative), pos_att_type=list(chosen.relative),
                         max_relative_positions=k, position_biased_input=chosen.absolute_input,
                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, type_vocab_size=0,
                         pad_token_id=pad_id, hidden_act="gelu")


class DebertaMLM(nn.Module):
    """A DeBERTa (or, as the ``bert`` variant, an absolute-position BERT) with a tied MLM head, trained by
    :func:`kbench.pretrain.pretrain` like any :class:`~kbench.pretrain.MaskedLM` (``tokenizer``, ``collate``)."""

    def __init__(self, variant: str, tokenizer, collate, size: str = "tiny", max_positions: int = 128, k: int = 32):
        super().__init__()
        self.variant, self.size, self.tokenizer, self.collate = variant, size, tokenizer, collate
        self.config = deberta_config(variant, len(tokenizer), size, max_positions, k, tokenizer.pad_token_id)
        self.description = f"{VARIANTS[variant].label}, {size}, k={k}"
        self.deberta = DebertaModel(self.config)
        for layer in self.deberta.encoder.layer:
            layer.attention.self.__class__ = PaperDisentangledAttention
        hidden = self.config.hidden_size
        self.z = nn.Embedding(max_positions, hidden) if VARIANTS[variant].emd else None   # EMD's absolute positions
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=1e-7))
        self.bias = nn.Parameter(torch.zeros(self.config.vocab_size))
        init_bert_weights(self.transform, *([self.z] if self.z is not None else []))   # N(0, 0.02), zero bias

    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The states the MLM head reads: the last layer's, or with the EMD its second pass over ``H^{L−1}``."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.deberta(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        if self.z is None:
            return out.last_hidden_state
        encoder = self.deberta.encoder
        keys = out.hidden_states[-2]                                  # H^{L-1}
        mask = encoder.get_attention_mask(attention_mask)
        relative = encoder.get_rel_pos(keys)
        table = encoder.get_rel_embedding()                          # one table, shared by every layer
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        query = self.z(positions)[None] + keys                        # I = z + H^{L-1}
        last = encoder.layer[-1]
        for _ in range(2):                                            # the last layer twice, weights shared
            query = attend_with_query(last, keys, query, mask, relative, table)
        return query

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """The MLM head: a transform, then the decoder tied to the input word embeddings."""
        return self.transform(states) @ self.deberta.embeddings.word_embeddings.weight.T + self.bias

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None) -> dict:
        states = self.states(input_ids, attention_mask)
        if labels is None:
            return {"logits": self.logits(states)}
        keep = labels != IGNORE
        logits = self.logits(states[keep])
        loss = nn.functional.cross_entropy(logits, labels[keep]) if keep.any() else states.sum() * 0.0
        return {"loss": loss, "logits": logits}


def one_init(models: dict[str, DebertaMLM], seed: int = 0) -> None:
    """Give every model the same initial weights wherever they share a parameter: each copies a reference model
    that has every parameter any variant has (relative table, both projections, absolute positions, ``z``)."""
    if not models:
        raise InputError("one_init needs at least one model")
    some = next(iter(models.values()))
    torch.manual_seed(seed)
    reference = DebertaMLM("deberta", some.tokenizer, None, max_positions=some.config.max_position_embeddings,
                           k=some.config.max_relative_positions, size=some.size)
    reference.deberta.embeddings.position_embeddings = nn.Embedding(some.config.max_position_embeddings,
                                                                    some.config.hidden_size)
    reference.deberta.embeddings.position_embeddings.weight.data.normal_(0.0, some.config.initializer_range)
    reference.z.weight.data.copy_(reference.deberta.embeddings.position_embeddings.weight.data)
    state = reference.state_dict()
    for name, model in models.items():
        own = model.state_dict()
        missing = [key for key in own if key not in state or state[key].shape != own[key].shape]
        if missing:
            raise InputError(f"{name}: the reference has no {missing[:3]}: build every model at one size")
        model.load_state_dict({key: state[key] for key in own})


# --- the experiments: held-out MLM, the position-shift probe, the absolute-position slot ---

FILLER = "."     # what is put before a sentence to shift it: a piece every vocabulary has, never scored


def shifted(sentences, filler_id: int, low: int, high: int, seed: int = 0) -> list:
    """Each sentence with ``low``–``high`` (inclusive, drawn per sentence) ``filler_id`` tokens after its [CLS]:
    the same words at other absolute positions. Returns ``(Sentence, offset)`` pairs (the fillers' count)."""
    from kbench.pretrain import Sentence

    if not 0 <= low <= high:
        raise InputError(f"filler counts need 0 <= low <= high, got {low} and {high}")
    rng = np.random.default_rng(seed)
    out = []
    for sentence in sentences:
        count = int(rng.integers(low, high + 1))
        ids = np.concatenate([sentence.ids[:1], np.full(count, filler_id, dtype=sentence.ids.dtype), sentence.ids[1:]])
        out.append((Sentence(sentence.text, ids, {}), count))
    return out


def evaluation_masks(sentences, rate: float = 0.15, seed: int = 0) -> list[list[int]]:
    """For each sentence, the word positions (between its [CLS] and [SEP], counted from the first word) scored at
    evaluation: ``rate`` of them, at least one. The same for every model and every shift."""
    rng = np.random.default_rng(seed)
    masks = []
    for sentence in sentences:
        words = len(sentence.ids) - 2
        if words < 1:
            raise InputError(f"{sentence.text!r} has no word between [CLS] and [SEP] to score")
        count = max(1, int(round(rate * words)))
        masks.append(sorted(rng.choice(words, size=count, replace=False).tolist()))
    return masks


@torch.no_grad()
def mlm_accuracy(model, sentences, masks: list[list[int]], filler_id: int, low: int = 0, high: int = 0,
                 seed: int = 0, batch_size: int = 64) -> float:
    """Share of the masked words (``masks``) a model predicts exactly, each sentence shifted by ``low``–``high``
    fillers; every masked word is replaced by [MASK] (no 10%/10% at evaluation)."""
    from kbench.train import eval_mode, token_batch

    if len(sentences) != len(masks):
        raise InputError(f"{len(sentences)} sentences but {len(masks)} masks")
    mask_id = model.tokenizer.mask_token_id
    right = total = 0
    moved = shifted(sentences, filler_id, low, high, seed)
    device = next(model.parameters()).device
    with eval_mode(model):
        for start in range(0, len(moved), batch_size):
            chunk = moved[start:start + batch_size]
            rows, labels = [], []
            for (sentence, offset), positions in zip(chunk, masks[start:start + batch_size]):
                ids = sentence.ids.copy()
                at = [1 + offset + p for p in positions]
                labels.append((at, ids[at].copy()))
                ids[at] = mask_id
                rows.append(ids)
            batch = token_batch(rows, model.tokenizer.pad_token_id)
            logits = model(torch.as_tensor(batch["input_ids"], device=device),
                           torch.as_tensor(batch["attention_mask"], device=device))["logits"]
            for row, (at, gold) in enumerate(labels):
                predicted = logits[row, at].argmax(-1).cpu().numpy()
                right += int((predicted == gold).sum())
                total += len(at)
    return right / total


def prior_accuracy(train_sentences, test_sentences, masks: list[list[int]]) -> float:
    """The answer prior: always the training text's most frequent word piece (specials excluded)."""
    from collections import Counter

    counts = Counter(int(i) for s in train_sentences for i in s.ids[1:-1])
    if not counts:
        raise InputError("no training word to count")
    top = counts.most_common(1)[0][0]
    hits = [int(s.ids[1 + p] == top) for s, positions in zip(test_sentences, masks) for p in positions]
    return sum(hits) / len(hits)


@dataclass
class SlotTask:
    """Sequences of noise pieces with one [MASK] whose answer is fixed by its absolute position: position ``p``
    (1 … ``length``) answers ``answers[(p − 1) * len(answers) // length]``. Beyond ``k`` tokens from both ends (``L·k``
    through ``L`` layers) every distance reads the same clamped row, so relative positions do not say where a word
    is; a relative-only model can still count the tokens on each side by averaging attention over them, and does
    in part (measured, not ruled out). Absolute positions (at the input, or the EMD's at decoding) say it
    directly."""

    noise: list[int]
    answers: list[int]
    length: int

    def examples(self, count: int, seed: int) -> list[tuple]:
        rng = np.random.default_rng(seed)
        return [(rng.choice(self.noise, size=self.length), int(rng.integers(1, self.length + 1)))
                for _ in range(count)]

    def answer(self, position: int) -> int:
        return self.answers[(position - 1) * len(self.answers) // self.length]


def slot_collate(task: SlotTask, tokenizer):
    """Batch :meth:`SlotTask.examples`: [CLS] noise [SEP] with the slot masked, its answer the only label."""
    def collate(items):
        ids = np.array([[tokenizer.cls_token_id, *noise, tokenizer.sep_token_id] for noise, _ in items])
        labels = np.full_like(ids, IGNORE)
        for row, (_, position) in enumerate(items):
            ids[row, position] = tokenizer.mask_token_id
            labels[row, position] = task.answer(position)
        return {"input_ids": torch.as_tensor(ids), "attention_mask": torch.ones(ids.shape, dtype=torch.long),
                "labels": torch.as_tensor(labels)}
    return collate


@torch.no_grad()
def slot_accuracy(model, task: SlotTask, items: list[tuple]) -> dict[str, float]:
    """Accuracy at the slot over ``items``: overall, and ``far`` from both ends — more than ``k`` times the number of
    layers, the farthest a stack of relative-only layers can count from [CLS] or [SEP]."""
    from kbench.train import eval_mode

    batch = slot_collate(task, model.tokenizer)(items)
    device = next(model.parameters()).device
    with eval_mode(model):
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))["logits"]
    keep = batch["labels"] != IGNORE
    right = (logits.cpu()[keep].argmax(-1) == batch["labels"][keep]).numpy()
    reach = model.config.max_relative_positions * model.config.num_hidden_layers
    far = [reach < position < task.length + 1 - reach for _, position in items]
    inner = [bool(r) for r, f in zip(right, far) if f]
    return {"all": float(right.mean()), "far": sum(inner) / max(1, len(inner))}


def pretrained_variants(s, names, progress: bool | None = None) -> dict[str, "DebertaMLM"]:
    """Pretrain each variant of ``names`` from one init with the same masks, batches and steps on ``s``'s text
    shifted by ``TRAIN_SHIFT`` fillers (:mod:`kbench.profiles.deberta`); return the trained models."""
    import copy

    from kbench.pretrain import Corpus, MaskingCollator, build_corpus, pretrain
    from kbench.profiles.deberta import TEST_SHIFT, TRAIN_SHIFT
    from kbench.text.masking import MaskVocab

    chosen, tokenizer = s.chosen, s.tokenizer
    train = build_corpus(s.train_texts, tokenizer, units=(), max_length=chosen["max_length"], source="pretraining")
    corpus = Corpus([x for x, _ in shifted(train.sentences, s.filler_id, *TRAIN_SHIFT, s.seed)], tokenizer,
                    train.source)
    collate = MaskingCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, "token", s.seed)
    models = {name: DebertaMLM(name, tokenizer, copy.deepcopy(collate), chosen["size"],
                               chosen["max_length"] + TEST_SHIFT[1] + 2, chosen["k"]) for name in names}
    one_init(models, s.seed)
    config = copy.copy(s.config)
    config.progress = progress
    with torch_threads(chosen["threads"]):
        for name, model in models.items():
            pretrain(model, corpus, config, description=f"pretrain {name}")
    return models


def slot_models(s, names=("bert", "deberta", "no_emd"), progress: bool | None = None):
    """Train each variant of ``names`` from one init on the slot task of ``s``'s profile (its own ``k``, longer
    sequences); return ``(task, held-out items, models)``."""
    import copy

    from kbench.profiles.deberta import SLOT_ANSWERS
    from kbench.train import Examples, fit

    chosen, tokenizer = s.chosen, s.tokenizer
    pieces = [i for i in range(len(tokenizer)) if i not in tokenizer.all_special_ids and i != s.filler_id]
    task = SlotTask(pieces[:-SLOT_ANSWERS][:200], pieces[-SLOT_ANSWERS:], chosen["slot_length"])
    train = task.examples(chosen["batch_size"] * chosen["slot_steps"], s.seed)
    held_out = task.examples(chosen["slot_test"], s.seed + 1)
    models = {name: DebertaMLM(name, tokenizer, None, chosen["size"], chosen["slot_length"] + 2, chosen["slot_k"])
              for name in names}
    one_init(models, s.seed)
    config = copy.copy(s.config)
    config.max_steps, config.progress = chosen["slot_steps"], progress
    with torch_threads(chosen["threads"]):
        for name, model in models.items():
            fit(model, Examples(train), None, config, description=f"slot {name}",
                collate=slot_collate(task, tokenizer))
    return task, held_out, models
