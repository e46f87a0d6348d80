"""DeBERTa's two profiles as data, for ``notebooks/16_deberta.ipynb``.

Every variant is pretrained from one random init (:func:`kbench.models.deberta.one_init`) with the same masks,
batches and steps, on text where each sentence is shifted by 0-3 filler tokens, and scored on held-out sentences
at the same shifts and at 10-20 (the position-shift probe). A second, synthetic task places one [MASK] whose
answer is fixed by its absolute position in sequences much longer than ``k`` (the slot task).

``smoke``: the knowledge world's statements (2,700 distinct, 300 held out), the ``micro`` size (2 layers, 64
wide), k = 8, 800 steps of 16; BERT and DeBERTa (DeBERTa − EMD in the slot task). ``full``: WordNet's glosses and examples
(20,000 texts, 1,000 held out), the ``tiny`` size (2 layers, 128 wide), k = 16, 1,000 steps of 32, and the
− EMD, − c2p and − p2c ablations too.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from kbench.profiles import Setup, choices

CHOICES = {
    "smoke": dict(corpus="world", texts=0, held_out=300, size="micro", k=8, steps=800, batch_size=16,
                  learning_rate=2e-3, max_length=48, variants=("bert", "deberta"),
                  slot_length=32, slot_k=4, slot_steps=200, slot_test=400, threads=1),
    "full": dict(corpus="wordnet", texts=20000, held_out=1000, size="tiny", k=16, steps=1000, batch_size=32,
                 learning_rate=1e-3, max_length=64, variants=("bert", "deberta", "no_emd", "no_c2p", "no_p2c"),
                 slot_length=64, slot_k=8, slot_steps=400, slot_test=1000, threads=0),
}
TRAIN_SHIFT = (0, 3)       # fillers before each pretraining sentence
TEST_SHIFT = (10, 20)      # fillers before each held-out sentence in the shift probe
SLOT_ANSWERS = 4           # the slot task's answers: one per quarter of the sequence


@dataclass
class DebertaSetup(Setup):
    """The held-out split, the tokenizer over the corpus's pieces, the filler and every choice of the profile."""

    train_texts: list[str] = field(default_factory=list)
    test_texts: list[str] = field(default_factory=list)
    tokenizer: object = None
    filler_id: int = 0
    chosen: dict = field(default_factory=dict)


def _texts(corpus: str, count: int, data_dir: str, seed: int) -> tuple[list[str], str]:
    if corpus == "world":
        from kbench.data.corpora import pretraining_text

        text = pretraining_text("world", seed=seed)
        return sorted(set(text.texts)), text.source
    from kbench.kg.wordnet import load_wordnet

    wordnet = load_wordnet(data_dir or None)
    texts = sorted({t for synset in wordnet.all_synsets() for t in (synset.definition(), *synset.examples()) if t})
    random.Random(seed).shuffle(texts)
    return texts[:count], "WordNet's glosses and example sentences"


def setup(profile: str = "smoke", *, seed: int = 0, data_dir: str = "", device: str = "auto",
          **overrides) -> DebertaSetup:
    """Load the profile's text, hold out its test sentences, build a word-piece vocabulary over it all."""
    from kbench.encoders import load_tokenizer
    from kbench.models.deberta import FILLER
    from kbench.profiles.ernie_baidu import corpus_vocabulary
    from kbench.train import TrainConfig

    chosen = choices(CHOICES, profile, overrides)
    texts, source = _texts(chosen["corpus"], chosen["texts"], data_dir, seed)
    random.Random(seed).shuffle(texts)
    test, train = texts[:chosen["held_out"]], texts[chosen["held_out"]:]
    tokenizer = load_tokenizer(vocab=str(corpus_vocabulary(texts + [FILLER])))
    config = TrainConfig(batch_size=chosen["batch_size"], learning_rate=chosen["learning_rate"], warmup=0.1,
                         seed=seed, device=device, precision="no", max_steps=chosen["steps"])
    about = (f"{source}: {len(train):,} pretraining / {len(test):,} held-out texts, {len(tokenizer)} word pieces; "
             f"{chosen['size']} size, k = {chosen['k']}, {chosen['steps']} steps of {chosen['batch_size']} "
             f"from one init; sentences shifted by {TRAIN_SHIFT[0]}-{TRAIN_SHIFT[1]} fillers")
    return DebertaSetup(profile=profile, seed=seed, device=device, base_model=chosen["size"], labels=[],
                        splits=((train, []), ([], []), (test, [])), config=config, about=about,
                        train_texts=train, test_texts=test, tokenizer=tokenizer,
                        filler_id=tokenizer.convert_tokens_to_ids(FILLER), chosen=chosen)
