"""KG embeddings with PyKEEN: parity with PyKEEN itself on Nations, hand-computed filtered ranks with ties,
held-out splits, training helps, save/load, the gc swap, bad input."""
from __future__ import annotations

import gc
import tomllib
import warnings
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from kbench.errors import InputError, UnknownNameError
from kbench.kg import KnowledgeGraph
from kbench.kg.embeddings import (epoch_gc_skipped, load_embeddings, load_pykeen_dataset, split_kg,
                                  train_embeddings)


@pytest.fixture(scope="module")
def nations():
    return load_pykeen_dataset("Nations")


@pytest.fixture(scope="module")
def trained(nations):
    return train_embeddings(nations[0], "TransE", dim=32, epochs=30, seed=0, progress=False)


def test_nations_ships_with_pykeen(nations):
    train, valid, test = nations
    assert (len(train), len(valid), len(test)) == (1592, 199, 201)
    assert len({e for s, _, o in train for e in (s, o)}) == 14


def test_ids_and_untrained_vectors_equal_pykeens_own(nations):
    """Same vocabularies as PyKEEN's Nations factory, and epochs=0 gives PyKEEN's own initial vectors."""
    import pykeen.datasets
    import pykeen.models

    dataset = pykeen.datasets.Nations()
    untrained = train_embeddings(nations[0], "TransE", dim=16, epochs=0, seed=3, progress=False)
    assert untrained.entity_to_id == dict(dataset.training.entity_to_id)
    assert untrained.relation_to_id == dict(dataset.training.relation_to_id)
    torch.manual_seed(3)
    reference = pykeen.models.TransE(triples_factory=dataset.training, embedding_dim=16, random_seed=3)
    assert torch.equal(untrained.entity_embeddings, reference.entity_representations[0](indices=None).detach())


def test_evaluate_equals_pykeens_evaluator(nations, trained):
    from pykeen.evaluation import RankBasedEvaluator

    import pykeen.datasets

    dataset = pykeen.datasets.Nations()
    ours = trained.evaluate(nations[2], also_known=nations[1])
    theirs = RankBasedEvaluator(filtered=True).evaluate(
        trained.model, dataset.testing.mapped_triples, use_tqdm=False, batch_size=256,
        additional_filter_triples=[dataset.training.mapped_triples, dataset.validation.mapped_triples])
    assert ours["mrr"] == pytest.approx(theirs.get_metric("mrr"))
    assert ours["hits@10"] == pytest.approx(theirs.get_metric("hits@10"))


def hand_set_transe(kg, entities, relations):
    """TransE with dimension 1 and the given scalar vectors: score(h, r, t) = -|h + r - t|."""
    embeddings = train_embeddings(kg, "TransE", dim=1, epochs=0, progress=False)
    with torch.no_grad():
        embeddings.model.entity_representations[0]._embeddings.weight.copy_(
            torch.tensor([[entities[e]] for e in sorted(entities)]))
        embeddings.model.relation_representations[0]._embeddings.weight.copy_(
            torch.tensor([[relations[r]] for r in sorted(relations)]))
    return embeddings


def test_filtered_ranks_with_shared_queries_and_ties_by_hand():
    """Entities on a line a=0, b=1, c=2, d=1 (tied with b), e=3; r=+1. Training triples (a,r,d), (b,r,c), (c,r,e).

    Realistic rank = mean of the optimistic and pessimistic ranks; a candidate that forms a known
    triple (training, also_known or evaluated) is filtered out, ties that are not known stay.
    (a,r,b): tail — d ties with b but (a,r,d) is known: 1; head — a alone at score 0: 1.
    (b,r,e): head — c scores higher but (c,r,e) is known; d and e tie with b: ranks 1..3, realistic 2;
             tail — c higher but known; b ties (unknown), d ties but (b,r,d) is evaluated: ranks 1..2, 1.5.
    (b,r,d): head — a higher but (a,r,d) known; d ties: 1.5; tail — c known; b ties, e is (b,r,e): 1.5.
    MRR = (1 + 1 + 1/2 + 3 * 2/3) / 6 = 0.75; hits@1 = 2/6.
    """
    kg = KnowledgeGraph.from_triples([("a", "r", "d"), ("b", "r", "c"), ("c", "r", "e")])
    embeddings = hand_set_transe(kg, {"a": 0.0, "b": 1.0, "c": 2.0, "d": 1.0, "e": 3.0}, {"r": 1.0})
    test = [("a", "r", "b"), ("b", "r", "e"), ("b", "r", "d")]
    scores = embeddings.evaluate(test)
    assert scores["mrr"] == pytest.approx(0.75) and scores["hits@1"] == pytest.approx(1 / 3)
    assert scores["hits@3"] == 1.0
    # (d,r,e) known too: the tie d leaves (b,r,e)'s head ranking: 1..2, realistic 1.5
    assert embeddings.evaluate(test, also_known=[("d", "r", "e")])["mrr"] == pytest.approx((2 + 4 / 1.5) / 6)
    # without (b,r,d) among the evaluated triples, d stays a tie in (b,r,e)'s tail ranking: 1..3, realistic 2
    two = embeddings.evaluate(test[:2])
    assert two["mrr"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4) and two["hits@1"] == pytest.approx(0.5)


def test_training_beats_the_untrained_baseline(nations, trained):
    untrained = train_embeddings(nations[0], "TransE", dim=32, epochs=0, seed=0, progress=False)
    before, after = untrained.evaluate(nations[2]), trained.evaluate(nations[2])
    assert after["mrr"] > before["mrr"] + 0.08
    assert trained.losses[-1] < trained.losses[0]


def test_rotate_vectors_interleave_real_and_imaginary_parts(nations):
    embeddings = train_embeddings(nations[0], "RotatE", dim=16, epochs=0, seed=0, progress=False)
    complex_vectors = embeddings.model.entity_representations[0](indices=None).detach()
    assert complex_vectors.is_complex() and embeddings.entity_embeddings.shape == (14, 32)
    assert torch.equal(embeddings.entity_embeddings[:, 0::2], complex_vectors.real)
    assert torch.equal(embeddings.entity_embeddings[:, 1::2], complex_vectors.imag)


def test_distmult_trains_and_beats_its_untrained_vectors(nations):
    before = train_embeddings(nations[0], "DistMult", dim=16, epochs=0, seed=0, progress=False)
    after = train_embeddings(nations[0], "DistMult", dim=16, epochs=20, seed=0, progress=False)
    assert after.entity_embeddings.shape == (14, 16)
    assert after.evaluate(nations[2])["mrr"] > before.evaluate(nations[2])["mrr"] + 0.05


def test_save_and_load_round_trip(trained, tmp_path):
    trained.save(tmp_path / "nations.safetensors")
    loaded = load_embeddings(tmp_path / "nations.safetensors")
    assert torch.equal(loaded.entity_embeddings, trained.entity_embeddings)
    assert torch.equal(loaded.relation_embeddings, trained.relation_embeddings)
    assert loaded.relation_embeddings.shape == (len(trained.relation_to_id), 32)
    assert loaded.entity_to_id == trained.entity_to_id and loaded.relation_to_id == trained.relation_to_id
    assert loaded.model_name == "TransE" and loaded.epochs == 30
    assert torch.equal(loaded.vector("china"), trained.vector("china"))


def test_split_kg_holds_triples_out_and_keeps_every_entity_in_training(nations):
    kg = nations[0]
    training, held_out = split_kg(kg, held_out=0.2, seed=1)
    assert set(training) | set(held_out) == set(kg) and not set(training) & set(held_out)
    assert abs(len(held_out) - 0.2 * len(kg)) <= 0.02 * len(kg)
    entities = lambda graph: {e for s, _, o in graph for e in (s, o)}
    assert entities(held_out) <= entities(training) and entities(training) == entities(kg)
    assert {r for _, r, _ in held_out} <= {r for _, r, _ in training}
    assert set(split_kg(kg, 0.2, seed=1)[1]) == set(held_out) and set(split_kg(kg, 0.2, seed=2)[1]) != set(held_out)
    # a star: every leaf occurs once, so only what keeps each leaf in training can be held out
    star = KnowledgeGraph.from_triples([("hub", "r", f"leaf{i}") for i in range(10)] + [("leaf0", "s", "leaf1")])
    training, held_out = split_kg(star, held_out=0.5, seed=0)
    assert entities(training) == entities(star) and {r for _, r, _ in training} == {"r", "s"}
    assert set(training) | set(held_out) == set(star) and len(held_out) <= 2   # (hub, r, leaf0), (hub, r, leaf1)
    with pytest.raises(InputError, match="between 0 and 1"):
        split_kg(kg, held_out=1.0)
    with pytest.raises(InputError, match="too few"):
        split_kg(KnowledgeGraph.from_triples([("a", "r", "b")]))


def test_pykeen_still_calls_gc_through_its_training_loop_module():
    """Fails loudly when PyKEEN moves its per-epoch collection: then the swap would do nothing."""
    from pykeen.training import training_loop

    assert training_loop.gc is gc, "PyKEEN changed: revisit kbench.kg.embeddings.epoch_gc_skipped"


def test_the_gc_swap_always_restores_and_nests():
    from pykeen.training import training_loop

    with epoch_gc_skipped() as skipped:
        assert skipped and training_loop.gc is not gc and training_loop.gc.collect() == 0
        with epoch_gc_skipped():
            assert training_loop.gc is not gc
        assert training_loop.gc is not gc   # the inner block leaves the outer one's swap in place
    assert training_loop.gc is gc
    with pytest.raises(ZeroDivisionError):
        with epoch_gc_skipped():
            1 / 0
    assert training_loop.gc is gc
    train_embeddings(KnowledgeGraph.from_triples([("a", "r", "b"), ("b", "r", "c")]), dim=4, epochs=2,
                     progress=False)
    assert training_loop.gc is gc


def test_the_gc_swap_warns_and_patches_nothing_without_pykeens_name(monkeypatch):
    from pykeen.training import training_loop

    monkeypatch.delattr(training_loop, "gc")
    with pytest.warns(RuntimeWarning, match="no `gc` any more"):
        with epoch_gc_skipped() as skipped:
            assert not skipped and not hasattr(training_loop, "gc")
    assert not hasattr(training_loop, "gc")


def test_installed_pykeen_is_within_the_declared_bounds():
    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    requirement = Requirement(next(d for d in project["dependencies"] if d.startswith("pykeen")))
    assert requirement.specifier and any(s.operator == "<" for s in requirement.specifier), "pykeen needs a bound"
    assert version("pykeen") in requirement.specifier


def test_bad_input(trained, tmp_path):
    with pytest.raises(InputError, match="not in the embedding table"):
        trained.vector("atlantis")
    with pytest.raises(InputError, match="'atlantis' is not in the embedding table"):
        trained.evaluate([("china", "treaties", "atlantis")])
    with pytest.raises(InputError, match="relation 'likes'"):
        trained.evaluate([("china", "likes", "usa")])
    with pytest.raises(InputError, match="no triples"):
        trained.evaluate([])
    with pytest.raises(UnknownNameError, match="TransE"):
        train_embeddings(KnowledgeGraph.from_triples([("a", "r", "b")]), "TransH")
    with pytest.raises(InputError, match="no triples"):
        train_embeddings(KnowledgeGraph("empty"))
    with pytest.raises(InputError):
        train_embeddings(KnowledgeGraph.from_triples([("a", "r", "b")]), dim=0)
    with pytest.raises(UnknownNameError, match="Nations"):
        load_pykeen_dataset("FB15k")
    with pytest.raises(InputError, match="no embeddings file"):
        load_embeddings(tmp_path / "missing.safetensors")
