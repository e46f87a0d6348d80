"""ERNIE (Baidu)'s two profiles as data, for ``notebooks/06_ernie_baidu.ipynb``.

``smoke``: the knowledge world (generated, English; the K-BERT smoke world) written
as a corpus from its KG facts with each fact's probe template held out
(:func:`kbench.data.fact_corpus.fact_corpus`), three-turn dialogues generated
from the same facts (DLM), the KG's names as entity units, spaCy noun chunks as
phrases; a random-init tiny BERT (2 layers, 128 hidden) over the word pieces
the world uses (MiniLM's pieces: :func:`corpus_vocabulary`); the
knowledge probe on the held-out statements and the world's continent
classification as the downstream task. ``full``: ERNIE's own language — the
training splits of K-BERT's Chinese corpora (``pretraining_text("kbert-zh")``),
characters as basic units, jieba words as phrases, HowNet and Medical KG
mentions as entities, a random-init ``tiny`` BERT with the Chinese vocabulary,
then ChnSentiCorp fine-tuning; no dialogues (the corpora have none) and no
probe (no fact corpus). Both profiles also run the positive control, :func:`control_setup`:
knowledge masking on the small fact world (:mod:`kbench.data.small_facts`), trained until it knows the facts.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from kbench.encoders import EMBEDDED, SIZES
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    # a random-init tiny BERT over the ~250 word pieces a small world uses (a step costs a fraction of one over
    # 30,522 pieces); the embedded MiniLM's first 2 layers over those pieces (base="embedded") learned no faster
    # per second on the CPU. Measured, seeds 0-4, 250 steps at 5e-3: probe MRR 0.35 untrained -> 0.39-0.40
    # (450 steps gave no more on the probe and cost the notebook 80 s instead of 50 s of CPU).
    "smoke": dict(corpus="world", base="tiny", layers=2, max_length=32, pretrain_steps=250,
                  pretrain_batch_size=32, pretrain_learning_rate=5e-3, dialogues=True, statements_per_fact=2,
                  sentences=0, probe_size=0, epochs=6, batch_size=16, learning_rate=5e-4, patience=6,
                  freeze_word_embeddings=False, limit=0, precision="no", world_vocabulary=True,
                  people=(20, 6, 12), basic="token"),
    "full": dict(corpus="kbert-zh", base="tiny", layers=None, max_length=64, pretrain_steps=600,
                 pretrain_batch_size=32, pretrain_learning_rate=5e-4, dialogues=False, statements_per_fact=2,
                 sentences=12000, probe_size=0, epochs=3, batch_size=32, learning_rate=1e-4, patience=3,
                 freeze_word_embeddings=False, limit=1500, precision="no", world_vocabulary=False,
                 people=(0, 0, 0), basic="token"),
}


@dataclass
class ErnieBaiduSetup(Setup):
    """ERNIE (Baidu)'s setup: also the pretraining text, dialogues, probe, and the pretraining budget."""

    language: str = "en"
    texts: list = field(default_factory=list)               # pretraining sentences
    dialogues: list = field(default_factory=list)           # [(role, text), ...] per dialogue (DLM); [] if none
    entity_names: list = field(default_factory=list)        # the KG names whose mentions are entity units
    probe: list = field(default_factory=list)               # kbench.probes.ProbeItem s (held-out templates)
    vocab: str | None = None                                # the vocabulary a random-init base needs
    pretrain_config: TrainConfig | None = None
    max_length: int = 32
    source: str = ""
    basic: str = "token"                                    # the basic level's masking (token or whole_word)
    train_probe: list = field(default_factory=list)         # the probe's facts in a template they were trained in


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> ErnieBaiduSetup:
    """Return ERNIE (Baidu)'s corpus, probe, downstream task and configs for ``profile`` (overrides: keys of CHOICES)."""
    chosen = choices(CHOICES, profile, overrides)
    base = base_model or chosen["base"]
    options = dict(max_length=chosen["max_length"], freeze_word_embeddings=chosen["freeze_word_embeddings"])
    dialogues, probe, vocab = [], [], None
    if chosen["corpus"] == "world":
        from kbench.data.fact_corpus import WORLD_TEMPLATES, fact_corpus
        from kbench.models.ernie_baidu import fact_dialogues
        from kbench.data import make_world

        world = make_world(people=tuple(chosen["people"]), sentences_per_person=2, countries_per_continent=1,
                           seed=seed)
        kg, labels, language = world.kg, list(world.labels), "en"
        facts = fact_corpus(list(kg), WORLD_TEMPLATES, chosen["statements_per_fact"], seed)
        texts, probe = facts.texts, facts.probe
        if chosen["probe_size"]:
            probe = random.Random(seed).sample(probe, min(chosen["probe_size"], len(probe)))
        if chosen["dialogues"]:
            dialogues = fact_dialogues(list(kg), WORLD_TEMPLATES, probe=facts.probe, seed=seed)
        names = sorted({s for s, _, _ in kg} | {o for _, _, o in kg})
        as_pairs = lambda split: ([e.text for e in split], [e.label for e in split])
        splits = tuple(as_pairs(part) for part in (world.train, world.dev, world.test))
        options.update(joiner=" ", max_entities=1)
        if chosen["world_vocabulary"] and base in (EMBEDDED, *SIZES) and not base_model:
            vocab = corpus_vocabulary([*texts, *(t for d in dialogues for _, t in d), *splits[0][0],
                                       *splits[1][0], *splits[2][0], *(i.statement for i in probe), *names])
            if base == EMBEDDED:
                base, vocab = str(pruned_base(vocab, chosen["layers"])), None
                chosen["layers"] = None
            else:
                vocab = str(vocab)
        source = f"the knowledge world's facts ({len(texts)} statements, {len(dialogues)} dialogues)"
        about = (f"{source}; probe: {len(probe)} held-out statements; downstream: the continent of a sentence's "
                 f"person ({len(labels)} labels)")
    else:
        from kbench.data import load_kbert_dataset
        from kbench.data.corpora import pretraining_text
        from kbench.data.kbert_datasets import text_of, unseen_dev_test

        text = pretraining_text(chosen["corpus"], data_dir or None, seed=seed)
        kg, language, names, vocab = None, text.language, text.entity_names, text.vocab
        texts = list(dict.fromkeys(text.texts))     # de-duplicated
        # the pretraining text holds no dev/test text of K-BERT's sets; ChnSentiCorp's own train split does
        seen = {text_of(t) for t in texts} | {text_of(t) for t in load_kbert_dataset("chnsenticorp", "train",
                                                                                    data_dir or None).texts}
        if chosen["sentences"] and len(texts) > chosen["sentences"]:
            texts = random.Random(seed).sample(texts, chosen["sentences"])
        limit = chosen["limit"] or None
        loaded = [load_kbert_dataset("chnsenticorp", split, data_dir or None, limit) for split in ("train", "dev", "test")]
        # ChnSentiCorp's released dev and test share texts with its train split: evaluate on the texts no
        # pretraining or fine-tuning step has seen
        loaded, dropped = unseen_dev_test(loaded, seen)
        splits = tuple((part.texts, part.labels) for part in loaded)
        labels = [str(label) for label in sorted(set(splits[0][1]))]
        options.update(joiner="", max_entities=1)
        source = f"{text.source} ({len(texts)} of them)"
        about = (f"{source}; downstream: ChnSentiCorp (first {chosen['limit'] or 'all'} of each split, less "
                 f"{dropped} dev/test texts that are also training texts)")
    options["layers"] = chosen["layers"] if base == EMBEDDED else None     # the pruned base has its layers already
    options["vocab"] = vocab if base in SIZES else None
    precision = chosen["precision"]
    config = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["batch_size"],
                         learning_rate=chosen["learning_rate"], patience=chosen["patience"], device=device,
                         precision=precision, seed=seed, progress=None)
    pretrain_config = TrainConfig(batch_size=chosen["pretrain_batch_size"],
                                  learning_rate=chosen["pretrain_learning_rate"], device=device, precision=precision,
                                  seed=seed, progress=None, max_steps=chosen["pretrain_steps"])
    return ErnieBaiduSetup(profile=profile, seed=seed, device=device, base_model=base, labels=labels, splits=splits,
                           options=options, config=config, kg=kg, about=about, language=language, texts=texts,
                           dialogues=dialogues, entity_names=names, probe=probe, vocab=options["vocab"],
                           pretrain_config=pretrain_config, max_length=chosen["max_length"], source=source,
                           basic=chosen["basic"])


#: The positive control's world (:mod:`kbench.data.small_facts`), the same in both profiles: 8 people with
#: one-piece names, two facts each (a city, an occupation; 4 objects per relation, dealt evenly), each fact written
#: in two templates and probed in the third and in a trained one, pretrained far longer per fact than the smoke
#: world allows: the 32 statements every step, so a fact's object is masked about 1,000 x 2 x 0.15 = 300 times.
#: 600 steps learn nothing subject-dependent; measured in ``tests/test_probe_regime.py``.
CONTROL = dict(subjects=8, objects=4, statements_per_fact=2, steps=1000, batch_size=32, learning_rate=1e-3)


def control_setup(profile: str = "smoke", *, seed: int = 0, device: str = "auto", **overrides) -> ErnieBaiduSetup:
    """Return the positive control's setup: the small fact world's corpus, probe and pretraining budget.

    A world small enough, and trained long enough per fact, that plain MLM certainly learns its
    subject-dependent facts (probe MRR well above the subject-swapped MRR on every seed), so a masking
    objective that works must learn them too. No dialogues and no downstream task (``splits`` are empty).
    """
    from kbench.data.fact_corpus import WORLD_TEMPLATES, fact_corpus
    from kbench.data.small_facts import small_fact_world
    from kbench.probes import SLOT, ProbeItem

    chosen = choices({profile: CONTROL}, profile, overrides)
    triples = small_fact_world(chosen["subjects"], chosen["objects"], seed)
    facts = fact_corpus(triples, WORLD_TEMPLATES, chosen["statements_per_fact"], seed)
    names = sorted({s for s, _, _ in triples} | {o for _, _, o in triples})
    vocab = str(corpus_vocabulary([*facts.texts, *(item.statement for item in facts.probe), *names]))
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], device=device,
                         precision="no", seed=seed, progress=None, max_steps=chosen["steps"])
    source = (f"the small fact world ({chosen['subjects']} people, {len(triples)} facts, {len(facts.texts)} "
              f"statements)")
    stated, train_probe = set(facts.texts), []
    for item in facts.probe:        # each fact again, in the first template it was trained in
        form = next(f for f in WORLD_TEMPLATES[item.relation] if f.format(s=item.subject, o=item.gold) in stated)
        train_probe.append(ProbeItem(item.subject, item.relation, item.gold, form.format(s=item.subject, o=SLOT),
                                     item.candidates))
    empty = ([], [])
    return ErnieBaiduSetup(profile=profile, seed=seed, device=device, base_model="tiny", labels=[],
                           splits=(empty, empty, empty), options={"layers": None, "vocab": vocab}, about=source,
                           language="en", texts=facts.texts, entity_names=names, probe=facts.probe, vocab=vocab,
                           pretrain_config=config, max_length=32, source=source, basic="token",
                           train_probe=train_probe)


def corpus_vocabulary(texts, directory: str | None = None) -> Path:
    """Return a vocabulary file of the embedded tokenizer's word pieces that ``texts`` use (specials first).

    WordPiece's greedy longest match over this subset splits these texts exactly
    as the full vocabulary does (every piece it chose is in the subset, and any
    longer match in the subset is one the full vocabulary has too), so a
    random-init base over it reads the same pieces as MiniLM — with an MLM
    softmax over a few hundred pieces instead of 30,522. Written once per
    content (the file name is its hash).
    """
    from kbench.encoders import load_tokenizer
    from kbench.text.vocabulary import write_vocab_file

    tokenizer = load_tokenizer(EMBEDDED)
    pieces = sorted({piece for text in texts for piece in tokenizer.tokenize(text)} - {tokenizer.unk_token})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return write_vocab_file(specials + [p for p in pieces if p not in specials], directory)


def pruned_base(vocab: Path, layers: int = 2, directory: str | None = None) -> Path:
    """Return a checkpoint directory: the embedded MiniLM's first ``layers`` layers over the pieces of ``vocab`` only.

    The kept pieces' input embeddings are MiniLM's own rows (nothing else of the
    model changes), so the encoder reads these texts exactly as MiniLM does,
    while an MLM softmax runs over the kept pieces alone. Written once per
    vocabulary and depth.
    """
    import torch

    from kbench.encoders import load_encoder, load_tokenizer
    from transformers import BertTokenizerFast

    out = Path(directory or vocab.parent) / f"{vocab.stem}-minilm-{layers}"
    if (out / "config.json").is_file():
        return out
    full = load_tokenizer(EMBEDDED)
    pieces = vocab.read_text(encoding="utf-8").splitlines()
    rows = torch.tensor(full.convert_tokens_to_ids(pieces))
    model = load_encoder(EMBEDDED, layers=layers).model
    embeddings = torch.nn.Embedding(len(pieces), model.config.hidden_size, padding_idx=0)
    embeddings.weight.data.copy_(model.embeddings.word_embeddings.weight.data[rows])
    model.embeddings.word_embeddings = embeddings
    model.config.vocab_size = len(pieces)
    model.config.pad_token_id = 0
    partial = out.with_name(out.name + ".part")
    model.save_pretrained(str(partial))
    BertTokenizerFast(vocab=str(vocab), do_lower_case=True).save_pretrained(str(partial))
    partial.replace(out)
    return out


def pretrainer_options(s: ErnieBaiduSetup) -> dict:
    """Return the keyword options of :func:`kbench.models.ernie_baidu.ernie_pretrainer` for this setup."""
    return dict(base_model=s.base_model, steps=s.pretrain_config.max_steps, language=s.language, vocab=s.vocab,
                layers=s.options["layers"], basic=s.basic)


def build_pretraining_corpus(s: ErnieBaiduSetup, tokenizer):
    """Return the pretraining :class:`~kbench.pretrain.Corpus`: words, phrases and entity mentions (and dialogues)."""
    from kbench.models.ernie_baidu import dialogue_corpus
    from kbench.pretrain import build_corpus
    from kbench.text.mentions import MentionDetector

    units = ("word", "phrase", "entity")
    detector = MentionDetector(s.entity_names)
    if s.dialogues:
        return dialogue_corpus(s.texts, s.dialogues, tokenizer, units, detector, s.language, s.max_length, s.source)
    return build_corpus(s.texts, tokenizer, units, detector, s.language, s.max_length, s.source)


def classifier_options(s: ErnieBaiduSetup) -> dict:
    """Return the options of the downstream classifier (BERT: ``KBertClassifier`` with no KG) on a pretrained base."""
    return {k: v for k, v in s.options.items() if k in ("max_length", "joiner", "max_entities", "freeze_word_embeddings")}
