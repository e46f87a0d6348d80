"""KGLM: a language model that reads facts from a knowledge graph instead of remembering them.

Robert L. Logan IV, Nelson F. Liu, Matthew E.
Peters, Matt Gardner, Sameer Singh. *Barack's Wife Hillary: Using Knowledge Graphs for Fact-Aware Language Modeling.*
ACL 2019; code: rloganiv/kglm-model (``kglm/models/kglm.py``,
``kglm/modules/recent_entities.py``, ``kglm/modules/knowledge_graph_lookup.py``, ``kglm/data/alias_database.py``,
``experiments/kglm.jsonnet``).

The generative story (§2.2), one token at a time, over an LSTM's state ``h_t`` split into ``[h_x; h_p; h_r]``
(§2.3; notebook 20, section 2):

- **mention type** ``t_t``: a softmax over ``h_x`` (the code's ``_fc_mention_type`` reads the word part). The code
  has four types — none, new, related and *continuation* (the later tokens of a mention, type 3 in its reader) —
  where the paper names three; the four are used here, and a continuation keeps the previous token's entity.
- **new**: ``e_t`` by ``softmax(v_e · (h_p + h_r) + b_e)`` over every entity — the code's ``_fc_new_entity`` with
  its weight tied to the (fixed) entity embeddings (``tie_weights``) and its bias.
- **related**: a parent ``p_t`` by ``softmax(v_p · h_p)`` over the *recent* entities (those of the last
  :data:`~kbench.data.linked_world.CUTOFF` = 30 tokens, the code's ``RecentEntities``), then an edge of the parent
  by ``softmax(v_r · h_r)`` over the parent's edges (the code's ``KnowledgeGraphLookup``: one entry per edge, so
  a relation with two tails is listed twice), the reflexive self-edge of §2.2 included. Training marginalises over
  every path that reaches the gold entity (§4: "we marginalize over all of the parents"; the code's
  ``_knowledge_graph_entity_loss`` sums over the annotated parents and, within a parent, over its edges to the
  entity): ``p(e) = Σ_p p(p) Σ_{(p, r, e)} p(r | p)`` (:func:`related_log_prob`).
- **rendering**: one softmax over the vocabulary and the positions of the entity's alias tokens (the code's
  ``_vocab_logp``). The vocabulary scores read ``h'_x = W_proj [h_x; v_e]`` (``_fc_condense``; ``v_e`` = 0 for
  no entity) through the output layer tied to the word embeddings; a copy score is ``h_x · tanh(W_copy a_j)``, with
  ``a_j`` an LSTM over the alias's word embeddings (``_copy_scores``: the code dots ``h_x``, not the paper's
  ``h'_x``, and puts the nonlinearity on the alias side; followed here). A word's probability is its vocabulary
  mass plus the copy mass of every alias position holding it (:func:`word_distribution`); an out-of-vocabulary
  word (a name never in the training text) is reached only by copying — its vocabulary mass is ``<unk>``'s.

Entity embeddings are TransE vectors trained on the KG alone and kept fixed (§4; the config's ``trainable:
false``), so a person who is in the KG but never in the text has one. The paper's text keeps the relation
embeddings fixed too; the authors' config trains them (``trainable: true``), followed here: they start from TransE,
and the reflexive relation, not in the KG, starts at zero (TransE's ``p + 0 = p``).

Training minimises ``−log p(x, t, e)`` per token with the gold annotations (§4). Where the code charges the
new-entity softmax at *every* token of every mention and the parent/relation at every token of a related
mention, here they are charged once, at a mention's first token, so the sum is the log-probability of the paper's
story. Evaluation (:func:`evaluate`) scores ``−log p(x, E_gold)``: the paper marginalises the annotations by
importance sampling from a discriminative proposal (§4, Table 3's starred rows); that is not done here, and
since ``p(x) ≥ p(x, E_gold)``, the perplexity with gold annotations is an *upper bound* on the marginal one.
UPP (§5.2, Ueberla 1994) divides ``p(<unk>)`` by ``|U|``, the word types outside the vocabulary ("estimated from
the data": here every word type of the linked world's text, training and test, outside it); as in the code's
``_vocab_loss``, only the vocabulary's ``<unk>`` mass is divided, never copy mass.

**The same LSTM without the KG heads** (``knowledge=False``) is the paper's AWD-LSTM row as run here: the same
embeddings, LSTM and output layer from the same init, each token's distribution that of KGLM's "no entity" path
(``softmax(W h'_x)`` with ``v_e = 0``); the ``h_p`` and ``h_r`` units stay in its recurrent state, unread.
AWD-LSTM's regularisers (DropConnect, locked and embedding dropout, activation regularisation) and its 3 layers
of 1,150 are left out at this scale: both models have none of them, and the size is a configuration.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from kbench.data.linked_world import CUTOFF, MENTION_TYPES, REFLEXIVE, LinkedDocument, edges_of, recent_entities
from kbench.errors import InputError, UnknownNameError
from kbench.taxonomy import Headline, Place, PositiveControl

CITATION = {
    "title": "Barack's Wife Hillary: Using Knowledge Graphs for Fact-Aware Language Modeling",
    "authors": "Robert L. Logan IV, Nelson F. Liu, Matthew E. Peters, Matt Gardner, Sameer Singh",
    "venue": "ACL", "year": 2019, "url": "https://www.aclweb.org/anthology/P19-1598/",
    "code": "https://github.com/rloganiv/kglm-model",
}
NOTEBOOK = "20_kglm"
PLACE = Place("KGLM", "fused entity vectors", ("KG",),
              "at each entity token the LM picks a fact of the KG (a recent entity and one of its edges) and renders "
              "its object from its TransE vector and by copying its alias", survey="factual", in_survey=False)
HEADLINE = Headline(
    "completing 'X was born in ___' (born in, works as, works for, knows) for people in the KG and never in the "
    "training text, top-1", "kglm_fact_test", "lstm_fact_test",
    "a KG with TransE vectors, every entity's alias, and training text annotated with mentions, parents and "
    "relations",
    trivial=("prior_fact_test",),
    positive=PositiveControl(
        "the same completion for training people, whose facts are in the training text and in the KG: the KGLM "
        "must read them from the KG, against the most frequent answer of each relation on the same prompts",
        left="kglm_fact_train", right="prior_fact_train", min_difference=0.7))

PAD, UNK, BOS = "<pad>", "<unk>", "<bos>"
TYPE_IDS = {name: index for index, name in enumerate(MENTION_TYPES)}
NEG = -1e30                      # a logit that takes no mass (masked positions)


def type_id(name: str) -> int:
    """Return the index of a mention type; an unknown one is a named error."""
    if name not in TYPE_IDS:
        raise UnknownNameError(f"unknown mention type {name!r}: use one of {', '.join(MENTION_TYPES)}")
    return TYPE_IDS[name]


@dataclass
class Encoded:
    """A document as the model reads it: input and target word ids, per-token type and entity ids, whether a
    target is ``<unk>`` copied from its alias, the alias positions holding each target word, and the parent
    candidates (recent entity ids) at each related token."""

    input_ids: np.ndarray
    target_ids: np.ndarray
    types: np.ndarray
    entity_ids: np.ndarray
    unk_copy: np.ndarray
    alias_match: list
    candidates: dict = field(default_factory=dict)


class KGLM(nn.Module):
    """The KGLM (``knowledge=True``) or the same LSTM language model without its KG heads (``knowledge=False``).

    ``words``: the vocabulary (the training text's words); ``kg`` and ``aliases``: the knowledge graph and each
    entity's alias tokens; ``vectors``: its TransE embeddings (an object with ``entity_to_id``,
    ``relation_to_id``, ``entity_embeddings``, ``relation_embeddings``: :class:`kbench.kg.embeddings.KGEmbeddings`
    or ``FrozenEmbeddings``). ``unknown_types``: ``|U|`` for UPP. The shared network is built first from ``seed``,
    the KG heads after it, so both variants start from the same shared weights.
    """

    def __init__(self, words: Sequence[str], kg, aliases: dict, vectors, word_dim: int = 64, layers: int = 1,
                 hidden: int = 0, cutoff: int = CUTOFF, knowledge: bool = True, unknown_types: int = 1,
                 seed: int = 0):
        super().__init__()
        if word_dim < 1 or layers < 1 or unknown_types < 1:
            raise InputError(f"word_dim, layers and unknown_types must be at least 1 (got {word_dim}, {layers}, "
                             f"{unknown_types})")
        self.words = [PAD, UNK, BOS] + [w for w in words if w not in (PAD, UNK, BOS)]
        self.word_to_id = {w: i for i, w in enumerate(self.words)}
        if len(self.words) != len(self.word_to_id):
            raise InputError("the vocabulary names a word twice: give each word once")
        self.knowledge, self.cutoff, self.unknown_types = knowledge, cutoff, unknown_types
        self.entities = [None] + sorted(vectors.entity_to_id, key=vectors.entity_to_id.get)
        self.entity_to_id = {e: i for i, e in enumerate(self.entities) if e is not None}
        self.relations = sorted(vectors.relation_to_id, key=vectors.relation_to_id.get) + [REFLEXIVE]
        self.relation_to_id = {r: i for i, r in enumerate(self.relations)}
        entity_dim = int(vectors.entity_embeddings.shape[1])
        self.word_dim, self.entity_dim = word_dim, entity_dim
        self.aliases = {}
        for entity in self.entity_to_id:
            alias = tuple(aliases.get(entity, ()))
            if not alias:
                raise InputError(f"entity {entity!r} has no alias: give it its name's tokens (aliases[{entity!r}])")
            self.aliases[entity] = alias
        table = torch.zeros(len(self.entities), entity_dim)
        table[1:] = torch.as_tensor(vectors.entity_embeddings, dtype=torch.float32)
        self.register_buffer("entity_table", table)                 # fixed TransE vectors (§4)
        self.alias_length = max(len(a) for a in self.aliases.values())
        alias_ids = torch.zeros(len(self.entities), self.alias_length, dtype=torch.long)
        for entity, alias in self.aliases.items():
            alias_ids[self.entity_to_id[entity], :len(alias)] = torch.tensor([self.word_id(w) for w in alias])
        self.register_buffer("alias_ids", alias_ids)
        self.register_buffer("edge_counts", torch.zeros(len(self.entities), len(self.relations)))
        self.set_kg(kg)

        torch.manual_seed(seed)
        self.embed = nn.Embedding(len(self.words), word_dim, padding_idx=0)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)               # the authors' initializer (kglm.jsonnet)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        hidden = hidden or word_dim + 2 * entity_dim
        sizes = [word_dim] + [hidden] * (layers - 1) + [word_dim + 2 * entity_dim]
        self.rnns = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(sizes, sizes[1:]))
        self.condense = nn.Linear(word_dim + entity_dim, word_dim)    # W_proj of §2.3
        self.generate_bias = nn.Parameter(torch.zeros(len(self.words)))   # output layer tied to self.embed
        if knowledge:
            torch.manual_seed(seed + 1)
            self.type_head = nn.Linear(word_dim, len(MENTION_TYPES))
            self.new_entity_bias = nn.Parameter(torch.zeros(len(self.entities)))
            relation_table = torch.zeros(len(self.relations), entity_dim)
            relation_table[:-1] = torch.as_tensor(vectors.relation_embeddings, dtype=torch.float32)
            self.relation_vectors = nn.Parameter(relation_table)
            self.alias_encoder = nn.LSTM(word_dim, word_dim, batch_first=True)
            self.copy = nn.Linear(word_dim, word_dim)

    # ---- tables -----------------------------------------------------------------------------------------------
    def word_id(self, word: str) -> int:
        """Return a word's id, ``<unk>``'s for a word outside the vocabulary."""
        return self.word_to_id.get(word, self.word_to_id[UNK])

    def set_kg(self, kg) -> None:
        """Use ``kg``'s edges (plus the reflexive self-edges) for parents, relations and tails from now on; every
        entity of a triple must have an embedding and every relation too (a named error otherwise)."""
        for subject, relation, obj in kg:
            for entity in (subject, obj):
                if entity not in self.entity_to_id:
                    raise UnknownNameError(f"triple ({subject!r}, {relation!r}, {obj!r}): entity {entity!r} has no "
                                           "embedding: train the KG embeddings on a KG that holds it")
            if relation not in self.relation_to_id:
                raise UnknownNameError(f"triple ({subject!r}, {relation!r}, {obj!r}): relation {relation!r} has "
                                       "no embedding: train the KG embeddings on a KG that holds it")
        self.edges = {self.entity_to_id[e]: [(self.relation_to_id[r], self.entity_to_id[t]) for r, t in out]
                      for e, out in edges_of(kg).items()}
        for entity_id in range(1, len(self.entities)):
            self.edges.setdefault(entity_id, [(self.relation_to_id[REFLEXIVE], entity_id)])
        counts = torch.zeros(len(self.entities), len(self.relations))
        self.reach: dict[tuple[int, int], list[int]] = {}
        for parent, out in self.edges.items():
            for relation, tail in out:
                counts[parent, relation] += 1
                self.reach.setdefault((parent, tail), []).append(relation)
        self.edge_counts.copy_(counts)

    def move_edge(self, subject: str, relation: str, old: str, new: str) -> None:
        """Point the edge ``(subject, relation, old)`` at ``new`` instead (§5.2, "Effect of changing the KG"): the
        same as :meth:`set_kg` with that one triple changed, without rebuilding the rest."""
        for entity in (subject, old, new):
            if entity not in self.entity_to_id:
                raise UnknownNameError(f"entity {entity!r} is not in the model's KG: move an edge between known "
                                       "entities")
        parent, relation_id = self.entity_to_id[subject], self.relation_to_id.get(relation)
        edge = (relation_id, self.entity_to_id[old])
        if edge not in self.edges.get(parent, []):
            raise InputError(f"the model's KG has no edge ({subject!r}, {relation!r}, {old!r}) to move")
        out = self.edges[parent]
        out[out.index(edge)] = (relation_id, self.entity_to_id[new])
        self.reach[(parent, edge[1])].remove(relation_id)
        self.reach.setdefault((parent, self.entity_to_id[new]), []).append(relation_id)

    # ---- examples and batches -----------------------------------------------------------------------------
    def encode(self, document: LinkedDocument) -> Encoded:
        """Return the compact example of a gold-annotated document (notebook 20, section 2)."""
        annotations = document.annotations()
        entities = [entity for _, entity in annotations]
        for entity in {e for e in entities if e is not None}:
            if entity not in self.entity_to_id:
                raise UnknownNameError(f"the document about {document.subject!r} mentions {entity!r}, which is not "
                                       "in the model's KG: link mentions to KG entities")
        targets = [self.word_id(t) for t in document.tokens]
        unk = self.word_to_id[UNK]
        alias_match, unk_copy, candidates = [], [], {}
        for position, (token, (kind, entity)) in enumerate(zip(document.tokens, annotations)):
            match = tuple(j for j, w in enumerate(self.aliases[entity]) if w == token) if entity else ()
            alias_match.append(match)
            unk_copy.append(bool(match) and targets[position] == unk)
            if kind == "related":
                recent = recent_entities(entities, position, self.cutoff)
                if not recent:
                    raise InputError(f"token {position} of the document about {document.subject!r} is a related "
                                     "mention with no recent entity to be its parent")
                candidates[position] = [self.entity_to_id[e] for e in recent]
        return Encoded(np.asarray([self.word_to_id[BOS]] + targets[:-1], np.int64), np.asarray(targets, np.int64),
                       np.asarray([type_id(kind) for kind, _ in annotations], np.int64),
                       np.asarray([self.entity_to_id[e] if e else 0 for e in entities], np.int64),
                       np.asarray(unk_copy, bool), alias_match, candidates)

    def dataset(self, documents: Sequence[LinkedDocument]):
        """Return the :class:`~kbench.train.Examples` of ``documents`` (one example per document)."""
        from kbench.train import Examples

        if not documents:
            raise InputError("no documents to encode")
        return Examples([self.encode(d) for d in documents])

    def collate(self, examples: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        """Batch encoded documents: padded ids, types and entities, and, at related tokens, the candidates with
        the relations by which each reaches the gold entity in the model's KG."""
        from kbench.train import pad_rows

        if not examples:
            raise InputError("cannot collate an empty batch")
        lengths = np.asarray([len(e.target_ids) for e in examples])
        batch = {"input_ids": pad_rows([e.input_ids for e in examples], 0),
                 "target_ids": pad_rows([e.target_ids for e in examples], 0),
                 "types": pad_rows([e.types for e in examples], -100),
                 "entity_ids": pad_rows([e.entity_ids for e in examples], 0),
                 "unk_copy": pad_rows([e.unk_copy.astype(np.int64) for e in examples], 0)}
        batch["attention_mask"] = (np.arange(batch["input_ids"].shape[1]) < lengths[:, None]).astype(np.int64)
        match = np.zeros(batch["input_ids"].shape + (self.alias_length,), bool)
        for row, example in enumerate(examples):
            for position, positions in enumerate(example.alias_match):
                match[row, position, list(positions)] = True
        batch["alias_match"] = match
        related = [(row, position, ids) for row, e in enumerate(examples) for position, ids in e.candidates.items()]
        width = max([len(ids) for _, _, ids in related] + [1])
        index = np.zeros((len(related), 2), np.int64)
        candidates = np.zeros((len(related), width), np.int64)
        reach = np.zeros((len(related), width, len(self.relations)), bool)
        for k, (row, position, ids) in enumerate(related):
            index[k] = row, position
            candidates[k, :len(ids)] = ids
            gold = int(batch["entity_ids"][row, position])
            for c, parent in enumerate(ids):
                reach[k, c, self.reach.get((parent, gold), [])] = True
            if not reach[k].any():
                raise InputError(f"a related mention of {self.entities[gold]!r} (token {position}) has no path from "
                                 "a recent entity in the model's KG: link it as new, or add the edge")
        batch.update(related_index=index, related_candidates=candidates, related_reach=reach)
        return {k: torch.from_numpy(v) for k, v in batch.items()}

    # ---- the network ------------------------------------------------------------------------------------------
    def encode_states(self, input_ids: torch.Tensor, state=None):
        """Return the LSTM's last-layer states ``(B, T, d_x + 2 d_e)`` for ``input_ids`` and the new state."""
        x, states = self.embed(input_ids), []
        for layer, rnn in enumerate(self.rnns):
            x, s = rnn(x, None if state is None else state[layer])
            states.append(s)
        return x, states

    def split(self, h: torch.Tensor):
        """Return ``(h_x, h_p, h_r)``: the word, parent and relation parts of a state (§2.3)."""
        return h.split([self.word_dim, self.entity_dim, self.entity_dim], dim=-1)

    def vocabulary_logits(self, h_x: torch.Tensor, entity_ids: torch.Tensor) -> torch.Tensor:
        """Return the vocabulary scores ``W_out · W_proj [h_x; v_e]`` (``v_e`` = 0 for entity id 0)."""
        condensed = self.condense(torch.cat([h_x, self.entity_table[entity_ids]], dim=-1))
        return condensed @ self.embed.weight.T + self.generate_bias

    def copy_scores(self, h_x: torch.Tensor, entity_ids: torch.Tensor) -> torch.Tensor:
        """Return ``h_x · tanh(W_copy a_j)`` for each alias position ``j`` of each entity (padding: ``NEG``)."""
        unique, inverse = entity_ids.unique(return_inverse=True)
        alias = self.alias_ids[unique]
        encoded, _ = self.alias_encoder(self.embed(alias))
        projected = torch.tanh(self.copy(encoded))[inverse]              # (..., L, d_x)
        scores = (projected @ h_x.unsqueeze(-1)).squeeze(-1)
        return scores.masked_fill(self.alias_ids[entity_ids] == 0, NEG)

    def new_entity_logits(self, h_p: torch.Tensor, h_r: torch.Tensor) -> torch.Tensor:
        """Return ``v_e · (h_p + h_r) + b_e`` over every entity (id 0, no entity, masked)."""
        logits = (h_p + h_r) @ self.entity_table.T + self.new_entity_bias
        logits[..., 0] = NEG
        return logits

    def forward(self, input_ids, target_ids, attention_mask, types=None, entity_ids=None, unk_copy=None,
                alias_match=None, related_index=None, related_candidates=None, related_reach=None) -> dict:
        """Return per-token log-probabilities and the loss ``−log p(x, t, e)`` per token (§4).

        ``type_logp``, ``entity_logp`` (at a mention's first token) and ``word_logp`` (the training version:
        a copied ``<unk>`` takes no vocabulary mass, as in the code's loss), ``word_ppl`` (vocabulary ``<unk>``
        mass counted) and ``word_upp`` (it divided by ``|U|``). Without the KG heads only the words are scored.
        """
        if input_ids.dim() != 2 or input_ids.shape != target_ids.shape or input_ids.shape[1] == 0:
            raise InputError(f"input_ids and target_ids must be one (batch, tokens) shape with tokens, got "
                             f"{tuple(input_ids.shape)} and {tuple(target_ids.shape)}")
        mask = attention_mask.bool()
        h, _ = self.encode_states(input_ids)
        h_x, h_p, h_r = self.split(h)
        unk = target_ids == self.word_to_id[UNK]
        penalty = math.log(self.unknown_types)
        zeros = torch.zeros_like(target_ids, dtype=h.dtype)
        if not self.knowledge:
            logp = self.vocabulary_logits(h_x, torch.zeros_like(target_ids)).log_softmax(-1)
            word = logp.gather(-1, target_ids.unsqueeze(-1)).squeeze(-1)
            out = {"word_logp": word, "word_ppl": word, "word_upp": word - penalty * unk,
                   "type_logp": zeros, "entity_logp": zeros}
        else:
            if types is None or entity_ids is None:
                raise InputError("the KGLM scores a text with its annotations: give types and entity_ids")
            type_logp = self.type_head(h_x).log_softmax(-1)
            out = {"type_logp": type_logp.gather(-1, types.clamp(min=0).unsqueeze(-1)).squeeze(-1)}
            entity = zeros.clone()
            new = (types == TYPE_IDS["new"]) & mask
            if new.any():
                entity[new] = self.new_entity_logits(h_p[new], h_r[new]).log_softmax(-1).gather(
                    -1, entity_ids[new].unsqueeze(-1)).squeeze(-1)
            if related_index is not None and len(related_index):
                rows, cols = related_index[:, 0], related_index[:, 1]
                entity[rows, cols] = related_log_prob(self, h_p[rows, cols], h_r[rows, cols], related_candidates,
                                                      related_reach)
            out["entity_logp"] = entity
            out.update(self._word_log_probs(h_x, target_ids, entity_ids, unk, unk_copy.bool(), alias_match, penalty))
        joint = out["type_logp"] + out["entity_logp"] + out["word_logp"]
        out["loss"] = -(joint * mask).sum() / mask.sum().clamp(min=1)
        out["logits"] = joint
        return out

    def _word_log_probs(self, h_x, target_ids, entity_ids, unk, unk_copy, alias_match, penalty) -> dict:
        """The rendering step's log-probabilities of the target words (the code's ``_vocab_loss``)."""
        vocabulary = self.vocabulary_logits(h_x, entity_ids)
        plain = vocabulary.log_softmax(-1).gather(-1, target_ids.unsqueeze(-1)).squeeze(-1)
        out = {"word_logp": plain.clone(), "word_ppl": plain.clone(), "word_upp": plain - penalty * unk}
        mention = entity_ids > 0
        if mention.any():
            copy = self.copy_scores(h_x[mention], entity_ids[mention])
            logp = torch.cat([vocabulary[mention], copy], dim=-1).log_softmax(-1)
            generated = logp[:, :vocabulary.shape[-1]].gather(-1, target_ids[mention].unsqueeze(-1)).squeeze(-1)
            copied = logp[:, vocabulary.shape[-1]:].masked_fill(~alias_match[mention], NEG).logsumexp(-1)
            kept = generated.masked_fill(unk_copy[mention], NEG)      # a copied <unk> is learned by copying
            out["word_logp"][mention] = torch.logaddexp(kept, copied)
            out["word_ppl"][mention] = torch.logaddexp(generated, copied)
            out["word_upp"][mention] = torch.logaddexp(generated - penalty * unk[mention], copied)
        return out


def related_log_prob(model: KGLM, h_p: torch.Tensor, h_r: torch.Tensor, candidates: torch.Tensor,
                     reach: torch.Tensor) -> torch.Tensor:
    """Return ``log Σ_p p(p) Σ_{(p, r, e)} p(r | p)`` at each related token: the path sum of §4.

    ``candidates`` (N, C): recent entity ids (0: padding); ``reach`` (N, C, R): which relations lead from each
    candidate to the gold entity. ``p(p) = softmax(v_p · h_p)`` over the candidates; ``p(r | p)`` a softmax of
    ``v_r · h_r`` over the parent's edges, each edge once (``edge_counts``).
    """
    parent_logits = (model.entity_table[candidates] @ h_p.unsqueeze(-1)).squeeze(-1)
    parent_logp = parent_logits.masked_fill(candidates == 0, NEG).log_softmax(-1)          # (N, C)
    relation_scores = h_r @ model.relation_vectors.T                                        # (N, R)
    counts = model.edge_counts[candidates]                                                  # (N, C, R)
    scores = relation_scores.unsqueeze(1).expand_as(counts)
    normaliser = torch.where(counts > 0, scores + counts.log(), NEG).logsumexp(-1)           # over the edges
    reached = (scores.masked_fill(~reach, NEG).logsumexp(-1) - normaliser).masked_fill(~reach.any(-1), NEG)
    return (parent_logp + reached).logsumexp(-1)


@torch.no_grad()
def path_probabilities(model: KGLM, document: LinkedDocument, position: int) -> list[tuple[str, str, float]]:
    """Return ``(parent, relation, p(parent) p(edge | parent))`` for every path from a recent entity to the entity
    of the related mention starting at ``position`` (their sum is ``p(e | related)``, §4; notebook 20, section 3)."""
    from kbench.train import eval_mode

    kind, entity = document.annotations()[position]
    if kind != "related":
        raise InputError(f"token {position} ({document.tokens[position]!r}) starts no related mention (it is {kind})")
    prefix = [e for _, e in document.annotations()[:position]]
    ids = torch.tensor([[model.word_to_id[BOS]] + [model.word_id(t) for t in document.tokens[:position]]],
                       device=model.entity_table.device)
    with eval_mode(model):
        _, h_p, h_r = model.split(model.encode_states(ids)[0][0, -1])
        recent = recent_entities(prefix, position, model.cutoff)
        parents = torch.tensor([model.entity_to_id[e] for e in recent], device=ids.device)
        p_parent = (model.entity_table[parents] @ h_p).softmax(-1).tolist()
        out = []
        for parent, p in zip(recent, p_parent):
            edges = model.edges[model.entity_to_id[parent]]
            p_edges = (model.relation_vectors[[r for r, _ in edges]] @ h_r).softmax(-1).tolist()
            out += [(parent, model.relations[r], p * q) for (r, tail), q in zip(edges, p_edges)
                    if model.entities[tail] == entity]
    return out


# ---- decoding ------------------------------------------------------------------------------------------------
@dataclass
class Step:
    """One decoded token: the word, the mention type, the entity, parent and relation chosen (greedy), the
    word's probability under the rendering distribution, and the share of it that came from copying."""

    word: str
    type: str
    entity: str | None = None
    parent: str | None = None
    relation: str | None = None
    probability: float = 0.0
    copied: float = 0.0
    type_probability: float = 0.0


def word_distribution(model: KGLM, h_x: torch.Tensor, entity_id: int) -> dict[str, tuple[float, float]]:
    """Return ``word -> (probability, copy share)`` of the rendering step for one entity (0: none).

    Vocabulary mass and the copy mass of every alias position holding the word add up (§2.3); an alias word
    outside the vocabulary has copy mass only (its vocabulary mass is ``<unk>``'s).
    """
    ids = torch.tensor([entity_id], device=h_x.device)
    vocabulary = model.vocabulary_logits(h_x.unsqueeze(0), ids)
    if entity_id == 0 or not model.knowledge:
        probabilities = vocabulary.softmax(-1)[0]
        return {w: (p, 0.0) for w, p in zip(model.words, probabilities.tolist())}
    copy = model.copy_scores(h_x.unsqueeze(0), ids)
    probabilities = torch.cat([vocabulary, copy], dim=-1).softmax(-1)[0].tolist()
    out = {w: [p, 0.0] for w, p in zip(model.words, probabilities[:len(model.words)])}
    for word, p in zip(model.aliases[model.entities[entity_id]], probabilities[len(model.words):]):
        out.setdefault(word, [0.0, 0.0])
        out[word][0] += p
        out[word][1] += p
    return {w: (p, c / p if p > 0 else 0.0) for w, (p, c) in out.items()}


def _choose(model: KGLM, h: torch.Tensor, history: list[str | None]) -> Step:
    """Pick the next token greedily from the state ``h`` after ``history`` (each earlier token's entity): the
    type, then the entity (new: over all; related: parent among the recent entities, then an edge), then the
    most probable word (the code's ``_greedy_decode``)."""
    h_x, h_p, h_r = model.split(h)
    if not model.knowledge:
        words = word_distribution(model, h_x, 0)
        word = max(words, key=lambda w: words[w][0])
        return Step(word, "none", probability=words[word][0], type_probability=1.0)
    type_probabilities = model.type_head(h_x).softmax(-1)
    kind = MENTION_TYPES[int(type_probabilities.argmax())]
    entity = parent = relation = None
    recent = recent_entities(history, len(history), model.cutoff)
    if kind == "new":
        entity = int(model.new_entity_logits(h_p, h_r).argmax())
    elif kind == "related" and recent:
        ids = torch.tensor([model.entity_to_id[e] for e in recent], device=h.device)
        parent_id = int(ids[(model.entity_table[ids] @ h_p).argmax()])
        edges = model.edges[parent_id]
        scores = model.relation_vectors[[r for r, _ in edges]] @ h_r
        relation_id, entity = edges[int(scores.argmax())]
        parent, relation = model.entities[parent_id], model.relations[relation_id]
    elif kind == "continuation" and history and history[-1] is not None:
        entity = model.entity_to_id[history[-1]]
    words = word_distribution(model, h_x, entity or 0)
    word = max(words, key=lambda w: words[w][0])
    return Step(word, kind, model.entities[entity] if entity else None, parent, relation, words[word][0],
                words[word][1], float(type_probabilities[TYPE_IDS[kind]]))


@torch.no_grad()
def generate(model: KGLM, prompt: LinkedDocument, steps: int = 1) -> list[Step]:
    """Return ``steps`` greedily decoded tokens after ``prompt`` (its gold annotations given, as Table 4's
    oracle KGLM), each with its type, entity, parent and relation (notebook 20, section 4)."""
    from kbench.train import eval_mode

    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    device = model.entity_table.device
    history = [entity for _, entity in prompt.annotations()]
    for entity in {e for e in history if e is not None}:
        if entity not in model.entity_to_id:
            raise UnknownNameError(f"the prompt mentions {entity!r}, which is not in the model's KG")
    ids = torch.tensor([[model.word_to_id[BOS]] + [model.word_id(t) for t in prompt.tokens]], device=device)
    out = []
    with eval_mode(model):
        h, state = model.encode_states(ids)
        for _ in range(steps):
            step = _choose(model, h[0, -1], history)
            out.append(step)
            history.append(step.entity)
            h, state = model.encode_states(torch.tensor([[model.word_id(step.word)]], device=device), state)
    return out


@torch.no_grad()
def next_word_distribution(model: KGLM, prompt: LinkedDocument) -> dict[str, float]:
    """Return ``p(x_t = w | x_<t, E_<t)`` after ``prompt``, marginalised over the type and the entity: none, every
    new entity, every (recent parent, edge) and the continued entity, each with its rendering distribution."""
    from kbench.train import eval_mode

    device = model.entity_table.device
    history = [entity for _, entity in prompt.annotations()]
    ids = torch.tensor([[model.word_to_id[BOS]] + [model.word_id(t) for t in prompt.tokens]], device=device)
    total: dict[str, float] = {}

    def add(weight: float, entity_id: int) -> None:
        for word, (p, _) in word_distribution(model, h_x, entity_id).items():
            total[word] = total.get(word, 0.0) + weight * p

    with eval_mode(model):
        h = model.encode_states(ids)[0][0, -1]
        h_x, h_p, h_r = model.split(h)
        if not model.knowledge:
            add(1.0, 0)
            return total
        kinds = model.type_head(h_x).softmax(-1).tolist()
        add(kinds[TYPE_IDS["none"]], 0)
        for entity_id, p in enumerate(model.new_entity_logits(h_p, h_r).softmax(-1).tolist()):
            if entity_id:
                add(kinds[TYPE_IDS["new"]] * p, entity_id)
        recent = recent_entities(history, len(history), model.cutoff)
        if recent:
            parents = torch.tensor([model.entity_to_id[e] for e in recent], device=device)
            for parent_id, p_parent in zip(parents.tolist(), (model.entity_table[parents] @ h_p).softmax(-1).tolist()):
                edges = model.edges[parent_id]
                p_edges = (model.relation_vectors[[r for r, _ in edges]] @ h_r).softmax(-1).tolist()
                for (_, tail), p_edge in zip(edges, p_edges):
                    add(kinds[TYPE_IDS["related"]] * p_parent * p_edge, tail)
        else:
            add(kinds[TYPE_IDS["related"]], 0)        # no parent to pick: rendered as no entity
        previous = history[-1] if history else None
        add(kinds[TYPE_IDS["continuation"]], model.entity_to_id[previous] if previous else 0)
    return total


# ---- evaluation ----------------------------------------------------------------------------------------------
@torch.no_grad()
def token_scores(model: KGLM, documents: Sequence[LinkedDocument], batch_size: int = 32) -> list[dict]:
    """Return, per document, the per-token ``joint`` (``log p(t) + log p(e | t) + log p(x | e)``, gold
    annotations), ``joint_upp`` (``<unk>`` penalised), the ``word`` part alone and which tokens are ``entity``
    tokens."""
    from kbench.train import eval_mode

    data = model.dataset(documents)
    device = model.entity_table.device
    out = []
    with eval_mode(model):
        for start in range(0, len(data), batch_size):
            examples = [data[i] for i in range(start, min(start + batch_size, len(data)))]
            batch = {k: v.to(device) for k, v in model.collate(examples).items()}
            result = model(**batch)
            rest = result["type_logp"] + result["entity_logp"]
            for row, example in enumerate(examples):
                n = len(example.target_ids)
                out.append({"joint": (rest + result["word_ppl"])[row, :n].cpu().numpy(),
                            "joint_upp": (rest + result["word_upp"])[row, :n].cpu().numpy(),
                            "word": result["word_ppl"][row, :n].cpu().numpy(),
                            "entity": example.entity_ids > 0})
    return out


def evaluate(model: KGLM, documents: Sequence[LinkedDocument], batch_size: int = 32) -> dict[str, float]:
    """Return ``ppl``, ``entity_ppl`` (over the tokens of mentions), ``upp`` and ``word_ppl`` (the rendering step
    alone, annotations given: the code's ``ppl`` metric) with the gold annotations (notebook 20, section 3)."""
    scores = token_scores(model, documents, batch_size)
    joint = np.concatenate([s["joint"] for s in scores])
    entity = np.concatenate([s["entity"] for s in scores])
    if not entity.any():
        raise InputError("the documents mention no entity: entity perplexity needs entity tokens")
    return {"ppl": float(np.exp(-joint.mean())), "entity_ppl": float(np.exp(-joint[entity].mean())),
            "upp": float(np.exp(-np.concatenate([s["joint_upp"] for s in scores]).mean())),
            "word_ppl": float(np.exp(-np.concatenate([s["word"] for s in scores]).mean()))}


def edit_follows(model: KGLM, documents: Sequence[LinkedDocument], relation: str = "born in",
                 seed: int = 0) -> list[tuple]:
    """Return ``(document, blank, new object, step)`` for each blank of ``relation``: the greedy completion after the
    subject's edge was moved to another object of the relation drawn at random (§5.2, "Effect of changing the
    KG": the model's prediction should follow the edited fact). Each edge is moved back after its prompt."""
    import random

    objects = sorted({model.entities[t] for out in model.edges.values() for r, t in out
                      if model.relations[r] == relation})
    rng, rows = random.Random(seed), []
    for document in documents:
        for blank in document.blanks:
            if blank.relation != relation:
                continue
            others = [o for o in objects if o != blank.entity]
            if not others:
                raise InputError(f"the KG has no other object of {relation!r} than {blank.entity!r} to move the "
                                 "edge to")
            new = rng.choice(others)
            model.move_edge(document.subject, relation, blank.entity, new)
            try:
                rows.append((document, blank, new, generate(model, document.prefix(blank.position), 1)[0]))
            finally:
                model.move_edge(document.subject, relation, new, blank.entity)
    if not rows:
        raise InputError(f"no blank asks {relation!r}: give documents with such a prompt")
    return rows


def edit_shares(model: KGLM, rows: Sequence[tuple]) -> dict[str, float]:
    """Return, over :func:`edit_follows`'s rows, the share of completions that are the edited object's first token
    (``follows``) and the share that are still the old object's (``keeps_old``)."""
    if not rows:
        raise InputError("no edited prompts to score")
    follows = [step.word == model.aliases[new][0] for _, _, new, step in rows]
    keeps_old = [step.word == blank.answer for _, blank, _, step in rows]
    return {"follows": float(np.mean(follows)), "keeps_old": float(np.mean(keeps_old))}


def fact_completion(model: KGLM, documents: Sequence[LinkedDocument]) -> list[tuple]:
    """Return ``(document, blank, step)`` for every blank: the first token after the document's prefix by
    **greedy decoding of the prompt's gold (oracle) annotations** (:func:`generate`, Table 4's oracle KGLM).

    The prompt is read with its gold mentions, parents and relations; the next token is then the most probable type,
    then entity (new: over all; related: the most probable recent parent, then its most probable edge), then the
    most probable word of that one entity's rendering distribution. This is one annotation path, not the next-word
    distribution: the authors' ``kglm/predictors/complete_the_sentence.py`` draws 100 samples of the annotations
    from the model and ranks words by their next-word probability averaged over the samples (vocabulary mass plus
    the copy mass of each sampled entity's alias tokens), a sampled estimate of the marginal ``p(x_t | x_<t)``, and
    returns the ranked words (Table 4 reports top-1 and top-5). Where several entities share mass the two can
    disagree: greedy takes the single likeliest path's word, the marginal the word with the most mass over all paths
    (:func:`next_word_distribution` computes that marginal exactly; it is not used for scoring here).
    """
    out = []
    for document in documents:
        for blank in document.blanks:
            out.append((document, blank, generate(model, document.prefix(blank.position), 1)[0]))
    return out


def completion_accuracy(completions: Sequence[tuple]) -> dict[str, float]:
    """Return top-1 accuracy overall (``all``) and per relation of :func:`fact_completion`'s results."""
    if not completions:
        raise InputError("no completions to score: the documents have no blanks")
    right: dict[str, list[bool]] = {}
    for _, blank, step in completions:
        right.setdefault(blank.relation, []).append(step.word == blank.answer)
    out = {relation: float(np.mean(r)) for relation, r in right.items()}
    out["all"] = float(np.mean([r for rs in right.values() for r in rs]))
    return out


def prior_completion(train: Sequence[LinkedDocument], documents: Sequence[LinkedDocument]) -> dict[str, float]:
    """Return the accuracy of answering each relation's most frequent answer in the training text (the prior)."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for document in train:
        for blank in document.blanks:
            counts.setdefault(blank.relation, Counter())[blank.answer] += 1
    guess = {relation: max(c.items(), key=lambda item: (item[1], item[0]))[0] for relation, c in counts.items()}
    blanks = [b for d in documents for b in d.blanks]
    if not blanks:
        raise InputError("no blanks to answer")
    right: dict[str, list[bool]] = {}
    for blank in blanks:
        right.setdefault(blank.relation, []).append(guess.get(blank.relation) == blank.answer)
    out = {relation: float(np.mean(r)) for relation, r in right.items()}
    out["all"] = float(np.mean([r for rs in right.values() for r in rs]))
    return out


def trained(model: KGLM, documents: Sequence[LinkedDocument], config, threads: int = 1, description: str = "fit"):
    """Fit ``model`` on ``documents`` with ``config`` (:func:`kbench.train.fit`) on ``threads`` torch threads;
    return the history."""
    from kbench.train import fit, torch_threads

    with torch_threads(threads):
        return fit(model, model.dataset(documents), None, config, description=description)
