"""WKLM: type-constrained entity replacement beside a light MLM, and a replaced-or-not head at the mention's borders.

Xiong, Du, Wang, Stoyanov. *Pretrained Encyclopedia: Weakly Supervised
Knowledge-Pretrained Language Model.* ICLR 2020. https://arxiv.org/abs/1912.09637
Code: https://github.com/xwhan/fairseq-wklm (branch ``knowledge_pretrain``:
``fairseq/data/kdn_dataset.py``, ``fairseq/models/kdn_model.py``,
``fairseq/criterions/kdn_loss.py``).

Taught in ``notebooks/08_wklm.ipynb``. WKLM keeps BERT's encoder and changes
what it is asked (Fig. 1, "type-constrained entity replacements"):

- **Entity replacement.** Each entity mention of a sentence is replaced, with
  probability 0.5 (:data:`REPLACE_RATE`), by another entity **of the same
  type** (Wikidata's ``instance of`` in the paper; the KG's types here,
  :class:`TypedEntities`), written with one of that entity's aliases drawn
  uniformly. Two consecutive mentions are never both replaced: a mention that
  follows a replaced one stays as it is. A type with one entity offers no
  replacement; its mentions stay true. The replacement is made in ``collate``
  on token ids (the alias's WordPiece ids spliced in: BERT's tokenizer splits
  whole words the same anywhere, tested), so every epoch draws fresh
  negatives — the authors write them once, in preprocessing, for each of
  their epochs' shards.
- **Replaced-or-not head** (the authors' ``--boundary-loss``): the final
  states of the token just *before* and just *after* the mention are
  concatenated, ``[h_{s-1}; h_e]`` (``2d``), then dropout, then
  ``Linear(2d, 2)`` (N(0, 0.02), zero bias, as ``KDN.reset_parameters``);
  cross-entropy per mention, averaged over the batch's mentions
  (:data:`ORIGINAL` = 0, :data:`REPLACED` = 1). Before and after are not
  interchangeable (tested). The mention's own tokens and [CLS] are not read:
  the head must judge the mention from what its context says about it.
  The dropout rate is the encoder's hidden dropout (the code reads
  ``--last-dropout``, which no script in the repository sets).
  The code also has a start-token head and a start-and-end head; the
  boundary head is the one kbench implements.
- **MLM at 5%** (:data:`MLM_RATE`), never inside an entity mention, BERT's
  80/10/10 on the chosen tokens. The paper gives the rate; the authors'
  ``_mask_block`` draws ``ceil(0.05 L)`` positions over the whole block and
  then drops those inside mentions. We choose each token outside the mentions
  (and not a special token) with probability 0.05, so that the rate is 5% of
  the tokens MLM may see and a test can bound it.
- **Loss** (``kdn_loss.py``): ``L = L_entity + L_MLM``, each a mean (over
  mentions, over predicted tokens), summed with weight 1.

The comparison follows the paper's design: the paper continues a fully
trained BERT-base (whose MLM head already predicts entities) with WKLM and
compares it with BERT; with no MLM-headed BERT offline, we first pretrain a
random-init BERT with MLM for a shared warm-up, then branch from that one
checkpoint into the :data:`VARIANTS`, each for the same further steps on the
same sentences: BERT's MLM (15% of tokens, :class:`kbench.pretrain.MaskingCollator`),
WKLM, the **no-head control** (``wklm_nohead``: WKLM's 5% MLM outside the
mentions with no replacement and no head loss — what WKLM's MLM alone does,
so that WKLM minus it is the head's effect), and an ablation: untyped
replacement (``wklm_untyped``: any entity may replace any,
:meth:`TypedEntities.untyped`), the shortcut the type constraint avoids.

The zero-shot fact completion probe is the shared MLM probe
(:class:`kbench.probes.MaskedLMScorer`), as the authors'
``scripts/evaluate_kdn_lama.py`` does: it ranks candidates by the MLM head's
log-probability of the candidate's first token with [MASK] in the slot (its
head-based scoring line is commented out). :class:`ReplacementScorer` is our
addition, a second reading of the head.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from kbench.encoders import init_bert_weights
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.pretrain import Corpus, MaskedLM, MaskingCollator, Sentence, masked_lm, register_objective
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import IGNORE, RATE, MaskVocab
from kbench.train import eval_mode, token_batch

CITATION = {
    "title": "Pretrained Encyclopedia: Weakly Supervised Knowledge-Pretrained Language Model",
    "authors": "Xiong, Du, Wang, Stoyanov",
    "venue": "ICLR", "year": 2020, "url": "https://arxiv.org/abs/1912.09637",
    "code": "https://github.com/xwhan/fairseq-wklm",
}
NOTEBOOK = "08_wklm"
PLACE = Place('WKLM', 'objective', ('KG',),
              'entity mentions replaced by same-type entities; the model learns to tell the true statement from the'
              ' false',
              survey='factual')
HEADLINE = Headline('entity typing, accuracy', 'wklm_typing_accuracy', 'mlm_typing_accuracy',
                    'entity mentions linked and typed in the pretraining text (nothing at run time)',
                    probe=('wklm_probe_mrr', 'mlm_probe_mrr'),
                    trivial=('warmup_typing_accuracy', 'untrained_typing_accuracy', 'typing_majority_accuracy'),
                    positive=PositiveControl(
                        'the replacement is certainly visible in the input when any entity may replace any (a city '
                        'where a person stood): the head trained on such replacements must separate them better '
                        'than it separates same-type ones on the same held-out statements',
                        'wklm_untyped_head_auc_any_type', 'wklm_untyped_head_auc', 0.03))

REPLACE_RATE = 0.5          # the paper: a mention is replaced with probability 0.5
MLM_RATE = 0.05             # the paper: MLM at 5%, outside entity mentions
ORIGINAL, REPLACED = 0, 1   # the replaced-or-not head's labels
VARIANTS = (Variant("mlm", "BERT (MLM on 15% of tokens)", {"objective": "mlm"}),
            Variant("wklm", "WKLM (same-type replacement + 5% MLM)", {"objective": "wklm"}),
            Variant("wklm_nohead", "control: 5% MLM outside mentions, no head", {"objective": "wklm_nohead"}),
            Variant("wklm_untyped", "WKLM with untyped replacement (the shortcut)", {"objective": "wklm_untyped"}))


@dataclass(frozen=True)
class TypedEntities:
    """Entities with one type each and the aliases they may be written with (their name first)."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    aliases: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, types: Mapping[str, str], aliases: Mapping[str, Sequence[str]] | None = None) -> TypedEntities:
        """Return the entities of ``types`` (name -> type); ``aliases`` (name -> more names) default to the name.

        A KG without types, an entity with an empty type, or an alias shared by
        two entities is an :class:`~kbench.errors.InputError`: replacement needs
        each mention's entity and its type.
        """
        if not types:
            raise InputError("WKLM needs typed entities: the KG has no types (give name -> type, e.g. instance of)")
        names = sorted(types)
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise InputError(f"an entity name must be a non-empty string, got {name!r}")
            if not isinstance(types[name], str) or not types[name].strip():
                raise InputError(f"entity {name!r} has no type: every entity needs one for same-type replacement")
        aliases = aliases or {}
        unknown = [name for name in aliases if name not in types]
        if unknown:
            raise InputError(f"aliases given for {unknown[0]!r}, which has no type")
        table, owner = [], {}
        for name in names:
            forms = tuple(dict.fromkeys([name, *aliases.get(name, ())]))
            for form in forms:
                if not isinstance(form, str) or not form.strip():
                    raise InputError(f"an alias of {name!r} is empty")
                if owner.setdefault(form, name) != name:
                    raise InputError(f"the alias {form!r} belongs to both {owner[form]!r} and {name!r}: a mention "
                                     "written so could not be linked to one entity")
            table.append(forms)
        return cls(tuple(names), tuple(types[name] for name in names), tuple(table))

    def __len__(self) -> int:
        return len(self.names)

    def untyped(self) -> TypedEntities:
        """Return the same entities and aliases with one type for all: replacement by *any* other entity (the
        shortcut the paper's type constraint avoids, kept as an ablation)."""
        return TypedEntities(self.names, ("entity",) * len(self.names), self.aliases)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"unknown entity {name!r}") from None

    def alias_owner(self) -> dict[str, int]:
        """Return each alias's entity index."""
        return {form: index for index, forms in enumerate(self.aliases) for form in forms}

    def same_type(self) -> list[np.ndarray]:
        """Return, for each entity, the indices of the *other* entities of its type (its possible replacements)."""
        by_type: dict[str, list[int]] = {}
        for index, kind in enumerate(self.types):
            by_type.setdefault(kind, []).append(index)
        return [np.asarray([j for j in by_type[kind] if j != index], np.int64)
                for index, kind in enumerate(self.types)]

    @property
    def type_names(self) -> list[str]:
        return sorted(set(self.types))


@dataclass
class MentionSentence(Sentence):
    """A :class:`Sentence` with its linked entity mentions: ``(start, end, entity index)`` in token positions."""

    mentions: list[tuple[int, int, int]] = field(default_factory=list)


def find_mentions(text: str, detector, owner: Mapping[str, int]) -> list[tuple[int, int, int]]:
    """Return the character spans of the aliases in ``text`` (forward maximum matching) with their entity index."""
    from kbench.text.mentions import UNIT_PATTERN

    matches = list(UNIT_PATTERN.finditer(text))
    return [(matches[start].start(), matches[end - 1].end(), owner[alias])
            for start, end, alias in detector.spans([m.group() for m in matches]) if alias is not None]


def mention_corpus(texts: Sequence[str], tokenizer, entities: TypedEntities, max_length: int = 64,
                   source: str = "texts") -> Corpus:
    """Return a :class:`Corpus` of :class:`MentionSentence` s: each text's ids and its mentions of ``entities``.

    Mentions are found by :class:`~kbench.text.mentions.MentionDetector` over
    every alias. A mention cut by truncation or holding an [UNK] is dropped;
    the mentions are also the sentence's ``entity`` units, so any masking
    collator reads the same corpus (the MLM baseline does).
    """
    from kbench.text.mentions import MentionDetector

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InputError("the corpus is empty: no non-blank text")
    owner = entities.alias_owner()
    detector = MentionDetector(list(owner))
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    special = set(tokenizer.all_special_ids)
    sentences = []
    for index, text in enumerate(texts):
        ids = np.asarray(encoded["input_ids"][index], np.int64)
        offsets = encoded["offset_mapping"][index]
        mentions = []
        for char_start, char_end, entity in find_mentions(text, detector, owner):
            inside = [i for i, (a, b) in enumerate(offsets) if b > a and a >= char_start and b <= char_end]
            if not inside or offsets[inside[-1]][1] != char_end or offsets[inside[0]][0] != char_start:
                continue                                  # truncated away, or not on token boundaries
            start, end = inside[0], inside[-1] + 1
            if any(int(i) in special for i in ids[start:end]):
                continue
            mentions.append((start, end, entity))
        sentences.append(MentionSentence(text, ids, {"entity": [(s, e) for s, e, _ in mentions]}, mentions))
    return Corpus(sentences, tokenizer, source)


def alias_ids(entities: TypedEntities, tokenizer) -> list[list[np.ndarray]]:
    """Return each entity's aliases as WordPiece ids (no special tokens), in alias order."""
    table = []
    for name, forms in zip(entities.names, entities.aliases):
        rows = []
        for form in forms:
            ids = np.asarray(tokenizer(form, add_special_tokens=False)["input_ids"], np.int64)
            if not len(ids) or np.isin(ids, list(tokenizer.all_special_ids)).any():
                raise InputError(f"the alias {form!r} of {name!r} has no tokens or an [UNK]: the vocabulary "
                                 "cannot write it")
            rows.append(ids)
        table.append(rows)
    spelled: dict[tuple[int, ...], str] = {}
    for name, forms, rows in zip(entities.names, entities.aliases, table):
        for form, ids in zip(forms, rows):
            other = spelled.setdefault(tuple(int(i) for i in ids), name)
            if other != name:
                raise InputError(f"{other!r} and {name!r} are written with the same word pieces ({form!r}): the "
                                 "tokenizer cannot tell them apart (an uncased vocabulary folds case), so a mention "
                                 "of one could not be linked to one entity; keep one of them")
    return table


@dataclass
class Replaced:
    """One sentence after replacement: its ids, each mention's new span, label, and the entity now written there."""

    ids: np.ndarray
    spans: list[tuple[int, int]]
    labels: list[int]
    entities: list[int]


class ReplacementCollator:
    """WKLM's batch: same-type replacement of mentions, then MLM at 5% outside them (see the module docstring).

    Returns ``input_ids``, ``attention_mask``, MLM ``labels`` and, per mention,
    ``entity_rows`` (its sentence), ``entity_before`` / ``entity_after`` (the
    positions read by the head) and ``entity_labels``. Its random state is
    saved by ``fit``'s checkpoints (``get_state``/``set_state``).
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, entities: TypedEntities, aliases: Sequence[Sequence[np.ndarray]],
                 seed: int = 0, replace_rate: float = REPLACE_RATE, mlm_rate: float = MLM_RATE,
                 max_length: int | None = None):
        if not 0.0 <= replace_rate <= 1.0:
            raise InputError(f"replace_rate must be in [0, 1], got {replace_rate}")
        if not 0.0 <= mlm_rate < 1.0:
            raise InputError(f"mlm_rate must be in [0, 1), got {mlm_rate}")
        if len(aliases) != len(entities):
            raise InputError(f"{len(aliases)} alias lists for {len(entities)} entities")
        self.vocab, self.pad_id, self.entities, self.aliases = vocab, pad_id, entities, aliases
        self.replace_rate, self.mlm_rate, self.max_length = replace_rate, mlm_rate, max_length
        self.same_type = entities.same_type()
        self.pool = vocab.replacement_pool()
        self.rng = np.random.default_rng(seed)
        self.batches = 0

    def mentions_of(self, sentence: Sentence) -> list[tuple[int, int, int]]:
        """Return the sentence's mentions with their entity: a :class:`MentionSentence`'s own, or a plain
        sentence's ``entity`` units whose ids spell an alias (``kbench pretrain`` builds those)."""
        if isinstance(sentence, MentionSentence):
            return sorted(sentence.mentions)
        if "entity" not in sentence.units:
            raise InputError("WKLM needs sentences with linked mentions: build the corpus with mention_corpus "
                             "(or with entity units)")
        if not hasattr(self, "_by_ids"):
            self._by_ids = {tuple(int(i) for i in ids): entity for entity, forms in enumerate(self.aliases)
                            for ids in forms}
        found = [(start, end, self._by_ids.get(tuple(int(i) for i in sentence.ids[start:end])))
                 for start, end in sorted(sentence.units["entity"])]
        return [(start, end, entity) for start, end, entity in found if entity is not None]

    def replace(self, sentence: MentionSentence) -> Replaced:
        """Return ``sentence`` with each mention replaced by a same-type entity with probability ``replace_rate``,
        never right after a replaced mention.

        With ``max_length``, a replacement whose longer alias would push the
        sentence past it is not made (the mention stays true). A mention at
        position 0 (no token before it for the head to read) is an
        :class:`~kbench.errors.InputError`.
        """
        ids, pieces, spans, labels, written = sentence.ids, [], [], [], []
        position = length = 0
        previous = False
        for start, end, entity in self.mentions_of(sentence):
            if start < position:
                raise InputError(f"mention [{start}, {end}) overlaps the mention before it")
            if start < 1 or end >= len(ids):
                raise InputError(f"mention [{start}, {end}) has no token before or after it in a sentence of "
                                 f"{len(ids)} tokens: the head reads the tokens around a mention ([CLS] ... [SEP])")
            others = self.same_type[entity]
            replace = (not previous and len(others) > 0 and self.replace_rate > 0
                       and self.rng.random() < self.replace_rate)
            if replace:
                other = int(others[self.rng.integers(len(others))])
                forms = self.aliases[other]
                new = forms[int(self.rng.integers(len(forms)))]
                if self.max_length and len(ids) + length - position + len(new) - (end - start) > self.max_length:
                    other, new, replace = entity, ids[start:end], False
            else:
                other, new = entity, ids[start:end]
            pieces += [ids[position:start], new]
            length += start - position
            spans.append((length, length + len(new)))
            length += len(new)
            labels.append(REPLACED if replace else ORIGINAL)
            written.append(other)
            position, previous = end, replace
        pieces.append(ids[position:])
        return Replaced(np.concatenate(pieces).astype(np.int64), spans, labels, written)

    def mask(self, ids: np.ndarray, spans: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(input_ids, labels)``: each token outside ``spans`` (and not special) predicted with
        probability ``mlm_rate``, BERT's 80/10/10 on those."""
        eligible = ~np.isin(ids, self.vocab.special_array)
        for start, end in spans:
            eligible[start:end] = False
        positions = np.flatnonzero(eligible & (self.rng.random(len(ids)) < self.mlm_rate))
        inputs, labels = ids.copy(), np.full(len(ids), IGNORE, np.int64)
        if len(positions):
            labels[positions] = ids[positions]
            action = self.rng.random(len(positions))
            inputs[positions[action < 0.8]] = self.vocab.mask_id
            random = positions[(action >= 0.8) & (action < 0.9)]
            inputs[random] = self.rng.choice(self.pool, size=len(random))
        return inputs, labels

    def __call__(self, sentences: Sequence[MentionSentence]) -> dict[str, torch.Tensor]:
        self.batches += 1
        inputs, targets, rows, before, after, entity_labels = [], [], [], [], [], []
        for row, sentence in enumerate(sentences):
            replaced = self.replace(sentence)
            masked, labels = self.mask(replaced.ids, replaced.spans)
            inputs.append(masked)
            targets.append(labels)
            for (start, end), label in zip(replaced.spans, replaced.labels):
                rows.append(row)
                before.append(start - 1)
                after.append(end)
                entity_labels.append(label)
        if not rows and any(sentence.units.get("entity") for sentence in sentences):
            raise InputError("no mention of this batch is an entity of the typed KG: WKLM cannot replace what it "
                             "cannot type (give it the KG the text mentions)")
        batch = token_batch(inputs, self.pad_id)
        long = lambda values: torch.tensor(values, dtype=torch.long)
        return {"input_ids": torch.from_numpy(batch["input_ids"]),
                "attention_mask": torch.from_numpy(batch["attention_mask"]),
                "labels": torch.from_numpy(token_batch(targets, IGNORE)["input_ids"]),
                "entity_rows": long(rows), "entity_before": long(before), "entity_after": long(after),
                "entity_labels": long(entity_labels)}

    def get_state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "batches": self.batches}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = state["batches"]


class WKLM(MaskedLM):
    """BERT's masked LM plus WKLM's replaced-or-not head over ``[h_{s-1}; h_e]``; ``loss = L_entity + L_MLM``."""

    def __init__(self, lm, tokenizer, collate: ReplacementCollator, description: str = "", head: bool = True):
        super().__init__(lm, tokenizer, collate, description)
        self.head = head            # False: the no-head control (the head is built, never trained)
        config = lm.config
        self.replacement_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.replacement_head = nn.Linear(2 * config.hidden_size, 2)
        init_bert_weights(self.replacement_head)

    def replacement_logits(self, states: torch.Tensor, rows: torch.Tensor, before: torch.Tensor,
                           after: torch.Tensor) -> torch.Tensor:
        """Return the ``(mentions, 2)`` logits from the states just before and just after each mention."""
        border = torch.cat([states[rows, before], states[rows, after]], dim=-1)
        return self.replacement_head(self.replacement_dropout(border))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                entity_rows: torch.Tensor | None = None, entity_before: torch.Tensor | None = None,
                entity_after: torch.Tensor | None = None, entity_labels: torch.Tensor | None = None) -> dict:
        states = self.hidden(input_ids, attention_mask, token_type_ids)
        out = {}
        if entity_rows is not None and len(entity_rows):
            out["entity_logits"] = self.replacement_logits(states, entity_rows, entity_before, entity_after)
        if labels is None:
            out["logits"] = self.lm.cls(states)
            return out
        keep = labels != IGNORE
        out["logits"] = self.lm.cls(states[keep])
        mlm_loss = nn.functional.cross_entropy(out["logits"], labels[keep]) if keep.any() else states.sum() * 0.0
        out["mlm_loss"] = mlm_loss
        loss = mlm_loss
        if self.head and "entity_logits" in out and entity_labels is not None:
            out["entity_loss"] = nn.functional.cross_entropy(out["entity_logits"], entity_labels)
            loss = loss + out["entity_loss"]
        out["loss"] = loss
        return out


def pretrainer(entities: TypedEntities, base_model: str = "tiny", objective: str = "wklm", seed: int = 0,
               layers: int | None = None, vocab: str | None = None, rate: float = RATE,
               mlm_rate: float = MLM_RATE, replace_rate: float = REPLACE_RATE, max_length: int | None = None
               ) -> MaskedLM:
    """Return a pretraining model: ``wklm``, ``wklm_untyped`` (any entity replaces any), ``wklm_nohead`` (WKLM's
    5% MLM outside mentions, no replacement, no head loss: the control) or ``mlm`` (BERT's token MLM at ``rate``),
    from the same init (``base_model``: a size, or the shared warm-up's checkpoint).

    Both take the same seeded :func:`kbench.pretrain.masked_lm`, so
    :func:`kbench.experiment.compare_objectives` finds equal encoder weights;
    WKLM's head is drawn after them.
    """
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    vocabulary = MaskVocab.of(tokenizer)
    if objective == "mlm":
        return MaskedLM(lm, tokenizer, MaskingCollator(vocabulary, tokenizer.pad_token_id, "token", seed, rate),
                        description + f", MLM on {rate:.0%} of tokens")
    if objective not in ("wklm", "wklm_untyped", "wklm_nohead"):
        raise InputError(f"unknown objective {objective!r}: use 'wklm', 'wklm_untyped', 'wklm_nohead' or 'mlm'")
    if objective == "wklm_untyped":
        entities, description = entities.untyped(), description + ", untyped replacement"
    head = objective != "wklm_nohead"
    torch.manual_seed(seed + 1)
    collate = ReplacementCollator(vocabulary, tokenizer.pad_token_id, entities, alias_ids(entities, tokenizer), seed,
                                  replace_rate if head else 0.0, mlm_rate, max_length)
    return WKLM(lm, tokenizer, collate, description + (", WKLM replacement head" if head else
                                                       f", {mlm_rate:.0%} MLM outside mentions, no head"), head)


def replacement_rates(collate: ReplacementCollator, corpus: Corpus, rounds: int = 1) -> dict[str, float]:
    """Return how replacement and MLM treat ``corpus`` over ``rounds`` passes (a copy of the collator's rng).

    ``replaced``: the share of mentions replaced; ``free``: the share replaced
    among mentions whose previous mention was kept (or that come first) and
    that have a same-type alternative — the 0.5 of the paper;
    ``mlm_outside``: the share of eligible tokens outside mentions predicted;
    ``mlm_inside``: the share of mention tokens predicted (0 by design).
    """
    probe = ReplacementCollator(collate.vocab, collate.pad_id, collate.entities, collate.aliases, 0,
                                collate.replace_rate, collate.mlm_rate, collate.max_length)
    probe.rng.bit_generator.state = collate.rng.bit_generator.state
    mentions = replaced = free = free_replaced = 0
    outside = outside_hit = inside = inside_hit = 0
    for _ in range(rounds):
        for sentence in corpus.sentences:
            result = probe.replace(sentence)
            previous = False
            for (_, _, entity), label in zip(probe.mentions_of(sentence), result.labels):
                mentions += 1
                replaced += label
                if not previous and len(probe.same_type[entity]):
                    free += 1
                    free_replaced += label
                previous = label == REPLACED
            _, labels = probe.mask(result.ids, result.spans)
            in_mention = np.zeros(len(result.ids), bool)
            for start, end in result.spans:
                in_mention[start:end] = True
            ordinary = ~np.isin(result.ids, probe.vocab.special_array)
            outside += int((ordinary & ~in_mention).sum())
            outside_hit += int(((labels != IGNORE) & ~in_mention).sum())
            inside += int(in_mention.sum())
            inside_hit += int(((labels != IGNORE) & in_mention).sum())
    share = lambda a, b: float(a / b) if b else 0.0
    return {"replaced": share(replaced, mentions), "free": share(free_replaced, free),
            "mlm_outside": share(outside_hit, outside), "mlm_inside": share(inside_hit, inside),
            "mentions": float(mentions)}


@torch.no_grad()
def replacement_scores(model: WKLM, replaced: Sequence[Replaced]) -> list[np.ndarray]:
    """Return, for each replaced sentence (unmasked), the head's probability that each mention was replaced."""
    if not isinstance(model, WKLM):
        raise InputError("only a WKLM model has a replaced-or-not head")
    device = next(model.parameters()).device
    with eval_mode(model):
        batch = token_batch([r.ids for r in replaced], model.tokenizer.pad_token_id)
        rows = [row for row, r in enumerate(replaced) for _ in r.spans]
        if not rows:
            return [np.zeros(0) for _ in replaced]
        before = [start - 1 for r in replaced for start, _ in r.spans]
        if any(b < 0 for b in before) or any(end >= len(r.ids) for r in replaced for _, end in r.spans):
            raise InputError("a mention at the sentence's first or last position: the head reads the tokens "
                             "before and after it")
        after = [end for r in replaced for _, end in r.spans]
        states = model.hidden(torch.from_numpy(batch["input_ids"]).to(device),
                              torch.from_numpy(batch["attention_mask"]).to(device))
        long = lambda values: torch.tensor(values, dtype=torch.long, device=device)
        probabilities = model.replacement_logits(states, long(rows), long(before), long(after)
                                                 ).float().softmax(-1)[:, REPLACED].cpu().numpy()
    out, first = [], 0
    for r in replaced:
        out.append(probabilities[first:first + len(r.spans)])
        first += len(r.spans)
    return out


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Return the area under the ROC curve of ``scores`` for ``labels`` (1: replaced): the chance that a replaced
    mention scores above an original one, ties counting half (0.5: no separation, whatever the prior).

    NaN when one class is absent.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    positive, negative = scores[labels == REPLACED], scores[labels == ORIGINAL]
    if not len(positive) or not len(negative):
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    return float(greater / (len(positive) * len(negative)))


def replacement_judgement(model: WKLM, sentences: Sequence[MentionSentence], seed: int = 0, batch_size: int = 64,
                          entities: TypedEntities | None = None,
                          groups: Sequence[Sequence[str]] | None = None) -> dict[str, float]:
    """Return how well the head tells replaced mentions from original ones on ``sentences``: ``auc`` (the
    prior-free measure: 0.5 is no separation), ``accuracy`` at 0.5, ``log_loss`` beside ``prior_entropy``
    (the log-loss of always answering the share of replaced mentions), and the ``original`` share of those very
    mentions (what always answering "original" scores).

    Fresh replacements are drawn with ``seed`` among ``entities``' types (default:
    the model's own; ``entities.untyped()`` lets any entity replace any), with no
    MLM masking. ``groups`` names each sentence's mentions (in order, e.g.
    ``"subject"`` / ``"object"``); each group gets ``auc_<group>``,
    ``original_<group>`` and ``mentions_<group>``.
    """
    if not isinstance(model, WKLM):
        raise InputError("only a WKLM model has a replaced-or-not head")
    if groups is not None and len(groups) != len(sentences):
        raise InputError(f"{len(groups)} group lists for {len(sentences)} sentences")
    collate = model.collate
    entities = entities or collate.entities
    if entities.names != collate.entities.names:
        raise InputError("the entities to replace with must be the model's own (in another typing)")
    judge = ReplacementCollator(collate.vocab, collate.pad_id, entities, collate.aliases, seed,
                                collate.replace_rate or REPLACE_RATE, 0.0, collate.max_length)
    all_scores, all_labels, all_groups = [], [], []
    for first in range(0, len(sentences), batch_size):
        chunk = [judge.replace(s) for s in sentences[first:first + batch_size]]
        for offset, (result, scores) in enumerate(zip(chunk, replacement_scores(model, chunk))):
            all_scores += [float(x) for x in scores]
            all_labels += [int(x) for x in result.labels]
            if groups is not None:
                names = list(groups[first + offset])
                if len(names) != len(result.labels):
                    raise InputError(f"sentence {first + offset} has {len(result.labels)} mentions, "
                                     f"{len(names)} group names")
                all_groups += names
    if not all_labels:
        raise InputError("no mention to judge: the sentences have no linked mentions")
    scores, labels = np.asarray(all_scores), np.asarray(all_labels)
    share = float(labels.mean())
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    entropy = lambda p: float(-(p * np.log(p) + (1 - p) * np.log(1 - p))) if 0 < p < 1 else 0.0
    out = {"accuracy": float(((scores > 0.5).astype(int) == labels).mean()), "auc": auc(scores, labels),
           "log_loss": float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))),
           "prior_entropy": entropy(share), "original": 1.0 - share, "mentions": float(len(labels))}
    if groups is not None:
        names = np.asarray(all_groups)
        for group in sorted(set(all_groups)):
            chosen = names == group
            out[f"auc_{group}"] = auc(scores[chosen], labels[chosen])
            out[f"original_{group}"] = float((labels[chosen] == ORIGINAL).mean())
            out[f"mentions_{group}"] = float(chosen.sum())
    return out


def replacement_accuracy(model: WKLM, sentences: Sequence[MentionSentence], seed: int = 0, batch_size: int = 64,
                         entities: TypedEntities | None = None) -> float:
    """Return :func:`replacement_judgement`'s accuracy."""
    return replacement_judgement(model, sentences, seed, batch_size, entities)["accuracy"]


class ReplacementScorer:
    """Score probe candidates with WKLM's replaced-or-not head: each candidate written in the slot, scored by
    ``log p(original)`` at its borders (a :func:`kbench.probes.run_probe` scorer).

    Our addition, not the paper's evaluation: the authors'
    ``evaluate_kdn_lama.py`` ranks by the MLM head (the shared probe,
    :class:`kbench.probes.MaskedLMScorer`), its head-based line commented out.
    This asks the head WKLM's knowledge objective trains: is this statement,
    with this entity in it, the original? One forward pass per (item, candidate).
    """

    def __init__(self, model: WKLM, batch_size: int = 256):
        if not isinstance(model, WKLM):
            raise InputError("only a WKLM model has a replaced-or-not head to score candidates with")
        self.model, self.batch_size = model, batch_size

    def _ids(self, text: str) -> list[int]:
        return self.model.tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []

    @torch.no_grad()
    def __call__(self, items) -> list[dict[str, float]]:
        from kbench.probes import SLOT

        tokenizer = self.model.tokenizer
        pieces = {name: self._ids(name) for item in items for name in item.candidates}
        rows = []                               # (item index, candidate, ids, start, end)
        for index, item in enumerate(items):
            if item.statement.count(SLOT) != 1:
                raise InputError(f"a probe statement needs exactly one {SLOT}: {item.statement!r}")
            left, right = item.statement.split(SLOT)
            left_ids, right_ids = self._ids(left), self._ids(right)
            for name in item.candidates:
                start = 1 + len(left_ids)
                ids = [tokenizer.cls_token_id, *left_ids, *pieces[name], *right_ids, tokenizer.sep_token_id]
                rows.append((index, name, np.asarray(ids, np.int64), start, start + len(pieces[name])))
        tables: list[dict[str, float]] = [{} for _ in items]
        for first in range(0, len(rows), self.batch_size):
            chunk = rows[first:first + self.batch_size]
            scores = replacement_scores(self.model, [Replaced(ids, [(start, end)], [ORIGINAL], [0])
                                                     for _, _, ids, start, end in chunk])
            for (index, name, *_), score in zip(chunk, scores):
                tables[index][name] = float(np.log(max(1.0 - float(score[0]), 1e-12)))
        return tables


def replacement_rows(model: WKLM, sentence: MentionSentence, result: Replaced) -> list[tuple[str, dict | None]]:
    """Return ``result`` as segments for the view: ``(text, None)`` between mentions, and for each mention
    ``(written text, {"original", "replaced", "type", "p_replaced"})`` with the head's probability."""
    tokenizer = model.tokenizer
    decode = lambda ids: tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)
    scores = replacement_scores(model, [result])[0]
    entities = model.collate.entities
    segments, position = [], 0
    for (start, end), label, entity, (old_start, old_end, _), score in zip(
            result.spans, result.labels, result.entities, sorted(sentence.mentions), scores):
        if start > position:
            segments.append((decode(result.ids[position:start]), None))
        segments.append((decode(result.ids[start:end]), {
            "original": decode(sentence.ids[old_start:old_end]), "replaced": label == REPLACED,
            "type": entities.types[entity], "p_replaced": float(score)}))
        position = end
    segments.append((decode(result.ids[position:]), None))
    return [(text, mark) for text, mark in segments if text or mark]


def _objective(base_model: str, steps: int, data_dir: str | None = None, seed: int = 0, **kw) -> MaskedLM:
    """``kbench pretrain --objective wklm``: over the knowledge world's typed entities (the ``world`` corpus of the
    same seed)."""
    from kbench.data.world import make_world
    from kbench.profiles.wklm import world_types

    return pretrainer(TypedEntities.of(world_types(make_world(seed=seed).kg)), base_model, "wklm", seed=seed, **kw)


register_objective("wklm", ("entity",), _objective)
