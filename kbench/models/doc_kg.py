"""BERT + metadata + KG embeddings for document classification.

Ostendorff, Bourgonje, Berger, Moreno-Schneider, Rehm, Gipp. *Enriching BERT
with Knowledge Graph Embeddings for Document Classification.* GermEval 2019
(KONVENS). https://arxiv.org/abs/1909.08402
Code: https://github.com/malteos/pytorch-bert-document-classification

Taught in ``notebooks/04_doc_classification_kg.ipynb``. The model (§3, Fig. 1):
the text through BERT gives the [CLS] vector (BERT's pooled output: the [CLS]
state through a ``tanh`` dense layer); it is concatenated with the document's
metadata features and the KG embeddings of the document's linked entities (the
authors, in the paper; PyTorch-BigGraph on Wikidata); a two-layer MLP
(1024 hidden units, ReLU, dropout) maps the concatenation to the classes. The
ablation is text only / text + metadata / text + metadata + KG.

Where the paper leaves a choice open: a document with several authors gets
the *mean* of their embeddings (authors missing from the KG contribute
nothing; with none the KG part is zero); metadata features are standardised
with the training set's mean and deviation. The authors' code scores
multi-label task A with a sigmoid but trains some heads with softmax
cross-entropy; here there is one label per document and one loss, softmax
cross-entropy, everywhere.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kbench.encoders import EMBEDDED, load_encoder
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.embeddings import frozen_entity_table
from kbench.train import Examples, labelled_examples, pad_rows, token_batch

CITATION = {
    "title": "Enriching BERT with Knowledge Graph Embeddings for Document Classification",
    "authors": "Ostendorff, Bourgonje, Berger, Moreno-Schneider, Rehm, Gipp",
    "venue": "GermEval 2019 (KONVENS)", "year": 2019, "url": "https://arxiv.org/abs/1909.08402",
    "code": "https://github.com/malteos/pytorch-bert-document-classification",
}
NOTEBOOK = "04_doc_classification_kg"

#: The paper's ablation: text only, text + metadata, text + metadata + author KG embeddings.
VARIANTS = (Variant("text", "BERT (text)", {"use_metadata": False, "use_kg": False}),
            Variant("text_meta", "BERT + metadata", {"use_metadata": True, "use_kg": False}),
            Variant("text_meta_kg", "BERT + metadata + KG", {"use_metadata": True, "use_kg": True}))


@dataclass
class DocumentExample:
    input_ids: np.ndarray     # (L,)
    metadata: np.ndarray      # (M,) raw features
    entity_ids: np.ndarray    # (A,) rows of the embedding table, -1 for entities not in it
    label: int | None = None


class DocumentClassifier(nn.Module):
    """Classify ``(words, metadata, entities)`` documents from [CLS], metadata and mean entity embedding."""

    def __init__(self, num_labels: int, metadata_size: int, entity_embeddings: torch.Tensor,
                 entity_to_id: dict[str, int], base_model: str = EMBEDDED, *, use_metadata: bool = True,
                 use_kg: bool = True, hidden: int = 1024, dropout: float = 0.1, max_length: int = 128,
                 layers: int | None = None, freeze_word_embeddings: bool = False, vocab: str | None = None,
                 seed: int = 0):
        super().__init__()
        if num_labels < 2:
            raise InputError(f"num_labels must be at least 2, got {num_labels}")
        if metadata_size < 0:
            raise InputError(f"metadata_size must be >= 0, got {metadata_size}")
        entities = frozen_entity_table(entity_embeddings)
        torch.manual_seed(seed)
        encoder = load_encoder(base_model, vocab=vocab, seed=seed, layers=layers,
                               freeze_word_embeddings=freeze_word_embeddings)
        self.bert, self.tokenizer, self.description = encoder.model, encoder.tokenizer, encoder.description
        size = self.bert.config.hidden_size
        self.pooler = nn.Sequential(nn.Linear(size, size), nn.Tanh())          # BERT's pooled [CLS]
        self.register_buffer("entities", entities)   # frozen KG vectors
        self.entity_to_id = dict(entity_to_id)
        self.metadata_size, self.use_metadata, self.use_kg = metadata_size, use_metadata, use_kg
        self.register_buffer("metadata_mean", torch.zeros(metadata_size))
        self.register_buffer("metadata_scale", torch.ones(metadata_size))
        self.scaled = False   # set by the first dataset() call: the training split's statistics
        width = size + (metadata_size if use_metadata else 0) + (entity_embeddings.shape[1] if use_kg else 0)
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, num_labels))
        self.max_length = max_length
        parts = ["text"] + (["metadata"] if use_metadata else []) + (["KG"] if use_kg else [])
        self.description += "; MLP over " + " + ".join(parts)

    def example(self, words: Sequence[str], metadata: Sequence[float], entities: Sequence[str]) -> DocumentExample:
        words = list(words)
        if not words:
            raise InputError("a document needs at least one word")
        if len(metadata) != self.metadata_size:
            raise InputError(f"expected {self.metadata_size} metadata features, got {len(metadata)}")
        ids = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_length)["input_ids"]
        rows = [self.entity_to_id.get(e, -1) for e in entities]
        return DocumentExample(np.asarray(ids, np.int64), np.asarray(metadata, np.float32), np.asarray(rows, np.int64))

    def dataset(self, texts: Sequence[tuple], labels: Sequence[int] | None = None) -> Examples:
        """Return the examples of ``(words, metadata, entities)`` documents; the first call fixes the scaling."""
        examples = labelled_examples(texts, labels, lambda _, text: self.example(*text), noun="documents").examples
        if not self.scaled and examples and self.metadata_size:
            values = np.stack([e.metadata for e in examples])   # the training set's, as the first split given
            self.metadata_mean.copy_(torch.from_numpy(values.mean(0)))
            self.metadata_scale.copy_(torch.from_numpy(np.maximum(values.std(0), 1e-6)))
            self.scaled = True
        return Examples(examples)

    def collate(self, examples: Sequence[DocumentExample]) -> dict[str, torch.Tensor]:
        batch = token_batch([e.input_ids for e in examples], self.tokenizer.pad_token_id)
        batch["metadata"] = np.stack([e.metadata for e in examples]).reshape(len(examples), -1)
        batch["entity_ids"] = pad_rows([e.entity_ids for e in examples], -1, minimum=1)
        out = {name: torch.from_numpy(value) for name, value in batch.items()}
        if examples[0].label is not None:
            out["labels"] = torch.tensor([int(e.label) for e in examples])
        return out

    def entity_features(self, entity_ids: torch.Tensor) -> torch.Tensor:
        """Return the mean KG vector of each document's known entities ``(B, D)`` (zero with none)."""
        known = (entity_ids >= 0).to(self.entities.dtype)
        vectors = self.entities[entity_ids.clamp(min=0)] * known[..., None]
        return vectors.sum(1) / known.sum(1, keepdim=True).clamp(min=1)

    def forward(self, input_ids, attention_mask, metadata, entity_ids, labels=None):
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        parts = [self.pooler(states[:, 0])]
        if self.use_metadata:
            parts.append((metadata - self.metadata_mean) / self.metadata_scale)
        if self.use_kg:
            parts.append(self.entity_features(entity_ids))
        logits = self.mlp(torch.cat(parts, dim=-1))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out
