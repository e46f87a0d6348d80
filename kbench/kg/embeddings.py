"""Knowledge-graph embeddings trained with PyKEEN: the entity vectors KnowBert, ERNIE and BERT-MK fuse.

ERNIE (Zhang et al. 2019, §4.1) and KnowBert (Peters et al. 2019, §4.1) take
entity vectors learned from the KG alone — TransE (Bordes et al. 2013) for
ERNIE — and keep them frozen while the language model trains. This module
trains them with PyKEEN (the field's library; models, negative sampling and
the filtered rank-based evaluation are its own) on any
:class:`~kbench.kg.KnowledgeGraph`, whose entities and relations get integer
ids in sorted label order (PyKEEN's convention). ``epochs=0`` returns the
untrained initial embeddings: the baseline every figure compares with.
:func:`split_kg` holds triples out (PyKEEN's own split, which keeps every
entity in the training part) so link prediction is measured on triples the
model never trained on, not on what it memorised. Embeddings are saved and
loaded as safetensors.

Tested with PyKEEN 1.10-1.11 (the upper bound in ``pyproject.toml``):
training skips PyKEEN's per-epoch ``gc.collect()`` by swapping the
``gc`` name its training loop module uses (:func:`epoch_gc_skipped`); a PyKEEN
without that name gets a warning and trains with the collections.
"""
from __future__ import annotations

import gc
import json
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kbench.errors import InputError, UnknownNameError
from kbench.kg.graph import KnowledgeGraph, Triple

MODELS = ("TransE", "DistMult", "RotatE")
PYKEEN_DATASETS = ("Nations", "Kinships", "UMLS")


def _quiet_pykeen() -> None:
    import logging

    for name in ("pykeen", "pykeen.evaluation", "pykeen.training", "pykeen.triples", "torch_max_mem"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_pykeen_dataset(name: str) -> tuple[KnowledgeGraph, KnowledgeGraph, KnowledgeGraph]:
    """Return the train, validation and test graphs of a KG that ships inside PyKEEN's wheel."""
    if name not in PYKEEN_DATASETS:
        raise UnknownNameError(f"unknown PyKEEN dataset {name!r}: use one of {', '.join(PYKEEN_DATASETS)}")
    import pykeen.datasets

    _quiet_pykeen()
    dataset = getattr(pykeen.datasets, name)()
    return tuple(KnowledgeGraph.from_triples(map(tuple, factory.triples), name=f"{name}-{part}")
                 for factory, part in ((dataset.training, "train"), (dataset.validation, "valid"),
                                       (dataset.testing, "test")))


def _factory(kg: KnowledgeGraph):
    from pykeen.triples import TriplesFactory

    if len(kg) == 0:
        raise InputError(f"{kg.name!r} has no triples to learn embeddings from")
    return TriplesFactory.from_labeled_triples(np.array(list(kg), dtype=str))


@dataclass
class KGEmbeddings:
    """Entity and relation vectors of a trained (or untrained) PyKEEN model, with its id vocabularies."""

    model_name: str
    entity_to_id: dict[str, int]
    relation_to_id: dict[str, int]
    model: torch.nn.Module
    training_triples: torch.Tensor     # (n, 3) ids, filtered out when ranking
    epochs: int = 0
    losses: Sequence[float] = ()

    @property
    def entity_embeddings(self) -> torch.Tensor:
        """``(entities, dim)`` real entity vectors.

        RotatE's complex vectors of ``d`` components come as ``2d`` reals with
        real and imaginary parts interleaved: ``[re_0, im_0, re_1, im_1, ...]``
        (``torch.view_as_real(...).flatten(1)``), not as ``[real, imaginary]`` halves.
        """
        return self._vectors(self.model.entity_representations[0])

    @property
    def relation_embeddings(self) -> torch.Tensor:
        """``(relations, dim)`` relation vectors."""
        return self._vectors(self.model.relation_representations[0])

    @staticmethod
    def _vectors(representation) -> torch.Tensor:
        with torch.no_grad():
            vectors = representation(indices=None).detach().cpu()
        return torch.view_as_real(vectors).flatten(1) if vectors.is_complex() else vectors

    def vector(self, entity: str) -> torch.Tensor:
        """Return one entity's vector; an entity not in the table is a clear error."""
        if entity not in self.entity_to_id:
            raise InputError(f"entity {entity!r} is not in the embedding table ({len(self.entity_to_id)} entities "
                             f"learned from the KG): link to a known entity or retrain with it")
        return self.entity_embeddings[self.entity_to_id[entity]]

    def ids(self, triples: Iterable[Triple]) -> torch.Tensor:
        """Return ``(n, 3)`` id triples; an entity or relation the model never saw is a clear error."""
        rows = []
        for index, (head, relation, tail) in enumerate(triples):
            for entity in (head, tail):
                if entity not in self.entity_to_id:
                    raise InputError(f"triple #{index}: entity {entity!r} is not in the embedding table")
            if relation not in self.relation_to_id:
                raise InputError(f"triple #{index}: relation {relation!r} is not in the embedding table")
            rows.append((self.entity_to_id[head], self.relation_to_id[relation], self.entity_to_id[tail]))
        if not rows:
            raise InputError("no triples to evaluate")
        return torch.tensor(rows, dtype=torch.long)

    def evaluate(self, triples: Iterable[Triple], also_known: Iterable[Triple] = ()) -> dict[str, float]:
        """Return filtered link-prediction ``mrr`` and ``hits@1/3/10`` on ``triples`` (PyKEEN's evaluator).

        Ranks are filtered against the training triples, ``also_known`` and
        the evaluated triples themselves (the standard filtered setting).
        """
        from pykeen.evaluation import RankBasedEvaluator

        _quiet_pykeen()
        mapped = self.ids(triples)
        extra = [self.training_triples] + ([self.ids(also_known)] if also_known else [])
        result = RankBasedEvaluator(filtered=True).evaluate(self.model, mapped, additional_filter_triples=extra,
                                                             use_tqdm=False, batch_size=256)
        return {name: float(result.get_metric(name)) for name in ("mrr", "hits@1", "hits@3", "hits@10")}

    def save(self, path: str | Path) -> None:
        """Write the entity and relation vectors and the vocabularies to a safetensors file."""
        from safetensors.torch import save_file

        metadata = {"model": self.model_name, "epochs": str(self.epochs),
                    "entity_to_id": json.dumps(self.entity_to_id), "relation_to_id": json.dumps(self.relation_to_id)}
        save_file({"entity_embeddings": self.entity_embeddings.contiguous(),
                   "relation_embeddings": self.relation_embeddings.contiguous()}, str(path), metadata=metadata)


@dataclass
class FrozenEmbeddings:
    """Entity vectors loaded from a safetensors file (for fusion: read-only, no model)."""

    model_name: str
    entity_to_id: dict[str, int]
    relation_to_id: dict[str, int]
    entity_embeddings: torch.Tensor
    relation_embeddings: torch.Tensor
    epochs: int

    vector = KGEmbeddings.vector


def load_embeddings(path: str | Path) -> FrozenEmbeddings:
    """Read what :meth:`KGEmbeddings.save` wrote."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no embeddings file at {path}")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    return FrozenEmbeddings(metadata["model"], json.loads(metadata["entity_to_id"]),
                            json.loads(metadata["relation_to_id"]), tensors["entity_embeddings"],
                            tensors["relation_embeddings"], int(metadata["epochs"]))


def frozen_entity_table(vectors: torch.Tensor, entity_to_id: dict[str, int] | None = None) -> torch.Tensor:
    """Return a detached float copy of ``(entities, dim)`` KG vectors for a fusion model to keep frozen.

    With ``entity_to_id``, also check that every id is a row of the table.
    """
    if vectors.dim() != 2 or len(vectors) == 0:
        raise InputError("entity_embeddings must be a non-empty (entities, dim) matrix")
    if entity_to_id and max(entity_to_id.values()) >= len(vectors):
        raise InputError(f"entity_to_id points past the {len(vectors)} rows of entity_embeddings")
    return vectors.detach().float().clone()


class _NoCollection:
    """Stands in for the ``gc`` module inside PyKEEN's training loop: ``collect()`` does nothing."""

    @staticmethod
    def collect(*args) -> int:
        return 0


_GC_LOCK = threading.Lock()
_GC_DEPTH = 0
_GC_SAVED: object = None


@contextmanager
def epoch_gc_skipped() -> Iterator[bool]:
    """Skip PyKEEN's per-epoch ``gc.collect()`` inside the block; yield whether it is skipped.

    With torch and transformers loaded a full collection takes about 0.2 s, which
    was 90% of training a small KG (1,400 triples, full batch) on 2 cores; our
    process frees nothing that needs it between epochs. The swap is of the
    process-wide name ``pykeen.training.training_loop.gc``, so it is counted:
    nested or concurrent blocks share one swap, and the last one out restores
    exactly what was there — also when the block raises. A PyKEEN whose
    training loop no longer has that name gets a ``RuntimeWarning`` and keeps
    its collections (nothing is patched).
    """
    global _GC_DEPTH, _GC_SAVED
    from pykeen.training import training_loop

    if not hasattr(training_loop, "gc"):
        warnings.warn("pykeen.training.training_loop has no `gc` any more: PyKEEN's per-epoch garbage collection "
                      "stays on (slower on small KGs); kbench is tested with pykeen>=1.10,<1.12", RuntimeWarning,
                      stacklevel=3)
        yield False
        return
    with _GC_LOCK:
        if _GC_DEPTH == 0:
            _GC_SAVED = training_loop.gc
            training_loop.gc = _NoCollection
        _GC_DEPTH += 1
    try:
        yield True
    finally:
        with _GC_LOCK:
            _GC_DEPTH -= 1
            if _GC_DEPTH == 0:
                training_loop.gc, _GC_SAVED = _GC_SAVED, None


def _fit(train):
    """Run ``train()`` with PyKEEN's per-epoch collections skipped and its pin-memory warning silenced."""
    with epoch_gc_skipped(), warnings.catch_warnings():
        # PyKEEN's loader asks for pinned memory whatever the device; on a CPU torch warns once per fit
        warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
        return train()


def split_kg(kg: KnowledgeGraph, held_out: float = 0.1, seed: int = 0) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    """Return ``(training, held-out)`` graphs: a ``held_out`` share of ``kg``'s triples set aside at random.

    PyKEEN's ``TriplesFactory.split`` does it, with its ``cleanup`` method:
    a random split, then held-out triples whose entity or relation would be
    missing from training are moved back to training. So every held-out
    triple can be ranked by a model trained on the rest, and a graph with many
    entities seen once (a WordNet neighbourhood's lemmas) holds out fewer
    triples than asked.
    """
    if not 0 < held_out < 1:
        raise InputError(f"held_out must be a share between 0 and 1, got {held_out}")
    factory = _factory(kg)
    if len(kg) < 2:
        raise InputError(f"{kg.name!r} has {len(kg)} triple: too few to hold any out")
    _quiet_pykeen()
    training, rest = factory.split([1 - held_out, held_out], random_state=seed, method="cleanup")
    as_graph = lambda part, name: KnowledgeGraph.from_triples(sorted(map(tuple, part.triples)), name=name)
    return as_graph(training, f"{kg.name} (training)"), as_graph(rest, f"{kg.name} (held out)")


def train_embeddings(kg: KnowledgeGraph, model: str = "TransE", dim: int = 50, epochs: int = 100, seed: int = 0,
                     batch_size: int = 256, learning_rate: float = 0.01, negatives: int = 1,
                     progress: bool = True) -> KGEmbeddings:
    """Train ``model`` (TransE, DistMult or RotatE) on ``kg`` with PyKEEN's sLCWA loop; return the embeddings.

    Negative sampling (uniform, ``negatives`` per positive), the loss and the
    initialisation are PyKEEN's defaults for each model: in PyKEEN 1.11 the
    default loss of all three is the margin ranking loss (margin 1), RotatE's
    included. ``epochs=0`` leaves the initial (random) vectors.
    """
    if model not in MODELS:
        raise UnknownNameError(f"unknown embedding model {model!r}: use one of {', '.join(MODELS)}")
    if dim < 1 or epochs < 0 or batch_size < 1:
        raise InputError(f"dim and batch_size must be >= 1 and epochs >= 0 (got {dim}, {batch_size}, {epochs})")
    import pykeen.models
    from pykeen.training import SLCWATrainingLoop

    _quiet_pykeen()
    factory = _factory(kg)
    torch.manual_seed(seed)
    network = getattr(pykeen.models, model)(triples_factory=factory, embedding_dim=dim, random_seed=seed)
    losses: list[float] = []
    if epochs:
        loop = SLCWATrainingLoop(model=network, triples_factory=factory, optimizer="Adam",
                                 optimizer_kwargs={"lr": learning_rate},
                                 negative_sampler_kwargs={"num_negs_per_pos": negatives})
        losses = _fit(lambda: loop.train(triples_factory=factory, num_epochs=epochs,
                                        batch_size=batch_size, use_tqdm=progress, use_tqdm_batch=False))
    network.eval()
    return KGEmbeddings(model, dict(factory.entity_to_id), dict(factory.relation_to_id), network,
                        factory.mapped_triples, epochs, losses)
