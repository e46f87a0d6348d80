"""KG embeddings with PyKEEN: parity with PyKEEN itself on Nations, training helps, save/load, bad input."""
from __future__ import annotations

import pytest
import torch

from kbench.errors import InputError, UnknownNameError
from kbench.kg import KnowledgeGraph
from kbench.kg.embeddings import load_embeddings, load_pykeen_dataset, train_embeddings


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


def test_training_beats_the_untrained_baseline(nations, trained):
    untrained = train_embeddings(nations[0], "TransE", dim=32, epochs=0, seed=0, progress=False)
    before, after = untrained.evaluate(nations[2]), trained.evaluate(nations[2])
    assert after["mrr"] > before["mrr"] + 0.08 and 0.0 < before["mrr"] < 1.0
    assert trained.losses[-1] < trained.losses[0]


@pytest.mark.parametrize("model,width", [("DistMult", 16), ("RotatE", 32)])
def test_other_models(nations, model, width):
    embeddings = train_embeddings(nations[0], model, dim=16, epochs=2, seed=0, progress=False)
    assert embeddings.entity_embeddings.shape == (14, width)   # RotatE: complex, as [real, imaginary]
    assert 0.0 < embeddings.evaluate(nations[2])["mrr"] <= 1.0


def test_save_and_load_round_trip(trained, tmp_path):
    trained.save(tmp_path / "nations.safetensors")
    loaded = load_embeddings(tmp_path / "nations.safetensors")
    assert torch.equal(loaded.entity_embeddings, trained.entity_embeddings)
    assert loaded.entity_to_id == trained.entity_to_id and loaded.model_name == "TransE" and loaded.epochs == 30
    assert torch.equal(loaded.vector("china"), trained.vector("china"))


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
