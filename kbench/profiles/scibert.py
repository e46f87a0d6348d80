"""SciBERT's two profiles as data, for ``notebooks/13_scibert.ipynb``.

Both ask the paper's question at our scale — does a vocabulary built on the
domain's text, and pretraining on that text with it, help on the domain's
tasks? — with the same steps: build SciVocab on the domain's **training**
text, BaseVocab cut to the same size (:func:`kbench.models.scibert.matched_vocabularies`),
pretrain a random-init BERT from the same init on the same domain text for
the same steps with each, then fine-tune each the same way on the domain's
tasks, beside a control with no pretraining at all (the same random init and
SciVocab, fine-tuned directly: what pretraining adds).

- ``smoke``: WordNet's ``science`` domain read offline
  (:mod:`kbench.data.wordnet_domains`: the glosses and examples of
  ``noun.substance``, ``noun.process``, ``noun.phenomenon``,
  ``noun.quantity``), the task a definition -> its lexicographer file
  (:func:`~kbench.data.wordnet_domains.gloss_task`), 200 definitions per
  file split 45/15/40 (360 / 120 / 320: a large test split, so that one seed's
  macro-F1 moves less from seed to seed); the domain text excludes the whole
  synset of every dev and test definition. A ``tiny`` BERT (2 layers, 128 hidden).
- ``full``: the paper's own tasks as the authors' repository ships them
  (:mod:`kbench.data.scientific`): ACL-ARC citation intent, SciERC relations
  (the argument markers kept in the input, as the authors feed them) and
  NCBI-disease NER, dev and test cleared of any text also in a training
  split; the domain text is :func:`~kbench.data.scientific.domain_sentences`
  (the training sentences of the three, de-duplicated, minus any dev/test
  sentence). The same ``tiny`` BERT, more steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kbench.data.kbert_datasets import Split
from kbench.errors import InputError
from kbench.profiles import Setup, choices, finetune_and_pretrain_configs
from kbench.text.vocabulary import text_key
from kbench.train import TrainConfig

CHOICES = {
    "smoke": dict(domain="science", per_class=200, fractions=(0.45, 0.15), vocab_size=4000, size="tiny", steps=100, batch_size=32,
                  learning_rate=1e-3, max_length=36, epochs=3, finetune_batch_size=16, finetune_learning_rate=1e-3,
                  patience=3, task_limit=0, precision="no"),
    "full": dict(domain="scientific", per_class=0, fractions=(0.6, 0.2), vocab_size=8000, size="tiny", steps=400, batch_size=32,
                 learning_rate=1e-3, max_length=64, epochs=3, finetune_batch_size=16, finetune_learning_rate=1e-3,
                 patience=3, task_limit=2000, precision="auto"),
}
#: The paper's tasks in ``full``: (kind, metric recorded, what the paper calls it).
SCIENTIFIC_TASKS = {"citation_intent": ("classify", "macro_f1", "ACL-ARC citation intent (CLS)"),
                    "sciie": ("classify", "macro_f1", "SciERC relations (REL)"),
                    "ncbi_disease": ("tag", "f1", "NCBI-disease NER")}


@dataclass
class Task:
    """One fine-tuning task: its kind (``classify`` or ``tag``), labels or tags, ``(texts, labels)`` splits and the
    metric recorded."""

    name: str
    title: str
    kind: str
    labels: list
    splits: tuple
    metric: str

    def sizes(self) -> str:
        return " / ".join(str(len(part[0])) for part in self.splits)


@dataclass
class SciBertSetup(Setup):
    """SciBERT's setup: the domain text, the held-out text, the tasks, the vocabulary size and both configs."""

    domain_texts: list = field(default_factory=list)    # pretraining and vocabulary text (training text only)
    held_out: list = field(default_factory=list)        # the tasks' dev and test texts (plain): never trained on
    tasks: dict = field(default_factory=dict)           # name -> Task
    vocab_size: int = 0
    pretrain_config: TrainConfig | None = None
    max_length: int = 40
    example: str = ""                                   # one held-out sentence for the tokenisation view


def _text(item) -> str:
    from kbench.data.scientific import plain_text

    return plain_text(list(item) if not isinstance(item, str) else item)


def unseen(splits: tuple[Split, Split, Split]) -> tuple[tuple[Split, Split, Split], int]:
    """Return the splits with dev and test cleared of any text (compared by :func:`text_key`) that is also a training
    text, and how many were dropped; dev and test sharing a text keep it in dev only."""
    seen = {text_key(_text(t)) for t in splits[0].texts}
    kept, dropped = [splits[0]], 0
    for part in splits[1:]:
        keep = [i for i, t in enumerate(part.texts) if text_key(_text(t)) not in seen]
        dropped += len(part.texts) - len(keep)
        kept.append(Split([part.texts[i] for i in keep], [part.labels[i] for i in keep]))
        seen |= {text_key(_text(part.texts[i])) for i in keep}
    return tuple(kept), dropped


def _science_task(chosen: dict, seed: int, data_dir: str) -> dict[str, Task]:
    from kbench.data.wordnet_domains import gloss_task

    labels, splits = gloss_task(chosen["domain"], per_class=chosen["per_class"], seed=seed,
                                fractions=tuple(chosen["fractions"]))
    splits = tuple((list(p.texts), list(p.labels)) for p in splits)
    return {"gloss": Task("gloss", f"WordNet {chosen['domain']} definition -> lexicographer file", "classify",
                          labels, splits, "macro_f1")}


def _scientific_tasks(chosen: dict, seed: int, data_dir: str) -> tuple[dict[str, Task], int]:
    from kbench.data.scientific import load_scientific

    tasks, dropped = {}, 0
    limit = chosen["task_limit"] or None
    for name, (kind, metric, title) in SCIENTIFIC_TASKS.items():
        parts = [load_scientific(name, split, data_dir or None) for split in ("train", "dev", "test")]
        parts[0] = Split(parts[0].texts[:limit], parts[0].labels[:limit])
        if kind == "classify":
            labels = sorted(set(parts[0].labels))
            unknown = {lab for p in parts for lab in p.labels} - set(labels)
            if unknown:
                raise InputError(f"{name}: dev/test labels {sorted(unknown)} never occur in training")
            parts = [Split(list(p.texts), [labels.index(lab) for lab in p.labels]) for p in parts]
        else:
            labels = sorted({tag for tags in parts[0].labels for tag in tags})
        splits, count = unseen(tuple(parts))
        dropped += count
        tasks[name] = Task(name, title, kind, labels, tuple((list(p.texts), list(p.labels)) for p in splits), metric)
    return tasks, dropped


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> SciBertSetup:
    """Return the domain text, held-out text, tasks and configs for ``profile`` (overrides: CHOICES).

    The domain text never holds a dev or test text of any task (compared by
    words, any case): the vocabulary and the pretraining see training text only.
    """
    from kbench.encoders import SIZES

    chosen = choices(CHOICES, profile, overrides)
    if base_model and base_model not in SIZES:
        raise InputError(f"SciBERT pretrains from scratch with each vocabulary: base_model must be a size "
                         f"({', '.join(SIZES)}), not {base_model!r}")
    if chosen["domain"] == "scientific":
        from kbench.data.scientific import domain_sentences

        tasks, dropped = _scientific_tasks(chosen, seed, data_dir)
        texts = domain_sentences(data_dir=data_dir or None)
        source = ("the training sentences of ACL-ARC, SciERC and NCBI-disease (the mirror of allenai/scibert's "
                  "data/), de-duplicated")
    else:
        tasks, dropped = _science_task(chosen, seed, data_dir), 0
        texts = None
        source = f"WordNet's {chosen['domain']} glosses and examples"
    held_out = list(dict.fromkeys(_text(t) for task in tasks.values() for part in task.splits[1:] for t in part[0]))
    if texts is None:
        from kbench.data.wordnet_domains import domain_texts

        texts = domain_texts(chosen["domain"], exclude=held_out)
    banned = {text_key(t) for t in held_out}
    texts = [t for t in texts if text_key(t) not in banned]
    if not texts:
        raise InputError("the domain corpus is empty once the tasks' dev and test texts are removed")
    config, pretrain_config = finetune_and_pretrain_configs(chosen, device, seed)
    first = next(iter(tasks.values()))
    example = max((_text(t) for t in first.splits[2][0][:50]), key=lambda t: (len(t) < 160, len(t)))
    about = (f"domain text: {source}, {len(texts)} texts (no dev/test text); tasks: "
             + "; ".join(f"{t.title} {t.sizes()}" for t in tasks.values())
             + (f" ({dropped} dev/test texts also in training dropped)" if dropped else "")
             + f"; a random-init BERT '{base_model or chosen['size']}', {chosen['steps']} pretraining steps of "
               f"{chosen['batch_size']} per vocabulary of {chosen['vocab_size']} pieces")
    return SciBertSetup(profile=profile, seed=seed, device=device, base_model=base_model or chosen["size"],
                        labels=first.labels, splits=first.splits, config=config, about=about, domain_texts=texts,
                        held_out=held_out, tasks=tasks, vocab_size=chosen["vocab_size"],
                        pretrain_config=pretrain_config, max_length=chosen["max_length"], example=example)


def model_options(s: SciBertSetup, task: Task) -> dict:
    """Return the fine-tuning model's keyword options for ``task`` (a classifier or a tagger, no KG)."""
    return dict(kg=None, max_length=s.max_length + 24, joiner=" ")
