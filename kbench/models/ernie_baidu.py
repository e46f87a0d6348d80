"""ERNIE (Baidu) 1.0: knowledge masking in three stages, and the dialogue language model (DLM).

Sun, Wang, Li, Feng, Chen, Zhang, Tian, Zhu, Tian, Wu. *ERNIE: Enhanced
Representation through Knowledge Integration.* arXiv 2019.
https://arxiv.org/abs/1904.09223 — Code: https://github.com/PaddlePaddle/ERNIE
(ERNIE 1.0: ``batching.py`` ``mask()``, the pretraining reader).

Taught in ``notebooks/06_ernie_baidu.ipynb``. ERNIE keeps BERT's encoder and
changes what it is trained to predict:

- **Knowledge masking** (§3.2, Fig. 1 and 2), in three stages in sequence:
  *basic-level* masking first (a sentence as a sequence of basic language
  units: the word for English, the character for Chinese), then *phrase-level*
  masking (all basic units of a phrase, from a chunker; for Chinese, a word
  segmenter's words), then *entity-level* masking (all units of an entity
  mention: persons, locations, organisations, products ...). Each stage masks
  through the one unit masker, :func:`kbench.text.masking.mask_units` — a unit
  is chosen with probability 0.15 and then each of its tokens is 80% [MASK],
  10% random, 10% kept, as the authors' ``mask()`` does, so every stage
  predicts 15% of the tokens and only the *grouping* changes. Tokens between
  phrases or entities stay units of their own. :func:`knowledge_stages` splits
  a step budget into the three stages; the last one runs to the end. The
  paper gives no split between stages: we use equal thirds.
  The released code does not stage either: its pretraining reader
  (``ernie/reader/pretraining.py``, ``data_generator``) draws once per *data
  file* whether that file is masked by knowledge units (``seg_labels``) or by
  single characters, with the probability the file list gives beside each file
  (``mask_word_prob``), and every sentence of the file carries that one choice
  (``mask_word``) into ``batching.py``'s ``mask()``. We follow the paper's
  description, stages by batch count (:class:`kbench.pretrain.MaskingCollator`).
- **DLM** (§3.3, Fig. 3): multi-turn dialogues (e.g. QRQ, QRR, QQR: Q a query,
  R a response) with *dialogue embeddings* marking each token's role in place
  of BERT's segment embeddings. With a Hugging Face ``BertModel`` the dialogue
  embedding is its token-type embedding with two types, read as roles (Q = 0,
  R = 1) rather than as sentence A/B; [CLS] takes the first turn's role and
  each [SEP] the role of the turn it closes. Fake dialogues replace the query
  or the response of a real one with a randomly selected sentence; the model
  judges on [CLS] whether a dialogue is real, and the dialogue's tokens are
  masked and predicted as in MLM. The released ERNIE 1.0 code has no DLM
  reader, so the details are ours: the replacement is a turn of the *same role*
  from another dialogue of the batch (a question for a question, so that the
  role pattern never gives a fake away), half the dialogues are made fake
  (BERT's next-sentence rate), and the [CLS] head is BERT's NSP head shape
  (dense + tanh, then a linear layer to real/fake) initialised as BERT's
  (N(0, 0.02), zero bias). Baidu Tieba threads are ERNIE's dialogues; ours are
  generated from the KG's facts (:func:`fact_dialogues`): "where was X born ?"
  / "X was born in Y ." — the responses never use a fact's held-out probe
  template.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from kbench.encoders import init_bert_weights
from kbench.errors import InputError
from kbench.experiment import Variant, compare_objectives
from kbench.pretrain import STRATEGIES, Corpus, MaskedLM, MaskingCollator, Sentence, build_corpus, masked_lm
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import IGNORE, RATE, MaskVocab, Span
from kbench.train import eval_mode, token_batch

CITATION = {
    "title": "ERNIE: Enhanced Representation through Knowledge Integration",
    "authors": "Sun, Wang, Li, Feng, Chen, Zhang, Tian, Zhu, Tian, Wu",
    "venue": "arXiv", "year": 2019, "url": "https://arxiv.org/abs/1904.09223",
    "code": "https://github.com/PaddlePaddle/ERNIE",
}
NOTEBOOK = "06_ernie_baidu"
PLACE = Place('ERNIE (Baidu)', 'objective', ('linguistic',),
              'phrase- and entity-level masking: whole units hidden so they must be predicted from context',
              survey='linguistic', in_survey=False)
HEADLINE = Headline('entity typing, accuracy', 'knowledge_test_accuracy', 'basic_test_accuracy',
                    'a phrase chunker and an entity recogniser over the pretraining text (nothing at run time)',
                    probe=('knowledge_probe_mrr', 'basic_probe_mrr'),
                    full=('knowledge_test_accuracy', 'basic_test_accuracy'),
                    full_task='ChnSentiCorp sentiment, accuracy',
                    trivial=('untrained_test_accuracy', 'majority_test_accuracy'),
                    positive=PositiveControl(
                        'facts trained until the model knows them: knowledge masking pretrained on the small fact '
                        'world (8 people with one-piece names, 2 facts each, 1,000 steps of 32 statements) and asked '
                        'each fact in a template it was trained in — true subject above the subject-swapped one',
                        'control_knowledge_trained_template_mrr', 'control_knowledge_trained_template_swapped_mrr', 0.1))

#: §3.2: the basic language unit is the word for English and the character (a token of the Chinese vocabulary) for Chinese.
BASIC = {"en": "whole_word", "zh": "token"}
KNOWLEDGE_LEVELS = ("phrase", "entity")
QUERY, RESPONSE = 0, 1               # dialogue roles, carried by BERT's token-type (segment) embedding
ROLES = {"Q": QUERY, "R": RESPONSE}
FAKE_RATE = 0.5
REAL, FAKE = 1, 0                    # the [CLS] head's labels
OBJECTIVES = ("basic", "knowledge", "knowledge_dlm")
VARIANTS = (Variant("basic", "basic masking", {"objective": "basic"}),
            Variant("knowledge", "knowledge masking (basic → phrase → entity)", {"objective": "knowledge"}),
            Variant("knowledge_dlm", "knowledge masking + DLM", {"objective": "knowledge_dlm"}))


def basic_strategy(language: str) -> str:
    """Return the masking strategy of ERNIE's basic level for ``language``: whole words (en) or characters (zh)."""
    if language not in BASIC:
        raise InputError(f"language must be one of {', '.join(BASIC)}, got {language!r}")
    return BASIC[language]


def knowledge_stages(total_steps: int, language: str = "en", shares: Sequence[float] = (1, 1, 1),
                     basic: str | None = None) -> list[tuple[str, int]]:
    """Return ERNIE's schedule: ``[(basic, n1), ("phrase", n2), ("entity", n3)]`` with ``n1 + n2 + n3 = total_steps``.

    §3.2: basic-level, then phrase-level, then entity-level masking, in sequence.
    ``shares`` weighs the stages (equal by default; the paper gives none); steps
    are split by largest remainder, each stage at least one step. ``basic``
    overrides the basic level (``token`` or ``whole_word``; default: the paper's
    unit for ``language``, :func:`basic_strategy`).
    """
    basic = check_basic(basic, language)
    if len(shares) != 3 or any(not share > 0 for share in shares):
        raise InputError(f"shares must be three positive weights (basic, phrase, entity), got {list(shares)}")
    if int(total_steps) != total_steps or total_steps < 3:
        raise InputError(f"three masking stages need at least 3 steps, got {total_steps}")
    total_steps = int(total_steps)
    exact = np.asarray(shares, float) / float(sum(shares)) * (total_steps - 3)
    steps = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - steps), kind="stable")[: (total_steps - 3) - int(steps.sum())]:
        steps[index] += 1
    steps += 1
    return list(zip((basic, *KNOWLEDGE_LEVELS), (int(n) for n in steps)))


def check_basic(basic: str | None, language: str) -> str:
    """Return the basic-level strategy: ``basic`` when it is ``token`` or ``whole_word``, else the paper's for ``language``."""
    if basic is None:
        return basic_strategy(language)
    if basic not in ("token", "whole_word"):
        raise InputError(f"the basic level masks tokens or whole words ('token', 'whole_word'), got {basic!r}")
    return basic


def schedule(objective: str, steps: int, language: str = "en", basic: str | None = None
             ) -> str | list[tuple[str, int]]:
    """Return the masking schedule of an objective: basic masking alone, or the three knowledge stages."""
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}: use {', '.join(OBJECTIVES)}")
    return check_basic(basic, language) if objective == "basic" else knowledge_stages(steps, language, basic=basic)


def check_corpus(corpus: Corpus, stages: str | Sequence[tuple[str, int]]) -> None:
    """Raise :class:`InputError` unless every stage's units exist in ``corpus`` (at least one unit of each kind).

    A corpus without a single entity mention would make the entity stage plain
    basic masking in silence.
    """
    stages = [(stages, 1)] if isinstance(stages, str) else list(stages)
    for strategy, _ in stages:
        kind = STRATEGIES.get(strategy, "?")
        if kind is None:
            continue
        if kind == "?":
            raise InputError(f"unknown masking strategy {strategy!r}: use {', '.join(STRATEGIES)}")
        if not any(kind in s.units for s in corpus.sentences):
            raise InputError(f"the {strategy} stage needs {kind} units: build the corpus with units=[..., {kind!r}]")
        if not any(s.units.get(kind) for s in corpus.sentences):
            raise InputError(f"the corpus has no {kind} unit at all, so the {strategy} stage would mask nothing "
                             f"as a unit: give it text that mentions the KG's names (entities) or phrases")


# --- dialogues -------------------------------------------------------------------------------------------------

@dataclass
class Turn:
    """One dialogue turn: its role (``QUERY``/``RESPONSE``), text, token ids (no specials) and unit spans."""

    role: int
    text: str
    ids: np.ndarray
    units: dict[str, list[Span]] = field(default_factory=dict)


@dataclass
class Dialogue(Sentence):
    """A multi-turn dialogue as one example: ``[CLS] t1 [SEP] t2 [SEP] t3 [SEP]`` with a role per token.

    ``ids``/``units`` are those of the whole sequence (so any masking collator
    reads it as a sentence); ``roles`` holds each token's role id.
    """

    turns: list[Turn] = field(default_factory=list)
    roles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cls_id: int = 0
    sep_id: int = 0


def assemble(turns: Sequence[Turn], cls_id: int, sep_id: int) -> Dialogue:
    """Return the :class:`Dialogue` of ``turns``: ids, roles and units shifted to their place in the sequence."""
    if len(turns) < 2:
        raise InputError(f"a dialogue needs at least two turns, got {len(turns)}")
    ids, roles, units = [np.asarray([cls_id], np.int64)], [np.asarray([turns[0].role], np.int64)], {}
    offset = 1
    for turn in turns:
        if turn.role not in (QUERY, RESPONSE):
            raise InputError(f"a turn's role must be {QUERY} (query) or {RESPONSE} (response), got {turn.role}")
        if not len(turn.ids):
            raise InputError(f"the turn {turn.text!r} has no tokens")
        ids += [np.asarray(turn.ids, np.int64), np.asarray([sep_id], np.int64)]
        roles.append(np.full(len(turn.ids) + 1, turn.role, np.int64))
        for kind, spans in turn.units.items():
            units.setdefault(kind, []).extend((start + offset, end + offset) for start, end in spans)
        offset += len(turn.ids) + 1
    for turn in turns:
        for kind in turn.units:
            units.setdefault(kind, [])
    text = " | ".join(f"{'QR'[t.role]}: {t.text}" for t in turns)
    return Dialogue(text, np.concatenate(ids), units, list(turns), np.concatenate(roles), cls_id, sep_id)


def build_dialogues(dialogues: Sequence[Sequence[tuple[str, str]]], tokenizer, units: Sequence[str] = ("word",),
                    detector=None, language: str = "en", max_turn_length: int = 40) -> list[Dialogue]:
    """Return :class:`Dialogue` s of ``dialogues``, each a list of ``(role, text)`` with role ``"Q"`` or ``"R"``.

    Each turn's units come from :func:`kbench.pretrain.build_corpus` (one call for all turns).
    """
    flat = []
    for dialogue in dialogues:
        if len(dialogue) < 2:
            raise InputError(f"a dialogue needs at least two turns: {dialogue!r}")
        for role, text in dialogue:
            if role not in ROLES:
                raise InputError(f"a turn's role must be 'Q' or 'R', got {role!r}")
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"a dialogue turn must be non-blank text, got {text!r}")
            flat.append(text)
    if not flat:
        raise InputError("no dialogue to build")
    built = build_corpus(flat, tokenizer, units, detector, language, max_turn_length + 2, "dialogue turns")
    result, position = [], 0
    for dialogue in dialogues:
        turns = []
        for role, text in dialogue:
            sentence = built.sentences[position]
            position += 1
            inner = sentence.ids[1:-1]     # without [CLS] ... [SEP]
            spans = {kind: [(s - 1, e - 1) for s, e in found] for kind, found in sentence.units.items()}
            turns.append(Turn(ROLES[role], text, inner, spans))
        result.append(assemble(turns, tokenizer.cls_token_id, tokenizer.sep_token_id))
    return result


#: Questions for the knowledge world's relations ({s}: the subject): the Q turns of generated dialogues.
WORLD_QUESTIONS: dict[str, str] = {
    "born in": "where was {s} born ?", "works as": "what does {s} do for a living ?",
    "works for": "who does {s} work for ?", "based in": "where is {s} based ?",
    "located in": "which country is {s} in ?", "part of": "what is {s} part of ?",
}
#: Multi-turn role patterns named in §3.3.
PATTERNS = ("QRQ", "QRR", "QQR")


def fact_dialogues(triples: Sequence[tuple[str, str, str]], templates: Mapping[str, Sequence[str]],
                   questions: Mapping[str, str] = WORLD_QUESTIONS, probe=(), per_subject: int = 1, seed: int = 0
                   ) -> list[list[tuple[str, str]]]:
    """Return three-turn dialogues (QRQ, QRR or QQR) about subjects with two or more facts.

    A query asks for one fact of the subject ("where was X born ?"); a response
    states a fact in one of its relation's templates, never in the template the
    probe holds out for that fact (``probe``: :class:`kbench.probes.ProbeItem` s),
    so dialogues leak no probe statement. In QRQ and QRR the first response
    answers the first query; in QQR the response answers the second query.
    """
    from kbench.probes import SLOT

    held = {(item.subject, item.relation): item.statement for item in probe}
    facts: dict[str, list[tuple[str, str]]] = {}
    for subject, relation, obj in triples:
        if relation in questions and relation in templates:
            facts.setdefault(subject, []).append((relation, obj))
    rng = random.Random(seed)

    def answer(subject: str, relation: str, obj: str) -> str:
        forms = [f for f in templates[relation] if f.format(s=subject, o=SLOT) != held.get((subject, relation))]
        return rng.choice(forms).format(s=subject, o=obj)

    dialogues = []
    for subject, known in facts.items():
        if len(known) < 2:
            continue
        for _ in range(per_subject):
            (r1, o1), (r2, o2) = rng.sample(known, 2)
            pattern = rng.choice(PATTERNS)
            ask1, ask2 = questions[r1].format(s=subject), questions[r2].format(s=subject)
            if pattern == "QRQ":
                turns = [("Q", ask1), ("R", answer(subject, r1, o1)), ("Q", ask2)]
            elif pattern == "QRR":
                turns = [("Q", ask1), ("R", answer(subject, r1, o1)), ("R", answer(subject, r2, o2))]
            else:
                turns = [("Q", ask1), ("Q", ask2), ("R", answer(subject, r2, o2))]
            dialogues.append(turns)
    if not dialogues:
        raise InputError("no subject has two facts with questions and templates: no dialogue can be written")
    return dialogues


def dialogue_corpus(texts: Sequence[str], dialogues: Sequence[Sequence[tuple[str, str]]], tokenizer,
                    units: Sequence[str] = ("word",), detector=None, language: str = "en", max_length: int = 128,
                    source: str = "texts and dialogues") -> Corpus:
    """Return one :class:`Corpus` of sentences and :class:`Dialogue` s (DLM's input; MLM reads dialogues as text)."""
    sentences = build_corpus(texts, tokenizer, units, detector, language, max_length, source).sentences
    turn_length = max_length - 2          # each turn as long as a sentence may be
    return Corpus(sentences + build_dialogues(dialogues, tokenizer, units, detector, language, turn_length),
                  tokenizer, source)


# --- DLM ---------------------------------------------------------------------------------------------------------

def make_fake(dialogue: Dialogue, others: Sequence[Dialogue], rng: np.random.Generator) -> Dialogue | None:
    """Return ``dialogue`` with one turn replaced by a turn of the same role from ``others``; None if none fits.

    The replaced slot is drawn uniformly among the turns; the replacement among
    the other dialogues' turns of that role whose text differs from the slot's.
    """
    slots = list(range(len(dialogue.turns)))
    rng.shuffle(slots)
    for slot in slots:
        original = dialogue.turns[slot]
        pool = [turn for other in others if other is not dialogue for turn in other.turns
                if turn.role == original.role and turn.text != original.text]
        if pool:
            turns = list(dialogue.turns)
            turns[slot] = pool[int(rng.integers(len(pool)))]
            return assemble(turns, dialogue.cls_id, dialogue.sep_id)
    return None


class DialogueCollator(MaskingCollator):
    """A :class:`MaskingCollator` that also makes DLM's batch: role ids and real/fake labels.

    Each dialogue of a batch is made fake with probability ``fake_rate``
    (:func:`make_fake`, a turn from another dialogue of the batch) and labelled
    ``FAKE``, else ``REAL``; plain sentences get role 0 and no dialogue label
    (:data:`IGNORE`). Then every example is masked by the current stage.
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, stages="token", seed: int = 0, rate: float = RATE,
                 fake_rate: float = FAKE_RATE):
        super().__init__(vocab, pad_id, stages, seed, rate)
        if not 0.0 <= fake_rate <= 1.0:
            raise InputError(f"fake_rate must be in [0, 1], got {fake_rate}")
        self.fake_rate = fake_rate

    def dialogues(self, sentences: Sequence[Sentence]) -> tuple[list[Sentence], list[int]]:
        """Return the batch with some dialogues made fake, and each example's dialogue label."""
        batch = [s for s in sentences if isinstance(s, Dialogue)]
        examples, labels = [], []
        for sentence in sentences:
            if not isinstance(sentence, Dialogue):
                examples.append(sentence)
                labels.append(IGNORE)
                continue
            fake = make_fake(sentence, batch, self.rng) if self.rng.random() < self.fake_rate else None
            examples.append(fake if fake is not None else sentence)
            labels.append(FAKE if fake is not None else REAL)
        return examples, labels

    def __call__(self, sentences: Sequence[Sentence]) -> dict[str, torch.Tensor]:
        strategy = self.strategy
        self.batches += 1
        examples, dialogue_labels = self.dialogues(sentences)
        pairs = [self.mask(example, strategy) for example in examples]
        batch = token_batch([inputs for inputs, _ in pairs], self.pad_id)
        labels = token_batch([labels for _, labels in pairs], IGNORE)["input_ids"]
        roles = token_batch([e.roles if isinstance(e, Dialogue) else np.zeros(len(e.ids), np.int64)
                             for e in examples], QUERY)["input_ids"]
        return {"input_ids": torch.from_numpy(batch["input_ids"]),
                "attention_mask": torch.from_numpy(batch["attention_mask"]), "labels": torch.from_numpy(labels),
                "token_type_ids": torch.from_numpy(roles),
                "dialogue_labels": torch.tensor(dialogue_labels, dtype=torch.long)}


class ErnieDLM(MaskedLM):
    """ERNIE's masked LM with DLM beside it: role (token-type) embeddings and a real/fake head on [CLS].

    The loss is the MLM loss at masked positions (sentences and dialogues alike)
    plus the real/fake cross-entropy over the batch's dialogues (§3.3).
    """

    def __init__(self, lm, tokenizer, collate: DialogueCollator, description: str = ""):
        super().__init__(lm, tokenizer, collate, description)
        if lm.config.type_vocab_size < 2:
            raise InputError(f"DLM needs two token types for the roles Q and R; the base has {lm.config.type_vocab_size}")
        hidden = lm.config.hidden_size
        self.dialogue_head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        init_bert_weights(self.dialogue_head)

    def dialogue_logits(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """Return the real/fake logits read from [CLS] (column ``REAL`` is "real")."""
        return self.dialogue_head(self.hidden(input_ids, attention_mask, token_type_ids)[:, 0])

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None, dialogue_labels=None) -> dict:
        states = self.hidden(input_ids, attention_mask, token_type_ids)
        out = {"dialogue_logits": self.dialogue_head(states[:, 0])}
        if labels is None:
            out["logits"] = self.lm.cls(states)
            return out
        keep = labels != IGNORE
        out["logits"] = self.lm.cls(states[keep])
        loss = nn.functional.cross_entropy(out["logits"], labels[keep]) if keep.any() else states.sum() * 0.0
        if dialogue_labels is not None and (dialogue_labels != IGNORE).any():
            rows = dialogue_labels != IGNORE
            out["dialogue_loss"] = nn.functional.cross_entropy(out["dialogue_logits"][rows], dialogue_labels[rows])
            loss = loss + out["dialogue_loss"]
        out["loss"] = loss
        return out


def ernie_pretrainer(objective: str = "knowledge", base_model: str = "tiny", steps: int = 300, language: str = "en",
                     vocab: str | None = None, seed: int = 0, layers: int | None = None, rate: float = RATE,
                     fake_rate: float = FAKE_RATE, basic: str | None = None) -> MaskedLM:
    """Return the pretraining model of one variant: ``basic``, ``knowledge`` or ``knowledge_dlm`` (see module doc).

    Every variant starts from the same :func:`kbench.pretrain.masked_lm` weights
    for a given ``seed`` (the DLM head is extra, built after them), so
    :func:`kbench.experiment.compare_objectives` compares the objectives alone.
    """
    stages = schedule("knowledge" if objective == "knowledge_dlm" else objective, steps, language, basic)
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    vocabulary = MaskVocab.of(tokenizer)
    if objective == "knowledge_dlm":
        torch.manual_seed(seed + 1)
        collate = DialogueCollator(vocabulary, tokenizer.pad_token_id, stages, seed, rate, fake_rate)
        return ErnieDLM(lm, tokenizer, collate, description)
    return MaskedLM(lm, tokenizer, MaskingCollator(vocabulary, tokenizer.pad_token_id, stages, seed, rate), description)


def compare_masking(make_pretrainer: Callable[..., MaskedLM], variants: Sequence[Variant], corpus: Corpus, config,
                    language: str = "en", probe=None, save_dir: str | None = None,
                    only: Sequence[str] | None = None, basic: str | None = None) -> dict:
    """Check that ``corpus`` has the units of every variant's stages, then :func:`kbench.experiment.compare_objectives`.

    ``make_pretrainer(seed=..., objective=...)`` builds a variant (e.g.
    :func:`ernie_pretrainer` with its base and steps bound); the stages checked
    are :func:`schedule` of each variant's objective for ``config.max_steps``.
    DLM variants also need dialogues in the corpus.
    """
    if config.max_steps is None:
        raise InputError("pretraining needs a step budget: TrainConfig(max_steps=...)")
    for variant in variants:
        if only is not None and variant.name not in only:
            continue
        objective = variant.options.get("objective", "knowledge")
        check_corpus(corpus, schedule("knowledge" if objective == "knowledge_dlm" else objective,
                                      config.max_steps, language, basic))
        if objective == "knowledge_dlm" and sum(isinstance(s, Dialogue) for s in corpus.sentences) < 2:
            raise InputError(f"variant {variant.name!r} trains DLM: the corpus needs dialogues (two at least)")
    return compare_objectives(make_pretrainer, variants, corpus, config, probe, save_dir, only)


@torch.no_grad()
def dialogue_accuracy(model: ErnieDLM, dialogues: Sequence[Dialogue], seed: int = 0, batch_size: int = 32) -> float:
    """Return the real/fake accuracy of ``model`` on ``dialogues``, half of them made fake (unmasked input)."""
    if len(dialogues) < 2:
        raise InputError("dialogue accuracy needs at least two dialogues (a fake borrows a turn from another)")
    rng = np.random.default_rng(seed)
    right = total = 0
    with eval_mode(model):
        for first in range(0, len(dialogues), batch_size):
            chunk = list(dialogues[first:first + batch_size])
            examples, labels = [], []
            for dialogue in chunk:
                fake = make_fake(dialogue, list(dialogues), rng) if rng.random() < 0.5 else None
                examples.append(fake or dialogue)
                labels.append(FAKE if fake is not None else REAL)
            batch = token_batch([e.ids for e in examples], model.tokenizer.pad_token_id)
            roles = token_batch([e.roles for e in examples], QUERY)["input_ids"]
            device = next(model.parameters()).device
            logits = model.dialogue_logits(torch.from_numpy(batch["input_ids"]).to(device),
                                           torch.from_numpy(batch["attention_mask"]).to(device),
                                           torch.from_numpy(roles).to(device))
            right += int((logits.argmax(-1).cpu() == torch.tensor(labels)).sum())
            total += len(labels)
    return right / total
