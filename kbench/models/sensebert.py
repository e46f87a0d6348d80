"""SenseBERT: a supersense head beside BERT's word head, supersense-aware input embeddings, and its masking.

Levine, Lenz, Dagan, Ram, Padnos, Sharir, Shalev-Shwartz, Shashua, Shoham.
*SenseBERT: Driving Some Sense into BERT.* ACL 2020. https://arxiv.org/abs/1908.05646
Code: https://github.com/AI21Labs/sense-bert (the released models and their loader only; no training code).

Taught in ``notebooks/10_sensebert.ipynb``. The mechanism (§3):

- **Allowed supersenses** ``A(w)`` (§3.2): the lexicographer files (WordNet's 45
  supersenses, :data:`kbench.kg.wordnet.LEXNAMES`) of every synset of the
  lemmatised word. The paper applies "a WordNet Lemmatizer"; a lemmatiser needs
  a part of speech, which a vocabulary word has not, so we take every base form
  WordNet's morphology gives in every part of speech (the lookup of
  :func:`kbench.kg.wordnet.base_forms`, read straight from WordNet's files by
  :class:`SupersenseLexicon`: ``banks`` -> bank, noun and verb). Empty for
  (i) words of at most 3 characters, (ii) stopwords, (iii) part-of-word tokens
  (``##`` pieces). The authors name no stopword list; we use spaCy's English
  one (326 words).
- **Sense head** (§3.2, Eq. 5): ``p(s|context) = softmax(S^T v_output)`` with
  ``S`` the ``d x 45`` supersense matrix. As BERT's word head computes
  ``W^T v_output`` after its transform (dense + GELU + LayerNorm) and with a
  bias, the sense head has a transform and a bias of its own beside ``S`` (the
  paper writes neither for words nor for senses; its released graph is not
  readable as code).
- **Losses** (Eq. 4, 6, 7), at every masked word with a non-empty ``A(w)``:
  ``L_allowed = -log sum_{s in A(w)} p(s|context)``,
  ``L_reg = -(1/|A(w)|) sum_{s in A(w)} log p(s|context)``, added to the word
  loss ``L_LM`` (Eq. 2). No sense is ever picked as "the" label.
- **Supersense-aware input** (§3.3, Eq. 8): ``v_input = (W + S M) x + p`` with
  ``M`` the static 0/1 ``45 x vocabulary`` matrix of each token's ``A(token)``;
  ``S`` is the same parameter as the head's (tied). ``M`` is read at the *input*
  id, so a masked position carries ``M x_[MASK] = 0``: nothing of the hidden
  word's senses leaks in.
- **Rare words** (§3.4): the paper's "average embedding" variant, the one that
  keeps BERT's 30K vocabulary: whole-word masking, and a masked word's senses
  predicted from the average of the output states of its pieces, with ``A`` of
  the whole word. (Its other variant adds 30K words to the vocabulary.)
- **Masking** (§3.5), per sequence with a budget of 15% of its words (at least
  one, as BERT's ``create_pretraining_data``): the single-supersensed words are
  visited in random order, each chosen with probability 1/2, until 40% of the
  budget is filled (``ceil(0.4 budget)`` words: for a sentence of under 17
  words, whose budget ``round(0.15 n)`` is at most 2, one word); the rest of the budget is drawn uniformly from the words
  not chosen. A chosen word's pieces all become [MASK] (80%), random tokens
  (10%) or stay themselves (10%), one draw per word: BERT's rule, which the
  paper keeps ("as in the original BERT, 1 out of 10 words chosen for masking
  is shown to the model as itself").
- **Frozen probe** (§5.2, "SemEval-SS Frozen"): a linear classifier over the
  frozen output embedding of a sense-labelled word (the mean of its pieces),
  the network unchanged (:func:`frozen_probe`).
- **Saved** (:meth:`SenseBERT.export_lm`, what ``kbench pretrain --objective
  sensebert`` writes): a plain ``BertForMaskedLM`` with ``W + S M`` as its input
  word embeddings and ``W`` as its (untied) decoder, its trained decoder bias
  saved under its own name, so a notebook that takes it as ``base_model``
  (through :func:`kbench.pretrain.masked_lm`, which keeps an untied decoder
  untied) computes exactly SenseBERT's encoder and word scores (tested on a model
  trained a few steps).
- **Initialisation**: ``S``, the sense transform and bias as BERT's (N(0, 0.02),
  zero bias, LayerNorm 1/0). No NSP (the pipeline has none).
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

from kbench.encoders import init_bert_weights
from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.kg.wordnet import LEXNAMES
from kbench.pretrain import Corpus, MaskedLM, MaskingCollator, Sentence, build_corpus, masked_lm, register_objective
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.masking import IGNORE, RATE, MaskVocab, check_units
from kbench.train import eval_mode, token_batch

CITATION = {
    "title": "SenseBERT: Driving Some Sense into BERT",
    "authors": "Levine, Lenz, Dagan, Ram, Padnos, Sharir, Shalev-Shwartz, Shashua, Shoham",
    "venue": "ACL", "year": 2020, "url": "https://arxiv.org/abs/1908.05646",
    "code": "https://github.com/AI21Labs/sense-bert",
}
NOTEBOOK = "10_sensebert"
PLACE = Place('SenseBERT', 'objective', ('lexical',),
              'WordNet supersenses predicted at masked words and added to the input embeddings',
              survey='semantic')
HEADLINE = Headline(
    'supersense probe, accuracy', 'sensebert_probe_accuracy', 'mlm_probe_accuracy',
    "every word's WordNet supersenses while pretraining, and at run time in the input (S·M·x)",
    # the untrained encoders (SenseBERT's already carries A(w) in its input), the majority supersense, and the
    # allowed-set prior: the most frequent training supersense within the word's A(w), no model, no context
    trivial=('mlm_init_probe_accuracy', 'sensebert_init_probe_accuracy', 'majority_probe_accuracy',
             'allowed_prior_probe_accuracy'),
    positive=PositiveControl(
        "the true A(w) handed to the model through its input (S·M·x, Eq. 8): the gold supersense is one of A(w), so "
        "a frozen probe of even the untrained SenseBERT must beat the untrained BERT's",
        left='sensebert_init_probe_accuracy', right='mlm_init_probe_accuracy', min_difference=0.08))

SUPERSENSES = tuple(LEXNAMES)          # D_S = 45 (§3.2)
SINGLE_SHARE = 0.5                     # §3.5: half of the single-supersensed words are chosen ...
SINGLE_CAP = 0.4                       # ... until 40% of the masking budget is filled
KEEP, RANDOM = 0.1, 0.1                # BERT's 80/10/10 (§3.5: 1 in 10 chosen words shown as itself)
MIN_LENGTH = 4                         # §3.2 (i): words of up to 3 characters have no supersense
VARIANTS = (Variant("mlm", "BERT (whole-word MLM)", {"objective": "mlm"}),
            Variant("sensebert", "SenseBERT", {"objective": "sensebert"}))


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Return the English stopwords whose supersenses are left empty (§3.2 (ii)): spaCy's list."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(word.lower() for word in STOP_WORDS)


def excluded(word: str) -> str | None:
    """Return why ``word`` gets no supersense by §3.2's exceptions ("short", "stopword", "piece"), or None."""
    if word.startswith("##"):
        return "piece"
    if len(word) < MIN_LENGTH:
        return "short"
    if word.lower() in stopwords():
        return "stopword"
    return None


_PARTS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
#: morphy(7WN)'s detachment rules: (suffix, ending) per part of speech, tried in this order.
MORPHY_SUFFIXES = {
    "n": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


@dataclass
class WordNetSynset:
    """One synset as read from WordNet's data file: its supersense index, part of speech, lemmas and gloss."""

    name: str           # "<first lemma>.<pos>.<offset>": unique, not NLTK's sense-numbered name
    supersense: int
    pos: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


class SupersenseLexicon:
    """WordNet 3.0's lemmas with the supersenses of their synsets, read straight from its files.

    The same lookup as NLTK's reader (:func:`kbench.kg.wordnet.base_forms`:
    the exception lists, then morphy(7WN)'s suffix rules, kept where WordNet
    has the lemma; tested equal on sample words), read once into plain
    dictionaries instead of NLTK's objects, which a notebook's time budget
    cannot afford. ``synsets`` lists every synset with its gloss, for the
    pretraining corpus and the probe.
    """

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        self.directory = directory
        supersense_of: dict[str, dict[str, int]] = {}
        self.synsets: list[WordNetSynset] = []
        for part, name in _PARTS.items():
            lexfiles = supersense_of[part] = {}
            with open(directory / f"data.{name}", encoding="utf-8") as lines:
                for line in lines:
                    if line[0] == " ":
                        continue     # the licence header
                    columns, _, gloss = line.partition(" | ")
                    fields = columns.split(" ", 4 + 2 * 255)
                    offset, lexfile, count = fields[0], int(fields[1]), int(fields[3], 16)
                    lemmas = tuple(fields[4 + 2 * i].split("(")[0].lower() for i in range(count))
                    lexfiles[offset] = lexfile
                    pieces = gloss.rstrip().split('"')
                    definition = "".join(pieces[0::2]).replace("; ;", ";").strip().strip(";").strip()
                    self.synsets.append(WordNetSynset(f"{lemmas[0]}.{part}.{offset}", lexfile, part, lemmas,
                                                      definition, tuple(pieces[1::2])))
        self.index: dict[str, dict[str, tuple[int, ...]]] = {}
        self.exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
        for part, name in _PARTS.items():
            table, lexfiles = {}, supersense_of[part]
            with open(directory / f"index.{name}", encoding="utf-8") as lines:
                for line in lines:
                    if line[0] == " ":
                        continue
                    fields = line.split()
                    table[fields[0]] = tuple(sorted({lexfiles[o] for o in fields[-int(fields[2]):]}))
            self.index[part] = table
            with open(directory / f"{name}.exc", encoding="utf-8") as lines:
                self.exceptions[part] = {inflected: tuple(bases) for inflected, *bases in map(str.split, lines)
                                         if bases}

    def base_forms(self, word: str, part: str) -> list[str]:
        """Return every lemma ``word`` may be a form of as ``part`` (morphy's rules; ``banks`` -> banks, bank)."""
        word = word.lower().replace(" ", "_")
        irregular = self.exceptions[part].get(word)
        forms = [word, *irregular] if irregular is not None else [word] + [
            word[:len(word) - len(old)] + new for old, new in MORPHY_SUFFIXES[part] if word.endswith(old)]
        return [form for form in dict.fromkeys(forms) if form in self.index[part]]

    def supersenses(self, word: str) -> tuple[int, ...]:
        """Return the supersenses of every synset of every base form of ``word``, any part of speech, sorted."""
        senses: set[int] = set()
        for part in _PARTS:
            for form in self.base_forms(word, part):
                senses.update(self.index[part][form])
        return tuple(sorted(senses))


@lru_cache(maxsize=4)
def load_lexicon(data_dir: str | None = None) -> SupersenseLexicon:
    """Return WordNet 3.0's :class:`SupersenseLexicon` (files from :func:`~kbench.kg.wordnet.prepare_wordnet`)."""
    from kbench.kg.wordnet import prepare_wordnet

    return SupersenseLexicon(prepare_wordnet(data_dir) / "corpora" / "wordnet")


def allowed_supersenses(lexicon: SupersenseLexicon, word: str) -> tuple[int, ...]:
    """Return ``A(w)``: the sorted indices (into :data:`SUPERSENSES`) of the supersenses ``word`` may have.

    Empty for a word §3.2 excludes (:func:`excluded`) and for a word WordNet does
    not know; otherwise the lexicographer files of every synset of every base
    form of the word, any part of speech (``banks`` -> ``bank`` -> noun.group,
    noun.object, noun.artifact, ..., verb.possession, ...).
    """
    if not isinstance(word, str) or not word.strip():
        raise InputError(f"a word must be a non-empty string, not {word!r}")
    if excluded(word):
        return ()
    return lexicon.supersenses(word)


def require_supersenses(lexicon, word: str) -> tuple[int, ...]:
    """Return ``A(w)``, raising ``InputError`` when it is empty (a word that cannot carry a sense loss)."""
    allowed = allowed_supersenses(lexicon, word)
    if not allowed:
        reason = excluded(word)
        why = {"piece": "it is part of a word", "short": f"it has fewer than {MIN_LENGTH} characters",
               "stopword": "it is a stopword"}.get(reason, "WordNet has no synset for any of its base forms")
        raise InputError(f"{word!r} has no supersense: {why}")
    return allowed


def sense_matrix(lexicon, tokenizer) -> torch.Tensor:
    """Return ``M^T``: a ``vocabulary x 45`` 0/1 matrix, row ``t`` the allowed supersenses of token ``t`` (Eq. 8).

    Special tokens ([MASK], [CLS], ...) and ``##`` pieces have empty rows.
    """
    special = set(tokenizer.all_special_ids)
    matrix = torch.zeros(len(tokenizer), len(SUPERSENSES))
    for token, index in tokenizer.get_vocab().items():
        if index in special or token.startswith("[") and token.endswith("]"):
            continue
        for sense in allowed_supersenses(lexicon, token):
            matrix[index, sense] = 1.0
    return matrix


def slm_losses(logits: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(L_allowed, L_reg)`` (Eq. 4 and 6), each averaged over the rows of ``logits``.

    ``logits`` are sense scores ``(n, 45)``; ``allowed`` a 0/1 ``(n, 45)``
    matrix of each row's ``A(w)``. A row with no allowed sense has neither loss
    (``log`` of an empty sum; ``1/|A(w)|``): it is an ``InputError``.
    """
    if logits.shape != allowed.shape:
        raise InputError(f"sense logits {tuple(logits.shape)} and allowed senses {tuple(allowed.shape)} differ")
    allowed = allowed.to(logits.dtype)
    sizes = allowed.sum(-1)
    if (sizes == 0).any():
        raise InputError(f"{int((sizes == 0).sum())} masked word(s) have no supersense: a word with A(w) empty "
                         "takes no sense loss (leave it out of the targets)")
    log_p = logits.log_softmax(-1)
    allowed_loss = -torch.logsumexp(log_p.masked_fill(allowed == 0, float("-inf")), dim=-1)
    reg_loss = -(log_p * allowed).sum(-1) / sizes
    return allowed_loss.mean(), reg_loss.mean()


@dataclass
class SenseSentence(Sentence):
    """A :class:`Sentence` whose word units carry their allowed supersenses (``senses[i]`` for ``units["word"][i]``)."""

    senses: list[tuple[int, ...]] = field(default_factory=list)


def word_texts(ids: np.ndarray, spans: Sequence[tuple[int, int]], tokenizer) -> list[str]:
    """Return each word span's text, its WordPiece pieces joined (``bass`` ``##es`` -> ``basses``)."""
    tokens = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    return ["".join(t[2:] if t.startswith("##") else t for t in tokens[start:end]) for start, end in spans]


def word_senses(lexicon, words: Sequence[str]) -> list[tuple[int, ...]]:
    """Return ``A(w)`` of each whole word (empty for ``[UNK]`` and for what §3.2 excludes)."""
    return [allowed_supersenses(lexicon, word) if "[UNK]" not in word else () for word in words]


def sense_corpus(texts: Sequence[str], tokenizer, lexicon, max_length: int = 64, source: str = "texts") -> Corpus:
    """Return a :class:`Corpus` of :class:`SenseSentence` s: word units with ``A(w)`` of each whole word.

    A plain word-unit corpus (:func:`kbench.pretrain.build_corpus`) works too:
    the collator then looks ``A(w)`` up per batch; this one looks it up once.
    """
    corpus = build_corpus(texts, tokenizer, units=("word",), max_length=max_length, source=source)
    sentences = [SenseSentence(s.text, s.ids, s.units,
                               word_senses(lexicon, word_texts(s.ids, s.units["word"], tokenizer)))
                 for s in corpus.sentences]
    return Corpus(sentences, tokenizer, source)


def choose_words(senses: Sequence[tuple[int, ...]], rng: np.random.Generator, rate: float = RATE) -> list[int]:
    """Return the indices of the words §3.5 masks: single-supersensed ones first (1/2 each, capped), then random.

    The budget is ``max(1, round(rate * words))``; single-supersensed words are
    visited in random order, each taken with probability 1/2, until the taken
    ones fill 40% of the budget; the rest of the budget is drawn uniformly from
    the words not yet taken.
    """
    count = len(senses)
    if count == 0:
        return []
    budget = min(count, max(1, int(round(rate * count))))
    cap = math.ceil(SINGLE_CAP * budget)
    single = [i for i, allowed in enumerate(senses) if len(allowed) == 1]
    chosen: list[int] = []
    for index in rng.permutation(single):
        if len(chosen) >= cap:
            break
        if rng.random() < SINGLE_SHARE:
            chosen.append(int(index))
    rest = np.setdiff1d(np.arange(count), chosen)
    chosen += [int(i) for i in rng.choice(rest, size=budget - len(chosen), replace=False)]
    return sorted(chosen)


class SenseMaskingCollator:
    """Batch sentences with SenseBERT's masking (§3.5) and the sense targets of the masked words.

    A :class:`SenseSentence` brings its words' ``A(w)``; a plain word-unit
    :class:`~kbench.pretrain.Sentence` (``kbench pretrain``'s corpus) has them
    looked up through ``lexicon`` and ``tokenizer``.

    A batch has BERT's ``input_ids``, ``attention_mask`` and ``labels`` (every
    piece of a chosen word), plus one row per masked word with a non-empty
    ``A(w)``: ``sense_rows`` (its sentence), ``sense_weights`` (``1/pieces`` on
    its pieces: the average of §3.4) and ``sense_allowed`` (its 0/1 ``A(w)``).
    Resumable like :class:`~kbench.pretrain.MaskingCollator` (``get_state``/``set_state``).
    """

    def __init__(self, vocab: MaskVocab, pad_id: int, seed: int = 0, rate: float = RATE, lexicon=None,
                 tokenizer=None):
        if not 0.0 < rate < 1.0:
            raise InputError(f"the masking rate must be in (0, 1), got {rate}")
        self.vocab, self.pad_id, self.rate = vocab, pad_id, rate
        self.lexicon, self.tokenizer = lexicon, tokenizer
        self.pool = vocab.replacement_pool()
        self.rng = np.random.default_rng(seed)
        self.batches = 0
        self._looked_up: dict[tuple, list[tuple[int, ...]]] = {}    # a plain Sentence's A(w), found once

    def senses_of(self, sentence: Sentence) -> list[tuple[int, ...]]:
        """Return ``A(w)`` of each word unit: a :class:`SenseSentence`'s own, else looked up from its pieces."""
        if "word" not in sentence.units:
            raise InputError("SenseBERT masks whole words: build the corpus with units=('word',) or sense_corpus()")
        if isinstance(sentence, SenseSentence):
            return sentence.senses
        if self.lexicon is None or self.tokenizer is None:
            raise InputError("a plain Sentence needs the collator's lexicon and tokenizer to find A(w)")
        key = (tuple(sentence.ids), tuple(map(tuple, sentence.units["word"])))
        if key not in self._looked_up:
            self._looked_up[key] = word_senses(self.lexicon, word_texts(sentence.ids, sentence.units["word"],
                                                                        self.tokenizer))
        return self._looked_up[key]

    def mask(self, sentence: Sentence) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, tuple[int, ...]]]]:
        """Return one sentence's ``(input_ids, labels, [(start, end, A(w)) of each masked word with senses])``."""
        senses = self.senses_of(sentence)
        spans = sentence.units["word"]
        if len(spans) != len(senses):
            raise InputError(f"{len(spans)} words but {len(senses)} supersense sets in {sentence.text!r}")
        check_units(spans, len(sentence.ids))
        ids = np.asarray(sentence.ids, np.int64)
        inputs, labels, targets = ids.copy(), np.full(len(ids), IGNORE, np.int64), []
        for index in choose_words(senses, self.rng, self.rate):
            start, end = spans[index]
            labels[start:end] = ids[start:end]
            action = self.rng.random()
            if action < 1.0 - KEEP - RANDOM:
                inputs[start:end] = self.vocab.mask_id
            elif action < 1.0 - KEEP:
                inputs[start:end] = self.rng.choice(self.pool, size=end - start)
            if senses[index]:
                targets.append((start, end, tuple(senses[index])))
        return inputs, labels, targets

    def __call__(self, sentences: Sequence[SenseSentence]) -> dict[str, torch.Tensor]:
        self.batches += 1
        masked = [self.mask(sentence) for sentence in sentences]
        batch = token_batch([inputs for inputs, _, _ in masked], self.pad_id)
        labels = token_batch([labels for _, labels, _ in masked], IGNORE)["input_ids"]
        length = batch["input_ids"].shape[1]
        rows, weights, allowed = [], [], []
        for row, (_, _, targets) in enumerate(masked):
            for start, end, senses in targets:
                rows.append(row)
                weight = np.zeros(length, np.float32)
                weight[start:end] = 1.0 / (end - start)
                weights.append(weight)
                mark = np.zeros(len(SUPERSENSES), np.float32)
                mark[list(senses)] = 1.0
                allowed.append(mark)
        return {"input_ids": torch.from_numpy(batch["input_ids"]),
                "attention_mask": torch.from_numpy(batch["attention_mask"]), "labels": torch.from_numpy(labels),
                "sense_rows": torch.tensor(rows, dtype=torch.long),
                "sense_weights": torch.from_numpy(np.stack(weights) if weights else np.zeros((0, length), np.float32)),
                "sense_allowed": torch.from_numpy(np.stack(allowed) if allowed
                                                  else np.zeros((0, len(SUPERSENSES)), np.float32))}

    def get_state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "batches": self.batches}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = state["batches"]


def masking_rates(collate: SenseMaskingCollator, corpus: Corpus, rounds: int = 1) -> dict[str, float]:
    """Return how SenseBERT's masking (§3.5) treats ``corpus`` over ``rounds`` passes (a copy of the collator's rng).

    ``words``: the share of words chosen; ``single`` and ``other``: the share
    chosen among single-supersensed words and among the rest; ``targets``: the
    share of chosen words that carry a sense loss (non-empty ``A(w)``).
    """
    probe = SenseMaskingCollator(collate.vocab, collate.pad_id, 0, collate.rate, collate.lexicon, collate.tokenizer)
    probe.rng.bit_generator.state = collate.rng.bit_generator.state
    counts = np.zeros((2, 2))            # [single?, chosen?]
    targets = chosen = 0
    for _ in range(rounds):
        for sentence in corpus.sentences:
            senses = probe.senses_of(sentence)
            _, labels, sense_targets = probe.mask(sentence)
            for (start, _), allowed in zip(sentence.units["word"], senses):
                counts[int(len(allowed) == 1), int(labels[start] != IGNORE)] += 1
            chosen += sum(labels[start] != IGNORE for start, _ in sentence.units["word"])
            targets += len(sense_targets)
    share = lambda row: float(row[1] / max(1.0, row.sum()))
    return {"words": float(counts[:, 1].sum() / counts.sum()), "single": share(counts[1]), "other": share(counts[0]),
            "targets": float(targets / max(1, chosen))}


class SenseBERT(MaskedLM):
    """BERT's masked LM plus SenseBERT's tied supersense matrix ``S``: in the input (Eq. 8) and in the head (Eq. 5).

    ``forward`` adds ``L_allowed + L_reg`` (Eq. 7) of the batch's sense targets
    to the word loss; ``sense_weight`` scales it (1, the paper's sum).
    """

    def __init__(self, lm, tokenizer, collate: SenseMaskingCollator, allowed_matrix: torch.Tensor,
                 description: str = "", sense_weight: float = 1.0):
        super().__init__(lm, tokenizer, collate, description)
        if allowed_matrix.shape != (len(tokenizer), len(SUPERSENSES)):
            raise InputError(f"the allowed-sense matrix is {tuple(allowed_matrix.shape)}, the vocabulary "
                             f"{len(tokenizer)} x {len(SUPERSENSES)} supersenses")
        config = lm.config
        self.sense_embeddings = nn.Embedding(len(SUPERSENSES), config.hidden_size)   # the rows of S^T
        self.sense_transform = BertPredictionHeadTransform(config)
        self.sense_bias = nn.Parameter(torch.zeros(len(SUPERSENSES)))
        init_bert_weights(self.sense_embeddings, self.sense_transform)
        self.register_buffer("allowed_matrix", allowed_matrix.float(), persistent=False)
        self.sense_weight = sense_weight

    def export_lm(self):
        """Return a plain ``BertForMaskedLM`` that computes this model's encoder and word scores exactly.

        ``S M`` is folded into the input word embeddings (``W + S M``: Eq. 8 for
        every id) and the word decoder keeps ``W`` (untied), so any notebook
        that takes the saved directory as ``base_model`` reads what SenseBERT
        was trained with. The sense head is not part of it.
        """
        import copy

        lm = copy.deepcopy(self.lm)
        with torch.no_grad():
            words = self.lm.bert.embeddings.word_embeddings.weight
            lm.bert.embeddings.word_embeddings.weight = nn.Parameter(
                words + self.allowed_matrix.to(words.dtype) @ self.sense_embeddings.weight)
            lm.cls.predictions.decoder.weight = nn.Parameter(words.detach().clone())
            # a tensor of its own, so that both names are saved: an untied checkpoint is read back with
            # decoder.bias from its own key (transformers would otherwise initialise it afresh)
            bias = self.lm.cls.predictions.decoder.bias.detach()
            lm.cls.predictions.decoder.bias = nn.Parameter(bias.clone())
            lm.cls.predictions.bias = nn.Parameter(bias.clone())
        lm.config.tie_word_embeddings = False
        return lm

    def input_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Return ``(W + S M) x`` for each input id (Eq. 8, before positions): ``M`` read at the *input* id."""
        words = self.lm.bert.embeddings.word_embeddings(input_ids)
        return words + self.allowed_matrix[input_ids] @ self.sense_embeddings.weight

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.lm.bert(inputs_embeds=self.input_embeddings(input_ids), attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state

    def sense_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Return ``y^senses = S^T transform(v) + b`` (Eq. 5's scores) for output states ``(..., d)``."""
        return self.sense_transform(states) @ self.sense_embeddings.weight.T + self.sense_bias

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                sense_rows: torch.Tensor | None = None, sense_weights: torch.Tensor | None = None,
                sense_allowed: torch.Tensor | None = None) -> dict:
        states = self.hidden(input_ids, attention_mask, token_type_ids)
        if labels is None:
            return {"logits": self.lm.cls(states), "sense_logits": self.sense_logits(states)}
        keep = labels != IGNORE
        logits = self.lm.cls(states[keep])
        word_loss = nn.functional.cross_entropy(logits, labels[keep]) if keep.any() else states.sum() * 0.0
        out = {"logits": logits, "word_loss": word_loss}
        if sense_rows is not None and len(sense_rows):
            pooled = torch.einsum("tl,tld->td", sense_weights.to(states.dtype), states[sense_rows])
            sense_logits = self.sense_logits(pooled)
            allowed_loss, reg_loss = slm_losses(sense_logits, sense_allowed)
            out.update(sense_logits=sense_logits, allowed_loss=allowed_loss, reg_loss=reg_loss)
            out["loss"] = word_loss + self.sense_weight * (allowed_loss + reg_loss)
        else:
            out["loss"] = word_loss
        return out


def pretrainer(lexicon, base_model: str = "tiny", objective: str = "sensebert", seed: int = 0,
               layers: int | None = None, vocab: str | None = None, rate: float = RATE) -> MaskedLM:
    """Return a pretraining model: ``sensebert`` (§3) or ``mlm`` (BERT's whole-word MLM, the same init).

    Both take the same seeded ``masked_lm`` (so ``compare_objectives`` finds the
    same encoder weights); SenseBERT's new parameters are drawn after it.
    """
    lm, tokenizer, description = masked_lm(base_model, vocab, seed, layers)
    vocab_ = MaskVocab.of(tokenizer)
    if objective == "mlm":
        return MaskedLM(lm, tokenizer, MaskingCollator(vocab_, tokenizer.pad_token_id, "whole_word", seed, rate),
                        description + ", whole-word MLM")
    if objective != "sensebert":
        raise InputError(f"unknown objective {objective!r}: use 'sensebert' or 'mlm'")
    torch.manual_seed(seed + 1)
    collate = SenseMaskingCollator(vocab_, tokenizer.pad_token_id, seed, rate, lexicon=lexicon, tokenizer=tokenizer)
    return SenseBERT(lm, tokenizer, collate, _matrix(lexicon, tokenizer), description + ", SenseBERT heads")


_MATRICES: dict = {}


def _matrix(lexicon, tokenizer) -> torch.Tensor:
    """Return :func:`sense_matrix`, cached per lexicon directory and vocabulary (the lexicon is kept with it)."""
    key = (str(getattr(lexicon, "directory", "")), getattr(tokenizer, "name_or_path", ""), len(tokenizer))
    entry = _MATRICES.get(key)
    if entry is None or (not key[0] and entry[0] is not lexicon):
        entry = _MATRICES[key] = (lexicon, sense_matrix(lexicon, tokenizer))
    return entry[1]


# --- the frozen probe (§5.2, "SemEval-SS Frozen") and the per-word view (§4, Fig. 3b) ---

@torch.no_grad()
def word_states(model: MaskedLM, items: Sequence[tuple[list[str], int, int]], batch_size: int = 64) -> torch.Tensor:
    """Return the frozen output state of each item's marked words (``words[start:end]``): the mean of its pieces."""
    tokenizer = model.tokenizer
    device = next(model.parameters()).device
    rows = []
    with eval_mode(model):
        for first in range(0, len(items), batch_size):
            chunk = items[first:first + batch_size]
            encoded = tokenizer([words for words, _, _ in chunk], is_split_into_words=True, truncation=True,
                                max_length=128, padding=True, return_tensors="pt")
            states = model.hidden(encoded["input_ids"].to(device), encoded["attention_mask"].to(device)).float().cpu()
            for index, (_, start, end) in enumerate(chunk):
                word_ids = encoded.word_ids(index)
                pieces = [p for p, w in enumerate(word_ids) if w is not None and start <= w < end]
                if not pieces:
                    raise InputError(f"the marked words {chunk[index][0][start:end]} were truncated away")
                rows.append(states[index, pieces].mean(0))
    return torch.stack(rows)


@dataclass
class ProbeResult:
    """A frozen linear probe's accuracy on dev and test, and the inverse regularisation strength dev chose."""

    dev_accuracy: float
    test_accuracy: float
    C: float
    test_predictions: np.ndarray


def frozen_probe(model: MaskedLM, data, Cs: Sequence[float] = (0.1, 1.0), seed: int = 0
                 ) -> ProbeResult:
    """Train a linear classifier (multinomial logistic regression) on frozen word states; return its accuracy.

    §5.2's Frozen setting: "a linear classifier over the 'frozen' output
    embeddings", the network unchanged. ``data`` has ``train``, ``dev`` and
    ``test`` lists of ``((words, start, end), label)`` (the profile's
    ``ProbeData``). Features are standardised on train; ``C`` is chosen on dev.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features = [word_states(model, [item for item, _ in part]).numpy() for part in (data.train, data.dev, data.test)]
    labels = [np.asarray([label for _, label in part]) for part in (data.train, data.dev, data.test)]
    scaler = StandardScaler().fit(features[0])
    features = [scaler.transform(f) for f in features]
    best = None
    for C in Cs:
        with warnings.catch_warnings():      # at most 200 L-BFGS iterations, converged or not: the same for every model
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier = LogisticRegression(C=C, max_iter=200, random_state=seed).fit(features[0], labels[0])
        dev = float((classifier.predict(features[1]) == labels[1]).mean())
        if best is None or dev > best[0]:
            best = (dev, C, classifier)
    dev, C, classifier = best
    predictions = classifier.predict(features[2])
    return ProbeResult(dev, float((predictions == labels[2]).mean()), C, predictions)


def probe_priors(lexicon, data) -> dict[str, float]:
    """Return the test accuracy of the two model-free baselines of :func:`frozen_probe` on ``data``.

    ``majority``: every test word gets the most frequent training supersense. ``allowed_prior``: every test word
    gets, among its allowed supersenses ``A(w)`` (of the marked text, else the union of its words'), the one most
    frequent as a training label (ties: the lower index); the majority label when none of ``A(w)`` is a training
    label. The second is what a model can reach from the lexicon and the label frequencies alone, with no
    context: since SenseBERT's input carries ``A(w)`` (Eq. 8), its probe matching this prior means it learned
    the prior, not a sense in context.
    """
    counts = np.zeros(len(SUPERSENSES))
    for _, label in data.train:
        counts[label] += 1
    if not counts.sum() or not data.test:
        raise InputError("the probe data needs training and test items")
    majority = int(counts.argmax())

    def allowed(words: list[str], start: int, end: int) -> set[int]:
        marked = " ".join(words[start:end])
        found = set(allowed_supersenses(lexicon, marked)) if marked.strip() else set()
        return found or {s for word in words[start:end] for s in allowed_supersenses(lexicon, word)}

    hits = {"majority": 0, "allowed_prior": 0}
    for (words, start, end), label in data.test:
        senses = [s for s in sorted(allowed(words, start, end)) if counts[s] > 0]
        guess = max(senses, key=lambda s: (counts[s], -s)) if senses else majority
        hits["majority"] += int(label == majority)
        hits["allowed_prior"] += int(label == guess)
    return {name: value / len(data.test) for name, value in hits.items()}


@torch.no_grad()
def supersense_predictions(model: SenseBERT, text: str, lexicon, mask: str | None = None, top: int = 3) -> list[dict]:
    """Return, for each word of ``text``, SenseBERT's likeliest supersenses in context and its ``A(w)``.

    §4, Fig. 3(b): the *unmasked* sentence, each word's sense scores read at
    the average of its pieces' output states. With ``mask`` (a word of the
    text), its first occurrence is replaced by [MASK] pieces first (Fig. 3(a))
    and only that row is flagged ``masked``.
    """
    if not isinstance(model, SenseBERT):
        raise InputError("only a SenseBERT model has a supersense head")
    tokenizer = model.tokenizer
    encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
    word_ids = encoded.word_ids(0)
    ids = encoded["input_ids"].clone()
    spans = {}
    for position, word in enumerate(word_ids):
        if word is not None:
            spans.setdefault(word, []).append(position)
    words = {word: "".join(t[2:] if t.startswith("##") else t
                           for t in tokenizer.convert_ids_to_tokens([int(ids[0, p]) for p in positions]))
             for word, positions in spans.items()}
    masked = None
    if mask is not None:
        hits = [word for word, w in words.items() if w == mask.lower()]
        if not hits:
            raise InputError(f"{mask!r} is not a word of {text!r}")
        masked = hits[0]                                  # the first occurrence only
        ids[0, spans[masked]] = tokenizer.mask_token_id
    with eval_mode(model):
        device = next(model.parameters()).device
        states = model.hidden(ids.to(device), encoded["attention_mask"].to(device))[0].float().cpu()
        rows = []
        for word, positions in spans.items():
            probabilities = model.sense_logits(states[positions].mean(0).to(device)).float().softmax(-1).cpu()
            values, indices = probabilities.topk(top)
            allowed = allowed_supersenses(lexicon, words[word])
            rows.append({"word": words[word], "masked": word == masked,
                         "top": [(SUPERSENSES[int(i)], float(v)) for v, i in zip(values, indices)],
                         "allowed": [SUPERSENSES[i] for i in allowed],
                         "best_allowed": (SUPERSENSES[max(allowed, key=lambda s: float(probabilities[s]))]
                                          if allowed else None)})
    return rows


def _objective(base_model: str, steps: int, data_dir: str | None = None, **kw) -> MaskedLM:
    """``kbench pretrain --objective sensebert``: this objective with WordNet's supersenses from ``data_dir``."""
    return pretrainer(load_lexicon(data_dir), base_model, "sensebert", **kw)


register_objective("sensebert", ("word",), _objective)
