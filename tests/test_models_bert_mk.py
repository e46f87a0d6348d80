"""BERT-MK: the KG-Transformer's sub-graphs (relations as nodes), adjacency-masked attention, masked-entity
reconstruction and link prediction; the variants that differ only in their entity vectors."""
from __future__ import annotations

import pytest
import torch

from kbench.errors import InputError
from kbench.kg import KnowledgeGraph
from kbench.kg.embeddings import load_pykeen_dataset, train_embeddings
from kbench.kg.kg_transformer import KGTransformer
from kbench.models.bert_mk import knowledge_variants, make_classifier

TRIPLES = [("a", "likes", "b"), ("a", "knows", "c"), ("c", "likes", "d"), ("d", "knows", "e")]


def model(layers=1, **kw):
    return KGTransformer(KnowledgeGraph.from_triples(TRIPLES), dim=8, layers=layers, heads=2, **kw).eval()


def test_a_subgraph_has_relation_nodes_between_its_entities():
    m = model()
    a, c = m.entity_to_id["a"], m.entity_to_id["c"]
    graph = m.subgraph(a)
    names = [m.num_entities + m.relation_to_id[r] if r in m.relation_to_id else None for r in ("likes", "knows")]
    assert graph.nodes[0] == a and graph.target == 0
    assert len(graph.nodes) == 5 and sorted(graph.nodes[[2, 4]].tolist()) == sorted(names)   # a, b, r, c, r
    for relation_position in (2, 4):                        # each relation node joins a head and a tail
        ends = {int(x) for edge in graph.edges if relation_position in edge for x in edge} - {relation_position}
        assert len(ends) == 2 and 0 in ends
    assert c in graph.nodes.tolist() and graph.nodes.tolist().count(a) == 1


def test_a_query_masks_one_end_and_can_leave_its_own_triple_out():
    m = model()
    a, c = m.entity_to_id["a"], m.entity_to_id["c"]
    own = next(i for i, t in enumerate(m.triples) if t[0] == a and t[2] == c)
    graph = m.subgraph(a, (a, int(m.triples[own][1]), "tail"), exclude=own, answer=c)
    assert graph.nodes[graph.target] == m.mask_id and graph.answer == c
    assert c not in graph.nodes.tolist()                    # the answer is not in the context
    assert [graph.target] in [[int(e[1])] for e in graph.edges]


def test_the_adjacency_is_symmetric_with_self_loops_and_padding_sees_itself():
    m = model()
    batch = m.collate([m.subgraph(0), m.subgraph(m.entity_to_id["e"])])
    adjacency = batch["adjacency"][:, 0]
    assert torch.equal(adjacency, adjacency.transpose(1, 2)) and adjacency.diagonal(dim1=1, dim2=2).all()
    short = int((batch["nodes"][1] != m.pad_id).sum())
    assert adjacency[1, short:, :].sum() == adjacency.shape[1] - short   # padding rows: only themselves


def test_attention_follows_the_edges():
    """With one layer, a node two hops away cannot change the target's output."""
    m = model(layers=1)
    graph = m.subgraph(m.entity_to_id["a"])
    batch = m.collate([graph])
    far = graph.nodes.tolist().index(m.entity_to_id["c"])   # a - knows - c: two hops from a
    base = m.encode(batch["nodes"], batch["adjacency"])[0, 0]
    with torch.no_grad():
        m.embeddings.weight[m.entity_to_id["c"]] += 5.0
    moved = m.encode(batch["nodes"], batch["adjacency"])
    assert torch.allclose(moved[0, 0], base, atol=1e-6) and not torch.allclose(moved[0, far], base)


def test_reconstruction_learns_nations_and_ranks_are_filtered():
    train, valid, test = load_pykeen_dataset("Nations")
    m = KGTransformer(train, dim=16, layers=2, heads=4, max_triples=4, seed=0)
    before = m.evaluate(list(test)[:60], list(valid))
    losses = m.fit(epochs=3, batch_size=256, learning_rate=3e-3, progress=False)
    after = m.evaluate(list(test)[:60], list(valid))
    assert after == m.evaluate(list(test)[:60], list(valid))   # the same contexts each call
    # 14 nations: even random ranks give MRR ~0.38; three epochs gain a few points (0.383 -> 0.428)
    assert losses[-1] < losses[0] and after["mrr"] > before["mrr"] + 0.03
    assert 0 < after["mrr"] <= 1 and 0 <= after["hits@10"] <= 1
    vectors = m.entity_vectors()
    assert vectors.shape == (m.num_entities, 16) and torch.equal(vectors, m.entity_vectors())


def test_a_perfect_scorer_has_mrr_one(monkeypatch):
    m = model()

    def perfect(nodes, adjacency, target, answer=None):
        scores = torch.zeros(len(nodes), m.num_entities)
        scores[torch.arange(len(nodes)), perfect.answers[:len(nodes)]] = 1.0
        return {"scores": scores}

    graphs = m.queries(m.ids(TRIPLES[:2]), exclude_own=False)
    perfect.answers = torch.tensor([g.answer for g in graphs])
    monkeypatch.setattr(m, "forward", perfect)
    assert m.evaluate(TRIPLES[:2]) == {"mrr": 1.0, "hits@10": 1.0}


def test_bad_input_gets_a_clear_error():
    with pytest.raises(InputError, match="no triples"):
        KGTransformer(KnowledgeGraph.from_triples([], name="empty"))
    with pytest.raises(InputError, match="max_triples"):
        model(max_triples=0)
    with pytest.raises(InputError, match="not in the KG"):
        model().evaluate([("a", "likes", "zz")])
    with pytest.raises(InputError, match="divisible"):
        KGTransformer(KnowledgeGraph.from_triples(TRIPLES), dim=10, heads=4)


def test_variants_differ_only_in_their_entity_vectors():
    kg = KnowledgeGraph.from_triples(TRIPLES)
    graph, transe = model(), train_embeddings(kg, "TransE", dim=8, epochs=0, seed=0, progress=False)
    bert, ernie, mk = knowledge_variants(transe, graph)
    assert bert.options["k_layers"] == 0 and "k_layers" not in ernie.options
    assert mk.options["entity_embeddings"].shape == (5, 8) and mk.options["entity_to_id"] == graph.entity_to_id
    assert torch.equal(ernie.options["entity_embeddings"], transe.entity_embeddings)
    classifier = make_classifier(2, base_model="tiny", k_layers=1, heads=2, **mk.options)
    assert torch.equal(classifier.ernie.entities, mk.options["entity_embeddings"])
    other = train_embeddings(KnowledgeGraph.from_triples(TRIPLES[:2]), "TransE", dim=8, epochs=0, progress=False)
    with pytest.raises(InputError, match="same entities"):
        knowledge_variants(other, graph)
    with pytest.raises(InputError, match="entity_embeddings"):
        make_classifier(2, base_model="tiny")
