"""BERT-MK: ERNIE's knowledgeable encoder with entity vectors from a KG-Transformer over sub-graphs.

He, Zhou, Xiao, Jiang, Liu, Yuan, Xu. *BERT-MK: Integrating Graph
Contextualized Knowledge into Pre-trained Language Models.* Findings of EMNLP
2020 (arXiv 1912.00147, 2019). https://arxiv.org/abs/1912.00147

Taught in ``notebooks/07_bert_mk.ipynb``. BERT-MK keeps ERNIE's fusion (§2.2:
T-Encoder, then aggregators with ``h = GELU(W_t w + W_e e + b)``; here
:class:`kbench.models.ernie_thu.ErnieClassifier`, unchanged) and changes where
the entity vectors come from (§2.1): instead of TransE, the graph contextualised
knowledge embedding of :class:`kbench.kg.kg_transformer.KGTransformer`, a
Transformer over each entity's sub-graph with relations as nodes, trained
from TransE's vectors to score the sub-graph's triples by translation. The
paper works on UMLS with PubMed text (entity typing and relation classification
in the medical domain); this module only joins the two pieces, so that a
comparison differs in the entity vectors alone: both tables are scaled to unit
length per entity (TransE's are already: PyKEEN keeps them on the unit sphere;
the KG-Transformer's outputs come out of a LayerNorm, of length about
``sqrt(dim)``), so the fusion layer meets both on one scale.
"""
from __future__ import annotations

import torch

from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.kg_transformer import KGTransformer
from kbench.models.ernie_thu import ErnieClassifier
from kbench.metrics import random_like
from kbench.taxonomy import Headline, Place, PositiveControl

CITATION = {
    "title": "BERT-MK: Integrating Graph Contextualized Knowledge into Pre-trained Language Models",
    "authors": "He, Zhou, Xiao, Jiang, Liu, Yuan, Xu",
    "venue": "Findings of EMNLP", "year": 2020, "url": "https://arxiv.org/abs/1912.00147",
    "code": None,
}
NOTEBOOK = "07_bert_mk"
PLACE = Place('BERT-MK', 'fused entity vectors', ('KG',),
              'entity vectors from a graph transformer over KG subgraphs (nodes and relations) fused as ERNIE does',
              survey='domain-specific')
HEADLINE = Headline("entity typing, accuracy (BERT-MK vs ERNIE on TransE vectors, the paper's comparison)",
                    'bert_mk_test_accuracy', 'ernie_test_accuracy',
                    'an entity linker and graph-transformer vectors of KG subgraphs at run time',
                    plain='bert_test_accuracy',
                    trivial=('majority_test_accuracy', 'random_kg_test_accuracy'),
                    positive=PositiveControl(
                        "the same fusion reading TransE vectors of the linked person, which rank the person's "
                        "continent first in the KG: the deciding fact is certainly in the entity input",
                        'ernie_test_accuracy', 'bert_test_accuracy', 0.3))


def knowledge_variants(transe, kg_transformer: KGTransformer) -> tuple[Variant, ...]:
    """Return BERT, ERNIE (TransE vectors) and BERT-MK (KG-Transformer vectors) as variants of one classifier.

    Both entity tables are scaled to unit length per row, so the variants differ in the vectors' directions alone.

    ``transe`` is any embeddings object with ``entity_embeddings`` and ``entity_to_id``
    (:func:`kbench.kg.embeddings.train_embeddings`).
    """
    if set(transe.entity_to_id) != set(kg_transformer.entity_to_id):
        raise InputError("TransE and the KG-Transformer must be trained on the same entities")
    unit = lambda vectors: torch.nn.functional.normalize(vectors.detach().float(), dim=-1)
    graph = {"entity_embeddings": unit(kg_transformer.entity_vectors()), "entity_to_id": kg_transformer.entity_to_id}
    plain = {"entity_embeddings": unit(transe.entity_embeddings), "entity_to_id": transe.entity_to_id}
    return (Variant("bert", "BERT", plain | {"k_layers": 0}), Variant("ernie", "ERNIE (TransE)", plain),
            Variant("bert_mk", "BERT-MK (KG-Transformer)", graph))


def control_variants(transe, seed: int = 0) -> tuple[Variant, ...]:
    """Return the untrained module of the same shape: the fusion reading random unit vectors (one per entity,
    :func:`kbench.metrics.random_like` of TransE's table, scaled to unit length like the trained tables), so
    entities are told apart but no vector holds a fact."""
    unit = torch.nn.functional.normalize(random_like(transe.entity_embeddings, seed), dim=-1)
    return (Variant("random_kg", "ERNIE, random entity vectors",
                    {"entity_embeddings": unit, "entity_to_id": transe.entity_to_id}),)


def make_classifier(num_labels: int, seed: int = 0, **options) -> ErnieClassifier:
    """Return an ERNIE classifier; the variant's options carry its entity table (see :func:`knowledge_variants`)."""
    if not isinstance(options.get("entity_embeddings"), torch.Tensor):
        raise InputError("a BERT-MK variant needs entity_embeddings (use knowledge_variants)")
    return ErnieClassifier(num_labels, seed=seed, **options)
