"""KnowBert: knowledge attention and recontextualization (KAR) between a BERT's layers.

Matthew E. Peters, Mark Neumann, Robert L. Logan IV, Roy Schwartz, Vidur Joshi,
Sameer Singh, Noah A. Smith. *Knowledge Enhanced Contextual Word
Representations.* EMNLP 2019. https://arxiv.org/abs/1909.04164
Code: https://github.com/allenai/kb (``kb/knowbert.py``, ``kb/span_attention_layer.py``).

Taught in ``notebooks/02_knowbert.ipynb``. KAR (§3, Fig. 1) sits after one
layer of a pretrained BERT (the authors: after layer 10 of 12 for WordNet):

1. project the layer's states to the entity dimension, ``H^proj = H W1 + b1`` (Eq. 1);
2. pool each candidate mention span with a self-attentive span extractor and
   LayerNorm it, then let the spans attend to each other in one transformer layer (Eq. 2);
3. score each candidate entity ``e_mk`` (KG embedding, frozen, LayerNormed):
   ``psi_mk = MLP([s_m . e_mk / sqrt(d), p(e_mk|m)])``, an MLP 2 -> 100 -> 1 with ReLU (Eq. 3, §3.2);
4. the weighted entity ``e~_m``: softmax of the scores over candidates above a
   threshold; a learned NULL embedding where none is (Eq. 4);
5. ``s'_m = LN(s_m + dropout(e~_m))`` (Eq. 5);
6. word-to-entity-span attention: one BERT layer whose queries are the
   projected tokens and whose keys and values are the spans ``s'`` (Eq. 6-7);
7. back to BERT's dimension with a residual, ``H' = LN(H + dropout(H'^proj W2 + b2))`` (Eq. 8).

**Initialisation.** The authors initialise every new layer as BERT does
(``init_bert_weights``: N(0, 0.02), zero bias, LayerNorm 1/0), and then train the
linker alone for a long time. At this workbench's scale (240 sentences, 12
epochs) that init did not train: with it on every KAR layer the loss stayed at
``ln 8 + ln 4`` (uniform links, uniform labels) and the linker at the prior
(measured, smoke profile, seed 0: linker 0.09-0.13 after 3 epochs, whether or not
``W1`` and the score MLP's first layer were left out of it), because every path
from the KG vectors to the loss runs through two or more N(0, 0.02) layers in a
row. So KAR's layers keep PyTorch's default, except the score MLP's output layer,
which is BERT's: the untrained linker's scores are then near 0 and it spreads each
mention's weight evenly over the candidates (tested), which is what the authors'
init gives the linker. ``W2`` starts as the pseudo-inverse of ``W1`` (the authors'
``_init_kg_to_bert_projection``), so that ``W2 (W1 h + b1) + b2 = P h``,
``P = W1^+ W1`` the projection onto ``W1``'s row space (``h`` itself when the entity
dimension is at least the hidden one). Two differences from their code, both
stated: we take the Moore-Penrose inverse (``pinv``), where they compute
``(W^T W)^-1 W^T``, which exists only when the entity dimension is at least the
hidden one (their 200 < 768 makes ``W^T W`` singular); and ``b2 = -W1^+ b1``, the
bias that makes the identity above hold, where they set ``b2 = +W1^+ b1``. The
two agree only when ``b1 = 0`` (as at BERT's init).

**Not a pass-through at the start.** ``W2`` inverts ``W1`` only on a path that
does not exist: between them lie the span attention layer's attention,
feed-forward and two LayerNorms, so ``H'`` is not ``H`` at initialisation. Measured
untrained (hidden 384, entity dimension 64 / 128 / 512):
``|H' - H| / |H|`` is 0.50 / 0.53 / 0.46 and the mean cosine 0.88 / 0.86 / 0.89
(0.59 / 0.58 / 0.49 with BERT's init on every layer); the test pins the
64-dimension value between 0.3 and 0.8. The authors' KAR starts
the same way (their structure is the same); it is their linker pretraining and
the joint MLM training that let BERT's later layers adapt.

**Training schedule.** The paper (§3.4, §4.1) trains in stages: the KG entity
embeddings first (frozen thereafter); then the entity linker alone, with BERT
frozen, on gold links (SemCor for WordNet, AIDA-CoNLL for Wikipedia); then all of
KnowBert jointly with BERT's MLM + NSP and the linker's loss on unlabelled text;
the downstream task is a separate fine-tuning of the result, with no linker
supervision. Here the linker's NLL of the gold candidate (the WordNet setting's
loss) is added to the downstream task's loss, weighted ``linker_weight``, on the
task's own training sentences; ``linker_weight=0`` (variant ``knowbert_no_link``)
trains KAR from the task alone, which separates the knowledge the KG vectors
bring from the extra supervision the gold links bring.
KAR is a fusion module for :class:`kbench.encoders.HookedEncoder`: ``module(states, context)``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertIntermediate, BertLayer, BertOutput, BertSelfOutput

from kbench.encoders import EMBEDDED, HookedEncoder, entity_space_config, init_bert_weights, load_encoder
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.embeddings import frozen_entity_table
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.train import Examples, labelled_examples, token_batch

CITATION = {
    "title": "Knowledge Enhanced Contextual Word Representations",
    "authors": "Matthew E. Peters, Mark Neumann, Robert L. Logan IV, Roy Schwartz, Vidur Joshi, Sameer Singh, "
               "Noah A. Smith",
    "venue": "EMNLP", "year": 2019, "url": "https://arxiv.org/abs/1909.04164",
    "code": "https://github.com/allenai/kb",
}
NOTEBOOK = "02_knowbert"
PLACE = Place('KnowBert', 'fused entity vectors', ('KG',),
              'a knowledge attention and recontextualization layer links mentions to KG entity embeddings and adds '
              'them back into the word states',
              survey='factual', also=('linguistic',))
HEADLINE = Headline('entity typing, accuracy', 'knowbert_test_accuracy', 'bert_test_accuracy',
                    "mention candidates (a linker's candidate generator) and the KG's entity vectors at run time",
                    trivial=('majority_test_accuracy',),
                    positive=PositiveControl(
                        "the gold entity is each mention's only candidate, so the linker cannot miss and the "
                        "entity vector that holds the person's origin certainly reaches KAR",
                        'knowbert_gold_only_test_accuracy', 'bert_test_accuracy', 0.2))
MASKED = -10000.0   # the authors' score for an invalid candidate

#: BERT without knowledge; KnowBert with KAR after the chosen layer and the linker's gold-link loss; and
#: KnowBert with the same KAR but no link supervision (``linker_weight=0``): knowledge without extra labels.
VARIANTS = (Variant("bert", "BERT", {"kar_layer": None}), Variant("knowbert", "KnowBert", {}),
            Variant("knowbert_no_link", "KnowBert, no link labels", {"linker_weight": 0.0}))


#: The positive control's variant: KnowBert as ``knowbert``, run on splits whose mentions carry only their gold
#: entity (:meth:`kbench.profiles.knowbert.KnowBertSetup.gold_only`).
GOLD_ONLY = Variant("knowbert_gold_only", "KnowBert, gold entity only", {})


class WordToSpanAttention(nn.Module):
    """One BERT layer whose keys and values are entity spans (the authors' ``SpanAttentionLayer``)."""

    def __init__(self, config):
        super().__init__()
        self.heads, self.size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.attention_output = BertSelfOutput(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, tokens: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor):
        """Return the tokens re-contextualised by the spans ``(B, L, E)`` and the attention ``(B, heads, L, S)``."""
        batch, length, _ = tokens.shape

        def heads(x):
            return x.view(batch, x.shape[1], self.heads, self.size).transpose(1, 2)

        scores = heads(self.query(tokens)) @ heads(self.key(spans)).transpose(-1, -2) / math.sqrt(self.size)
        scores = scores.masked_fill(~span_mask[:, None, None, :], MASKED)
        probabilities = torch.softmax(scores, dim=-1) * span_mask[:, None, None, :]   # no span: no context
        context = (self.dropout(probabilities) @ heads(self.value(spans))).transpose(1, 2).reshape(batch, length, -1)
        attended = self.attention_output(context, tokens)
        return self.output(self.intermediate(attended), attended), probabilities


def linker_probabilities(scores: torch.Tensor, candidate_mask: torch.Tensor,
                         threshold: float | None = None) -> torch.Tensor:
    """Return ``(..., C + 1)``: the softmax over candidates above ``threshold``, and NULL last.

    A span whose candidates are all below the threshold (or that has none)
    gives all its mass to NULL, so each row sums to 1 (Eq. 4).
    """
    keep = candidate_mask if threshold is None else candidate_mask & (scores >= threshold)
    masked = scores.masked_fill(~keep, MASKED)
    none = ~keep.any(-1, keepdim=True)
    probabilities = torch.softmax(masked, dim=-1) * keep
    return torch.cat([probabilities, none.to(probabilities.dtype)], dim=-1)


class KnowledgeAttentionRecontextualization(nn.Module):
    """KAR (Eq. 1-8): link spans to entities, pool them, and let every token attend to them."""

    def __init__(self, hidden_size: int, entity_embeddings: torch.Tensor, heads: int = 4, dropout: float = 0.1,
                 threshold: float | None = None, score_hidden: int = 100):
        super().__init__()
        self.register_buffer("entities", frozen_entity_table(entity_embeddings))   # frozen (§4.1)
        entity_dim = entity_embeddings.shape[1]
        config = entity_space_config(entity_dim, heads)
        self.project = nn.Linear(hidden_size, entity_dim)                               # W1, Eq. 1
        self.span_attention = nn.Linear(entity_dim, 1)                                  # span extractor
        self.span_norm = nn.LayerNorm(entity_dim, eps=1e-5)
        self.span_encoder = BertLayer(config)                                           # Eq. 2
        self.kg_norm = nn.LayerNorm(entity_dim, eps=1e-5)
        self.score = nn.Sequential(nn.Linear(2, score_hidden), nn.ReLU(), nn.Linear(score_hidden, 1))   # Eq. 3
        self.null = nn.Parameter(torch.zeros(entity_dim).normal_(std=0.02))              # NULL entity
        self.weighted_norm = nn.LayerNorm(entity_dim, eps=1e-5)
        self.word_to_span = WordToSpanAttention(config)                                 # Eq. 6-7
        self.back = nn.Linear(entity_dim, hidden_size)                                  # W2, Eq. 8
        self.output_norm = nn.LayerNorm(hidden_size, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.threshold = threshold
        init_bert_weights(self.score[2])      # the scores start near 0: near-uniform links (see the module doc)
        self.initialise_back_projection()

    @torch.no_grad()
    def initialise_back_projection(self) -> None:
        """Set ``W2 = W1^+`` and ``b2 = -W1^+ b1``, so ``W2 (W1 h + b1) + b2`` is ``h`` projected on ``W1``'s rows.

        The authors set ``b2 = +W1^+ b1`` (``_init_kg_to_bert_projection``), which
        does not invert the affine map; the two agree when ``b1 = 0``, as at BERT's init.
        """
        inverse = torch.linalg.pinv(self.project.weight)           # (hidden, entity)
        self.back.weight.copy_(inverse)
        self.back.bias.copy_(-inverse @ self.project.bias)

    def pool_spans(self, projected: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """Return each span's self-attentive pooling of the projected tokens ``(B, S, E)`` (0 for padding)."""
        positions = torch.arange(projected.shape[1], device=projected.device)
        inside = (positions[None, None, :] >= spans[..., :1]) & (positions[None, None, :] < spans[..., 1:])
        logits = self.span_attention(projected).squeeze(-1)[:, None, :].masked_fill(~inside, MASKED)
        weights = torch.softmax(logits, dim=-1) * inside
        return weights @ projected

    def forward(self, states: torch.Tensor, context: dict) -> torch.Tensor:
        """Return the re-contextualised states; leave ``linking_scores`` (and ``linker_loss``) in ``context``."""
        spans, candidates, priors = context["spans"], context["candidates"], context["priors"]
        span_mask = spans[..., 0] >= 0
        candidate_mask = (candidates >= 0) & span_mask[..., None]
        projected = self.project(states)
        pooled = self.span_norm(self.pool_spans(projected, spans))
        among = (span_mask[:, None, :] & span_mask[:, :, None]) | torch.eye(spans.shape[1], dtype=torch.bool,
                                                                             device=spans.device)
        pooled = self.span_encoder(pooled, among[:, None])
        entity_vectors = self.kg_norm(self.entities[candidates.clamp(min=0)])
        raw = (pooled[:, :, None, :] * entity_vectors).sum(-1) / math.sqrt(entity_vectors.shape[-1])
        scores = self.score(torch.stack([raw, priors.to(raw.dtype)], dim=-1)).squeeze(-1)
        scores = scores.masked_fill(~candidate_mask, MASKED)
        probabilities = linker_probabilities(scores, candidate_mask, self.threshold)
        weighted = (probabilities[..., :-1, None] * entity_vectors).sum(-2) + probabilities[..., -1:] * self.null
        recontextualised = self.weighted_norm(pooled + self.dropout(weighted))
        attended, attention = self.word_to_span(projected, recontextualised, span_mask)
        context["linking_scores"], context["linker_probabilities"] = scores, probabilities
        context["word_to_span_attention"] = attention
        gold = context.get("gold")
        if gold is not None and (gold >= 0).any():
            context["linker_loss"] = nn.functional.cross_entropy(scores[gold >= 0], gold[gold >= 0])
        return self.output_norm(states + self.dropout(self.back(attended)))


@dataclass
class LinkedText:
    """One example: token ids, mention spans over them, candidate entity ids with priors, gold candidates."""

    input_ids: np.ndarray     # (L,)
    spans: np.ndarray         # (S, 2) token [start, end)
    candidates: np.ndarray    # (S, C) entity ids, -1 padding
    priors: np.ndarray        # (S, C)
    gold: np.ndarray          # (S,) index of the gold candidate, -100 when unknown or absent
    label: int | None = None


class KnowBertClassifier(nn.Module):
    """Sentence classification with KnowBert: KAR after layer ``kar_layer`` of a BERT (None: plain BERT).

    Texts are ``(words, mentions)``: words and :class:`~kbench.text.LinkedMention`
    s over them (candidates with priors; ``chosen`` is the gold entity, used by
    the linker loss). ``entity_to_id`` maps entity names to rows of
    ``entity_embeddings``. The head is BERT's: the [CLS] state through a
    ``tanh`` dense layer, dropout and a linear layer. The loss is the task's
    cross-entropy plus ``linker_weight`` times the linker's NLL.
    """

    def __init__(self, num_labels: int, entity_embeddings: torch.Tensor, entity_to_id: dict[str, int],
                 base_model: str = EMBEDDED, *, kar_layer: int | None = -1, layers: int | None = None,
                 freeze_word_embeddings: bool = False, max_length: int = 128, heads: int = 4,
                 threshold: float | None = None, linker_weight: float = 1.0, dropout: float = 0.1,
                 vocab: str | None = None, seed: int = 0):
        super().__init__()
        if num_labels < 2:
            raise InputError(f"num_labels must be at least 2, got {num_labels}")
        torch.manual_seed(seed)
        encoder = load_encoder(base_model, vocab=vocab, seed=seed, layers=layers,
                               freeze_word_embeddings=freeze_word_embeddings)
        self.tokenizer, self.description = encoder.tokenizer, encoder.description
        depth = encoder.model.config.num_hidden_layers
        hidden = encoder.model.config.hidden_size
        fuse = {}
        if kar_layer is not None:
            index = kar_layer if kar_layer >= 0 else depth + kar_layer
            if not 0 <= index < depth:
                raise InputError(f"kar_layer {kar_layer} is not a layer of a {depth}-layer encoder")
            fuse[index] = KnowledgeAttentionRecontextualization(hidden, entity_embeddings, heads, dropout, threshold)
            self.description += f"; KAR after layer {index + 1} of {depth}"
        self.encoder = HookedEncoder(encoder.model, fuse)
        self.entity_to_id = dict(entity_to_id)
        self.max_length = max_length
        self.linker_weight = linker_weight
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, num_labels)
        init_bert_weights(self.dense, self.output)      # new layers only; KAR initialises its own

    @property
    def kar(self) -> KnowledgeAttentionRecontextualization | None:
        return next(iter(self.encoder.fuse.values()), None)

    def example(self, words: Sequence[str], mentions: Sequence) -> LinkedText:
        """Return one compact example: word pieces with [CLS]/[SEP], spans moved onto the pieces."""
        words = list(words)
        if not words:
            raise InputError("a sentence needs at least one word")
        encoding = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_length)
        word_ids = encoding.word_ids()
        first = {w: i for i, w in reversed(list(enumerate(word_ids))) if w is not None}
        last = {w: i for i, w in enumerate(word_ids) if w is not None}
        rows = []
        for mention in mentions:
            mention.check(len(words))
            if not mention.candidates:
                raise InputError(f"mention {mention.text!r} has an empty candidate list")
            if mention.start not in first or mention.end - 1 not in last:
                continue   # cut off by max_length
            ids = []
            for candidate in mention.candidates:
                if candidate.entity not in self.entity_to_id:
                    raise InputError(f"candidate entity {candidate.entity!r} of {mention.text!r} is not in the "
                                     "embedding table")
                ids.append(self.entity_to_id[candidate.entity])
            gold = mention.entities.index(mention.chosen) if mention.chosen in mention.entities else -100
            rows.append(((first[mention.start], last[mention.end - 1] + 1), ids, mention.priors, gold))
        width = max((len(r[1]) for r in rows), default=1)
        candidates = np.full((len(rows), width), -1, np.int64)
        priors = np.zeros((len(rows), width), np.float32)
        for row, (_, ids, prior, _) in enumerate(rows):
            candidates[row, :len(ids)], priors[row, :len(prior)] = ids, prior
        return LinkedText(np.asarray(encoding["input_ids"], np.int64),
                          np.asarray([r[0] for r in rows], np.int64).reshape(-1, 2), candidates, priors,
                          np.asarray([r[3] for r in rows], np.int64))

    def dataset(self, texts: Sequence[tuple[Sequence[str], Sequence]], labels: Sequence[int] | None = None
                ) -> Examples:
        """Return the examples of ``(words, mentions)`` texts with their labels."""
        return labelled_examples(texts, labels, lambda _, text: self.example(*text))

    def collate(self, examples: Sequence[LinkedText]) -> dict[str, torch.Tensor]:
        """Return a batch padded to its longest sentence, its most mentions and its most candidates."""
        batch = token_batch([e.input_ids for e in examples], self.tokenizer.pad_token_id)
        count = len(examples)
        spans = max(1, max(len(e.spans) for e in examples))
        width = max(1, max(e.candidates.shape[1] if len(e.spans) else 1 for e in examples))
        batch |= {"spans": np.full((count, spans, 2), -1, np.int64),
                 "candidates": np.full((count, spans, width), -1, np.int64),
                 "priors": np.zeros((count, spans, width), np.float32),
                 "gold": np.full((count, spans), -100, np.int64)}
        for row, e in enumerate(examples):
            if len(e.spans):
                s, c = e.candidates.shape
                batch["spans"][row, :s] = e.spans
                batch["candidates"][row, :s, :c] = e.candidates
                batch["priors"][row, :s, :c] = e.priors
                batch["gold"][row, :s] = e.gold
        out = {name: torch.from_numpy(value) for name, value in batch.items()}
        if examples[0].label is not None:
            out["labels"] = torch.tensor([int(e.label) for e in examples])
        return out

    def forward(self, input_ids, attention_mask, spans, candidates, priors, gold=None, labels=None):
        """Return ``logits``, the ``linking_scores`` (when KAR runs), and ``loss`` given ``labels``."""
        context = {"spans": spans, "candidates": candidates, "priors": priors, "gold": gold}
        states = self.encoder(input_ids, attention_mask, context=context)
        logits = self.output(self.dropout(torch.tanh(self.dense(states[:, 0]))))
        out = {"logits": logits}
        if "linking_scores" in context:
            out["linking_scores"] = context["linking_scores"]
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels)
            if "linker_loss" in context:
                loss = loss + self.linker_weight * context["linker_loss"]
            out["loss"] = loss
        return out


@torch.no_grad()
def linker_accuracy(model: KnowBertClassifier, data: Examples, batch_size: int = 64) -> float:
    """Return how often the linker's best candidate is the gold one, over mentions with a gold candidate."""
    if model.kar is None:
        raise InputError("this model has no KAR (kar_layer=None): nothing links")
    model.eval()
    device = next(model.parameters()).device
    hits = total = 0
    for start in range(0, len(data), batch_size):
        batch = model.collate([data[i] for i in range(start, min(len(data), start + batch_size))])
        batch.pop("labels", None)
        scores = model(**{k: v.to(device) for k, v in batch.items()})["linking_scores"].cpu()
        known = batch["gold"] >= 0
        hits += int((scores.argmax(-1)[known] == batch["gold"][known]).sum())
        total += int(known.sum())
    if not total:
        raise InputError("no mention with a gold candidate to score")
    return hits / total


def prior_accuracy(data: Examples) -> float:
    """Return how often the highest-prior candidate is the gold one (the linking baseline)."""
    hits = total = 0
    for example in data:
        for priors, gold in zip(example.priors, example.gold):
            if gold >= 0:
                hits += int(np.argmax(priors) == gold)
                total += 1
    if not total:
        raise InputError("no mention with a gold candidate to score")
    return hits / total


@torch.no_grad()
def link(model: KnowBertClassifier, words: Sequence[str], mentions: Sequence) -> list:
    """Return ``mentions`` as the trained linker sees them: each candidate's score, the argmax chosen.

    A mention whose linker probabilities put all mass on NULL (every candidate
    below the KAR's ``threshold``) is chosen None; its ``score`` is then NULL's probability.
    """
    from kbench.text.links import Candidate, LinkedMention

    if model.kar is None:
        raise InputError("this model has no KAR (kar_layer=None): nothing links")
    model.eval()
    device = next(model.parameters()).device
    example = model.example(words, mentions)
    if len(example.spans) != len(mentions):
        raise InputError("a mention lies past max_length: raise max_length or shorten the sentence")
    batch = model.collate([example])
    context = {name: batch[name].to(device) for name in ("spans", "candidates", "priors")}
    model.encoder(batch["input_ids"].to(device), batch["attention_mask"].to(device), context=context)
    scores, probabilities = context["linking_scores"][0].cpu(), context["linker_probabilities"][0].cpu()
    linked = []
    for row, mention in enumerate(mentions):
        candidates = [Candidate(c.entity, c.prior, float(scores[row, k])) for k, c in enumerate(mention.candidates)]
        null = bool(probabilities[row, -1] > 0.5)
        best = int(scores[row, :len(candidates)].argmax())
        linked.append(LinkedMention(mention.start, mention.end, mention.text, candidates,
                                    None if null else candidates[best].entity,
                                    float(probabilities[row, -1 if null else best])))
    return linked
