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

Examples are compact: token ids, soft positions, and for each token its word
and branch (O(L) per sentence). :func:`visible_matrix` turns those indices into
``M`` for a whole batch at once, in ``collate``; :meth:`KnowledgeLayer.build`
uses the same rule for one sentence (the views, the tests' oracle).

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
from kbench.experiment import Variant
from kbench.kg import KnowledgeGraph
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text import SPECIAL_TOKENS, MentionDetector
from kbench.train import Examples

CITATION = {
    "title": "K-BERT: Enabling Language Representation with Knowledge Graph",
    "authors": "Liu, Zhou, Zhao, Wang, Ju, Deng, Wang",
    "venue": "AAAI", "year": 2020, "url": "https://arxiv.org/abs/1909.07606",
    "code": "https://github.com/autoliuweijie/K-BERT",
}
NOTEBOOK = "01_k_bert"
PLACE = Place('K-BERT', 'input', ('KG',),
              'KG triples injected into the sentence as branches of a tree; soft positions and a visible matrix '
              'keep them from changing its meaning',
              survey='factual', when='fine-tuning')
HEADLINE = Headline('sentence classification, accuracy', 'kbert_test_accuracy', 'bert_test_accuracy',
                    'the KG at run time: every sentence is matched against its entity names and expanded',
                    trivial=('majority_test_accuracy',),
                    positive=PositiveControl(
                        "the deciding fact (the person's birthplace) injected and seen by every token, with no "
                        "visible matrix to route it: a model that reads its input must use it",
                        'kbert_no_vm_test_accuracy', 'bert_test_accuracy', 0.3))
PAD = "[PAD]"
UNK = "[UNK]"

#: The notebook's three models: configuration differences of one K-BERT (the paper's ablation, §4.4).
VARIANTS = (Variant("bert", "BERT", {"kg": None}),
            Variant("kbert", "K-BERT", {}),
            Variant("kbert_no_vm", "K-BERT w/o VM", {"use_visible_matrix": False}))


def visible_matrix(word_index: np.ndarray, branch_index: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return K-BERT's visible matrices ``(B, L, L)`` (Eq. 1) from per-token word and branch indices ``(B, L)``.

    ``branch_index`` is -1 for a sentence token, else an id unique to its
    branch within the sentence. Token ``i`` sees ``j`` when both are in the
    sentence, or they belong to the same word and one of them is in the
    sentence, or both are in the same branch. Tokens at or past ``lengths`` see
    and are seen by nothing. NumPy on purpose: on a batch this small, torch's
    intra-op threads cost more than the work (40 ms instead of 2 ms a batch on 2 cores).
    """
    in_sentence = branch_index < 0
    row_sentence, column_sentence = in_sentence[:, :, None], in_sentence[:, None, :]
    same_word = word_index[:, :, None] == word_index[:, None, :]
    same_branch = (branch_index[:, :, None] == branch_index[:, None, :]) & ~row_sentence
    visible = (row_sentence & column_sentence) | (same_word & (row_sentence | column_sentence)) | same_branch
    real = np.arange(word_index.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return visible & real[:, :, None] & real[:, None, :]


def attention_mask(visible: np.ndarray) -> torch.Tensor:
    """Return the ``(B, 1, L, L)`` boolean mask for SDPA attention from visible matrices ``(B, L, L)``.

    A padding row sees nothing, which would make SDPA's softmax return NaN for
    that row; here every token also sees itself. Real tokens already do, so
    only padding rows change, and their outputs are never read. NumPy in, for
    the same reason as :func:`visible_matrix`.
    """
    return torch.from_numpy(visible | np.eye(visible.shape[-1], dtype=bool))[:, None, :, :]


@dataclass
class Example:
    """One sentence tree, compact: O(L) integers per sentence, the visible matrix left to ``collate``."""

    input_ids: np.ndarray        # int32 (n,), n <= max_length (ids of ``tokens`` when the layer has a vocab)
    soft_positions: np.ndarray   # int32 (n,)
    word_index: np.ndarray       # int32 (n,): the word each token belongs to
    branch_index: np.ndarray     # int32 (n,): -1 for a sentence token, else its branch's id in the sentence
    truncated: int = 0           # tokens cut off beyond max_length
    labels: np.ndarray | int | None = None


@dataclass
class SentenceTree:
    """A sentence with its injected knowledge, flattened and padded as K-BERT's model sees it (Fig. 2)."""

    words: list[str]
    branches: list[list[str]]          # per word: the branch texts injected after it
    tokens: list[str]                  # length max_length
    soft_positions: np.ndarray         # int64 (max_length,)
    visible_matrix: np.ndarray         # bool (max_length, max_length)
    segments: np.ndarray               # int64: 0 sentence token or padding, 1 knowledge token
    word_index: np.ndarray             # int64: the word each token belongs to; -1 for padding
    branch_index: np.ndarray           # int64: the branch (numbered across the sentence) of a knowledge token, else -1
    length: int                        # tokens before padding (after cutting)
    truncated: int = 0                 # tokens cut off beyond max_length
    hard_positions: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.hard_positions = np.arange(len(self.tokens), dtype=np.int64)


class _WordTable:
    """Every word seen so far, flattened once with its branches into growing pools (amortised doubling).

    A word's entry: its tokens and its branches' tokens, side by side in the
    pools (ids, positions relative to the word, branch number within the word
    or -1), and per word: where its entry starts, its size, how far it moves
    the sentence's positions on, and how many branches it has. A sentence is
    then gathered from the pools with a handful of array operations.
    """

    def __init__(self):
        self.index: dict[str, int] = {}
        self.tokens: list[list[str]] = []
        self.texts: list[list[str]] = []
        self.words = 0
        self.used = 0
        self.pool = np.zeros((3, 1024), np.int32)         # ids, relative positions, branch number
        self.table = np.zeros((4, 256), np.int64)         # start, size, advance, branch count

    def add(self, word: str, tokens: list[str], ids: list[int], positions: list[int], branch: list[int],
            advance: int, texts: list[str]) -> None:
        size = len(tokens)
        while self.used + size > self.pool.shape[1]:
            self.pool = np.concatenate([self.pool, np.zeros_like(self.pool)], axis=1)
        if self.words == self.table.shape[1]:
            self.table = np.concatenate([self.table, np.zeros_like(self.table)], axis=1)
        self.pool[:, self.used:self.used + size] = (ids, positions, branch)
        self.table[:, self.words] = (self.used, size, advance, len(texts))
        self.index[word] = self.words
        self.tokens.append(tokens)
        self.texts.append(texts)
        self.words += 1
        self.used += size


class KnowledgeLayer:
    """Turn a sentence into a compact :class:`Example` or a :class:`SentenceTree` with knowledge from ``kg``.

    K-BERT §3.2-3.4. ``tokenize`` splits a word or a branch text into tokens;
    None means the embedded encoder's tokenizer. ``vocab`` maps tokens to ids
    (needed by :meth:`example`). ``predicate`` and ``joiner`` set the branch
    text (``pred + joiner + obj``, or ``obj`` alone). ``overflow`` decides what
    happens past ``max_length``: ``"truncate"`` (the authors' behaviour,
    counted in ``truncated``) or ``"error"``.
    """

    def __init__(self, kg: KnowledgeGraph | None, max_entities: int = 2, max_length: int = 128,
                 tokenize: Callable[[str], list[str]] | None = None, predicate: bool = True,
                 joiner: str = "", overflow: str = "truncate", vocab: dict[str, int] | None = None):
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
        self.vocab = vocab
        self._unknown_id = vocab.get(UNK, 0) if vocab is not None else 0
        self._detector: MentionDetector | None = None
        self._word_tokens: dict[str, list[str]] = {}
        self._table = _WordTable()

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
            words = list(words_or_sentence)   # each new word is checked when it enters the word table
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

    def branches_of(self, word: str) -> list[str]:
        """Return a word's branch texts: its first ``max_entities`` distinct ones, in KG file order."""
        if not self.max_entities:
            return []
        return self.kg.branches(word, self.predicate, self.joiner, self.max_entities)

    def _add(self, index: int, word) -> None:
        """Flatten a word not seen before with its branches into the word table (checking it first)."""
        if not isinstance(word, str) or not word.strip():
            raise InputError(f"word #{index} is {word!r}: pre-segmented words must be non-empty strings")
        own = self.tokens_of(word)
        texts = self.branches_of(word)
        tokens, positions, branch = list(own), list(range(len(own))), [-1] * len(own)
        for number, text in enumerate(texts):
            pieces = list(self.tokenize(text)) or [UNK]
            tokens += pieces
            positions += range(len(own), len(own) + len(pieces))
            branch += [number] * len(pieces)
        ids = [self.vocab.get(t, self._unknown_id) for t in tokens] if self.vocab is not None else [0] * len(tokens)
        self._table.add(word, tokens, ids, positions, branch, len(own), texts)

    def _word_ids(self, words: list) -> np.ndarray:
        index = self._table.index
        try:
            return np.fromiter(map(index.__getitem__, words), np.int64, len(words))
        except (KeyError, TypeError):
            for position, word in enumerate(words):
                try:
                    known = word in index
                except TypeError:   # unhashable: not a word
                    known = False
                if not known:
                    self._add(position, word)
            return np.fromiter(map(index.__getitem__, words), np.int64, len(words))

    def _flatten(self, words: list, limit: int | None = None):
        """Return the sentence's word ids, its full length, and its arrays (pool index, positions, word, branch)
        for the first ``limit`` tokens."""
        word_ids = self._word_ids(words)
        table = self._table
        start, size, advance, branch_count = table.table[:, word_ids]
        total = int(size.sum())
        first = np.cumsum(size) - size
        kept = total if limit is None else min(total, limit)
        word_index = np.repeat(np.arange(len(word_ids), dtype=np.int32), size)[:kept]
        pool_index = np.arange(kept) + (start - first)[word_index]
        relative, local = table.pool[1:, pool_index]
        positions = (relative + (np.cumsum(advance) - advance)[word_index]).astype(np.int32)
        branch = np.where(local < 0, -1, local + (np.cumsum(branch_count) - branch_count)[word_index]).astype(np.int32)
        return word_ids, total, pool_index, positions, word_index, branch

    def _cut(self, length: int) -> int:
        cut = max(0, length - self.max_length)
        if cut and self.overflow == "error":
            raise InputError(f"the sentence tree has {length} tokens, over max_length={self.max_length}: "
                             "shorten the sentence, lower max_entities, or raise max_length")
        return cut

    def example(self, words_or_sentence: str | Sequence[str]) -> Example:
        """Return the compact example of a sentence: ids, soft positions, word and branch per token."""
        if self.vocab is None:
            raise InputError("example() needs token ids: give the layer a vocab (token -> id)")
        _, total, pool_index, positions, word_index, branch = self._flatten(self.words(words_or_sentence),
                                                                              self.max_length)
        cut = self._cut(total)
        return Example(self._table.pool[0, pool_index], positions, word_index, branch, cut)

    def build(self, words_or_sentence: str | Sequence[str]) -> SentenceTree:
        """Return the padded sentence tree, with its visible matrix (for views and tests)."""
        words = self.words(words_or_sentence)
        word_ids, total, _, positions, word_index, branch = self._flatten(words, self.max_length)
        cut = self._cut(total)
        kept = total - cut
        table = self._table
        tokens = [t for w in word_ids for t in table.tokens[w]][:kept]
        pad = self.max_length - kept
        visible = np.zeros((self.max_length, self.max_length), dtype=bool)
        visible[:kept, :kept] = visible_matrix(word_index[None], branch[None], np.array([kept]))[0]
        soft = np.full(self.max_length, self.max_length - 1, dtype=np.int64)
        soft[:kept] = positions
        segments = np.zeros(self.max_length, dtype=np.int64)
        segments[:kept] = branch >= 0
        index = np.full(self.max_length, -1, dtype=np.int64)
        index[:kept] = word_index
        branch_of = np.full(self.max_length, -1, dtype=np.int64)
        branch_of[:kept] = branch
        return SentenceTree(words=words, branches=[table.texts[w] for w in word_ids], tokens=tokens + [PAD] * pad,
                            soft_positions=soft, visible_matrix=visible, segments=segments, word_index=index,
                            branch_index=branch_of, length=kept, truncated=cut)


def collate(examples: Sequence[Example], max_length: int, pad_id: int, use_visible_matrix: bool = True,
            use_soft_positions: bool = True) -> dict[str, torch.Tensor]:
    """Return a batch: ids, positions and the 4-D boolean mask, padded to the batch's longest example.

    The mask equals the stacked ``build(...)`` visible matrices cut to that
    length (plus each padding token seeing itself). ``use_visible_matrix=False``
    is the paper's ablation: every real token sees every real token.
    """
    if not examples:
        raise InputError("cannot collate an empty batch")
    width = max(len(e.input_ids) for e in examples)
    count = len(examples)
    ids = np.full((count, width), pad_id, dtype=np.int64)
    positions = np.full((count, width), max_length - 1, dtype=np.int64)
    words = np.full((count, width), -1, dtype=np.int32)
    branches = np.full((count, width), -1, dtype=np.int32)
    lengths = np.fromiter((len(e.input_ids) for e in examples), np.int64, count)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = example.input_ids
        positions[row, :n] = example.soft_positions if use_soft_positions else np.arange(n)
        words[row, :n] = example.word_index
        branches[row, :n] = example.branch_index
    if use_visible_matrix:
        visible = visible_matrix(words, branches, lengths)
    else:
        real = np.arange(width)[None, :] < lengths[:, None]
        visible = real[:, :, None] & real[:, None, :]
    batch = {"input_ids": torch.from_numpy(ids), "position_ids": torch.from_numpy(positions),
             "attention_mask": attention_mask(visible)}
    if examples[0].labels is not None:
        if isinstance(examples[0].labels, np.ndarray):
            labels = np.full((count, width), -100, dtype=np.int64)
            for row, example in enumerate(examples):
                labels[row, :len(example.labels)] = example.labels
            batch["labels"] = torch.from_numpy(labels)
        else:
            batch["labels"] = torch.tensor([int(e.labels) for e in examples])
    return batch


class KBertClassifier(nn.Module):
    """Sentence classification with K-BERT (the authors' ``run_kbert_cls.py``).

    ``kg=None`` is plain BERT on the same base; ``use_visible_matrix=False`` the
    paper's ablation. As in the authors' code the sentence is prefixed with
    [CLS], and the head is the first token's state, a ``tanh`` dense layer and
    a linear output (no dropout of its own; the encoder keeps its dropout). A
    single-sentence input is all segment 0 (UER marks real tokens 1 and padding
    0; with an attention mask the two are equivalent up to a learned constant).
    ``layers`` and ``freeze_word_embeddings`` go to :func:`kbench.encoders.load_encoder`.
    """

    prefix: tuple[str, ...] = ("[CLS]",)

    def __init__(self, num_labels: int, kg: KnowledgeGraph | None = None, base_model: str = EMBEDDED, *,
                 max_entities: int = 2, max_length: int = 128, use_visible_matrix: bool = True,
                 use_soft_positions: bool = True, predicate: bool = True, joiner: str = "",
                 vocab: str | None = None, layers: int | None = None, freeze_word_embeddings: bool = False,
                 seed: int = 0):
        super().__init__()
        if num_labels < 2:
            raise InputError(f"num_labels must be at least 2, got {num_labels}")
        torch.manual_seed(seed)
        encoder = load_encoder(base_model, vocab=vocab, seed=seed, layers=layers,
                               freeze_word_embeddings=freeze_word_embeddings)
        self.bert = encoder.model
        self.tokenizer = encoder.tokenizer
        self.description = encoder.description
        self.layer = KnowledgeLayer(kg, max_entities, max_length, self.tokenizer.tokenize, predicate, joiner,
                                    vocab=self.tokenizer.get_vocab())
        self.use_visible_matrix = use_visible_matrix
        self.use_soft_positions = use_soft_positions
        hidden = self.bert.config.hidden_size
        self.dense = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, num_labels)

    def words(self, sentence: str | Sequence[str]) -> list[str]:
        """Return the words the model reads for ``sentence``: [CLS] and the sentence's words."""
        return [*self.prefix, *self.layer.words(sentence)]

    def dataset(self, texts: Sequence[str | Sequence[str]], labels: Sequence[int] | None = None) -> Examples:
        """Return the compact examples of ``texts`` (with their ``labels``) for :meth:`collate`."""
        if labels is not None and len(labels) != len(texts):
            raise InputError(f"{len(texts)} sentences but {len(labels)} labels")
        examples = []
        for index, text in enumerate(tqdm(texts, desc="sentence trees", disable=len(texts) < 5000, leave=False)):
            example = self.layer.example(self.words(text))
            example.labels = None if labels is None else int(labels[index])
            examples.append(example)
        return Examples(examples)

    def tree(self, sentence: str | Sequence[str]) -> SentenceTree:
        """Return the sentence tree the model reads for ``sentence`` (for views)."""
        return self.layer.build(self.words(sentence))

    def collate(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        """Return the batch of ``examples`` (see :func:`collate`) with this model's ablation switches."""
        return collate(examples, self.layer.max_length, self.tokenizer.pad_token_id, self.use_visible_matrix,
                       self.use_soft_positions)

    def states(self, input_ids, position_ids, attention_mask) -> torch.Tensor:
        """Return the encoder's last hidden states for a batch."""
        return self.bert(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                         token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    def forward(self, input_ids, position_ids, attention_mask, labels=None) -> dict[str, torch.Tensor]:
        """Return ``logits`` (and ``loss`` when ``labels`` are given)."""
        states = self.states(input_ids, position_ids, attention_mask)
        logits = self.output(torch.tanh(self.dense(states[:, 0])))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class KBertTagger(KBertClassifier):
    """Token tagging (NER) with K-BERT, as the authors' ``run_kbert_ner.py`` does it.

    Following that script: no [CLS]; the output layer reads each token's final
    state directly (no dropout of its own); branches are objects only
    (``predicate=False``, their KG built with ``predicate=False``); injected
    knowledge tokens are trained to predict an extra ``[ENT]`` tag and are left
    out of evaluation; padding is ignored. A sentence comes as units (Chinese
    characters, or words) with one tag each; units are grouped into KG
    subjects by the one :class:`~kbench.text.MentionDetector` (the authors
    segment with pkuseg and the KG as user dictionary). One deviation: a group
    is kept only when its tokens are its units' tokens in order, so every
    unit's tag lands on its own first token (other pieces are not scored).

    Three options, off by default (K-BERT's tagger above), give BERT's own
    token-classification recipe (Google's ``run_classifier.py``, which
    dmis-lab/biobert's ``run_ner.py`` follows): ``frame=True`` reads
    ``[CLS] … [SEP]`` (truncated to ``max_length`` with the [SEP] kept, both
    unlabelled); ``head_dropout`` is the dropout before the output layer (0.1
    there); ``bert_init=True`` initialises the output layer as BERT does (weights
    N(0, 0.02), bias 0) instead of ``nn.Linear``'s default.
    """

    ENT = "[ENT]"
    prefix = ()

    def __init__(self, tags: Sequence[str], kg: KnowledgeGraph | None = None, base_model: str = EMBEDDED, *,
                 frame: bool = False, head_dropout: float = 0.0, bert_init: bool = False, **options):
        if not 0.0 <= head_dropout < 1.0:
            raise InputError(f"head_dropout must be in [0, 1), got {head_dropout}")
        self.tags = list(tags) + ([self.ENT] if self.ENT not in tags else [])
        options.setdefault("predicate", False)
        super().__init__(len(self.tags), kg, base_model, **options)
        del self.dense
        self.frame = frame
        self.head_dropout = nn.Dropout(head_dropout) if head_dropout else None     # K-BERT's tagger: none
        self.output = nn.Linear(self.bert.config.hidden_size, len(self.tags))
        if bert_init:
            nn.init.normal_(self.output.weight, std=self.bert.config.initializer_range)
            nn.init.zeros_(self.output.bias)

    def group(self, units: Sequence[str]) -> tuple[list[str], list[list[int]]]:
        """Return the words of a unit sequence and, per word, the indices of its units."""
        words, groups = [], []
        for start, end, subject in self.layer.detector.spans(units):
            if subject is not None and self.layer.tokens_of(subject) == [
                    t for unit in units[start:end] for t in self.layer.tokens_of(unit)]:
                words.append(subject)
                groups.append(list(range(start, end)))
            else:
                words += units[start:end]
                groups += [[i] for i in range(start, end)]
        return words, groups

    def dataset(self, units: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None) -> Examples:
        """Return compact examples with per-token labels: a unit's tag on its first token, [ENT] on knowledge."""
        tag_id = {tag: i for i, tag in enumerate(self.tags)}
        ent = tag_id[self.ENT]
        examples = []
        for index, sentence_units in enumerate(units):
            sentence_units = list(sentence_units)
            if not sentence_units:
                raise InputError(f"sentence #{index} has no units")
            sentence_tags = None if tags is None else list(tags[index])
            if sentence_tags is not None:
                if len(sentence_units) != len(sentence_tags):
                    raise InputError(f"{len(sentence_units)} units but {len(sentence_tags)} tags in "
                                     f"{' '.join(sentence_units)[:60]!r}")
                unknown = set(sentence_tags) - set(tag_id)
                if unknown:
                    raise InputError(f"unknown tags {sorted(unknown)}: known tags are {self.tags}")
            words, groups = self.group(sentence_units)
            if self.frame:
                example = self.layer.example(["[CLS]", *words, "[SEP]"])
                if example.truncated:       # the authors cut the words to max_length - 2, then add [SEP]
                    example.input_ids[-1] = self.tokenizer.sep_token_id
                    example.branch_index[-1] = -1
            else:
                example = self.layer.example(words)
            if sentence_tags is not None:
                unit_labels = [-100] if self.frame else []
                for group in groups:
                    for unit in group:
                        pieces = len(self.layer.tokens_of(sentence_units[unit]))
                        unit_labels += [tag_id[sentence_tags[unit]]] + [-100] * (pieces - 1)
                labels = np.full(len(example.input_ids), ent, dtype=np.int64)
                sentence = example.branch_index < 0
                labels[sentence] = (unit_labels + [-100])[:int(sentence.sum())] if self.frame else \
                    unit_labels[:int(sentence.sum())]
                if self.frame:
                    labels[-1] = -100               # [SEP], or the piece it replaced
                example.labels = labels
            examples.append(example)
        return Examples(examples)

    def forward(self, input_ids, position_ids, attention_mask, labels=None) -> dict[str, torch.Tensor]:
        """Return per-token ``logits`` (and ``loss`` over labelled tokens when ``labels`` are given)."""
        states = self.states(input_ids, position_ids, attention_mask)
        logits = self.output(states if self.head_dropout is None else self.head_dropout(states))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out

    def metrics(self) -> dict[str, Callable[[torch.Tensor, torch.Tensor], float]]:
        """Typed entity F1 (conlleval, the selection metric) and the authors' untyped ``evaluate()`` F1."""
        from kbench.metrics import authors_ner_f1, tagging_f1

        return {"f1": tagging_f1(self.tags), "authors_f1": authors_ner_f1(self.tags)}


@torch.no_grad()
def attention_from_first_token(model: KBertClassifier, sentence: str | Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Return the tree's tokens and the first token's attention over them, ``(layers, tokens)``, head-averaged.

    This is what the notebook's "knowledge noise" section plots: with the
    visible matrix, [CLS] gives no weight to injected tokens; without it, it may.
    """
    inputs = model.collate([model.layer.example(model.words(sentence))])
    length = inputs["input_ids"].shape[1]
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
