"""WKLM's two profiles as data, for ``notebooks/08_wklm.ipynb``.

Both follow the paper's design at our scale: a random-init BERT is first
pretrained with MLM for a shared warm-up (``warmup_steps``; the paper starts
from a fully trained BERT-base), then branched from that checkpoint into
BERT's MLM, WKLM's objective and the no-head control (5% MLM outside the
mentions, no replacement) for the same further ``steps`` — on statements written from a typed KG's facts, each fact's
probe template held out (:func:`kbench.data.fact_corpus.fact_corpus`); then
the knowledge probe (the paper's zero-shot fact completion) on the
held-out statements, and entity typing after fine-tuning (the paper's FIGER)
on a typing task built from the **same typed KG**, split by entity so
that a test entity is typed only from what pretraining taught about it.

- ``smoke``: the knowledge world (generated; :func:`kbench.data.make_world`),
  its entities typed by the role they play in the KG (person, city, country,
  continent, occupation, company: :func:`world_types`); a random-init ``tiny``
  BERT (2 layers, 128 hidden) over the word pieces the world uses; typing
  sentences that say nothing of the type ("we heard about X today .").
- ``full``: WordNet 3.0 nouns, read offline — a seeded sample of noun synsets,
  their hypernyms and part holonyms as facts, each synset's lexicographer file
  (``noun.animal``, ``noun.artifact``, ... : the supersense) as its type, the
  first lemma as its name; typing on WordNet's own example sentences of the
  sampled synsets (the labelled word quoted), split by synset. A random-init
  ``mini`` BERT (4 layers, 256 hidden) over the pieces these texts use.

``smoke`` also branches into the untyped ablation (any entity may replace any:
the shortcut); ``full`` leaves it out to stay within its CPU budget.

Each entity is written under its name only, so its one alias is its name: a
replacement written with an alias the original text never uses would be told
apart by its spelling alone (the shortcut typed replacement exists to avoid).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from kbench.errors import InputError
from kbench.profiles import Setup, choices, finetune_and_pretrain_configs
from kbench.train import TrainConfig

# smoke's rate: at 5e-3 (ERNIE's smoke rate) the replacement head settles on the prior, even for the untyped ablation
# whose replacements the type alone gives away; at 1e-3 MLM's probe is as good (seed 0: 0.382 vs 0.378)
CHOICES = {
    "smoke": dict(kg="world", size="tiny", people=(30, 1, 1), countries_per_continent=2, entities=0,
                  statements_per_fact=2, max_length=24, warmup_steps=200, steps=150, batch_size=32, learning_rate=1e-3,
                  probe_size=0, probe_candidates=0, typing_per_entity=3, epochs=8, finetune_batch_size=16, finetune_learning_rate=1e-3,
                  patience=8, precision="no", untyped_ablation=True),
    "full": dict(kg="wordnet", size="mini", people=(0, 0, 0), countries_per_continent=0, entities=4000,
                 statements_per_fact=2, max_length=32, warmup_steps=400, steps=300, batch_size=32, learning_rate=1e-3,
                 probe_size=600, probe_candidates=100, typing_per_entity=2, epochs=4, finetune_batch_size=32, finetune_learning_rate=5e-4,
                 patience=4, precision="auto", untyped_ablation=False),
}
#: Neutral sentences for the world's typing task: the context says nothing of the entity's type.
TYPING_TEMPLATES = ("we heard about {e} today .", "the report mentions {e} twice .", "{e} came up in the talk .",
                    "she wrote a note on {e} .")
#: Templates of the WordNet relations the full profile writes ({s}: subject, {o}: object).
WORDNET_TEMPLATES: dict[str, list[str]] = {
    "hypernym": ["{s} is a kind of {o} .", "{s} is a type of {o} .", "any {s} is an example of {o} ."],
    "part of": ["{s} is part of {o} .", "{s} is a piece of {o} .", "{s} belongs to {o} ."],
}


@dataclass
class WKLMSetup(Setup):
    """WKLM's setup: typed entities, the pretraining statements, the probe, and the pretraining budget."""

    entities: object = None                                 # kbench.models.wklm.TypedEntities
    texts: list = field(default_factory=list)               # pretraining statements
    probe: list = field(default_factory=list)               # kbench.probes.ProbeItem s (held-out templates)
    vocab: str | None = None                                # the vocabulary file of the random-init base
    pretrain_config: TrainConfig | None = None            # each branch's, after the warm-up
    warmup_config: TrainConfig | None = None              # the shared MLM warm-up's
    max_length: int = 24
    typing_entities: tuple = ((), (), ())                   # the entities of each typing split
    source: str = ""
    variants: tuple = ()                                    # the pretraining variants compared


def world_types(kg) -> dict[str, str]:
    """Return the knowledge world's entity types, read from the roles its relations give them.

    A subject of ``born in`` is a person, of ``based in`` a company, of
    ``located in`` a city; an object of ``located in`` is a country, of
    ``works as`` an occupation; what countries are ``part of`` is a continent.
    """
    types: dict[str, str] = {}
    for subject, relation, obj in kg:
        if relation == "born in":
            types[subject] = "person"
        elif relation == "based in":
            types[subject] = "company"
        elif relation == "located in":
            types[subject], types[obj] = "city", "country"
        elif relation == "works as":
            types[obj] = "occupation"
    for subject, relation, obj in kg:
        if relation == "part of" and types.get(subject) == "country":
            types[obj] = "continent"
    untyped = sorted({name for s, _, o in kg for name in (s, o)} - set(types))
    if untyped:
        raise InputError(f"{len(untyped)} world entities have no type (e.g. {untyped[0]!r})")
    return types


def split_entities(types: dict[str, str], seed: int, fractions=(0.5, 0.25)) -> tuple[list[str], list[str], list[str]]:
    """Return the entities split train/dev/test per type (each type in every split when it has 3 or more)."""
    by_type: dict[str, list[str]] = {}
    for name in sorted(types):
        by_type.setdefault(types[name], []).append(name)
    rng = random.Random(seed)
    splits = ([], [], [])
    for kind in sorted(by_type):
        names = by_type[kind]
        rng.shuffle(names)
        n_dev = max(1, round(fractions[1] * len(names))) if len(names) >= 3 else 0
        n_test = max(1, round((1 - fractions[0] - fractions[1]) * len(names))) if len(names) >= 3 else 0
        n_train = len(names) - n_dev - n_test
        splits[0].extend(names[:n_train])
        splits[1].extend(names[n_train:n_train + n_dev])
        splits[2].extend(names[n_train + n_dev:])
    return splits


def typing_split(names, types: dict[str, str], labels: list[str], per_entity: int, seed: int):
    """Return ``(texts, labels)``: each entity in ``per_entity`` neutral sentences, labelled with its type."""
    rng = random.Random(seed)
    rows = []
    for name in names:
        for template in rng.sample(TYPING_TEMPLATES, min(per_entity, len(TYPING_TEMPLATES))):
            rows.append((template.format(e=name), labels.index(types[name])))
    rng.shuffle(rows)
    return [t for t, _ in rows], [label for _, label in rows]


def wordnet_typed_kg(wordnet, size: int, seed: int = 0):
    """Return ``(triples, types, examples)``: WordNet noun facts between named synsets, their supersenses, and
    WordNet's example sentences of the sampled synsets.

    ``size`` noun synsets with a hypernym are drawn at random; the entities are
    them, their hypernyms and part holonyms. An entity's name is its first
    lemma (``_`` as spaces); a name two entities share — compared without case,
    as an uncased tokenizer writes ``Key`` and ``key`` alike — or a word of the
    templates, is left out with its facts (a mention must name one entity).
    ``examples`` are ``(words, start, end, name)`` for each example sentence
    of an entity's synset in which one of its lemmas occurs.
    """
    from kbench.kg.wordnet import WORD, find_lemma

    synsets = [s for s in wordnet.all_synsets("n") if s.hypernyms() or s.instance_hypernyms()]
    random.Random(seed).shuffle(synsets)
    chosen = synsets[:size]
    facts = []
    for synset in chosen:
        facts += [(synset, "hypernym", other) for other in synset.hypernyms() + synset.instance_hypernyms()]
        facts += [(synset, "part of", other) for other in synset.part_holonyms()]
    name = lambda s: s.lemmas()[0].name().replace("_", " ")
    template_words = {w for forms in WORDNET_TEMPLATES.values() for f in forms for w in f.split()}
    owners = Counter(name(s).lower() for s in {x for s, _, o in facts for x in (s, o)})
    usable = lambda s: owners[name(s).lower()] == 1 and name(s).lower() not in template_words and name(s)[0].isalpha()
    triples = [(name(s), relation, name(o)) for s, relation, o in facts if usable(s) and usable(o)]
    types = {name(x): x.lexname() for s, _, o in facts for x in (s, o) if usable(x)}
    types = {n: t for n, t in types.items() if any(n in (s, o) for s, _, o in triples)}
    examples = []
    for synset in sorted({x for s, _, o in facts for x in (s, o)}, key=lambda x: x.name()):
        if not usable(synset) or name(synset) not in types:
            continue
        lemmas = [lemma.name().lower().split("_") for lemma in synset.lemmas()]
        for text in synset.examples():
            words = WORD.findall(text)
            match = find_lemma(words, lemmas, lambda word, lemma: wordnet.morphy(word, "n") == lemma)
            if match is not None:
                examples.append((words, match[0], match[1], name(synset)))
    return triples, types, examples


def typing_by_synset(examples, types: dict, seed: int, write, keep=lambda words: True):
    """Return ``(parts, labels, splits)``: WordNet example sentences typed by their synset's supersense, split 60/20/20
    by synset (seeded), each sentence kept once (a sentence two synsets share goes to one split only).

    ``examples`` are :func:`wordnet_typed_kg`'s ``(words, start, end, name)``; ``write(words, start, end)`` makes
    the text (the mention marked as the paper marks it); ``keep(words)`` may drop a sentence. ``parts`` are the
    synset names of each split, ``splits`` ``(texts, labels)`` per split, ``labels`` the sorted types.
    """
    labels = sorted(set(types.values()))
    named = sorted({name for *_, name in examples})
    random.Random(seed).shuffle(named)
    cut = (int(0.6 * len(named)), int(0.8 * len(named)))
    parts = (named[:cut[0]], named[cut[0]:cut[1]], named[cut[1]:])
    part_of = {name: index for index, part in enumerate(parts) for name in part}
    rows, seen = ([], [], []), set()
    for words, start, end, name in sorted(examples, key=lambda e: part_of[e[3]]):
        key = " ".join(words).lower()
        if key in seen or not keep(words):
            continue
        seen.add(key)
        rows[part_of[name]].append((write(words, start, end), labels.index(types[name])))
    return parts, labels, tuple(([t for t, _ in part], [label for _, label in part]) for part in rows)


def fewer_candidates(probe, count: int, seed: int = 0) -> list:
    """Return the probe items each with the gold object and ``count - 1`` other candidates drawn at random.

    WordNet's hypernym relation has over a thousand objects; WKLM's head
    scores one forward pass per candidate, so the full profile ranks among a
    random 100 (the same for both scorers and both variants).
    """
    from kbench.probes import ProbeItem

    rng = random.Random(seed)
    out = []
    for item in probe:
        others = [c for c in item.candidates if c != item.gold]
        kept = rng.sample(others, min(count - 1, len(others))) + [item.gold]
        rng.shuffle(kept)
        out.append(ProbeItem(item.subject, item.relation, item.gold, item.statement, tuple(kept)))
    return out


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> WKLMSetup:
    """Return WKLM's typed entities, statements, probe, typing task and configs for ``profile`` (overrides: CHOICES)."""
    from kbench.data.fact_corpus import WORLD_TEMPLATES, fact_corpus
    from kbench.models.wklm import VARIANTS, TypedEntities
    from kbench.profiles.ernie_baidu import corpus_vocabulary

    chosen = choices(CHOICES, profile, overrides)
    if chosen["kg"] == "world":
        from kbench.data import make_world

        world = make_world(people=tuple(chosen["people"]), sentences_per_person=1,
                           countries_per_continent=chosen["countries_per_continent"], seed=seed)
        triples, templates = list(world.kg), WORLD_TEMPLATES
        types = world_types(triples)
        parts = split_entities(types, seed)
        labels = sorted(set(types.values()))
        splits = tuple(typing_split(part, types, labels, chosen["typing_per_entity"], seed + i)
                       for i, part in enumerate(parts))
        source = f"the knowledge world's facts ({len(types)} typed entities, {len(labels)} types)"
        typing = "neutral sentences naming one entity (4 templates), split by entity"
    else:
        from kbench.kg.wordnet import load_wordnet

        wordnet = load_wordnet(data_dir or None)
        triples, types, examples = wordnet_typed_kg(wordnet, chosen["entities"], seed)
        templates = WORDNET_TEMPLATES
        quoted = lambda words, start, end: " ".join(words[:start] + ['"'] + words[start:end] + ['"'] + words[end:])
        parts, labels, splits = typing_by_synset(examples, types, seed, quoted)
        source = f"WordNet 3.0 noun facts ({len(types)} synsets typed by supersense, {len(labels)} types)"
        typing = "WordNet's example sentences of the sampled synsets (the word quoted), split by synset"
    entities = TypedEntities.of(types)
    facts = fact_corpus(triples, templates, chosen["statements_per_fact"], seed)
    texts, probe = facts.texts, facts.probe
    if chosen["probe_size"] and len(probe) > chosen["probe_size"]:
        probe = random.Random(seed).sample(probe, chosen["probe_size"])
    if chosen["probe_candidates"]:
        probe = fewer_candidates(probe, chosen["probe_candidates"], seed)
    base = base_model or chosen["size"]
    vocab = None
    if not base_model:
        vocab = str(corpus_vocabulary([*texts, *(i.statement for i in probe), *types, *splits[0][0],
                                       *splits[1][0], *splits[2][0]]))
    precision = chosen["precision"]
    # the branches draw their own batch order and masks (seed + 1): not the warm-up's first batches again
    config, pretrain_config = finetune_and_pretrain_configs(chosen, device, seed, pretrain_seed=seed + 1)
    warmup_config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                                device=device, precision=precision, seed=seed, progress=None,
                                max_steps=chosen["warmup_steps"])
    about = (f"{source}: {len(texts)} statements, probe {len(probe)} held-out statements; typing: {typing}, "
             f"{' / '.join(str(len(p[0])) for p in splits)} sentences; base {base} from random init, "
             f"{chosen['warmup_steps']} steps of {chosen['batch_size']} of shared MLM warm-up, then "
             f"{chosen['steps']} steps per branch")
    return WKLMSetup(profile=profile, seed=seed, device=device, base_model=base, labels=labels, splits=splits,
                     options=dict(max_length=chosen["max_length"]), config=config, about=about, entities=entities,
                     texts=texts, probe=probe, vocab=vocab, pretrain_config=pretrain_config,
                     warmup_config=warmup_config,
                     max_length=chosen["max_length"], typing_entities=tuple(tuple(p) for p in parts), source=source,
                     variants=VARIANTS if chosen["untyped_ablation"] else VARIANTS[:3])


def pretrainer_options(s: WKLMSetup) -> dict:
    """Return the keyword options of :func:`kbench.models.wklm.pretrainer` for this setup."""
    return dict(entities=s.entities, base_model=s.base_model, vocab=s.vocab, max_length=s.max_length)


def branch_options(s: WKLMSetup, warmup_checkpoint: str) -> dict:
    """Return :func:`pretrainer_options` for the branches: every variant starts from the shared warm-up's
    checkpoint (its weights, MLM head and vocabulary)."""
    return dict(pretrainer_options(s), base_model=str(warmup_checkpoint), vocab=None)


def classifier_options(s: WKLMSetup) -> dict:
    """Return the options of the downstream typing classifier (``KBertClassifier`` with no KG) on a pretrained base."""
    return dict(max_length=s.max_length + 8, joiner=" ", max_entities=1)
