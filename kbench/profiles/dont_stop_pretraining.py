"""Don't Stop Pretraining's two profiles as data, for ``notebooks/15_dont_stop_pretraining.ipynb``.

One general base — the embedded all-MiniLM-L6-v2, a prefix of its layers, over
the word pieces the profile's texts use (:func:`kbench.profiles.ernie_baidu.pruned_base`:
MiniLM's own embedding rows, the same tokenisation, a softmax over a few thousand
pieces instead of 30,522) — is continued with MLM under each regime for the same
steps, then fine-tuned the same way on each task.

- ``smoke`` (offline, WordNet only): the task is a WordNet domain's
  ``gloss_task`` (a definition -> its lexicographer file, 4 labels); DAPT's
  domain is the same WordNet domain's glosses and examples (a seeded sample of
  500, no synset of any task text); the irrelevant domain another WordNet domain.
  Embedded MiniLM's first layer (the speed knob: a warmed-up head, six regimes of 25 MLM
  steps and six fine-tunings of 6 epochs in under a minute of one CPU thread; trying 5 epochs
  of 24 pieces instead, seed 0 scored 0.32-0.45 macro-F1 against 0.63-0.72 here); kNN by the same one-layer prefix's mean states.
- ``full`` (the mirror): two of the paper's own tasks, ACL-ARC citation intent
  and SciERC relations (dev and test cleared of any text also in train). What
  is the domain, what the task? The paper's domain for both is computer-science
  papers (S2ORC); the mirror's computer-science text is these two tasks, so each
  task's DAPT corpus is the *other* task's training sentences (SciERC's abstracts
  for ACL-ARC, ACL-ARC's citation contexts for SciERC: same domain, not the same
  task, never the task's own text), and its irrelevant domain is BBC News (news:
  far from computer-science papers). MiniLM's first 2 layers; kNN by the full 6-layer
  MiniLM, a sentence encoder, mean-pooled. To fit the CPU budget: 400 training
  sentences of each task, at most 300 dev and 300 test sentences, the MLM loss on 150
  test sentences, 800 domain sentences (every one a seeded random sample, never the first N).
  Fine-tuning: 6 epochs of 8 at 5e-4 with the word embeddings frozen, as in smoke (3
  epochs at 2e-4 left every regime at the majority label).

Both profiles run base, DAPT, TAPT, DAPT + TAPT, kNN-TAPT and irrelevant-domain
DAPT; ``smoke`` also runs RAND-TAPT (the paper's random-selection control for
kNN-TAPT, the same size) and warms one MLM head up before the regimes branch
(:func:`kbench.models.dont_stop_pretraining.warm_head`: 25 steps on 500
WordNet ``society`` glosses, text no regime reads, the encoder frozen), so
that no regime's steps go to training a fresh head; to stay within one CPU
minute it fine-tunes every regime but the irrelevant-domain DAPT, whose MLM
loss (the positive control's) it still records. ``full`` keeps its
recorded design (a fresh head per regime, no RAND-TAPT) within its budget;
both can be switched on there with ``regimes=(..., "rand_tapt")`` and
``warmup_domain="society", warmup_steps=25``.
"""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np

from kbench.errors import InputError
from kbench.profiles import Setup, choices, finetune_and_pretrain_configs
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(data="wordnet", task_domain="science", irrelevant_domain="artifacts", per_class=50,
                  domain_limit=500, layers=1, selection_layers=1, k=3, steps=25, batch_size=16,
                  learning_rate=5e-4, max_length=32, epochs=6, finetune_batch_size=16, finetune_learning_rate=5e-4,
                  patience=6, freeze_word_embeddings=True, train_limit=0, eval_limit=0, loss_limit=0,
                  regimes=("base", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt", "irrelevant_dapt"),
                  overlap_k=10_000, warmup_domain="society", warmup_steps=25, finetune_skip=("irrelevant_dapt",),
                  precision="no"),
    "full": dict(data="scientific", task_domain="", irrelevant_domain="bbc_news", per_class=0,
                 domain_limit=800, layers=2, selection_layers=None, k=2, steps=40, batch_size=16,
                 learning_rate=5e-4, max_length=40, epochs=6, finetune_batch_size=8, finetune_learning_rate=5e-4,
                 patience=6, freeze_word_embeddings=True, train_limit=400, eval_limit=300, loss_limit=150,
                 regimes=("base", "dapt", "tapt", "dapt_tapt", "knn_tapt", "irrelevant_dapt"), overlap_k=10_000,
                 warmup_domain="", warmup_steps=0, finetune_skip=(), precision="auto"),
}
#: full: the mirrored tasks, the paper's name for each, and the dataset whose train text is its domain corpus.
SCIENTIFIC_TASKS = {"citation_intent": ("ACL-ARC", "sciie"), "sciie": ("SciERC", "citation_intent")}
SLUGS = {"citation_intent": "acl_arc", "sciie": "scierc"}


@dataclass
class AdaptationTask:
    """One task to adapt to: its name, labels, splits ``(texts, labels)`` and its domain's and a far domain's text."""

    name: str
    slug: str                            # the prefix of its recorded metrics
    labels: list
    splits: tuple
    domain: list
    irrelevant: list
    domain_name: str = ""
    irrelevant_name: str = ""
    dropped: int = 0                     # dev/test texts dropped because train has them
    plain: object = None                 # text -> its plain form (SciERC's argument markers removed), if any
    loss_texts: list = field(default_factory=list)   # the test texts the MLM loss is scored on (a seeded sample)

    @property
    def held_out(self) -> list[str]:
        """Return the dev and test texts (and their plain forms), the texts no pretraining corpus may hold."""
        texts = [*self.splits[1][0], *self.splits[2][0]]
        return texts + [self.plain(t) for t in texts] if self.plain else texts


@dataclass
class DontStopSetup(Setup):
    """The tasks, the domains for the heatmap, and the pretraining and fine-tuning budgets."""

    tasks: list = field(default_factory=list)            # AdaptationTask s
    domains: dict = field(default_factory=dict)          # name -> texts, for the vocabulary-overlap heatmap
    pretrain_config: TrainConfig | None = None
    regimes: tuple = ()
    k: int = 3
    max_length: int = 40
    layers: int | None = None
    selection_layers: int | None = None
    overlap_k: int = 10_000
    vocab: str | None = None
    warm_texts: list = field(default_factory=list)       # the shared head's warm-up text (none of the regimes')
    warmup_config: TrainConfig | None = None             # its budget (None: every regime starts from a fresh head)
    finetuned: tuple = ()                                # the regimes fine-tuned (the others: MLM loss only)


def _split(texts, labels) -> tuple[list, list]:
    return list(texts), list(labels)


def sample_split(split, limit: int, seed: int) -> tuple[list, list]:
    """Return at most ``limit`` examples of ``split`` drawn at random (seeded), in their order (0: all of them)."""
    texts, labels = split
    if not limit or len(texts) <= limit:
        return list(texts), list(labels)
    keep = sorted(random.Random(seed).sample(range(len(texts)), limit))
    return [texts[i] for i in keep], [labels[i] for i in keep]


def clear_seen(splits, key=lambda text: text) -> tuple[tuple, int]:
    """Return ``(train, dev, test)`` with dev and test cleared of any text train has (by ``key``), and the count.

    Texts compare by :func:`kbench.text.vocabulary.text_key` without punctuation, the key the pretraining
    corpora's leak check uses (:func:`kbench.models.dont_stop_pretraining.adaptation_corpora`).
    """
    from kbench.text.vocabulary import text_key

    seen = {text_key(key(t), punctuation=False) for t in splits[0][0]}
    out, dropped = [splits[0]], 0
    for texts, labels in splits[1:]:
        keep = [i for i, t in enumerate(texts) if text_key(key(t), punctuation=False) not in seen]
        dropped += len(texts) - len(keep)
        out.append(([texts[i] for i in keep], [labels[i] for i in keep]))
    return tuple(out), dropped


def _wordnet_tasks(chosen: dict, seed: int) -> tuple[list[AdaptationTask], dict]:
    from kbench.data.wordnet_domains import DOMAINS, domain_texts, gloss_task

    labels, parts = gloss_task(chosen["task_domain"], chosen["per_class"], seed)
    splits = tuple(_split(p.texts, p.labels) for p in parts)
    task_text = [t for p in parts for t in p.texts]
    limit = chosen["domain_limit"] or None
    domain = domain_texts(chosen["task_domain"], exclude=task_text, limit=limit, seed=seed)
    irrelevant = domain_texts(chosen["irrelevant_domain"], exclude=task_text, limit=limit, seed=seed)
    task = AdaptationTask(f"{chosen['task_domain']} glosses", "gloss", labels, splits, domain, irrelevant,
                          f"WordNet {chosen['task_domain']}", f"WordNet {chosen['irrelevant_domain']}")
    domains = {f"{name} (WordNet)": domain_texts(name, exclude=task_text, limit=limit, seed=seed) for name in DOMAINS}
    domains["task: " + task.name] = list(parts[0].texts)
    return [task], domains


def _scientific_tasks(chosen: dict, seed: int, data_dir: str) -> tuple[list[AdaptationTask], dict]:
    from kbench.data.bbc_news import load_bbc_news
    from kbench.data.scientific import domain_sentences, load_scientific, plain_text
    from kbench.data.wordnet_domains import DOMAINS, domain_texts

    articles, categories = load_bbc_news()
    limit = chosen["domain_limit"] or None
    news = sorted({" ".join(a.body.split()[:60]) for a in articles})
    news = random.Random(seed).sample(news, min(len(news), limit or len(news)))
    tasks = []
    for name, (paper_name, domain_of) in SCIENTIFIC_TASKS.items():
        parts = [load_scientific(name, split, data_dir or None) for split in ("train", "dev", "test")]
        labels = sorted(set(parts[0].labels))
        splits = [_split(p.texts, [labels.index(label) for label in p.labels]) for p in parts]
        splits[0] = sample_split(splits[0], chosen["train_limit"], seed)
        splits, dropped = clear_seen(splits, plain_text)
        splits = (splits[0], *(sample_split(part, chosen["eval_limit"], seed) for part in splits[1:]))
        domain = domain_sentences((domain_of,), data_dir or None)
        if limit and len(domain) > limit:
            domain = random.Random(seed).sample(domain, limit)
        domain_name = f"{SCIENTIFIC_TASKS[domain_of][0]} train sentences (computer science)"
        tasks.append(AdaptationTask(paper_name, SLUGS[name], labels, splits, domain, news, domain_name, "BBC News",
                                    dropped, plain_text))
    domains = {f"{task.name} (task)": [plain_text(t) for t in task.splits[0][0]] for task in tasks}
    domains["NCBI-disease"] = domain_sentences(("ncbi_disease",), data_dir or None)
    for index, category in enumerate(categories):
        domains[f"news: {category}"] = [a.body for a in articles if a.label == index]
    for name in DOMAINS:
        domains[f"{name} (WordNet)"] = domain_texts(name, limit=limit, seed=seed)
    return tasks, domains


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> DontStopSetup:
    """Return the tasks, domains, base and budgets of ``profile`` (overrides: any key of :data:`CHOICES`)."""
    from kbench.encoders import EMBEDDED
    from kbench.profiles.ernie_baidu import corpus_vocabulary, pruned_base

    chosen = choices(CHOICES, profile, overrides)
    if chosen["data"] == "wordnet":
        tasks, domains = _wordnet_tasks(chosen, seed)
    else:
        tasks, domains = _scientific_tasks(chosen, seed, data_dir)
    for task in tasks:
        if not all(len(part[0]) for part in task.splits):
            raise InputError(f"task {task.name!r} has an empty split: {[len(p[0]) for p in task.splits]}")
        task.loss_texts = sample_split(task.splits[2], chosen["loss_limit"], seed + 2)[0]
    warm_texts = []
    if chosen["warmup_steps"]:
        from kbench.data.wordnet_domains import domain_texts

        task_text = [t for task in tasks for part in task.splits for t in part[0]]
        warm_texts = domain_texts(chosen["warmup_domain"], exclude=task_text, limit=chosen["domain_limit"] or None,
                                  seed=seed)
    vocab = None
    base = base_model
    if not base_model or base_model == EMBEDDED:
        texts = [t for task in tasks for part in task.splits for t in part[0]]
        texts += [t for task in tasks for t in (*task.domain, *task.irrelevant)] + warm_texts
        vocab = str(corpus_vocabulary(texts))
        base = str(pruned_base(Path(vocab), chosen["layers"] or 6))
    # the regimes draw their own batch order and masks (seed + 1), the fine-tuning runs seed
    config, pretrain_config = finetune_and_pretrain_configs(chosen, device, seed, pretrain_seed=seed + 1)
    warmup_config = (dataclasses.replace(pretrain_config, max_steps=chosen["warmup_steps"], seed=seed + 3,
                                         learning_rate=2 * pretrain_config.learning_rate)
                     if chosen["warmup_steps"] else None)
    sizes = [f"{t.name} ({len(t.labels)} labels, {' / '.join(str(len(p[0])) for p in t.splits)})" for t in tasks]
    about = (f"{' and '.join(sizes)}; "
             f"base: embedded MiniLM's first {chosen['layers'] or 6} layer(s) over the profile's word pieces; "
             f"{chosen['steps']} MLM steps of {chosen['batch_size']} per regime at {chosen['learning_rate']:g}"
             + (f", from one MLM head warmed up for {chosen['warmup_steps']} steps on {len(warm_texts)} WordNet "
                f"{chosen['warmup_domain']} glosses (encoder frozen)" if warm_texts else ", each from a fresh MLM head"))
    first = tasks[0]
    return DontStopSetup(profile=profile, seed=seed, device=device, base_model=base, labels=first.labels,
                         splits=first.splits, options=dict(max_length=chosen["max_length"], joiner=" ",
                                                           freeze_word_embeddings=chosen["freeze_word_embeddings"]),
                         config=config, about=about, tasks=tasks, domains=domains, pretrain_config=pretrain_config,
                         regimes=tuple(chosen["regimes"]), k=chosen["k"], max_length=chosen["max_length"],
                         layers=chosen["layers"], selection_layers=chosen["selection_layers"],
                         overlap_k=chosen["overlap_k"], vocab=vocab, warm_texts=warm_texts, warmup_config=warmup_config,
                         finetuned=tuple(r for r in chosen["regimes"] if r not in chosen["finetune_skip"]))


def sentence_embedder(s: DontStopSetup):
    """Return kNN-TAPT's embedder (texts -> vectors): the frozen general MiniLM (its first ``selection_layers``),
    mean-pooled."""
    from kbench.encoders import EMBEDDED, load_encoder
    from kbench.text.selection import sentence_vectors

    encoder = load_encoder(EMBEDDED, layers=s.selection_layers)
    cache: dict[str, np.ndarray] = {}          # the notebook's view embeds the same domain again: once is enough

    def embed(texts) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in cache))
        if new:
            cache.update(zip(new, sentence_vectors(encoder.model, encoder.tokenizer, new, max_length=s.max_length)))
        return np.stack([cache[t] for t in texts])

    return embed
