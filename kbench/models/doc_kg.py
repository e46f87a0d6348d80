"""BERT + metadata + KG embeddings for document classification.

Malte Ostendorff, Peter Bourgonje, Maria Berger, Julián Moreno-Schneider, Georg
Rehm, Bela Gipp. *Enriching BERT with Knowledge Graph Embeddings for Document
Classification.* Proceedings of the GermEval 2019 Workshop (KONVENS 2019).
https://arxiv.org/abs/1909.08402
Code: https://github.com/malteos/pytorch-bert-document-classification

Taught in ``notebooks/04_doc_classification_kg.ipynb``. The model (§3, Fig. 1),
as the authors' ``models.py`` builds it:

* **text + extras** (``ExtraBertMultiClassifier``): BERT's pooled output (the
  [CLS] state through the checkpoint's *pretrained* ``tanh`` pooler), dropout
  on it (and only on it), concatenated with the document's metadata features
  and its author's KG embedding (PyTorch-BigGraph on Wikidata in the paper),
  then an MLP with **two hidden layers** of 1024 units (``MLP_DIM = 1024 # (2
  layers)``): Linear → ReLU → Linear → ReLU → Linear;
* **text only** (``BertMultiClassifier``): dropout on the pooled output, then a
  single linear layer — no MLP.

Their KG part is the embedding of the **first author that has one**
(``get_extras_gender`` walks the ``;``-separated authors and stops at the first
found; zero when none is found). That is the default here
(``entity_pooling="first"``); ``"mean"`` averages every linked entity that has a
vector instead (an option for documents whose "entities" are many nouns).

Where this differs from the authors, and why:

* **Loss.** They train with ``BCELoss`` on probabilities — a softmax over the
  MLP's outputs, a sigmoid over the text-only model's — against multi-hot
  GermEval labels, and predict every label whose probability passes a
  threshold tuned per label on the validation set (``get_best_thresholds``),
  scoring micro-F1. Our documents have exactly one label and we score
  accuracy of the arg-max, so the loss is softmax cross-entropy, the usual
  single-label loss: it is their loss without the ``-log(1 - p_j)`` terms of
  the wrong labels, which serve their thresholds, not an arg-max.
* **Metadata** are standardised with the training split's mean and deviation
  (they feed raw values, from a count of authors to hundreds of words), so
  each feature enters on the scale of the pooled output's ``tanh`` values.
* **Initialisation.** The new layers (the MLP, the text-only head, and the
  pooler of a random-init size) get BERT's initialisation
  (:func:`kbench.encoders.init_bert_weights`: N(0, 0.02) weights, zero
  biases), the rule every kbench fusion module follows. The authors' MLP and
  head are plain ``nn.Module`` layers outside ``BertPreTrainedModel``, so they
  keep PyTorch's default (Kaiming-uniform) init; we keep one rule for all new
  layers rather than this accident of where their layers sit. The pooler of a
  pretrained checkpoint is loaded from it, never re-initialised; with
  ``layers=`` (a pretrained prefix) it reads the last kept layer's [CLS].

The ablation is text only / text + metadata / text + metadata + KG (the
authors' ``text-only``, ``manual_no-embedding`` and ``full`` experiments; their
metadata also include the authors' gender).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from kbench.encoders import EMBEDDED, EMBEDDED_ALIASES, SIZES, embedded_model_dir, init_bert_weights, load_encoder
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.embeddings import frozen_entity_table
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.train import Examples, labelled_examples, pad_rows, token_batch

CITATION = {
    "title": "Enriching BERT with Knowledge Graph Embeddings for Document Classification",
    "authors": "Ostendorff, Bourgonje, Berger, Moreno-Schneider, Rehm, Gipp",
    "venue": "GermEval 2019 Workshop (KONVENS 2019)", "year": 2019, "url": "https://arxiv.org/abs/1909.08402",
    "code": "https://github.com/malteos/pytorch-bert-document-classification",
}
NOTEBOOK = "04_doc_classification_kg"
PLACE = Place('BERT + KG embeddings', 'fused entity vectors', ('KG',),
              "the KG embedding of a document's author concatenated with BERT's pooled text vector and its "
              'metadata, then an MLP',
              survey='factual', when='fine-tuning', in_survey=False)
HEADLINE = Headline('document classification, accuracy (BERT + metadata with vs without the KG)',
                    'text_meta_kg_test_accuracy', 'text_meta_test_accuracy',
                    "the author linked to the KG and the KG's embeddings, trained beforehand, at run time",
                    trivial=('majority_test_accuracy',),
                    positive=PositiveControl(
                        "each document linked to its authors' research group instead of the new authors: the "
                        "training documents are linked to the same groups, and a group writes mostly on one topic",
                        'text_meta_group_kg_test_accuracy', 'text_meta_test_accuracy', 0.08))

#: The paper's ablation: text only, text + metadata, text + metadata + author KG embeddings.
#: The text-only model is labelled "BERT", the no-knowledge baseline's name (and grey) in every notebook.
VARIANTS = (Variant("text", "BERT", {"use_metadata": False, "use_kg": False}),
            Variant("text_meta", "BERT + metadata", {"use_metadata": True, "use_kg": False}),
            Variant("text_meta_kg", "BERT + metadata + KG", {"use_metadata": True, "use_kg": True}))


#: The positive control's variant: BERT + metadata + KG, run on documents linked to their authors' groups
#: (:meth:`kbench.profiles.doc_kg.DocKGSetup.group_linked`).
GROUP_LINKED = Variant("text_meta_group_kg", "BERT + metadata + group's KG vector",
                       {"use_metadata": True, "use_kg": True})


ENTITY_POOLING = ("first", "mean")


@dataclass
class DocumentExample:
    input_ids: np.ndarray     # (L,)
    metadata: np.ndarray      # (M,) raw features
    entity_ids: np.ndarray    # (A,) rows of the embedding table, -1 for entities not in it
    label: int | None = None


@lru_cache(maxsize=4)
def _pretrained_pooler_state(base_model: str) -> dict[str, torch.Tensor] | None:
    """Return the pooler weights of a pretrained checkpoint, or None when it has none."""
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    source = str(embedded_model_dir()) if base_model in EMBEDDED_ALIASES else base_model
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = BertModel.from_pretrained(source, add_pooling_layer=True, local_files_only=True,
                                                output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if any(key.startswith("pooler.") for key in info["missing_keys"]):
        return None
    return {name: value.detach().clone() for name, value in model.pooler.state_dict().items()}


def bert_pooler(base_model: str, config) -> tuple[nn.Module, bool]:
    """Return BERT's pooler (dense + tanh on [CLS]) for ``base_model`` and whether it is the pretrained one.

    A pretrained checkpoint's own pooler is loaded (the authors' pooled output);
    a random-init size, or a checkpoint saved without a pooler, gets a new one
    with BERT's initialisation.
    """
    from transformers.models.bert.modeling_bert import BertPooler

    pooler = BertPooler(config)
    state = None if base_model in SIZES else _pretrained_pooler_state(base_model)
    if state is None:
        init_bert_weights(pooler)
        return pooler, False
    pooler.load_state_dict(state)
    return pooler, True


class DocumentClassifier(nn.Module):
    """Classify ``(words, metadata, entities)`` documents as the authors' two models do.

    With neither metadata nor KG: dropout(pooled [CLS]) → Linear (their
    ``BertMultiClassifier``). Otherwise: dropout(pooled [CLS]) ⊕ metadata ⊕ KG
    vector → Linear → ReLU → Linear → ReLU → Linear, two hidden layers of
    ``hidden`` units (their ``ExtraBertMultiClassifier``).
    """

    def __init__(self, num_labels: int, metadata_size: int, entity_embeddings: torch.Tensor,
                 entity_to_id: dict[str, int], base_model: str = EMBEDDED, *, use_metadata: bool = True,
                 use_kg: bool = True, hidden: int = 1024, dropout: float = 0.1, max_length: int = 128,
                 entity_pooling: str = "first", layers: int | None = None, freeze_word_embeddings: bool = False,
                 vocab: str | None = None, seed: int = 0):
        super().__init__()
        if num_labels < 2:
            raise InputError(f"num_labels must be at least 2, got {num_labels}")
        if metadata_size < 0:
            raise InputError(f"metadata_size must be >= 0, got {metadata_size}")
        if hidden < 1:
            raise InputError(f"hidden must be at least 1, got {hidden}")
        if entity_pooling not in ENTITY_POOLING:
            raise InputError(f"entity_pooling must be one of {', '.join(ENTITY_POOLING)}, got {entity_pooling!r}")
        entities = frozen_entity_table(entity_embeddings, entity_to_id)
        torch.manual_seed(seed)
        encoder = load_encoder(base_model, vocab=vocab, seed=seed, layers=layers,
                               freeze_word_embeddings=freeze_word_embeddings)
        self.bert, self.tokenizer, self.description = encoder.model, encoder.tokenizer, encoder.description
        size = self.bert.config.hidden_size
        self.pooler, pretrained = bert_pooler(base_model, self.bert.config)   # BERT's pooled [CLS]
        self.dropout = nn.Dropout(dropout)                                     # on the pooled output only
        self.register_buffer("entities", entities)   # frozen KG vectors
        self.entity_to_id = dict(entity_to_id)
        self.metadata_size, self.use_metadata, self.use_kg = metadata_size, use_metadata, use_kg
        self.entity_pooling = entity_pooling
        self.register_buffer("metadata_mean", torch.zeros(metadata_size))
        self.register_buffer("metadata_scale", torch.ones(metadata_size))
        self.scaled = False   # set by the first dataset() call: the training split's statistics
        extras = (metadata_size if use_metadata else 0) + (entities.shape[1] if use_kg else 0)
        if extras:
            self.head = nn.Sequential(nn.Linear(size + extras, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                      nn.ReLU(), nn.Linear(hidden, num_labels))
        else:
            self.head = nn.Linear(size, num_labels)
        init_bert_weights(self.head)
        self.max_length = max_length
        parts = ["text"] + (["metadata"] if use_metadata else []) + ([f"KG ({entity_pooling} entity)"]
                                                                     if use_kg else [])
        self.description += ("; pretrained pooler" if pretrained else "; new pooler") + "; " + (
            f"MLP (2 x {hidden} hidden) over " + " + ".join(parts) if extras else "linear head over text")

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
        """Return each document's KG vector ``(B, D)``: its first entity with a vector, or the mean of them.

        ``first`` is the authors' rule (the first author found in the
        embedding table); ``mean`` averages the known ones. Zero with none.
        """
        known = (entity_ids >= 0).to(self.entities.dtype)
        if self.entity_pooling == "first":
            first = known.cumsum(1).eq(1) & known.bool()    # the first known position of each row
            known = first.to(self.entities.dtype)
        vectors = self.entities[entity_ids.clamp(min=0)] * known[..., None]
        return vectors.sum(1) / known.sum(1, keepdim=True).clamp(min=1)

    def forward(self, input_ids, attention_mask, metadata, entity_ids, labels=None):
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        parts = [self.dropout(self.pooler(states))]
        if self.use_metadata:
            parts.append((metadata - self.metadata_mean) / self.metadata_scale)
        if self.use_kg:
            parts.append(self.entity_features(entity_ids))
        logits = self.head(torch.cat(parts, dim=-1))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out
