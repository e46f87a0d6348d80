"""BERT-MK's KG-Transformer: entity embeddings contextualised by the sub-graph around each entity (GCKE).

He, Zhou, Ji, Yang, Wang, Zhang, Qin, Tu. *BERT-MK: Integrating Graph
Contextualized Knowledge into Pre-trained Language Models.* Findings of EMNLP
2020 (arXiv 1912.00147, 2019). §2.1 "Graph Contextualized Knowledge Embedding".

TransE gives each entity one vector fitted triple by triple. The KG-Transformer
reads a *sub-graph*: the triples around an entity become one node sequence in
which **relations are nodes too** (each triple ``(h, r, t)`` adds the edges
``h - r`` and ``r - t``; an entity shared by several triples is one node), and
a Transformer encoder runs over the nodes with its self-attention restricted to
the sub-graph's adjacency (each node attends to itself and its neighbours).
It is trained to reconstruct a masked entity: one triple's head or tail is
replaced by a ``[MASK]`` node and the output at that node scores every entity
(dot product with the entity embedding table, tied with the input, plus a bias).
The fused entity vector of an entity (for ERNIE-style fusion, ``BERT-MK`` in
``notebooks/07_bert_mk.ipynb``) is the output at its own node, in the sub-graph
of its own triples.

The training objective is masked-entity reconstruction with a softmax over
all entities (as CoKE, Wang et al. 2019, trains its contextual KG embedding);
the paper's own loss could not be checked offline, and a translation-style
margin loss on the outputs would be the alternative reading. Where the paper is
brief, other choices here: attention follows the adjacency in both directions
(so a head learns from its tail and back); each context holds at most
``max_triples`` triples around the centre entity, sampled with a fixed seed;
link prediction is scored with the filtered, realistic rank (PyKEEN's default)
over both sides.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.models.bert.modeling_bert import BertLayer

from kbench.encoders import entity_space_config
from kbench.errors import InputError
from kbench.kg import KnowledgeGraph

Triple = tuple[str, str, str]


@dataclass
class SubGraph:
    """A node sequence: node ids (entities, then relations offset by the entity count, or MASK) and edges."""

    nodes: np.ndarray      # (N,)
    edges: np.ndarray      # (E, 2) node positions
    target: int            # position of the node whose output is wanted (the masked or centre entity)
    answer: int = -100     # the masked entity's id (training and link prediction)


class KGTransformer(nn.Module):
    """The GCKE encoder: node embeddings, Transformer layers masked by adjacency, an entity-scoring output."""

    def __init__(self, kg: KnowledgeGraph, dim: int = 64, layers: int = 2, heads: int = 4, max_triples: int = 8,
                 dropout: float = 0.1, seed: int = 0):
        super().__init__()
        if len(kg) == 0:
            raise InputError(f"{kg.name!r} has no triples to learn from")
        if max_triples < 1:
            raise InputError(f"max_triples must be at least 1, got {max_triples}")
        torch.manual_seed(seed)
        triples = list(kg)
        self.entity_to_id = {e: i for i, e in enumerate(sorted({x for h, _, t in triples for x in (h, t)}))}
        self.relation_to_id = {r: i for i, r in enumerate(sorted({r for _, r, _ in triples}))}
        entities, relations = len(self.entity_to_id), len(self.relation_to_id)
        self.mask_id, self.pad_id = entities + relations, entities + relations + 1
        self.embeddings = nn.Embedding(entities + relations + 2, dim)
        nn.init.normal_(self.embeddings.weight, std=0.02)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        config = entity_space_config(dim, heads)
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(layers))
        self.bias = nn.Parameter(torch.zeros(entities))
        self.max_triples = max_triples
        self.seed, self.rng = seed, np.random.default_rng(seed)
        self.triples = np.asarray([(self.entity_to_id[h], self.relation_to_id[r], self.entity_to_id[t])
                                   for h, r, t in triples], np.int64)
        self.around = [[] for _ in range(entities)]
        for index, (h, _, t) in enumerate(self.triples):
            self.around[h].append(index)
            if t != h:
                self.around[t].append(index)

    @property
    def num_entities(self) -> int:
        return len(self.entity_to_id)

    def subgraph(self, centre: int, query: tuple[int, int, str] | None = None, exclude: int | None = None,
                 answer: int = -100, rng: np.random.Generator | None = None) -> SubGraph:
        """Return the node sequence of ``centre``'s context triples, plus a ``query`` triple with one end masked.

        ``query=(known, relation, "tail"|"head")`` adds ``known -r- [MASK]`` (or
        ``[MASK] -r- known``); ``exclude`` leaves one triple (the query's own) out of the context.
        """
        context = [i for i in self.around[centre] if i != exclude]
        budget = self.max_triples - (query is not None)
        if len(context) > budget:
            context = list((rng or self.rng).choice(context, budget, replace=False)) if budget > 0 else []
        nodes, position, edges = [], {}, []

        def entity_node(entity: int) -> int:
            if entity not in position:
                position[entity] = len(nodes)
                nodes.append(entity)
            return position[entity]

        entity_node(centre)
        offset = self.num_entities
        for index in context:
            h, r, t = self.triples[index]
            a, b = entity_node(int(h)), entity_node(int(t))
            nodes.append(offset + int(r))
            edges += [(a, len(nodes) - 1), (len(nodes) - 1, b)]
        target = 0
        if query is not None:
            known, relation, side = query
            k = entity_node(known)
            nodes.append(offset + relation)
            rel = len(nodes) - 1
            nodes.append(self.mask_id)
            target = len(nodes) - 1
            edges += [(k, rel), (rel, target)] if side == "tail" else [(target, rel), (rel, k)]
        return SubGraph(np.asarray(nodes, np.int64), np.asarray(edges, np.int64).reshape(-1, 2), target, answer)

    def collate(self, graphs: Sequence[SubGraph]) -> dict[str, torch.Tensor]:
        """Return padded nodes ``(B, N)``, the adjacency mask ``(B, 1, N, N)`` (self-loops on), targets, answers."""
        length = max(len(g.nodes) for g in graphs)
        nodes = np.full((len(graphs), length), self.pad_id, np.int64)
        adjacency = np.zeros((len(graphs), length, length), bool)
        adjacency[:, np.arange(length), np.arange(length)] = True
        for row, g in enumerate(graphs):
            nodes[row, :len(g.nodes)] = g.nodes
            if len(g.edges):
                adjacency[row, g.edges[:, 0], g.edges[:, 1]] = True
                adjacency[row, g.edges[:, 1], g.edges[:, 0]] = True
        return {"nodes": torch.from_numpy(nodes), "adjacency": torch.from_numpy(adjacency[:, None]),
                "target": torch.tensor([g.target for g in graphs]), "answer": torch.tensor([g.answer for g in graphs])}

    def encode(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        states = self.dropout(self.norm(self.embeddings(nodes)))
        for layer in self.layers:
            states = layer(states, adjacency)
        return states

    def forward(self, nodes, adjacency, target, answer=None) -> dict[str, torch.Tensor]:
        """Return ``scores`` over entities at each target node, and the reconstruction ``loss`` given answers."""
        states = self.encode(nodes, adjacency)[torch.arange(len(nodes), device=nodes.device), target]
        scores = states @ self.embeddings.weight[:self.num_entities].T + self.bias
        out = {"scores": scores}
        if answer is not None and (answer >= 0).any():
            out["loss"] = nn.functional.cross_entropy(scores, answer, ignore_index=-100)
        return out

    def queries(self, triples: np.ndarray, exclude_own: bool, rng: np.random.Generator | None = None
                ) -> list[SubGraph]:
        """Return both masked versions of each triple: tail from the head's context, head from the tail's.

        With ``exclude_own`` a triple of the KG is left out of its own query's context.
        """
        graphs = []
        where = {tuple(t): i for i, t in enumerate(self.triples.tolist())}
        for h, r, t in triples:
            # the triple itself never sits in its own query's context (a training triple would give its answer away)
            own = where.get((int(h), int(r), int(t))) if exclude_own else None
            graphs.append(self.subgraph(int(h), (int(h), int(r), "tail"), own, int(t), rng))
            graphs.append(self.subgraph(int(t), (int(t), int(r), "head"), own, int(h), rng))
        return graphs

    def ids(self, triples: Sequence[Triple]) -> np.ndarray:
        try:
            return np.asarray([(self.entity_to_id[h], self.relation_to_id[r], self.entity_to_id[t])
                               for h, r, t in triples], np.int64).reshape(-1, 3)
        except KeyError as error:
            raise InputError(f"{error.args[0]!r} is not in the KG the KG-Transformer was built on") from None

    def fit(self, epochs: int = 20, batch_size: int = 128, learning_rate: float = 1e-3, device: str = "cpu",
            progress: bool = True) -> list[float]:
        """Train masked-entity reconstruction on the KG's own triples; return the loss per epoch."""
        self.to(device).train()
        optimizer = torch.optim.AdamW(self.parameters(), lr=learning_rate)
        losses = []
        for _ in tqdm(range(epochs), desc="KG-Transformer", disable=not progress, leave=False):
            graphs = self.queries(self.triples, exclude_own=True)
            order = self.rng.permutation(len(graphs))
            total = 0.0
            for start in range(0, len(graphs), batch_size):
                batch = self.collate([graphs[i] for i in order[start:start + batch_size]])
                loss = self(**{k: v.to(device) for k, v in batch.items()})["loss"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch["nodes"])
            losses.append(total / len(graphs))
        self.eval()
        return losses

    @torch.no_grad()
    def evaluate(self, triples: Sequence[Triple], also_known: Sequence[Triple] = (), batch_size: int = 256
                 ) -> dict[str, float]:
        """Return filtered ``mrr`` and ``hits@10`` of reconstructing each head and tail of ``triples``."""
        self.eval()
        device = self.bias.device
        test = self.ids(triples)
        if not len(test):
            raise InputError("no triples to evaluate")
        known = {tuple(t) for t in self.triples} | {tuple(t) for t in self.ids(also_known)} | {tuple(t) for t in test}
        tails, heads = {}, {}
        for h, r, t in known:
            tails.setdefault((h, r), set()).add(t)
            heads.setdefault((t, r), set()).add(h)
        graphs = self.queries(test, exclude_own=True, rng=np.random.default_rng(self.seed))   # the same contexts each call
        ranks = []
        for start in range(0, len(graphs), batch_size):
            chunk = graphs[start:start + batch_size]
            scores = self(**{k: v.to(device) for k, v in self.collate(chunk).items() if k != "answer"})["scores"].cpu()
            for row, graph in enumerate(chunk):
                index = start + row
                h, r, t = test[index // 2]
                others = tails[(h, r)] if index % 2 == 0 else heads[(t, r)]
                score = scores[row].clone()
                gold = float(score[graph.answer])
                score[[o for o in others if o != graph.answer]] = float("-inf")
                better, equal = int((score > gold).sum()), int((score == gold).sum())
                ranks.append(better + (equal + 1) / 2)   # realistic rank: the mean of optimistic and pessimistic
        ranks = np.asarray(ranks)
        return {"mrr": float(np.mean(1 / ranks)), "hits@10": float(np.mean(ranks <= 10))}

    @torch.no_grad()
    def entity_vectors(self, batch_size: int = 256) -> torch.Tensor:
        """Return each entity's output at its own node, in the sub-graph of its own triples ``(entities, dim)``."""
        self.eval()
        device = self.bias.device
        vectors = []
        for start in range(0, self.num_entities, batch_size):
            graphs = [self.subgraph(e, rng=np.random.default_rng((self.seed, e)))
                      for e in range(start, min(self.num_entities, start + batch_size))]
            batch = self.collate(graphs)
            states = self.encode(batch["nodes"].to(device), batch["adjacency"].to(device))
            vectors.append(states[:, 0].cpu())
        return torch.cat(vectors)
