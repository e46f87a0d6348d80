"""K-BERT: sentence trees, soft positions and the visible matrix.

Liu, Zhou, Zhao, Wang, Ju, Deng, Wang. *K-BERT: Enabling Language
Representation with Knowledge Graph.* AAAI 2020. https://arxiv.org/abs/1909.07606
Code: https://github.com/autoliuweijie/K-BERT (``brain/knowgraph.py``,
``add_knowledge_with_vm``).

Taught in ``notebooks/01_k_bert.ipynb``. The knowledge layer (§3.2, Fig. 2)
injects each word's KG branches right after the word; the embedding layer
(§3.3) gives every token a *soft position* (branches continue from their word,
the sentence continues as if no branch were there); the seeing layer (§3.4,
Eq. 1) builds the *visible matrix* ``M``: sentence tokens see each other and
their own word's branches, a branch sees only itself and its word; the
mask-transformer (Eq. 2-4) adds ``M`` to the attention scores.

Where the paper leaves details open we follow the authors' code: a word's
tokens are ``tokenize(word)`` (their ``list(word)``), special tokens are one
token, padding has position ``max_length - 1`` and sees nothing, and sequences
are cut to ``max_length`` after the tree is built. One deliberate difference:
a subject's branches are its first ``max_entities`` distinct branch texts in
KG file order, where the authors take them from a Python set.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kbench.encoders import EMBEDDED, fast_tokenize, load_encoder, load_tokenizer
from kbench.errors import InputError
from kbench.kg import KnowledgeGraph
from kbench.text import SPECIAL_TOKENS, MentionDetector, split_units

CITATION = {
    "title": "K-BERT: Enabling Language Representation with Knowledge Graph",
    "authors": "Liu, Zhou, Zhao, Wang, Ju, Deng, Wang",
    "venue": "AAAI", "year": 2020, "url": "https://arxiv.org/abs/1909.07606",
    "code": "https://github.com/autoliuweijie/K-BERT",
}
PAD = "[PAD]"
UNK = "[UNK]"


@dataclass
class SentenceTree:
    """A sentence with its injected knowledge, flattened as K-BERT's model sees it (Fig. 2)."""

    words: list[str]
    branches: list[list[str]]          # per word: the branch texts injected after it
    tokens: list[str]                  # length max_length
    soft_positions: np.ndarray         # int64 (max_length,)
    visible_matrix: np.ndarray         # bool (max_length, max_length)
    segments: np.ndarray               # int64: 0 sentence token or padding, 1 knowledge token
    word_index: np.ndarray             # int64: the word each token belongs to; -1 for padding
    length: int                        # tokens before padding (after cutting)
    truncated: int = 0                 # tokens cut off beyond max_length
    hard_positions: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.hard_positions = np.arange(len(self.tokens), dtype=np.int64)


class KnowledgeLayer:
    """Turn a sentence into a :class:`SentenceTree` with knowledge from ``kg`` (K-BERT §3.2-3.4).

    ``tokenize`` splits a word or a branch text into tokens; None means the
    embedded encoder's tokenizer. ``predicate`` and ``joiner`` set the branch
    text (``pred + joiner + obj``, or ``obj`` alone). ``overflow`` decides what
    happens past ``max_length``: ``"truncate"`` (the authors' behaviour, counted
    in ``tree.truncated``) or ``"error"``.
    """

    def __init__(self, kg: KnowledgeGraph | None, max_entities: int = 2, max_length: int = 128,
                 tokenize: Callable[[str], list[str]] | None = None, predicate: bool = True,
                 joiner: str = "", overflow: str = "truncate"):
        if max_entities < 0 or max_length < 1:
            raise InputError(f"max_entities must be >= 0 and max_length >= 1 (got {max_entities}, {max_length})")
        if overflow not in ("truncate", "error"):
            raise InputError(f"overflow must be 'truncate' or 'error', not {overflow!r}")
        self.kg = kg if kg is not None else KnowledgeGraph("none")
        self.max_entities = max_entities
        self.max_length = max_length
        self.tokenize = fast_tokenize(tokenize if tokenize is not None else load_tokenizer(EMBEDDED).tokenize)
        self.predicate = predicate
        self.joiner = joiner
        self.overflow = overflow
        self._detector: MentionDetector | None = None
        self._word_tokens: dict[str, list[str]] = {}
        self._branch_tokens: dict[str, tuple[list[str], list[list[str]]]] = {}

    @property
    def detector(self) -> MentionDetector:
        """The mention detector over this KG's subjects (built on first use)."""
        if self._detector is None:
            self._detector = MentionDetector(self.kg.subjects)
        return self._detector

    def words(self, words_or_sentence: str | Sequence[str]) -> list[str]:
        """Return the words of a raw sentence (mention detection) or a checked copy of pre-segmented ones."""
        if isinstance(words_or_sentence, str):
            words = self.detector.segment(words_or_sentence)
        elif isinstance(words_or_sentence, Sequence):
            words = list(words_or_sentence)
            for index, word in enumerate(words):
                if not isinstance(word, str) or not word.strip():
                    raise InputError(f"word #{index} is {word!r}: pre-segmented words must be non-empty strings")
        else:
            raise InputError(f"build() takes a sentence str or a list of words, not {type(words_or_sentence).__name__}")
        if not words:
            raise InputError("the sentence is empty: give at least one word")
        return words

    def tokens_of(self, word: str) -> list[str]:
        """Return a word's tokens: itself for a special token, else ``tokenize(word)`` ([UNK] if empty)."""
        cached = self._word_tokens.get(word)
        if cached is None:
            cached = [word] if word in SPECIAL_TOKENS else (list(self.tokenize(word)) or [UNK])
            self._word_tokens[word] = cached
        return cached

    def branches_of(self, word: str) -> tuple[list[str], list[list[str]]]:
        """Return a word's branch texts and their tokens (first ``max_entities``, KG file order)."""
        cached = self._branch_tokens.get(word)
        if cached is None:
            texts = self.kg.branches(word, self.predicate, self.joiner, self.max_entities) \
                if self.max_entities else []
            cached = (texts, [list(self.tokenize(text)) or [UNK] for text in texts])
            self._branch_tokens[word] = cached
        return cached

    def build(self, words_or_sentence: str | Sequence[str]) -> SentenceTree:
        """Return the sentence tree of a raw sentence or a list of pre-segmented words."""
        words = self.words(words_or_sentence)
        tokens: list[str] = []
        positions: list[int] = []
        word_index: list[int] = []
        branch_index: list[int] = []      # -1 for a sentence token, else a branch id unique in the tree
        all_branches: list[list[str]] = []
        last_position = -1
        branch_id = 0
        for index, word in enumerate(words):
            word_tokens = self.tokens_of(word)
            texts, branch_tokens = self.branches_of(word)
            all_branches.append(texts)
            tokens += word_tokens
            positions += range(last_position + 1, last_position + 1 + len(word_tokens))
            last_position += len(word_tokens)
            word_index += [index] * len(word_tokens)
            branch_index += [-1] * len(word_tokens)
            for pieces in branch_tokens:
                tokens += pieces
                positions += range(last_position + 1, last_position + 1 + len(pieces))
                word_index += [index] * len(pieces)
                branch_index += [branch_id] * len(pieces)
                branch_id += 1
        return self._finish(words, all_branches, tokens, positions, word_index, branch_index)

    def _finish(self, words, all_branches, tokens, positions, word_index, branch_index) -> SentenceTree:
        length = len(tokens)
        cut = max(0, length - self.max_length)
        if cut and self.overflow == "error":
            raise InputError(f"the sentence tree has {length} tokens, over max_length={self.max_length}: "
                             "shorten the sentence, lower max_entities, or raise max_length")
        kept = length - cut
        # Visibility between two kept tokens does not depend on cut ones, so
        # building the matrix on the kept tokens equals building then cutting.
        words_of = np.asarray(word_index[:kept], dtype=np.int64)
        branch_of = np.asarray(branch_index[:kept], dtype=np.int64)
        in_sentence = branch_of < 0
        same_word = words_of[:, None] == words_of[None, :]
        either_in_sentence = in_sentence[:, None] | in_sentence[None, :]
        visible = np.zeros((self.max_length, self.max_length), dtype=bool)
        visible[:kept, :kept] = ((in_sentence[:, None] & in_sentence[None, :])
                                 | (same_word & either_in_sentence)
                                 | ((branch_of[:, None] == branch_of[None, :]) & ~in_sentence[:, None]))
        pad = self.max_length - kept
        soft = np.full(self.max_length, self.max_length - 1, dtype=np.int64)
        soft[:kept] = positions[:kept]
        segments = np.zeros(self.max_length, dtype=np.int64)
        segments[:kept] = ~in_sentence
        index = np.full(self.max_length, -1, dtype=np.int64)
        index[:kept] = words_of
        return SentenceTree(words=words, branches=all_branches, tokens=tokens[:kept] + [PAD] * pad,
                            soft_positions=soft, visible_matrix=visible, segments=segments, word_index=index,
                            length=kept, truncated=cut)

    def encode(self, sentences: Sequence[str | Sequence[str]], tokenizer, use_visible_matrix: bool = True,
               use_soft_positions: bool = True) -> dict[str, torch.Tensor]:
        """Return model inputs for many sentences: ids, positions and a 4-D boolean attention mask.

        ``use_visible_matrix=False`` is the paper's ablation: knowledge stays in
        the sequence but every real token sees every real token.
        """
        trees = [self.build(sentence) for sentence in
                 tqdm(sentences, desc="sentence trees", disable=len(sentences) < 2000, leave=False)]
        return self.inputs(trees, tokenizer, use_visible_matrix, use_soft_positions)

    def inputs(self, trees: Sequence[SentenceTree], tokenizer, use_visible_matrix: bool = True,
               use_soft_positions: bool = True) -> dict[str, torch.Tensor]:
        """Return model inputs for trees already built (see :meth:`encode`)."""
        ids = torch.tensor([tokenizer.convert_tokens_to_ids(tree.tokens) for tree in trees], dtype=torch.long)
        key = "soft_positions" if use_soft_positions else "hard_positions"
        positions = torch.from_numpy(np.stack([getattr(tree, key) for tree in trees]))
        if use_visible_matrix:
            visible = torch.from_numpy(np.stack([tree.visible_matrix for tree in trees]))
        else:
            real = torch.from_numpy(np.stack([np.arange(self.max_length) < tree.length for tree in trees]))
            visible = real[:, :, None] & real[:, None, :]
        return {"input_ids": ids, "position_ids": positions, "attention_mask": attention_mask(visible)}


def attention_mask(visible_matrix: torch.Tensor) -> torch.Tensor:
    """Return the ``(B, 1, L, L)`` boolean mask for SDPA attention from visible matrices ``(B, L, L)``.

    A padding row sees nothing, which would make SDPA's softmax return NaN for
    that row; here every token also sees itself. Real tokens already do, so
    only padding rows change, and their outputs are never read.
    """
    eye = torch.eye(visible_matrix.shape[-1], dtype=torch.bool)
    return (visible_matrix | eye)[:, None, :, :]


def trim_padding(input_ids: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor,
                 pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the inputs cut after the last column holding a real token in any row of the batch.

    Trees are padded at the end and padding is invisible to real tokens, so the
    cut columns change nothing a real token computes; it only saves their cost.
    """
    real_columns = (input_ids != pad_id).any(0).nonzero()
    length = int(real_columns.max()) + 1 if len(real_columns) else 1
    if length == input_ids.shape[1]:
        return input_ids, position_ids, attention_mask
    return input_ids[:, :length], position_ids[:, :length], attention_mask[:, :, :length, :length]


class KBertClassifier(nn.Module):
    """Sentence classification with K-BERT (the authors' ``run_kbert_cls.py``).

    ``kg=None`` is plain BERT on the same base; ``use_visible_matrix=False`` the
    paper's ablation. The head follows the authors' code: the first token's
    state, a ``tanh`` dense layer, a linear output (no extra dropout). A single-sentence input is all
    segment 0 (UER marks real tokens 1 and padding 0; with an attention mask
    the two are equivalent up to a learned constant).
    """

    def __init__(self, num_labels: int, kg: KnowledgeGraph | None = None, base_model: str = EMBEDDED, *,
                 max_entities: int = 2, max_length: int = 128, use_visible_matrix: bool = True,
                 use_soft_positions: bool = True, predicate: bool = True, joiner: str = "",
                 vocab: str | None = None, dropout: float = 0.1, seed: int = 0):
        super().__init__()
        if num_labels < 2:
            raise InputError(f"num_labels must be at least 2, got {num_labels}")
        torch.manual_seed(seed)
        encoder = load_encoder(base_model, vocab=vocab, seed=seed)
        self.bert = encoder.model
        self.tokenizer = encoder.tokenizer
        self.description = encoder.description
        self.layer = KnowledgeLayer(kg, max_entities, max_length, self.tokenizer.tokenize, predicate, joiner)
        self.use_visible_matrix = use_visible_matrix
        self.use_soft_positions = use_soft_positions
        hidden = self.bert.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, num_labels)

    def encode(self, sentences: Sequence[str | Sequence[str]]) -> dict[str, torch.Tensor]:
        """Return model inputs for ``sentences``, each prefixed with [CLS] as in the authors' code."""
        prefixed = [["[CLS]"] + self.layer.words(s) for s in sentences]
        return self.layer.encode(prefixed, self.tokenizer, self.use_visible_matrix, self.use_soft_positions)

    def forward(self, input_ids, position_ids, attention_mask, labels=None) -> dict[str, torch.Tensor]:
        """Return ``logits`` (and ``loss`` when ``labels`` are given)."""
        input_ids, position_ids, attention_mask = trim_padding(input_ids, position_ids, attention_mask,
                                                               self.tokenizer.pad_token_id)
        states = self.bert(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        logits = self.output(torch.tanh(self.dense(states[:, 0])))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class KBertTagger(KBertClassifier):
    """Token tagging (NER) with K-BERT (the authors' ``run_kbert_ner.py``).

    As in the authors' code, injected knowledge tokens are trained to predict
    an extra ``[ENT]`` tag and are left out of evaluation; padding is ignored.
    """

    ENT = "[ENT]"

    def __init__(self, tags: Sequence[str], kg: KnowledgeGraph | None = None, base_model: str = EMBEDDED, **kw):
        self.tags = list(tags) + ([self.ENT] if self.ENT not in tags else [])
        super().__init__(len(self.tags), kg, base_model, **kw)
        del self.dense
        self.output = nn.Linear(self.bert.config.hidden_size, len(self.tags))
        self._longest_subject: int | None = None

    def encode_tagged(self, units: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Return inputs and ``labels`` for sentences given as units (e.g. characters) with one tag each.

        Units are grouped into KG subjects by forward maximum matching; a group
        is kept only when its tokens are the concatenation of its units' tokens,
        so every unit's tag lands on its first token (others get -100).
        """
        tag_id = {tag: i for i, tag in enumerate(self.tags)}
        all_words, all_labels = [], []
        for sentence_units, sentence_tags in zip(units, tags):
            if len(sentence_units) != len(sentence_tags):
                raise InputError(f"{len(sentence_units)} units but {len(sentence_tags)} tags in "
                                 f"{' '.join(sentence_units)[:60]!r}")
            unknown = set(sentence_tags) - set(tag_id)
            if unknown:
                raise InputError(f"unknown tags {sorted(unknown)}: known tags are {self.tags}")
            words, labels = ["[CLS]"], [-100]
            for word, group in self._group_units(list(sentence_units)):
                words.append(word)
                for unit_tag_index, unit in zip(group, (sentence_units[g] for g in group)):
                    pieces = self.layer.tokens_of(unit)
                    labels += [tag_id[sentence_tags[unit_tag_index]]] + [-100] * (len(pieces) - 1)
            all_words.append(words)
            all_labels.append(labels)
        trees = [self.layer.build(words) for words in all_words]
        inputs = self.layer.inputs(trees, self.tokenizer, self.use_visible_matrix, self.use_soft_positions)
        inputs["labels"] = self._align(trees, all_labels, tag_id[self.ENT])
        return inputs

    def _group_units(self, units: list[str]) -> list[tuple[str, list[int]]]:
        joiner = self.layer.joiner
        if self._longest_subject is None:
            self._longest_subject = max((len(split_units(s)) for s in self.layer.kg.subjects), default=1)
        longest = self._longest_subject
        groups, i = [], 0
        while i < len(units):
            for size in range(min(longest, len(units) - i), 0, -1):
                word = joiner.join(units[i:i + size])
                if size == 1 or (word in self.layer.kg and self.layer.tokens_of(word) ==
                                 [t for u in units[i:i + size] for t in self.layer.tokens_of(u)]):
                    groups.append((word, list(range(i, i + size))))
                    i += size
                    break
        return groups

    def _align(self, trees: list[SentenceTree], all_labels: list[list[int]], ent_label: int) -> torch.Tensor:
        rows = []
        for tree, labels in zip(trees, all_labels):
            row = np.full(self.layer.max_length, -100, dtype=np.int64)
            sentence_slots = np.flatnonzero((tree.segments == 0) & (np.arange(len(row)) < tree.length))
            row[sentence_slots] = labels[:len(sentence_slots)]
            row[(tree.segments == 1)] = ent_label
            rows.append(row)
        return torch.from_numpy(np.stack(rows))

    def forward(self, input_ids, position_ids, attention_mask, labels=None) -> dict[str, torch.Tensor]:
        """Return per-token ``logits`` (and ``loss`` over labelled tokens when ``labels`` are given)."""
        states = self.bert(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        logits = self.output(self.dropout(states))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out


@torch.no_grad()
def attention_from_first_token(model: KBertClassifier, sentence: str | Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Return the tree's tokens and the first token's attention over them, ``(layers, tokens)``, head-averaged.

    This is what the notebook's "knowledge noise" section plots: with the
    visible matrix, [CLS] gives no weight to injected tokens; without it, it may.
    """
    inputs = model.encode([sentence])
    length = int(model.layer.build(["[CLS]"] + model.layer.words(sentence)).length)
    device = next(model.parameters()).device
    # The eager path (the one that returns attention weights) adds the mask to
    # the scores, so it needs the additive form of the boolean mask.
    additive = torch.zeros(inputs["attention_mask"].shape).masked_fill(~inputs["attention_mask"],
                                                                         torch.finfo(torch.float32).min)
    model.bert.set_attn_implementation("eager")
    try:
        model.eval()
        out = model.bert(input_ids=inputs["input_ids"].to(device), position_ids=inputs["position_ids"].to(device),
                         attention_mask=additive.to(device), output_attentions=True)
    finally:
        model.bert.set_attn_implementation("sdpa")
    weights = torch.stack([layer[0, :, 0, :length].mean(0) for layer in out.attentions]).float().cpu().numpy()
    tokens = [model.tokenizer.convert_ids_to_tokens(int(i)) for i in inputs["input_ids"][0, :length]]
    return tokens, weights


@dataclass
class VariantResult:
    """One model variant trained and tested: its score, training history and the model itself."""

    name: str
    test_score: float                  # accuracy for classification, entity F1 for tagging
    history: object
    model: KBertClassifier


VARIANTS = {"bert": dict(knowledge=False), "kbert": dict(knowledge=True),
            "kbert_no_vm": dict(knowledge=True, use_visible_matrix=False)}


def compare_variants(train: tuple[list, list], dev: tuple[list, list], test: tuple[list, list], num_labels: int,
                     kg: KnowledgeGraph, base_model: str = EMBEDDED, variants: Sequence[str] = tuple(VARIANTS),
                     config=None, **layer_options) -> dict[str, VariantResult]:
    """Train and test plain BERT, K-BERT and K-BERT without the visible matrix on the same split and seed.

    ``train``/``dev``/``test`` are ``(sentences, labels)``; ``layer_options`` go
    to :class:`KBertClassifier` (``max_length``, ``max_entities``, ``joiner``...).
    """
    def build(knowledge_graph, options):
        model = KBertClassifier(num_labels, knowledge_graph, base_model, **options)
        return model, [{**model.encode(texts), "labels": torch.tensor(labels)} for texts, labels in (train, dev, test)]

    return _compare(build, kg, variants, config, layer_options, metric=None)


def compare_tagging_variants(train: tuple[list, list], dev: tuple[list, list], test: tuple[list, list],
                             tags: Sequence[str], kg: KnowledgeGraph, base_model: str = EMBEDDED,
                             variants: Sequence[str] = tuple(VARIANTS), config=None,
                             **layer_options) -> dict[str, VariantResult]:
    """Like :func:`compare_variants` for NER: ``(units, tags)`` splits, scored by entity-level F1.

    The result's ``test_score`` is the test F1.
    """
    from kbench.metrics import tagging_f1

    def build(knowledge_graph, options):
        model = KBertTagger(tags, knowledge_graph, base_model, **options)
        return model, [model.encode_tagged(units, unit_tags) for units, unit_tags in (train, dev, test)]

    return _compare(build, kg, variants, config, layer_options, metric=lambda model: tagging_f1(model.tags))


def _compare(build, kg, variants, config, layer_options, metric) -> dict[str, VariantResult]:
    from kbench.train import TrainConfig, accuracy, evaluate, fit

    config = config or TrainConfig()
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant {unknown[0]!r}: use {', '.join(VARIANTS)}")
    results = {}
    for name in variants:
        options = dict(VARIANTS[name])
        knowledge = options.pop("knowledge")
        model, (train_data, dev_data, test_data) = build(kg if knowledge else None,
                                                         {"seed": config.seed, **options, **layer_options})
        score = metric(model) if metric else accuracy
        history = fit(model, train_data, dev_data, config, metric=score, description=name)
        results[name] = VariantResult(name, evaluate(model, test_data, score, device=config.device), history, model)
    return results
