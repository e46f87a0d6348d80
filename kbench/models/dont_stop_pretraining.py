"""Don't Stop Pretraining: continue a general encoder's MLM on the domain (DAPT), the task (TAPT), or both.

Gururangan, Marasović, Swayamdipta, Lo, Beltagy, Downey, Smith. *Don't Stop
Pretraining: Adapt Language Models to Domains and Tasks.* ACL 2020.
https://arxiv.org/abs/2004.10964 — code: https://github.com/allenai/dont-stop-pretraining

Taught in ``notebooks/15_dont_stop_pretraining.ipynb``. The paper changes no
architecture and no objective: it changes *what text* a pretrained masked LM
(RoBERTa) keeps learning from before it is fine-tuned. Every regime here is
one call of :func:`kbench.pretrain.continue_pretraining` (BERT's MLM, 15%,
80/10/10) from the same general base, with the same steps, batch, learning
rate and seed; only the corpus differs (:func:`adaptation_corpora`):

- **DAPT** (§3): the domain's unlabelled text. Ours holds none of the task's
  own sentences — train, dev or test: DAPT learns the domain, not the task
  (the paper's domain corpora are far larger than, and separate from, its tasks).
- **TAPT** (§4): the task's own *training* text, labels dropped. The paper
  runs many epochs over the small task corpus; we run the same step budget as
  every regime.
- **DAPT + TAPT** (§4): TAPT continued from the DAPT checkpoint (its
  weights and MLM head): the sequential recipe of the paper, so it has had
  both phases' steps — as in the paper, where it is the most expensive regime.
- **kNN-TAPT** (§5): the task's training text plus, for each of its
  sentences, the ``k`` domain sentences nearest by cosine of sentence
  embeddings (:func:`kbench.text.selection.nearest_indices`). The paper embeds
  with VAMPIRE (a bag-of-words VAE trained on the domain and task text) and
  searches with FAISS; we embed with the frozen general encoder itself, the
  mean of its output states (all-MiniLM-L6-v2 is trained as a sentence
  encoder with exactly that pooling) — see ``selection_layers`` in the profile.
- **RAND-TAPT** (§5, the paper's control for kNN-TAPT): the task's text
  plus as many domain sentences as kNN chose, drawn at random: the headline's
  trivial baseline (random selection of the same size).
- **Irrelevant-domain DAPT** (§3, "domain relevance"): DAPT on another
  domain's text for the same budget — the paper's control that the gain comes
  from the domain and not from more pretraining.

Every corpus is checked against the task's dev and test texts
(``continue_pretraining(exclude=...)`` refuses them). The paper's fine-tuning
reads RoBERTa's first token into a classification layer; ours is
:class:`AdaptedClassifier` (BERT's [CLS] -> tanh dense -> linear, the plain
``KBertClassifier``) selecting the dev epoch by **macro-F1**, the paper's
metric for ACL-ARC and SciERC (the authors' ``BasicClassifierWithF1`` averages
the per-label F1). :func:`masked_lm_loss` is the paper's other reading of
adaptation (Table 1: the MLM loss on held-out text before and after DAPT).
The general base (MiniLM) ships no MLM head; :func:`warm_head` trains one
once, the encoder frozen, on text no regime reads, and every regime branches
from it (``smoke``), so that the regimes' steps do not go to a fresh head.
The headline's positive control is the held-out MLM loss: kNN-TAPT (the
task's text and its nearest domain sentences) must leave it below DAPT on an
irrelevant domain at the same steps.

The domain-similarity heatmap (§2, Figure 2) is
:func:`kbench.text.vocabulary.domain_overlap` with
:func:`kbench.viz.vocabulary.overlap_heatmap`: each domain's top ``k`` words
(stopwords excluded), the share two domains have in common. The authors'
``scripts/vocab_overlap.py`` differs in detail: each vocabulary is every word
with ``min_df=3`` (scikit-learn's ``CountVectorizer``, English stopwords) and
the overlap is intersection over union; we follow the paper's description
(the top 10K words of each domain) and say so in the notebook.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kbench.errors import InputError, UnknownNameError
from kbench.experiment import Variant
from kbench.models.kbert import KBertClassifier
from kbench.taxonomy import Headline, Place, PositiveControl
from kbench.text.vocabulary import text_key

CITATION = {
    "title": "Don't Stop Pretraining: Adapt Language Models to Domains and Tasks",
    "authors": "Gururangan, Marasović, Swayamdipta, Lo, Beltagy, Downey, Smith",
    "venue": "ACL", "year": 2020, "url": "https://arxiv.org/abs/2004.10964",
    "code": "https://github.com/allenai/dont-stop-pretraining",
}
NOTEBOOK = "15_dont_stop_pretraining"
PLACE = Place("Don't Stop Pretraining", 'data and vocabulary', ('domain',),
              "a pretrained model's MLM continued on the domain's text (DAPT), the task's own text (TAPT), both, or "
              "the domain sentences nearest the task's (kNN-TAPT)",
              survey='domain-specific', in_survey=False)
HEADLINE = Headline('definition classification, macro-F1 (DAPT + TAPT, twice the steps, vs the base)', 'gloss_dapt_tapt_macro_f1',
                    'gloss_base_macro_f1', "a domain corpus (DAPT) and the task's unlabelled text (TAPT)",
                    full=('acl_arc_dapt_tapt_macro_f1', 'acl_arc_base_macro_f1'),
                    full_task='ACL-ARC citation intent, macro-F1 (DAPT + TAPT, twice the steps, vs the base)',
                    trivial=('gloss_rand_tapt_macro_f1',),
                    positive=PositiveControl(
                        "the masked-LM loss on the task's held-out test texts: the same steps on the task's own text "
                        "and its nearest domain sentences (kNN-TAPT) must leave it lower than on an irrelevant domain, "
                        "both from one shared warmed-up head (lower is better)",
                        left='gloss_irrelevant_dapt_mlm_loss', right='gloss_knn_tapt_mlm_loss', min_difference=0.1))

#: The regimes, in the paper's table order; each pretrains on the corpus of the same name (base: none).
REGIMES: dict[str, str] = {
    "base": "general base (no further pretraining)",
    "dapt": "DAPT (domain text)",
    "tapt": "TAPT (the task's train text)",
    "dapt_tapt": "DAPT + TAPT (TAPT after DAPT)",
    "knn_tapt": "kNN-TAPT (task + nearest domain sentences)",
    "rand_tapt": "RAND-TAPT (task + random domain sentences)",
    "irrelevant_dapt": "DAPT on an irrelevant domain",
}


def variants(regimes: Sequence[str], checkpoints: dict[str, str]) -> list[Variant]:
    """Return one fine-tuning :class:`Variant` per regime, its ``base_model`` the regime's checkpoint."""
    return [Variant(name, REGIMES[name], {"base_model": str(checkpoints[name])}) for name in regimes]


def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the unweighted mean over the gold labels' classes of per-class F1 (a class never predicted: F1 0).

    The authors' ``BasicClassifierWithF1`` averages one ``F1Measure`` per label of
    the vocabulary; a label absent from both gold and predictions would score 0
    there too, so we average over the classes present in the gold labels.
    """
    predicted = logits.argmax(-1)
    keep = labels != -100
    if not keep.any():
        raise InputError("no labelled examples to score")
    predicted, labels = predicted[keep], labels[keep]
    scores = []
    for label in labels.unique().tolist():
        tp = int(((predicted == label) & (labels == label)).sum())
        fp = int(((predicted == label) & (labels != label)).sum())
        fn = int(((predicted != label) & (labels == label)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


class AdaptedClassifier(KBertClassifier):
    """The plain fine-tuning classifier (``KBertClassifier`` with no KG) scored and selected by macro-F1."""

    def __init__(self, num_labels: int, base_model: str, **options):
        super().__init__(num_labels, kg=None, base_model=base_model, **options)

    def metrics(self) -> dict[str, Callable[[torch.Tensor, torch.Tensor], float]]:
        from kbench.train import accuracy

        return {"macro_f1": macro_f1, "accuracy": accuracy}


@dataclass
class AdaptationCorpora:
    """The pretraining text of every regime, the held-out texts none may contain, and what kNN chose."""

    task: list[str]                              # TAPT: the task's train texts
    domain: list[str]                            # DAPT: the domain's texts, none of the task's
    irrelevant: list[str] = field(default_factory=list)
    knn: list[str] = field(default_factory=list)     # kNN-TAPT: task + nearest domain sentences
    random: list[str] = field(default_factory=list)  # RAND-TAPT: task + as many random domain sentences
    selected: list[int] = field(default_factory=list)    # the domain rows kNN chose, nearest first per task row
    held_out: list[str] = field(default_factory=list)    # the task's dev and test texts

    def corpus(self, regime: str) -> list[str]:
        """Return the texts ``regime`` pretrains on (DAPT + TAPT: its second phase's, the task's)."""
        table = {"dapt": self.domain, "tapt": self.task, "dapt_tapt": self.task, "knn_tapt": self.knn,
                 "rand_tapt": self.random, "irrelevant_dapt": self.irrelevant}
        if regime not in table:
            raise UnknownNameError(f"regime {regime!r} has no corpus: use one of {', '.join(table)}")
        texts = table[regime]
        if not texts:
            raise InputError(f"the {regime} corpus is empty: give adaptation_corpora its text")
        return texts


def _clean(texts: Sequence[str], what: str) -> list[str]:
    if isinstance(texts, str):
        raise InputError(f"the {what} must be a list of texts, not one string")
    kept = [t for t in texts if isinstance(t, str) and text_key(t, punctuation=False)]
    if not kept:
        raise InputError(f"the {what} is empty: give it at least one non-blank text")
    return kept


def adaptation_corpora(task_train: Sequence[str], held_out: Sequence[str], domain: Sequence[str],
                       irrelevant: Sequence[str] = (), *, k: int = 0,
                       embed: Callable[[Sequence[str]], np.ndarray] | None = None, seed: int = 0) -> AdaptationCorpora:
    """Return every regime's corpus: DAPT's domain text minus all the task's text, TAPT's task text, kNN's choice.

    ``held_out`` (the task's dev and test texts) and ``task_train`` are removed
    from ``domain`` and ``irrelevant`` (compared by :func:`kbench.text.vocabulary.text_key`
    without punctuation: "A cell divides ." and "a cell divides" are one text); a held-out
    text in ``task_train`` is an ``InputError`` (clear the splits first). With
    ``k`` and ``embed`` (texts -> one vector each), kNN-TAPT adds each task
    sentence's ``k`` nearest domain sentences and RAND-TAPT as many random ones.
    """
    from kbench.text.selection import nearest_indices

    task = _clean(task_train, "task's train text")
    held = _clean(held_out, "task's dev and test text") if held_out else []
    banned = {text_key(t, punctuation=False) for t in held}
    leaked = next((t for t in task if text_key(t, punctuation=False) in banned), None)
    if leaked is not None:
        raise InputError(f"a train text is also a dev or test text: {leaked[:60]!r} (drop it from dev/test first)")
    task_keys = {text_key(t, punctuation=False) for t in task}

    def outside(texts: Sequence[str], what: str) -> list[str]:
        kept = [t for t in _clean(texts, what) if text_key(t, punctuation=False) not in banned | task_keys]
        if not kept:
            raise InputError(f"the {what} has no text left once the task's own texts are removed")
        return kept

    corpora = AdaptationCorpora(task=task, domain=outside(domain, "domain corpus"), held_out=held)
    if irrelevant:
        corpora.irrelevant = outside(irrelevant, "irrelevant-domain corpus")
    if k:
        if embed is None:
            raise InputError("kNN-TAPT needs embed (texts -> vectors) to find the nearest domain sentences")
        corpora.selected = nearest_indices(embed(task), embed(corpora.domain), k)
        corpora.knn = task + [corpora.domain[i] for i in corpora.selected]
        drawn = random.Random(seed).sample(range(len(corpora.domain)), len(corpora.selected))
        corpora.random = task + [corpora.domain[i] for i in drawn]
    return corpora


def warm_head(base_model: str, texts: Sequence[str], config, out: str | Path, max_length: int = 64,
              exclude: Sequence[str] = ()) -> tuple[Path, object]:
    """Return ``(checkpoint, History)``: ``base_model`` with its MLM head trained for ``config.max_steps`` on ``texts``,
    every encoder weight frozen.

    The general base has no MLM head (MiniLM ships none): without this, each
    regime's first steps mostly train a fresh head, a change common to all of
    them. Warming one head once, on text none of the regimes reads, lets every
    regime branch from the same encoder *and* the same trained head (the
    paper's RoBERTa has its own). The encoder's weights are saved unchanged;
    only the head moves (tested).
    """
    from kbench.pretrain import continue_pretraining

    return continue_pretraining(str(base_model), _clean(texts, "warm-up text"), config, out, max_length=max_length,
                                exclude=exclude, freeze_encoder=True,
                                about={"role": "the shared warmed-up MLM head, encoder frozen"})


def adapt(base_model: str, regimes: Sequence[str], corpora: AdaptationCorpora, config, out: str | Path,
          max_length: int = 64) -> tuple[dict[str, str], dict[str, object]]:
    """Return ``(checkpoints, histories)`` by regime: each continued from ``base_model`` for ``config.max_steps``.

    ``base`` is ``base_model`` itself; ``dapt_tapt`` continues the ``dapt``
    checkpoint on the task's text (so ``dapt`` must come first). Every call
    excludes the held-out texts.
    """
    from kbench.pretrain import continue_pretraining

    unknown = [r for r in regimes if r not in REGIMES]
    if unknown:
        raise UnknownNameError(f"unknown regime {unknown[0]!r}: use {', '.join(REGIMES)}")
    checkpoints, histories = {}, {}
    for regime in regimes:
        if regime == "base":
            checkpoints[regime] = str(base_model)
            continue
        start = base_model
        if regime == "dapt_tapt":
            if "dapt" not in checkpoints:
                raise InputError("DAPT + TAPT continues the DAPT checkpoint: list 'dapt' before 'dapt_tapt'")
            start = checkpoints["dapt"]
        path, history = continue_pretraining(str(start), corpora.corpus(regime), config, Path(out) / regime,
                                             max_length=max_length, exclude=corpora.held_out,
                                             about={"regime": regime, "from": str(start)})
        checkpoints[regime], histories[regime] = str(path), history
    return checkpoints, histories


@torch.no_grad()
def masked_lm_loss(checkpoint: str, texts: Sequence[str], seed: int = 0, max_length: int = 64,
                   batch_size: int = 64) -> float:
    """Return the MLM loss (mean cross-entropy per masked piece) of ``checkpoint`` on ``texts``, masks seeded.

    The same ``seed`` masks the same positions the same way for every checkpoint
    of one vocabulary, so the losses compare (the paper's Table 1: RoBERTa's
    loss on held-out domain text before and after DAPT).
    """
    from kbench.pretrain import build_corpus, mlm_model
    from kbench.train import eval_mode

    model = mlm_model(str(checkpoint), "token", seed=seed)
    corpus = build_corpus(list(_clean(texts, "evaluation text")), model.tokenizer, ("word",), max_length=max_length)
    total, count = 0.0, 0
    with eval_mode(model):
        for first in range(0, len(corpus), batch_size):
            batch = model.collate(corpus.sentences[first:first + batch_size])
            labels = batch["labels"]
            predicted = int((labels != -100).sum())
            if predicted:
                total += float(model(batch["input_ids"], batch["attention_mask"], labels)["loss"]) * predicted
                count += predicted
    if not count:
        raise InputError("no piece was masked in the evaluation text: give it more text")
    return total / count
