"""KEPLER: one encoder for masked language modelling and for knowledge embedding from entity descriptions.

Wang, Gao, Zhu, Zhang, Liu, Li, Tang. *KEPLER: A Unified Model for Knowledge
Embedding and Pre-trained Language Representation.* TACL 9, 2021.
https://arxiv.org/abs/1911.06136 — code: https://github.com/THU-KEG/KEPLER
(``fairseq/criterions/MLMetKE.py``, ``fairseq/models/roberta/model.py``).

Taught in ``notebooks/03_kepler.ipynb``. The mechanism, as the paper states it and,
where it is vague, as the authors' code does it (section and equation numbers are
left out: the paper's text could not be consulted offline):

- **Entity embeddings from text** (the KE objective): an entity's embedding is the
  encoder's output state at the first token ([CLS]; RoBERTa's ``<s>``) of its
  *description*, ``e = E(text_e)[0]``; one encoder, the one MLM trains. Relations
  have a table of their own (the code's ``relation_emb``; encoding relation
  descriptions instead, which the code also allows, is left out), initialised as
  the authors' code does: ``U(-(γ+2)/d, (γ+2)/d)``.
- **Score**: ``d_r(h, t) = ||h + r - t||_p``. The paper writes ``p = 1``;
  the authors' code (``RobertaKnowledgeEmbeddingHead.TransE``) computes
  ``torch.norm(..., p=2)``. **We follow the paper: L1** (:data:`NORM`);
  ``norm=2`` is an option. The first measurement behind that choice (smoke world,
  seed 0: L2 inductive MRR 0.03-0.05 after 150-400 steps, L1 0.33) was taken with
  dropout on in the KE pass, where the loss mostly saw dropout noise (next item);
  re-measured without it (smoke, seed 0, 150 steps): L1 0.361, L2 0.097 — L1 stays.
- **Dropout in the KE pass: off (a deviation).** The authors keep dropout when
  they encode descriptions, but they start from RoBERTa-base, whose first-token
  states are far apart. From our random init, two dropout passes over the *same*
  description are about 27 apart in L1 (tiny BERT, smoke) while *different*
  entities in eval mode are about 1.4 apart: distances in training were ~25
  (true) and ~28 (corrupted), far above ``γ = 4``, and the KE loss mostly learned
  to shrink dropout noise. So descriptions are encoded for ``L_KE`` with the
  encoder's dropout off (``ke_dropout=False``; gradients flow as usual); MLM keeps
  its dropout. ``ke_dropout=True`` is the authors' way.
- **Loss**: ``L_KE = -log σ(γ - d(h, t)) - (1/n) Σ_i log σ(d(h'_i, t'_i) - γ)``
  with margin ``γ = 4`` (the paper's language-model setting) and, per positive,
  one head-corrupted and one tail-corrupted negative (``n = 2``), drawn
  uniformly from the training entities and **filtered**: a corrupted triple that
  is a known triple is drawn again (:class:`NegativeSampler`). The authors'
  ``KGpreprocess.py`` draws negatives from *all* entities; we draw from the
  training entities only, so no unseen (inductive test) entity's description
  reaches training even as a negative — the safe choice for the inductive split.
- **Joint objective**: ``L = L_KE + L_MLM``, MLM on separate text (the
  paper trains MLM on general text, not on the descriptions alone: its "only
  descriptions" variant did worse). The authors' code halves the KE loss
  (``(-pLoss.mean() - nLoss.mean()) / 2``) and scores the positive as the mean
  of two encodings of it. **We follow the paper's loss and sum** (``ke_scale = 1``):
  the equation is the paper's statement of the method; ``ke_scale = 0.5``
  gives the code's weighting, and the notebook says which ran.
- **What is saved** (``export_lm``): the encoder and MLM head as a plain
  ``BertForMaskedLM`` — the model is used as a PLM without any inference
  overhead, as the paper stresses; the relation table is KE-only.

**The control** (``objective="mlm_descriptions"``, :class:`DescriptionMLM`): MLM on the same text plus MLM on
the very descriptions KEPLER encodes at each step (the same KE draw), and no KE loss. KEPLER minus it is the
KE loss's own effect, not the effect of reading the descriptions' words.

Evaluation (after the paper's Wikidata5M link prediction): link prediction on the description-encoded entities,
filtered ranks over both heads and tails (:func:`link_prediction`):
*inductive* on triples of entities no training triple names (the encoder
embeds them from text; TransE has no vector for them; in ``smoke`` no training
description names them either, :func:`kbench.kg.described.ke_split`) and *transductive* on
held-out triples between training entities, against PyKEEN's TransE trained
on the same triples (:mod:`kbench.kg.embeddings`).

**Our inductive protocol is not the paper's.** The authors'
``evaluate_transe_inductive.py`` ranks a test graph whose entities are all
disjoint from training, with candidates and filtering from that test graph
alone. Ours: a test triple needs only *one* unseen entity (on the smoke world 3
of 50 have both on seed 0), and the candidates are every entity of the KG — a harder
ranking over more candidates, with one side of most queries a training entity.
The headline numbers sit beside the paper's as the same *kind* of measurement,
not the same one. Inductive scores are also split by whether the answer is **named**
in the other entity's description (:func:`kbench.kg.described.answer_named`):
there word overlap alone can find it.

:func:`evaluate_links` also reports that stricter protocol on the triples
whose two entities are both unseen (``inductive_disjoint``: candidates and
filtering from those triples' unseen entities alone); there are few (3 on
the smoke world, 35 in ``full``).

Ties rank pessimistically here (the gold below every candidate scored as close);
PyKEEN's TransE (``KGEmbeddings.evaluate``) reports its "realistic" rank, the
mean of the optimistic and pessimistic ones. With real-valued description
vectors ties are rare, so the two agree in practice; the difference is stated,
not aligned.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.described import DescribedKG, check_descriptions
from kbench.pretrain import MaskedLM, MaskingCollator, masked_lm, register_objective
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import RATE, MaskVocab
from kbench.train import eval_mode, token_batch

CITATION = {
    "title": "KEPLER: A Unified Model for Knowledge Embedding and Pre-trained Language Representation",
    "authors": "Xiaozhi Wang, Tianyu Gao, Zhaocheng Zhu, Zhengyan Zhang, Zhiyuan Liu, Juanzi Li, Jian Tang",
    "venue": "TACL", "year": 2021, "url": "https://arxiv.org/abs/1911.06136",
    "code": "https://github.com/THU-KEG/KEPLER",
}
NOTEBOOK = "03_kepler"
PLACE = Place('KEPLER', 'objective', ('KG',),
              'entity descriptions encoded by the language model trained as KG embeddings (TransE loss) beside MLM',
              survey='factual')
HEADLINE = Headline('link prediction on unseen entities, MRR', 'kepler_inductive_mrr', 'mlm_inductive_mrr',
                    'a description for every entity (KE loss while pretraining; a KG task reads them at run time)',
                    probe=('kepler_probe_mrr', 'mlm_probe_mrr'),
                    trivial=('untrained_inductive_mrr',),
                    positive=PositiveControl(
                        'the KE training triples themselves: their facts and their entities\' descriptions were in '
                        'KE training, so a working KE objective must rank them above the untrained encoder',
                        'kepler_trained_mrr', 'untrained_trained_mrr', 0.05))

GAMMA = 4.0          # the margin of the language-model setting
NORM = 1             # the paper; the authors' code uses 2: see the module docstring
KE_SCALE = 1.0       # L = L_KE + L_MLM (the authors' code halves L_KE)
KE_DROPOUT = False   # descriptions encoded without dropout for L_KE (the authors keep it): see the docstring
EMB_EPS = 2.0        # the authors' relation-table init range: (γ + 2) / d
VARIANTS = (Variant("mlm", "MLM only (same init, text, steps)", {"objective": "mlm"}),
            Variant("kepler", "KEPLER (KE + MLM)", {"objective": "kepler"}),
            Variant("mlm_desc", "MLM on text + descriptions (no KE loss)", {"objective": "mlm_descriptions"}))


def transe_distance(heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor, norm: int = NORM
                    ) -> torch.Tensor:
    """Return ``d_r(h, t) = ||h + r - t||_p`` over the last dimension."""
    if norm not in (1, 2):
        raise InputError(f"the TransE norm must be 1 or 2, got {norm}")
    return torch.linalg.vector_norm(heads + relations - tails, ord=norm, dim=-1)


def ke_loss(positive: torch.Tensor, negative: torch.Tensor, gamma: float = GAMMA) -> torch.Tensor:
    """Return ``L_KE`` averaged over the batch.

    ``positive``: ``(b,)`` distances of the true triples; ``negative``:
    ``(b, n)`` distances of each one's ``n`` corrupted triples.
    ``-log σ(γ - d) - (1/n) Σ log σ(d' - γ)``.
    """
    if positive.dim() != 1 or negative.dim() != 2 or negative.shape[0] != positive.shape[0] or not negative.shape[1]:
        raise InputError(f"positive distances must be (b,) and negative (b, n>0), got {tuple(positive.shape)} "
                         f"and {tuple(negative.shape)}")
    return (-nn.functional.logsigmoid(gamma - positive)
            - nn.functional.logsigmoid(negative - gamma).mean(-1)).mean()


class NegativeSampler:
    """Corrupts a triple's head and its tail with entities drawn uniformly, never giving a known triple (filtered).

    ``entities``: the candidates (the training entities); ``known``: every
    triple that counts as true. A draw that makes a known triple, or leaves
    the entity unchanged, is drawn again (up to ``tries`` times; then the
    entity is one that makes no known triple, searched in full).
    """

    def __init__(self, entities: Sequence[str], known: set, tries: int = 50):
        if len(entities) < 2:
            raise InputError("negative sampling needs at least two entities")
        self.entities, self.known, self.tries = list(entities), set(known), tries

    def corrupt(self, triple: tuple[str, str, str], side: str, rng: np.random.Generator) -> str:
        """Return a replacement for the ``side`` (``head`` or ``tail``) of ``triple`` that makes no known triple."""
        head, relation, tail = triple
        if side not in ("head", "tail"):
            raise InputError(f"side must be 'head' or 'tail', got {side!r}")
        make = (lambda e: (e, relation, tail)) if side == "head" else (lambda e: (head, relation, e))
        current = head if side == "head" else tail
        for _ in range(self.tries):
            entity = self.entities[int(rng.integers(len(self.entities)))]
            if entity != current and make(entity) not in self.known:
                return entity
        allowed = [e for e in self.entities if e != current and make(e) not in self.known]
        if not allowed:
            raise InputError(f"every entity makes a known triple with {triple!r} on its {side}: nothing to corrupt")
        return allowed[int(rng.integers(len(allowed)))]


@dataclass
class KETriples:
    """KE training data: triples, the relation ids, and every entity's tokenised description."""

    triples: list[tuple[str, str, str]]
    relations: list[str]
    descriptions: dict[str, np.ndarray]      # entity -> token ids ([CLS] ... [SEP])
    sampler: NegativeSampler

    @classmethod
    def build(cls, kg: DescribedKG, train: Sequence[tuple[str, str, str]], tokenizer, max_length: int = 48,
              known: Sequence[tuple[str, str, str]] = ()) -> "KETriples":
        """Tokenise the descriptions of ``train``'s entities; negatives from them, filtered by ``train + known``."""
        train = list(train)
        if not train:
            raise InputError("KE training needs at least one triple")
        entities = list(dict.fromkeys(e for h, _, t in train for e in (h, t)))
        check_descriptions(entities, kg.descriptions)
        encoded = tokenizer([kg.descriptions[e] for e in entities], truncation=True, max_length=max_length)
        descriptions = {e: np.asarray(ids, np.int64) for e, ids in zip(entities, encoded["input_ids"])}
        return cls(train, kg.relations, descriptions, NegativeSampler(entities, set(train) | set(known)))


class KeplerCollator(MaskingCollator):
    """An MLM batch of the text (exactly as :class:`MaskingCollator` makes it) plus a KE batch of triples.

    The KE batch draws ``ke_batch_size`` training triples and their negatives
    with a random state of its own, so the MLM batches — sentences, masks —
    are the same as plain MLM's with the same seed. Each entity in the batch
    is encoded once: ``ke_ids``/``ke_mask`` hold the distinct descriptions and
    ``ke_heads``/``ke_tails``/``ke_negatives`` index rows of them.
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, data: KETriples, ke_batch_size: int = 16, seed: int = 0,
                 rate: float = RATE):
        super().__init__(vocab, pad_id, "token", seed, rate)
        if ke_batch_size < 1:
            raise InputError(f"the KE batch needs at least one triple, got {ke_batch_size}")
        self.data, self.ke_batch_size = data, ke_batch_size
        self.relation_ids = {r: i for i, r in enumerate(data.relations)}
        self.ke_rng = np.random.default_rng([seed, 1])

    def ke_batch(self) -> dict[str, torch.Tensor]:
        data, rng = self.data, self.ke_rng
        picks = rng.integers(len(data.triples), size=self.ke_batch_size)
        rows: dict[str, int] = {}
        row = lambda entity: rows.setdefault(entity, len(rows))
        heads, relations, tails, negatives = [], [], [], []
        for index in picks:
            triple = data.triples[int(index)]
            head, relation, tail = triple
            bad_head = data.sampler.corrupt(triple, "head", rng)
            bad_tail = data.sampler.corrupt(triple, "tail", rng)
            heads.append(row(head))
            tails.append(row(tail))
            relations.append(self.relation_ids[relation])
            negatives.append([(row(bad_head), row(tail)), (row(head), row(bad_tail))])
        batch = token_batch([data.descriptions[e] for e in rows], self.pad_id)
        return {"ke_ids": torch.from_numpy(batch["input_ids"]), "ke_mask": torch.from_numpy(batch["attention_mask"]),
                "ke_heads": torch.tensor(heads), "ke_relations": torch.tensor(relations),
                "ke_tails": torch.tensor(tails), "ke_negatives": torch.tensor(negatives)}

    def __call__(self, sentences) -> dict[str, torch.Tensor]:
        return {**super().__call__(sentences), **self.ke_batch()}

    def get_state(self) -> dict:
        return {**super().get_state(), "ke_rng": self.ke_rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.ke_rng.bit_generator.state = state["ke_rng"]


class DescriptionCollator(KeplerCollator):
    """KEPLER's batches for the **MLM + descriptions** control: the same text batch and the same KE draw, with the
    drawn descriptions *masked* for MLM (``desc_ids``, ``desc_mask``, ``desc_labels``) instead of encoded for L_KE.

    The KE draw uses KEPLER's own random state, so each step masks exactly the descriptions KEPLER encodes at that
    step; their masks come from a third random state (seed, 2), so the text's masks stay plain MLM's.
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, data: KETriples, ke_batch_size: int = 16, seed: int = 0,
                 rate: float = RATE):
        super().__init__(vocab, pad_id, data, ke_batch_size, seed, rate)
        self.desc_rng = np.random.default_rng([seed, 2])

    def __call__(self, sentences) -> dict[str, torch.Tensor]:
        from kbench.text.masking import IGNORE, mask_units

        text = MaskingCollator.__call__(self, sentences)
        ke = self.ke_batch()
        ids, mask = ke["ke_ids"].numpy(), ke["ke_mask"].numpy()
        pairs = [mask_units(row[keep.astype(bool)], [], self.desc_rng, self.vocab, self.rate, self.pool)
                 for row, keep in zip(ids, mask)]
        batch = token_batch([inputs for inputs, _ in pairs], self.pad_id)
        labels = token_batch([labels for _, labels in pairs], IGNORE)["input_ids"]
        return {**text, "desc_ids": torch.from_numpy(batch["input_ids"]),
                "desc_mask": torch.from_numpy(batch["attention_mask"]), "desc_labels": torch.from_numpy(labels)}

    def get_state(self) -> dict:
        return {**super().get_state(), "desc_rng": self.desc_rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.desc_rng.bit_generator.state = state["desc_rng"]


class DescriptionMLM(MaskedLM):
    """The control: MLM on the text plus MLM on the descriptions KEPLER's KE loss would encode, no KE loss.

    ``L = L_MLM(text) + L_MLM(descriptions)``: the same text, the same descriptions at the same steps as
    :class:`Kepler`, so KEPLER minus this control is the KE loss's own effect, not the descriptions' words.
    """

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None, desc_ids=None,
                desc_mask=None, desc_labels=None) -> dict:
        out = super().forward(input_ids, attention_mask, labels, token_type_ids)
        if labels is None or desc_ids is None:
            return out
        described = super().forward(desc_ids, desc_mask, desc_labels)
        return {**out, "mlm_loss": out["loss"], "description_loss": described["loss"],
                "loss": out["loss"] + described["loss"]}


def ke_tokens_per_step(collate: KeplerCollator, steps: int = 50) -> dict[str, float]:
    """Return what the KE side adds per step, averaged over ``steps`` draws: ``descriptions`` encoded and their
    ``tokens`` (non-padding, [CLS] and [SEP] included). The collator's random state is restored after."""
    state = collate.ke_rng.bit_generator.state
    try:
        batches = [collate.ke_batch() for _ in range(steps)]
    finally:
        collate.ke_rng.bit_generator.state = state
    return {"descriptions": float(np.mean([len(b["ke_ids"]) for b in batches])),
            "tokens": float(np.mean([int(b["ke_mask"].sum()) for b in batches]))}


class Kepler(MaskedLM):
    """A masked LM plus KEPLER's relation table; ``forward`` adds ``ke_scale · L_KE`` to the MLM loss."""

    def __init__(self, lm, tokenizer, collate: KeplerCollator, description: str = "", gamma: float = GAMMA,
                 norm: int = NORM, ke_scale: float = KE_SCALE, ke_dropout: bool = KE_DROPOUT):
        super().__init__(lm, tokenizer, collate, description)
        if norm not in (1, 2):
            raise InputError(f"the TransE norm must be 1 or 2, got {norm}")
        hidden = lm.config.hidden_size
        self.relation_embeddings = nn.Embedding(len(collate.data.relations), hidden)
        bound = (gamma + EMB_EPS) / hidden
        nn.init.uniform_(self.relation_embeddings.weight, -bound, bound)
        self.relations = list(collate.data.relations)
        self.gamma, self.norm, self.ke_scale, self.ke_dropout = gamma, norm, ke_scale, ke_dropout

    def entity_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return each description's first-token output state: the entity embeddings.

        Without ``ke_dropout`` the encoder runs with its dropout off for this
        pass (gradients flow as usual), and its training mode is restored after.
        """
        if self.ke_dropout or not self.training:
            return self.hidden(ids, mask)[:, 0]
        self.lm.eval()
        try:
            return self.hidden(ids, mask)[:, 0]
        finally:
            self.lm.train()

    def ke_distances(self, ke_ids, ke_mask, ke_heads, ke_relations, ke_tails, ke_negatives
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(d(h, t), d(h', t'))``: ``(b,)`` and ``(b, n)`` distances of the batch's triples and negatives."""
        entities = self.entity_states(ke_ids, ke_mask)
        relations = self.relation_embeddings(ke_relations)
        positive = transe_distance(entities[ke_heads], relations, entities[ke_tails], self.norm)
        negative = transe_distance(entities[ke_negatives[..., 0]], relations[:, None], entities[ke_negatives[..., 1]],
                                   self.norm)
        return positive, negative

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None, ke_ids=None, ke_mask=None,
                ke_heads=None, ke_relations=None, ke_tails=None, ke_negatives=None) -> dict:
        out = super().forward(input_ids, attention_mask, labels, token_type_ids)
        if labels is None or ke_ids is None:
            return out
        positive, negative = self.ke_distances(ke_ids, ke_mask, ke_heads, ke_relations, ke_tails, ke_negatives)
        loss_ke = ke_loss(positive, negative, self.gamma)
        return {**out, "mlm_loss": out["loss"], "ke_loss": loss_ke, "loss": out["loss"] + self.ke_scale * loss_ke}

    def export_lm(self):
        """Return the plain ``BertForMaskedLM`` (encoder + MLM head): what a notebook takes as ``base_model``."""
        return self.lm


def pretrainer(kg: DescribedKG, train: Sequence[tuple[str, str, str]], base_model: str = "tiny",
               objective: str = "kepler", seed: int = 0, vocab: str | None = None, layers: int | None = None,
               ke_batch_size: int = 16, max_length: int = 48, known: Sequence[tuple[str, str, str]] = (),
               gamma: float = GAMMA, norm: int = NORM, ke_scale: float = KE_SCALE, rate: float = RATE,
               ke_dropout: bool = KE_DROPOUT) -> MaskedLM:
    """Return a pretraining model: ``kepler`` (KE + MLM), ``mlm`` (token-masking MLM) or ``mlm_descriptions``
    (MLM on the text and on the descriptions KEPLER would encode, no KE loss), from the same seeded init.

    Both take the same ``masked_lm(base_model, vocab, seed)`` and the same
    masking collator seed, so they see the same masks of the same sentences;
    KEPLER's relation table is drawn after (seed + 1). ``train`` are the KE
    training triples; ``known`` more triples that negatives must avoid.
    """
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    mask_vocab = MaskVocab.of(tokenizer)
    if objective == "mlm":
        return MaskedLM(lm, tokenizer, MaskingCollator(mask_vocab, tokenizer.pad_token_id, "token", seed, rate),
                        description + ", MLM only")
    if objective not in ("kepler", "mlm_descriptions"):
        raise InputError(f"unknown objective {objective!r}: use 'kepler', 'mlm' or 'mlm_descriptions'")
    data = KETriples.build(kg, train, tokenizer, max_length, known)
    if objective == "mlm_descriptions":
        collate = DescriptionCollator(mask_vocab, tokenizer.pad_token_id, data, ke_batch_size, seed, rate)
        return DescriptionMLM(lm, tokenizer, collate, description + ", MLM on the text and the KE descriptions")
    collate = KeplerCollator(mask_vocab, tokenizer.pad_token_id, data, ke_batch_size, seed, rate)
    torch.manual_seed(seed + 1)
    return Kepler(lm, tokenizer, collate, description + f", KEPLER (TransE L{norm}, γ={gamma:g})", gamma, norm,
                  ke_scale, ke_dropout)


# --- evaluation -------------------------------------------------------------------------------------------

@torch.no_grad()
def entity_embeddings(model: MaskedLM, kg: DescribedKG, entities: Sequence[str], max_length: int = 48,
                      batch_size: int = 128) -> torch.Tensor:
    """Return ``(len(entities), d)``: each entity's first-token state of its description (any MLM model's encoder)."""
    check_descriptions(entities, kg.descriptions)
    tokenizer = model.tokenizer
    device = next(model.parameters()).device
    rows = []
    with eval_mode(model):
        for first in range(0, len(entities), batch_size):
            chunk = [kg.descriptions[e] for e in entities[first:first + batch_size]]
            encoded = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            rows.append(model.hidden(encoded["input_ids"].to(device),
                                     encoded["attention_mask"].to(device))[:, 0].float().cpu())
    return torch.cat(rows)


def mean_offsets(vectors: torch.Tensor, index: dict[str, int], triples: Sequence[tuple[str, str, str]],
                 relations: Sequence[str]) -> torch.Tensor:
    """Return per relation ``r = mean(t - h)`` over ``triples``: the least-squares best L2 TransE relation vectors.

    The relation table an encoder without KE training gets when scoring with L2 (:func:`best_offsets`;
    L1 takes :func:`median_offsets`): the ``r`` minimising ``Σ ||h + r - t||²`` for fixed entity vectors.
    A relation with no triple gets zeros.
    """
    table = torch.zeros(len(relations), vectors.shape[1])
    counts = torch.zeros(len(relations))
    position = {r: i for i, r in enumerate(relations)}
    for head, relation, tail in triples:
        table[position[relation]] += vectors[index[tail]] - vectors[index[head]]
        counts[position[relation]] += 1
    return table / counts.clamp(min=1)[:, None]


def median_offsets(vectors: torch.Tensor, index: dict[str, int], triples: Sequence[tuple[str, str, str]],
                   relations: Sequence[str]) -> torch.Tensor:
    """Return per relation the per-dimension median of ``t - h``: the best L1 TransE relation vectors.

    The ``r`` minimising ``Σ ||h + r - t||_1`` for fixed entity vectors (L1
    separates by dimension; each dimension's optimum is a median). A relation
    with no triple gets zeros.
    """
    position = {r: i for i, r in enumerate(relations)}
    offsets: dict[int, list[torch.Tensor]] = {}
    for head, relation, tail in triples:
        offsets.setdefault(position[relation], []).append(vectors[index[tail]] - vectors[index[head]])
    table = torch.zeros(len(relations), vectors.shape[1])
    for row, found in offsets.items():
        table[row] = torch.stack(found).median(0).values
    return table


def best_offsets(vectors: torch.Tensor, index: dict[str, int], triples: Sequence[tuple[str, str, str]],
                 relations: Sequence[str], norm: int = NORM) -> torch.Tensor:
    """Return the relation vectors that best fit fixed entity vectors under ``norm``: median (L1) or mean (L2)."""
    if norm not in (1, 2):
        raise InputError(f"the TransE norm must be 1 or 2, got {norm}")
    return (median_offsets if norm == 1 else mean_offsets)(vectors, index, triples, relations)


def link_prediction(vectors: torch.Tensor, entities: Sequence[str], relation_vectors: torch.Tensor,
                    relations: Sequence[str], test: Sequence[tuple[str, str, str]],
                    known: Sequence[tuple[str, str, str]] = (), norm: int = NORM) -> dict[str, float]:
    """Return filtered ``mrr``, ``hits@1``, ``hits@3``, ``hits@10`` of ``test`` (heads and tails both ranked).

    The candidates are ``entities`` (rows of ``vectors``); for a query
    ``(h, r, ?)`` every candidate ``t'`` with ``(h, r, t')`` among ``known`` or
    ``test`` (other than the gold) is left out — the filtered setting. Ties rank
    pessimistically (the gold below every candidate as close as it).
    """
    if not test:
        raise InputError("no test triples to rank")
    index = {e: i for i, e in enumerate(entities)}
    position = {r: i for i, r in enumerate(relations)}
    for triple in test:
        if triple[0] not in index or triple[2] not in index:
            raise InputError(f"test triple {triple!r} names an entity that is not a candidate")
        if triple[1] not in position:
            raise InputError(f"test triple {triple!r} has a relation with no vector")
    true_tails: dict[tuple[str, str], set[int]] = {}
    true_heads: dict[tuple[str, str], set[int]] = {}
    for head, relation, tail in list(known) + list(test):
        if head in index and tail in index:
            true_tails.setdefault((head, relation), set()).add(index[tail])
            true_heads.setdefault((relation, tail), set()).add(index[head])
    ranks = []
    for head, relation, tail in test:
        r = relation_vectors[position[relation]]
        h, t = vectors[index[head]], vectors[index[tail]]
        for scores, gold, others in ((transe_distance(h + r, torch.zeros_like(r), vectors, norm), index[tail],
                                      true_tails[(head, relation)]),
                                     (transe_distance(vectors + r, torch.zeros_like(r), t, norm), index[head],
                                      true_heads[(relation, tail)])):
            keep = torch.ones(len(entities), dtype=torch.bool)
            keep[list(others - {gold})] = False
            keep[gold] = False
            ranks.append(1 + int((scores[keep] <= scores[gold]).sum()))
    ranks = np.asarray(ranks, float)
    return {"mrr": float((1 / ranks).mean()), **{f"hits@{k}": float((ranks <= k).mean()) for k in (1, 3, 10)}}


@dataclass
class LinkResult:
    """Link prediction of one encoder: inductive and transductive scores, and its entity vectors."""

    inductive: dict[str, float]
    transductive: dict[str, float]
    vectors: torch.Tensor
    entities: list[str]
    relation_vectors: torch.Tensor
    inductive_named: dict[str, float] | None = None      # test triples whose answer a description names
    inductive_unnamed: dict[str, float] | None = None    # the others
    named: int = 0                                        # how many inductive triples are named
    offsets_inductive: dict[str, float] | None = None    # a Kepler's vectors scored with best_offsets instead
    inductive_disjoint: dict[str, float] | None = None   # the authors' protocol: both entities unseen (see below)
    disjoint: int = 0                                     # how many such triples
    trained: dict[str, float] | None = None              # the KE training triples themselves, training candidates


def evaluate_links(model: MaskedLM, kg: DescribedKG, split, max_length: int = 48, norm: int = NORM
                   ) -> LinkResult:
    """Return the inductive and transductive link prediction of ``model`` on ``split`` (a :class:`KESplit`).

    Entity vectors are description encodings. A :class:`Kepler` model scores
    with its own relation table; any other encoder (the MLM-only baseline)
    with :func:`best_offsets` of the training triples (the per-dimension median
    for L1, the mean for L2). Inductive candidates: every entity of the KG;
    transductive candidates: the training entities (TransE's table). Filtered by
    every triple of the KG. The inductive triples are also scored in two parts:
    those whose answer is named in a description (:func:`answer_named`) and the
    rest (filtered by the same triples). A Kepler's vectors are also scored with
    :func:`best_offsets` instead of its table (``offsets_inductive``).
    ``inductive_disjoint`` is closer to the authors' ``evaluate_transe_inductive.py``:
    only the inductive triples whose two entities are both unseen, ranked among the
    unseen entities alone and filtered by those triples alone (``None`` if there
    are none). ``trained`` ranks the KE training triples themselves among the
    training entities: the facts KE training certainly saw.
    """
    from kbench.kg.described import answer_named

    entities = kg.entities
    vectors = entity_embeddings(model, kg, entities, max_length)
    index = {e: i for i, e in enumerate(entities)}
    offsets = best_offsets(vectors, index, split.train, kg.relations, norm)
    offsets_inductive = None
    if isinstance(model, Kepler):
        relation_vectors = model.relation_embeddings.weight.detach().float().cpu()
        relations = model.relations
        offsets_inductive = link_prediction(vectors, entities, offsets, kg.relations, split.inductive, kg.triples,
                                            norm)
    else:
        relations, relation_vectors = kg.relations, offsets
    inductive = link_prediction(vectors, entities, relation_vectors, relations, split.inductive, kg.triples, norm)
    named = [t for t in split.inductive if answer_named(kg, t)]
    unnamed = [t for t in split.inductive if not answer_named(kg, t)]
    parts = [link_prediction(vectors, entities, relation_vectors, relations, part, kg.triples, norm) if part else None
             for part in (named, unnamed)]
    unseen = list(split.unseen)
    both = [t for t in split.inductive if t[0] in set(unseen) and t[2] in set(unseen)]
    disjoint = None
    if both:
        rows = torch.tensor([index[e] for e in unseen])
        disjoint = link_prediction(vectors[rows], unseen, relation_vectors, relations, both, both, norm)
    seen = split.train_entities
    rows = torch.tensor([index[e] for e in seen])
    transductive = link_prediction(vectors[rows], seen, relation_vectors, relations, split.transductive, kg.triples,
                                   norm)
    trained = link_prediction(vectors[rows], seen, relation_vectors, relations, split.train, kg.triples, norm)
    return LinkResult(inductive, transductive, vectors, entities, relation_vectors, parts[0], parts[1], len(named),
                      offsets_inductive, disjoint, len(both), trained)


def transe_baseline(kg: DescribedKG, split, dim: int = 64, epochs: int = 100, seed: int = 0,
                    learning_rate: float = 0.01) -> tuple[dict[str, float], object]:
    """Return PyKEEN TransE's transductive scores on ``split`` (trained on ``split.train``) and the embeddings.

    TransE has one free vector per *training* entity: it cannot rank the
    inductive test triples at all (their entities have no row), which is the
    setting KEPLER is for.
    """
    from kbench.kg.embeddings import train_embeddings
    from kbench.kg.graph import KnowledgeGraph

    embeddings = train_embeddings(KnowledgeGraph.from_triples(split.train, name=kg.name), "TransE", dim=dim,
                                  epochs=epochs, seed=seed, learning_rate=learning_rate, progress=False)
    scores = embeddings.evaluate(split.transductive, also_known=[t for t in kg.triples
                                                                 if t[0] in embeddings.entity_to_id
                                                                 and t[2] in embeddings.entity_to_id])
    return scores, embeddings


def _objective(base_model: str, steps: int, data_dir: str | None = None, seed: int = 0, **kw) -> MaskedLM:
    """``kbench pretrain --objective kepler``: KE on 2,000 WordNet noun synsets described by their glosses (every
    triple of them for training)."""
    from kbench.kg.described import wordnet_described_kg
    from kbench.kg.wordnet import load_wordnet

    kg = wordnet_described_kg(load_wordnet(data_dir), 2000, seed)
    return pretrainer(kg, kg.triples, base_model, "kepler", seed=seed, **kw)


register_objective("kepler", (), _objective)
