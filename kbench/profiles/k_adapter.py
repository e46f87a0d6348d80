"""K-Adapter's profiles: the base, the adapters' two knowledge tasks, the downstream typing task, the budgets.

``smoke``: the first 2 layers of the embedded pretrained MiniLM (taps 0 and 1,
:func:`kbench.adapters.default_taps`), the knowledge world's facts written with
their pair marked (relation classification, 6 relations), the heads of the
world's training sentences and the factual training statements by spaCy, and
typing of the world's entities (6 types) split by entity. ``full``: all 6 layers (taps 0, 3, 4), WordNet noun
facts (hypernym, part of, and their inverses hyponym, has part: the marks
decide the direction) with WordNet's example sentences of the typing-training synsets parsed, and
supersense typing of those synsets from their example sentences, split by synset.

Held out in both: no typing dev/test sentence is parsed for the linguistic
adapter, and every entity pair naming a typing-dev or typing-test entity is in
the factual *test* split, so no relation label of a held-out entity is trained
on (a person is what is ``born in`` a city: the label would tell its type).

The positive control's factual split (``factual_seen_splits``) does the
opposite for the typing-test entities: every pair naming one of them (and no
dev entity) is in factual *training*, so the factual adapter is certainly
taught the relations of the entities typed at test time; the other pairs are
drawn as usual (dev entities' pairs still in test).

Budgets are equal where variants are compared: both adapters and the whole-base
fine-tune take the same steps and batches of the same factual sentences; the
four downstream variants the same epochs, batches and seed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from kbench.errors import InputError
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

# adapter_lr: the near-zero-init adapters need a far larger rate than the paper's 5e-5 to move in ~100 steps
# (at 1e-3 the seed-0 factual adapter reached 0.67, at 3e-3 0.78); finetune_lr: the whole base at a usual BERT
# fine-tuning rate; positive_steps: the positive control's factual adapter trains until it knows the test entities'
# relations (seed 0: 0.66 of its taught sentences right after 60 steps, 0.97 after 180). full is sized for one CPU
# thread shared with other jobs (~10 min): 800 sampled synsets, 120 steps.
CHOICES = {
    "smoke": dict(kg="world", layers=2, width=64, people=(30, 1, 1), countries_per_continent=2,
                  sentences_per_person=3, per_fact=2, typing_per_entity=3, max_length=32, steps=60, batch_size=16,
                  adapter_lr=3e-3, finetune_lr=1e-4, downstream_epochs=6, downstream_batch_size=16,
                  downstream_lr=3e-3, patience=6, entities=0, parse_limit=250, precision="no", cache_base=True,
                  finetune_word_embeddings=False, downstream_train_base=False, positive_steps=180),
    "full": dict(kg="wordnet", layers=6, width=192, people=(0, 0, 0), countries_per_continent=0,
                 sentences_per_person=0, per_fact=1, typing_per_entity=0, max_length=40, steps=120, batch_size=16,
                 adapter_lr=3e-3, finetune_lr=1e-4, downstream_epochs=6, downstream_batch_size=16,
                 downstream_lr=3e-3, patience=6, entities=800, parse_limit=800, precision="auto", cache_base=True,
                 finetune_word_embeddings=False, downstream_train_base=False, positive_steps=360),
}
#: Inverse relations for WordNet: the same pair with its roles swapped is another label.
INVERSE = {"hypernym": "hyponym", "part of": "has part"}
INVERSE_TEMPLATES = {"hyponym": ["{o} is a kind of {s} .", "{o} is a type of {s} .", "any {o} is an example of {s} ."],
                     "has part": ["{o} is part of {s} .", "{o} is a piece of {s} .", "{o} belongs to {s} ."]}


@dataclass
class KAdapterSetup(Setup):
    """K-Adapter's setup: the base, each knowledge task's splits, the typing task, and the budgets."""

    layers: int = 2
    width: int = 128
    max_length: int = 32
    relations: list = field(default_factory=list)          # the factual task's labels
    factual: tuple = ()                                     # train/dev/test lists of RelationSentence
    factual_splits: tuple = ()                              # the same as (marked texts, relation indices)
    factual_seen: tuple = ()                                # the positive control's: typing entities' pairs trained
    factual_seen_splits: tuple = ()
    linguistic: tuple = ()                                  # train/dev/test lists of ParsedSentence
    linguistic_splits: tuple = ()                           # the same as (parsed sentences, None): labels per token
    adapter_config: TrainConfig | None = None               # each adapter's (and the probes')
    finetune_config: TrainConfig | None = None              # the whole base on the factual task: same steps
    positive_config: TrainConfig | None = None              # the positive control's factual adapter: until it knows
    typing_entities: tuple = ((), (), ())
    cache_base: bool = True                                 # the frozen base's states computed once per example
    finetune_word_embeddings: bool = True                   # the whole-base fine-tune trains the word embeddings
    downstream_train_base: bool = False                     # downstream, the base trains too (--freeze_bert "")


def relation_split(rows, relations: list[str]) -> tuple[list[str], list[int]]:
    """Return ``(marked texts, relation indices)`` of a list of :class:`~kbench.data.adapter_tasks.RelationSentence`."""
    return [r.text for r in rows], [relations.index(r.relation) for r in rows]


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> KAdapterSetup:
    """Return K-Adapter's tasks and configs for ``profile`` (overrides: any key of :data:`CHOICES`)."""
    from kbench.data.adapter_tasks import (dependency_heads, mark, relation_sentences, split_by_fact,
                                           split_sentences, unmarked)
    from kbench.profiles.wklm import (TYPING_TEMPLATES, WORDNET_TEMPLATES, split_entities, typing_by_synset,
                                      wordnet_typed_kg, world_types)

    chosen = choices(CHOICES, profile, overrides)
    if chosen["kg"] == "world":
        from kbench.data import make_world
        from kbench.data.fact_corpus import WORLD_TEMPLATES

        world = make_world(people=tuple(chosen["people"]), sentences_per_person=chosen["sentences_per_person"],
                           countries_per_continent=chosen["countries_per_continent"], seed=seed)
        triples, templates = list(world.kg), WORLD_TEMPLATES
        types = world_types(triples)
        parts = split_entities(types, seed)
        labels = sorted(set(types.values()))
        rng = random.Random(seed)
        typing = []
        for part in parts:
            per_entity = min(chosen["typing_per_entity"], len(TYPING_TEMPLATES))
            rows = [(template.format(e=mark(name, "subject")), labels.index(types[name])) for name in part
                    for template in rng.sample(TYPING_TEMPLATES, per_entity)]
            rng.shuffle(rows)
            typing.append(([t for t, _ in rows], [label for _, label in rows]))
        plain = [x.text for x in world.train]               # the world's training sentences only
        source = (f"the knowledge world: {len(triples)} facts, {len(types)} typed entities, {len(labels)} types")
    else:
        from kbench.kg.wordnet import load_wordnet

        wordnet = load_wordnet(data_dir or None)
        triples, types, examples = wordnet_typed_kg(wordnet, chosen["entities"], seed)
        triples = triples + [(o, INVERSE[r], s) for s, r, o in triples if r in INVERSE]
        templates = {**WORDNET_TEMPLATES, **INVERSE_TEMPLATES}
        marked = lambda words, start, end: " ".join(words[:start] + [mark(" ".join(words[start:end]), "subject")]
                                                    + words[end:])
        no_marks = lambda words: not {"@", "#"} & set(" ".join(words))
        parts, labels, typing = typing_by_synset(examples, types, seed, marked, keep=no_marks)
        typing = list(typing)
        plain = [unmarked(text) for text in typing[0][0]]   # typing-train sentences only: no held-out text parsed
        source = (f"WordNet 3.0 noun facts: {len(triples)} facts (with inverses), {len(types)} synsets typed by "
                  f"supersense ({len(labels)} types)")
    facts = relation_sentences(triples, templates, chosen["per_fact"], seed)
    held_out = list(parts[1]) + list(parts[2])                # typing dev and test entities: factual test only
    factual = split_by_fact(facts, seed, held_out=held_out)
    seen = split_by_fact(facts, seed, held_out=parts[1], seen=parts[2])
    relations = sorted({r.relation for r in facts})
    statements = [unmarked(r.text) for r in factual[0]]      # the linguistic adapter parses training text only
    texts = list(dict.fromkeys(plain + statements))
    random.Random(seed).shuffle(texts)
    parsed = dependency_heads(texts[:chosen["parse_limit"]])
    linguistic = split_sentences(parsed, seed)
    if not all(linguistic) or not all(factual) or not all(seen) or not all(part[0] for part in typing):
        raise InputError(f"the {profile} profile left a split empty: give more data")
    base = base_model or "embedded"
    precision = chosen["precision"]
    # patience = steps: the budget is the steps, never cut short (the best dev epoch is still kept)
    steps = dict(batch_size=chosen["batch_size"], warmup=0.1, device=device, precision=precision, seed=seed,
                 patience=chosen["steps"],
                 progress=None, max_steps=chosen["steps"])
    adapter_config = TrainConfig(learning_rate=chosen["adapter_lr"], **steps)
    finetune_config = TrainConfig(learning_rate=chosen["finetune_lr"], **steps)
    positive = chosen["positive_steps"]
    positive_config = TrainConfig(learning_rate=chosen["adapter_lr"],
                                  **{**steps, "max_steps": positive, "patience": positive})
    config = TrainConfig(epochs=chosen["downstream_epochs"], batch_size=chosen["downstream_batch_size"],
                         learning_rate=chosen["downstream_lr"], patience=chosen["patience"], device=device,
                         precision=precision, seed=seed, progress=None)
    about = (f"{source}; factual task {' / '.join(str(len(p)) for p in factual)} marked sentences of "
             f"{len(relations)} relations (split by entity pair; positive control "
             f"{' / '.join(str(len(p)) for p in seen)}); linguistic task "
             f"{' / '.join(str(len(p)) for p in linguistic)} sentences parsed by spaCy; typing "
             f"{' / '.join(str(len(p[0])) for p in typing)} sentences split by entity; base {base}, first "
             f"{chosen['layers']} layers; {chosen['steps']} steps of {chosen['batch_size']} per adapter")
    return KAdapterSetup(profile=profile, seed=seed, device=device, base_model=base, labels=labels,
                         splits=tuple(tuple(p) for p in typing), config=config, about=about, layers=chosen["layers"],
                         width=chosen["width"], max_length=chosen["max_length"], relations=relations, factual=factual,
                         factual_splits=tuple(relation_split(p, relations) for p in factual), linguistic=linguistic,
                         factual_seen=seen, factual_seen_splits=tuple(relation_split(p, relations) for p in seen),
                         linguistic_splits=tuple((list(p), None) for p in linguistic), adapter_config=adapter_config,
                         finetune_config=finetune_config, positive_config=positive_config,
                         typing_entities=tuple(tuple(p) for p in parts), cache_base=chosen["cache_base"],
                         finetune_word_embeddings=chosen["finetune_word_embeddings"],
                         downstream_train_base=bool(chosen["downstream_train_base"]))
