"""BERT-MK's KG-Transformer: entity embeddings contextualised by the sub-graph around each entity.

He, Zhou, Xiao, Jiang, Liu, Yuan, Xu. *BERT-MK: Integrating Graph
Contextualized Knowledge into Pre-trained Language Models.* Findings of EMNLP
2020 (arXiv 1912.00147). The section on learning graph contextualised
knowledge embeddings (GCKE); ``notebooks/07_bert_mk.ipynb`` §1-2.

TransE fits one vector per entity triple by triple. The KG-Transformer reads a
*sub-graph*: the triples around a centre entity become one node sequence in
which **relations are nodes too** (each triple ``(h, r, t)`` adds the directed
edges ``h -> r -> t``; an entity shared by several triples is one node). Each
triple keeps the *node-position index* of its head, relation and tail in the
sequence, and a Transformer encoder runs over the nodes with its self-attention
restricted to the sub-graph (a node attends to itself and its neighbours).

The objective follows the published descriptions of the paper: the node
*outputs* at each triple's positions are scored by translation, as TransE scores
its vectors, ``d(h, r, t) = ||o_h + o_r - o_t||``, each output first scaled to
unit length (TransE keeps its entity vectors on the unit sphere; the
Transformer's outputs leave a LayerNorm at length about ``sqrt(dim)``), with the
L1 norm of PyKEEN's TransE; a margin ranking loss (margin 1, PyKEEN's default
for TransE) ranks each triple of the sub-graph above the same triple in a
corrupted copy of the sub-graph, where every entity but the centre is replaced
by a random one. The input node embeddings start from TransE's vectors
(``init_from=``), as the paper starts from TransE. The offline copies of the
paper held its abstract and introduction, not the loss's equation: the margin,
the norm and the corruption are therefore PyKEEN's TransE conventions, named here
so they can be changed. The entity vector fused into ERNIE
(:meth:`KGTransformer.entity_vectors`) is the output at the centre node of the
entity's own sub-graph: exactly the graph shape, node and output that the loss
trains (every triple of the sub-graph has the centre at one end); scaled to unit
length (:func:`kbench.models.bert_mk.knowledge_variants`) it is the very vector
the distance reads. Link prediction scores a candidate the same way: ``-d`` of
the query triple added to the known entity's sub-graph (its own triple left out)
with the candidate at its open end, a node of its own even where the candidate
also sits in the context, so that every candidate is scored alike.

``objective="masked"`` keeps the alternative reading, CoKE's (Wang et al. 2019):
one end of a query triple is a ``[MASK]`` node whose output scores every entity
with a softmax. That loss trains only the ``[MASK]`` node's output, so this
objective has no entity vectors to fuse (:meth:`entity_vectors` refuses).

Direction: a relation node joins its head and tail, and attention alone is
symmetric, so the graph's direction enters as a learned attention bias per layer
and head for each kind of link — to itself, to a node it comes *from* (its
source), to a node it points *to* (its target). Without direction in the
graph, reversing a triple would leave every entity vector as it was, and under
the masked objective ``(a, likes, ?)`` and ``(?, likes, a)`` would be one query.
The node-position index of each triple (the paper's, as its descriptions read)
gives the loss its direction; how attention itself sees direction is our choice.
The biases start near equal and training moves them apart (tested on a trained
chain), but direction stays a small effect on the fused vectors: on the linking
world's KG, reversing every edge of a sub-graph moves its centre's vector by a
median 0.5% after the smoke profile's 100 steps, 2% after 400.

Other choices where the paper is brief: each sub-graph holds at most
``max_triples`` triples around the centre, sampled (fresh samples in training,
a fixed seeded sample for the fused vectors and for evaluation); new layers
start as BERT's (:func:`kbench.encoders.init_bert_weights`). Ids come from
PyKEEN's ``TriplesFactory`` and filtered ranks from PyKEEN's
``RankBasedEvaluator``, exactly as :meth:`kbench.kg.embeddings.KGEmbeddings.evaluate`
ranks TransE, so the two models are measured by the same code.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.models.bert.modeling_bert import BertLayer

from kbench.encoders import entity_space_config, init_bert_weights
from kbench.errors import InputError, UnknownNameError
from kbench.kg import KnowledgeGraph

Triple = tuple[str, str, str]
OBJECTIVES = ("translation", "masked")
SELF, FROM, TO = 1, 2, 3          # link kinds in ``links``: 0 is no link


@dataclass
class SubGraph:
    """A node sequence: node ids, directed edges ``(source, target)`` and each triple's node positions."""

    nodes: np.ndarray                  # (N,) entity ids, relations offset by the entity count, or MASK
    edges: np.ndarray                  # (E, 2) node positions, head -> relation -> tail
    target: int = 0                    # position whose output is wanted (the centre or the [MASK])
    answer: int = -100                 # the masked entity's id (masked objective)
    triples: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))   # (T, 3) positions h, r, t


class KGTransformer(nn.Module):
    """The GCKE encoder: node embeddings, Transformer layers over a directed sub-graph, a triple score."""

    def __init__(self, kg: KnowledgeGraph, dim: int = 64, layers: int = 2, heads: int = 4, max_triples: int = 8,
                 dropout: float = 0.1, seed: int = 0, objective: str = "translation", margin: float = 1.0,
                 init_from=None):
        super().__init__()
        from pykeen.triples import TriplesFactory

        if objective not in OBJECTIVES:
            raise UnknownNameError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
        if len(kg) == 0:
            raise InputError(f"{kg.name!r} has no triples to learn from")
        if max_triples < 1:
            raise InputError(f"max_triples must be at least 1, got {max_triples}")
        self.factory = TriplesFactory.from_labeled_triples(np.array(list(kg), dtype=str))
        self.entity_to_id = dict(self.factory.entity_to_id)
        self.relation_to_id = dict(self.factory.relation_to_id)
        entities, relations = len(self.entity_to_id), len(self.relation_to_id)
        self.mask_id, self.pad_id = entities + relations, entities + relations + 1
        self.objective, self.margin, self.max_triples, self.seed = objective, margin, max_triples, seed
        with torch.random.fork_rng(devices=[]):    # a seeded init that leaves the global RNG as it was
            torch.manual_seed(seed)
            self.embeddings = nn.Embedding(entities + relations + 2, dim)
            self.norm = nn.LayerNorm(dim, eps=1e-12)
            self.dropout = nn.Dropout(dropout)
            config = entity_space_config(dim, heads)
            config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
            self.layers = nn.ModuleList(BertLayer(config) for _ in range(layers))
            self.direction = nn.ModuleList(nn.Embedding(3, heads) for _ in range(layers))   # self / from / to
            self.bias = nn.Parameter(torch.zeros(entities))     # the masked objective's output bias
            init_bert_weights(self.embeddings, self.norm, *self.layers, *self.direction)
        if init_from is not None:
            self._start_from(init_from)
        self.rng = np.random.default_rng(seed)
        self.triples = self.factory.mapped_triples.numpy().astype(np.int64)
        self.around = [[] for _ in range(entities)]
        for index, (h, _, t) in enumerate(self.triples):
            self.around[h].append(index)
            if t != h:
                self.around[t].append(index)
        self.steps = 0

    def _start_from(self, embeddings) -> None:
        """Copy TransE's entity and relation vectors (same KG, same dimension) into the input embeddings."""
        if embeddings.entity_to_id != self.entity_to_id or embeddings.relation_to_id != self.relation_to_id:
            raise InputError("init_from must be trained on the same KG (the same entities and relations)")
        vectors = torch.cat([embeddings.entity_embeddings, embeddings.relation_embeddings])
        if vectors.shape[1] != self.embeddings.embedding_dim:
            raise InputError(f"init_from has dimension {vectors.shape[1]}, the KG-Transformer "
                             f"{self.embeddings.embedding_dim}")
        with torch.no_grad():
            self.embeddings.weight[:len(vectors)] = vectors

    @property
    def num_entities(self) -> int:
        return len(self.entity_to_id)

    @property
    def num_relations(self) -> int:
        return len(self.relation_to_id)

    @property
    def device(self) -> torch.device:
        return self.bias.device

    # -- sub-graphs ---------------------------------------------------------------------------------------------

    def _context(self, centre: int, exclude: int | None, budget: int, rng: np.random.Generator) -> list[int]:
        context = [i for i in self.around[centre] if i != exclude]
        if len(context) > budget:
            context = sorted(rng.choice(context, budget, replace=False).tolist()) if budget > 0 else []
        return context

    def _graph(self, centre: int, context: Sequence[int], extra: Sequence[tuple[int, int, int]] = ()) -> SubGraph:
        """Build the node sequence of ``centre``, its ``context`` triples (indices) and ``extra`` id triples.

        In ``extra`` an entity id of ``-1`` is a ``[MASK]`` node and ``-2`` an open slot (a fresh node
        whose id the caller fills in); both are new nodes, never shared.
        """
        nodes, position, edges, triples = [], {}, [], []

        def entity_node(entity: int) -> int:
            if entity < 0:
                nodes.append(self.mask_id if entity == -1 else self.pad_id)
                return len(nodes) - 1
            if entity not in position:
                position[entity] = len(nodes)
                nodes.append(entity)
            return position[entity]

        entity_node(centre)
        rows = [tuple(int(x) for x in self.triples[i]) for i in context] + [tuple(t) for t in extra]
        for h, r, t in rows:
            a, b = entity_node(h), entity_node(t)
            nodes.append(self.num_entities + r)
            edges += [(a, len(nodes) - 1), (len(nodes) - 1, b)]
            triples.append((a, len(nodes) - 1, b))
        return SubGraph(np.asarray(nodes, np.int64), np.asarray(edges, np.int64).reshape(-1, 2), 0, -100,
                        np.asarray(triples, np.int64).reshape(-1, 3))

    def subgraph(self, centre: int, rng: np.random.Generator | None = None) -> SubGraph:
        """Return ``centre``'s sub-graph: up to ``max_triples`` of its triples, the centre at position 0."""
        return self._graph(centre, self._context(centre, None, self.max_triples, rng or self.rng))

    def fused_graph(self, entity: int) -> SubGraph:
        """Return the sub-graph :meth:`entity_vectors` reads ``entity``'s vector from (a fixed, seeded sample)."""
        return self.subgraph(entity, np.random.default_rng((self.seed, entity)))

    def query(self, triple: Sequence[int], side: str, rng: np.random.Generator | None = None) -> SubGraph:
        """Return the graph that scores one end (``side``: ``"head"`` or ``"tail"``) of an id ``triple``.

        The known end is the centre; its context leaves the triple itself out (a
        training triple would give its answer away) and holds ``max_triples - 1``
        triples; the query triple joins with its open end as a fresh node (``[MASK]``
        for the masked objective, a slot for candidates in the translation one).
        """
        h, r, t = (int(x) for x in triple)
        if side not in ("head", "tail"):
            raise InputError(f"side must be 'head' or 'tail', got {side!r}")
        own = next((i for i in self.around[h] if tuple(self.triples[i]) == (h, r, t)), None)
        known, answer = (h, t) if side == "tail" else (t, h)
        rng = rng or np.random.default_rng((self.seed, h, r, t, side == "tail"))
        open_end = -1 if self.objective == "masked" else -2
        extra = [(known, r, open_end)] if side == "tail" else [(open_end, r, known)]
        graph = self._graph(known, self._context(known, own, self.max_triples - 1, rng), extra)
        query = graph.triples[-1]
        graph.target = int(query[2] if side == "tail" else query[0])
        graph.answer = answer
        return graph

    def collate(self, graphs: Sequence[SubGraph]) -> dict[str, torch.Tensor]:
        """Return padded ``nodes`` ``(B, N)``, the link kinds ``links`` ``(B, N, N)``, targets and triples.

        ``links[b, i, j]`` is how node ``i`` may attend to node ``j``: 0 not at all,
        ``SELF``, ``FROM`` (``j -> i`` is an edge: ``j`` is ``i``'s source) or ``TO``
        (``i -> j``). Padding sees itself only. ``triples`` is ``(B, T, 3)`` node
        positions, padded with ``-1``.
        """
        length = max(len(g.nodes) for g in graphs)
        most = max(len(g.triples) for g in graphs)
        nodes = np.full((len(graphs), length), self.pad_id, np.int64)
        links = np.zeros((len(graphs), length, length), np.int64)
        links[:, np.arange(length), np.arange(length)] = SELF
        triples = np.full((len(graphs), max(most, 1), 3), -1, np.int64)
        for row, g in enumerate(graphs):
            nodes[row, :len(g.nodes)] = g.nodes
            if len(g.edges):
                links[row, g.edges[:, 1], g.edges[:, 0]] = FROM
                links[row, g.edges[:, 0], g.edges[:, 1]] = TO
            triples[row, :len(g.triples)] = g.triples
        return {"nodes": torch.from_numpy(nodes), "links": torch.from_numpy(links),
                "target": torch.tensor([g.target for g in graphs]), "answer": torch.tensor([g.answer for g in graphs]),
                "triples": torch.from_numpy(triples)}

    # -- the encoder and its scores -----------------------------------------------------------------------------

    def encode(self, nodes: torch.Tensor, links: torch.Tensor) -> torch.Tensor:
        """Return the last layer's node outputs ``(B, N, dim)``; attention follows ``links`` with a learned bias."""
        states = self.dropout(self.norm(self.embeddings(nodes)))
        blocked = (links == 0)[:, None]
        for layer, direction in zip(self.layers, self.direction):
            bias = direction((links - 1).clamp(min=0)).permute(0, 3, 1, 2)        # (B, heads, N, N)
            mask = bias.masked_fill(blocked, torch.finfo(bias.dtype).min).to(states.dtype)
            states = layer(states, mask)
        return states

    def distances(self, states: torch.Tensor, triples: torch.Tensor) -> torch.Tensor:
        """Return ``||o_h + o_r - o_t||_1`` of each triple ``(B, T)`` from its node positions (padding: 0)."""
        index = triples.clamp(min=0)
        rows = torch.arange(len(states), device=states.device)[:, None]
        h, r, t = (nn.functional.normalize(states[rows, index[..., k]], dim=-1) for k in range(3))
        return (h + r - t).abs().sum(-1) * (triples[..., 0] >= 0)

    def forward(self, nodes, links, target=None, answer=None, triples=None, negative=None) -> dict[str, torch.Tensor]:
        """Return the objective's ``loss`` (and ``scores`` over entities at the target for the masked one).

        Translation: ``negative`` is the corrupted batch (same positions); the loss is
        the margin ranking loss ``[margin + d(triple) - d(corrupted triple)]_+`` over
        every triple of every sub-graph.
        """
        states = self.encode(nodes, links)
        if self.objective == "masked":
            at = states[torch.arange(len(nodes), device=nodes.device), target]
            scores = at @ self.embeddings.weight[:self.num_entities].T + self.bias
            out = {"scores": scores, "states": states}
            if answer is not None and (answer >= 0).any():
                out["loss"] = nn.functional.cross_entropy(scores, answer, ignore_index=-100)
            return out
        out = {"states": states, "distances": self.distances(states, triples)}
        if negative is not None:
            corrupted = self.distances(self.encode(negative["nodes"], negative["links"]), triples)
            real = triples[..., 0] >= 0
            out["loss"] = (self.margin + out["distances"] - corrupted).clamp(min=0)[real].mean()
        return out

    def corrupt(self, graph: SubGraph, rng: np.random.Generator) -> SubGraph:
        """Return ``graph`` with every entity node but the centre replaced by another entity, drawn uniformly."""
        nodes = graph.nodes.copy()
        ends = sorted({int(p) for p in graph.triples[:, [0, 2]].ravel()} - {0})
        for position in ends:
            other = int(rng.integers(self.num_entities - 1))
            nodes[position] = other + (other >= nodes[position])
        return SubGraph(nodes, graph.edges, graph.target, graph.answer, graph.triples)

    def training_batch(self, centres: Sequence[int], rng: np.random.Generator | None = None) -> dict:
        """Return one training batch: the centres' sub-graphs (translation) or both queries of a triple (masked)."""
        rng = rng or self.rng
        if self.objective == "masked":
            graphs = [self.query(self.triples[i], side, rng) for i in centres for side in ("tail", "head")]
            return self.collate(graphs)
        graphs = [self.subgraph(int(c), rng) for c in centres]
        batch = self.collate(graphs)
        batch["negative"] = {k: v for k, v in self.collate([self.corrupt(g, rng) for g in graphs]).items()
                             if k in ("nodes", "links")}
        return batch

    def fit(self, steps: int = 200, batch_size: int = 16, learning_rate: float = 1e-3, device: str = "cpu",
            progress: bool = True) -> list[float]:
        """Train the objective for ``steps`` optimiser steps (AdamW); return the loss of each step.

        A step holds ``batch_size`` sub-graphs (translation: centre entities in a
        shuffled cycle over all entities) or ``batch_size`` triples, each queried
        at both ends (masked).
        """
        if steps < 0 or batch_size < 1:
            raise InputError(f"steps must be >= 0 and batch_size >= 1 (got {steps}, {batch_size})")
        self.to(device).train()
        optimizer = torch.optim.AdamW(self.parameters(), lr=learning_rate)
        pool = self.num_entities if self.objective == "translation" else len(self.triples)
        order, losses = np.zeros(0, np.int64), []
        for _ in tqdm(range(steps), desc="KG-Transformer", disable=not progress, leave=False):
            if len(order) < batch_size:
                order = np.concatenate([order, self.rng.permutation(pool)])
            chosen, order = order[:batch_size], order[batch_size:]
            batch = _to(self.training_batch(chosen), device)
            loss = self(**batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        self.steps += steps
        self.eval()
        return losses

    # -- link prediction ----------------------------------------------------------------------------------------

    def ids(self, triples: Sequence[Triple]) -> torch.Tensor:
        """Return ``(n, 3)`` id triples through PyKEEN's mapping; an unknown label is a clear error."""
        triples = list(triples)
        for index, (h, r, t) in enumerate(triples):
            for label, known in ((h, self.entity_to_id), (r, self.relation_to_id), (t, self.entity_to_id)):
                if label not in known:
                    raise InputError(f"triple #{index}: {label!r} is not in the KG the KG-Transformer was built on")
        if not triples:
            raise InputError("no triples to evaluate")
        return torch.tensor([(self.entity_to_id[h], self.relation_to_id[r], self.entity_to_id[t])
                             for h, r, t in triples], dtype=torch.long)

    @torch.no_grad()
    def score_candidates(self, triples: torch.Tensor, side: str, chunk: int = 8192) -> torch.Tensor:
        """Return ``(n, entities)`` scores of every entity at the ``side`` end of each id triple (higher: better)."""
        self.eval()
        graphs = [self.query(t.tolist(), side) for t in triples]
        if self.objective == "masked":
            batch = _to(self.collate(graphs), self.device)
            return self(batch["nodes"], batch["links"], batch["target"])["scores"].float().cpu()
        rows = []
        for graph in graphs:
            batch = _to(self.collate([graph]), self.device)
            nodes = batch["nodes"].repeat(self.num_entities, 1)
            nodes[:, graph.target] = torch.arange(self.num_entities, device=self.device)
            scores = []
            for start in range(0, self.num_entities, chunk):
                part = nodes[start:start + chunk]
                states = self.encode(part, batch["links"].expand(len(part), -1, -1))
                scores.append(-self.distances(states, _last(batch["triples"], graph).expand(len(part), -1, -1))[:, 0])
            rows.append(torch.cat(scores).float().cpu())
        return torch.stack(rows)

    def evaluate(self, triples: Sequence[Triple], also_known: Sequence[Triple] = ()) -> dict[str, float]:
        """Return filtered link-prediction ``mrr`` and ``hits@1/3/10`` on ``triples`` (PyKEEN's evaluator).

        The same call as :meth:`kbench.kg.embeddings.KGEmbeddings.evaluate`: PyKEEN's
        ``RankBasedEvaluator(filtered=True)`` over both sides, filtered against the
        training triples, ``also_known`` and the evaluated triples (realistic ranks).
        """
        from pykeen.evaluation import RankBasedEvaluator

        from kbench.kg.embeddings import _quiet_pykeen

        _quiet_pykeen()
        mapped = self.ids(triples)
        extra = [self.factory.mapped_triples] + ([self.ids(also_known)] if len(also_known) else [])
        result = RankBasedEvaluator(filtered=True).evaluate(_Ranker(self), mapped, additional_filter_triples=extra,
                                                             use_tqdm=False, batch_size=256,
                                                             slice_size=self.num_entities)
        return {name: float(result.get_metric(name)) for name in ("mrr", "hits@1", "hits@3", "hits@10")}

    @torch.no_grad()
    def entity_vectors(self, batch_size: int = 256) -> torch.Tensor:
        """Return each entity's output at the centre of its own sub-graph ``(entities, dim)`` (translation only).

        :meth:`fused_graph` is the graph: the shape the translation loss trains, whose
        every triple has the centre at one end.
        """
        if self.objective != "translation":
            raise InputError("the masked objective trains only the [MASK] node's output, so it has no entity "
                             "vectors to fuse: use objective='translation' (the paper's)")
        self.eval()
        vectors = []
        for start in range(0, self.num_entities, batch_size):
            batch = self.collate([self.fused_graph(e) for e in range(start, min(self.num_entities,
                                                                                  start + batch_size))])
            vectors.append(self.encode(batch["nodes"].to(self.device), batch["links"].to(self.device))[:, 0].cpu())
        return torch.cat(vectors)


def _last(triples: torch.Tensor, graph: SubGraph) -> torch.Tensor:
    """Return the query triple's positions (the graph's last triple) as ``(1, 1, 3)``."""
    return triples[:, len(graph.triples) - 1:len(graph.triples)]


def _to(batch: dict, device) -> dict:
    return {k: (_to(v, device) if isinstance(v, dict) else v.to(device)) for k, v in batch.items()}


class _Ranker(nn.Module):
    """The KG-Transformer as PyKEEN's evaluator sees a model: ``predict`` returns every entity's score."""

    def __init__(self, model: KGTransformer):
        super().__init__()
        self.model = model
        self.num_entities, self.num_relations = model.num_entities, model.num_relations

    @property
    def device(self) -> torch.device:
        return self.model.device

    def predict(self, hrt_batch: torch.Tensor, target: str, **_) -> torch.Tensor:
        if target not in ("head", "tail"):
            raise InputError(f"the KG-Transformer ranks heads and tails, not {target!r}")
        return self.model.score_candidates(hrt_batch.cpu(), target).to(hrt_batch.device)
