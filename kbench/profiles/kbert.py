"""K-BERT's two profiles as data, for ``notebooks/01_k_bert.ipynb``.

``smoke``: the knowledge world (generated, English) with its own KG, the first
2 layers of the embedded MiniLM with frozen word embeddings, 8 epochs at 2e-4
in full precision (so smoke numbers match across hosts). ``full``: the paper's
Chinese datasets (ChnSentiCorp, Book review or Shopping) with HowNet, and
Medical NER with MedicalKG, from the data manifest; a random-init BERT-base
with the Chinese vocabulary unless ``base_model`` names a checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kbench.encoders import EMBEDDED, SIZES
from kbench.profiles import Setup, choices
from kbench.train import TrainConfig

CHOICES = {
    # all 8 epochs (no early stop): K-BERT's two-hop path (branch -> person -> [CLS]) can sit at chance for
    # a few epochs before it takes off
    "smoke": dict(dataset="knowledge world", base="embedded", layers=2, max_length=32, max_entities=1, joiner=" ",
                  freeze_word_embeddings=True, epochs=8, batch_size=8, learning_rate=2e-4, patience=8,
                  precision="no", limit=0, ner=False, unseen=False),
    # unseen: dev and test without the texts that are also training texts (the released splits share hundreds)
    # the authors' fine-tuning rate for a pretrained BERT (2e-5); a random-init size needs a larger one (1e-4)
    "full": dict(dataset="chnsenticorp", base="base", layers=None, max_length=256, max_entities=2, joiner="",
                 freeze_word_embeddings=False, epochs=5, batch_size=32, learning_rate=0.0, patience=2,
                 precision="auto", limit=0, ner=True, unseen=True),
}
DATASETS = ("book_review", "chnsenticorp", "shopping")


def knowledge_world(seed: int = 0):
    """Return the smoke profile's knowledge world (120 / 40 / 80 people, 2 sentences each, one country a continent)."""
    from kbench.data import make_world

    return make_world(people=(120, 40, 80), sentences_per_person=2, countries_per_continent=1, seed=seed)


@dataclass
class KBertSetup(Setup):
    """K-BERT's setup: also the knowledge world (smoke) and Medical NER with MedicalKG (full)."""

    world: object = None
    ner_splits: tuple | None = None       # Medical NER (texts, tag lists) per split; None: not in this profile
    ner_tags: list[str] = field(default_factory=list)
    ner_kg: object = None
    dataset: str = ""


def _unseen(splits: list, unseen: bool, dataset: str, data_dir: str) -> tuple[list, int]:
    """Drop from dev and test every text that is also in the dataset's (whole) train split, when ``unseen``."""
    if not unseen:
        return splits, 0
    from kbench.data.kbert_datasets import load_kbert_dataset, text_of, unseen_dev_test

    return unseen_dev_test(splits, {text_of(item) for item in load_kbert_dataset(dataset, "train", data_dir or None).texts})


def setup(profile: str = "smoke", *, seed: int = 0, base_model: str = "", data_dir: str = "", device: str = "auto",
          **overrides) -> KBertSetup:
    """Return K-BERT's data, KG, model options and training config for ``profile`` (overrides: keys of CHOICES)."""
    chosen = choices(CHOICES, profile, overrides)
    base = base_model or chosen["base"]
    world, ner_splits, ner_tags, ner_kg = None, None, [], None
    options = dict(max_length=chosen["max_length"], max_entities=chosen["max_entities"], joiner=chosen["joiner"],
                   freeze_word_embeddings=chosen["freeze_word_embeddings"])
    if chosen["dataset"] == "knowledge world":
        world = knowledge_world(seed)
        kg, labels = world.kg, list(world.labels)
        as_pairs = lambda split: ([e.text for e in split], [e.label for e in split])
        splits = tuple(as_pairs(part) for part in (world.train, world.dev, world.test))
        options["layers"] = chosen["layers"] if base == EMBEDDED else None
        about = f"the knowledge world (generated, English): {kg}"
        rate = chosen["learning_rate"]
    else:
        from kbench.data import load_kbert_dataset, load_kg, local_path
        from kbench.errors import UnknownNameError

        if chosen["dataset"] not in DATASETS:
            raise UnknownNameError(f"unknown dataset {chosen['dataset']!r}: use {', '.join(DATASETS)}")
        kg = load_kg("HowNet", data_dir or None)
        limit = chosen["limit"] or None
        loaded, dropped = _unseen([load_kbert_dataset(chosen["dataset"], split, data_dir or None, limit)
                                   for split in ("train", "dev", "test")], chosen["unseen"], chosen["dataset"], data_dir)
        splits = tuple((part.texts, part.labels) for part in loaded)
        labels = [str(label) for label in sorted(set(splits[0][1]))]
        vocab = str(local_path("kbert/vocab/google_vocab.txt", data_dir or None))
        options["vocab"] = vocab if base in SIZES else None
        about = f"{chosen['dataset']} with {kg}" + (f" ({dropped} dev/test texts that are also training texts left out)"
                                                   if dropped else "")
        rate = chosen["learning_rate"] or (1e-4 if base in SIZES else 2e-5)
        if chosen["ner"]:
            ner_kg = load_kg("Medical", data_dir or None)
            ner, _ = _unseen([load_kbert_dataset("medical_ner", split, data_dir or None, limit)
                              for split in ("train", "dev", "test")], chosen["unseen"], "medical_ner", data_dir)
            ner_tags = sorted({tag for part in ner for tags in part.labels for tag in tags},
                              key=lambda tag: (tag != "O", tag))
            ner_splits = tuple((part.texts, part.labels) for part in ner)
    config = TrainConfig(epochs=chosen["epochs"], batch_size=chosen["batch_size"], learning_rate=rate,
                         patience=chosen["patience"], device=device, precision=chosen["precision"], seed=seed)
    return KBertSetup(profile=profile, seed=seed, device=device, base_model=base, labels=labels, splits=splits,
                      options=options, config=config, kg=kg, about=about, world=world, ner_splits=ner_splits,
                      ner_tags=ner_tags, ner_kg=ner_kg, dataset=chosen["dataset"])
