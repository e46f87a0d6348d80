"""Profiles as data: the shared ``choices``/``Setup`` and each paper's ``setup`` (ERNIE's here; others beside their tests)."""
from __future__ import annotations

import pytest

from kbench.errors import InputError, UnknownNameError
from kbench.profiles import PROFILES, check_profile, choices

TABLE = {"smoke": {"epochs": 8, "limit": 0}, "full": {"epochs": 5, "limit": 1000}}


def test_choices_apply_overrides_and_keep_defaults_for_empty_ones():
    assert choices(TABLE, "full", {"epochs": 2}) == {"epochs": 2, "limit": 1000}
    assert choices(TABLE, "full", {"epochs": 0, "limit": None}) == TABLE["full"]    # 0 / None: the profile's own
    chosen = choices(TABLE, "smoke")
    chosen["epochs"] = 99
    assert TABLE["smoke"]["epochs"] == 8                                              # a copy, never the table


def test_bad_profiles_and_overrides_are_named():
    assert [check_profile(p) for p in PROFILES] == ["smoke", "full"]
    with pytest.raises(UnknownNameError, match="unknown profile 'fast'"):
        choices(TABLE, "fast")
    with pytest.raises(InputError, match="'epoch' is not a choice of the full profile"):
        choices(TABLE, "full", {"epoch": 3})


def test_ernie_tables_name_the_same_choices_and_smoke_loads_the_world():
    from kbench.profiles.ernie_thu import CHOICES, setup

    assert set(CHOICES["smoke"]) == set(CHOICES["full"])
    s = setup("smoke", seed=1)
    assert s.sizes() == "240 / 80 / 160" and s.options["layers"] == 2 and s.config.seed == 1
    assert s.relations == ["lives in", "works for"] and s.relation_splits is not None and not s.wikipedia
    facts = [t for t in s.kg if t[1] in ("comes from", "hypernym")]
    assert len(s.probe) == min(300, len(facts)) == 240
    assert setup("smoke", seed=1, epochs=3).config.epochs == 3


def test_ernie_probe_is_a_random_sample_not_the_first_facts():
    from kbench.profiles.ernie_thu import setup

    s = setup("smoke", seed=0, probe_size=50)
    facts = [t for t in s.kg if t[1] in ("comes from", "hypernym")]
    assert len(s.probe) == 50 and set(s.probe) <= set(facts) and s.probe != facts[:50]
    assert s.probe != setup("smoke", seed=1, probe_size=50).probe


def test_kbert_tables_and_smoke_setup():
    from kbench.errors import UnknownNameError
    from kbench.profiles.kbert import CHOICES, knowledge_world, setup

    assert set(CHOICES["smoke"]) == set(CHOICES["full"])
    s = setup("smoke", seed=0, epochs=2)
    assert s.sizes() == "240 / 80 / 160" and s.config.epochs == 2 and s.options["layers"] == 2
    assert s.splits[2][0] == [e.text for e in knowledge_world(0).test] and s.ner_splits is None
    assert setup("smoke", base_model="tiny").options["layers"] is None      # only the embedded encoder is cut
    with pytest.raises(UnknownNameError, match="unknown dataset 'weibo'"):
        setup("full", dataset="weibo")


def test_kbert_full_evaluates_on_texts_not_in_training(tmp_path, mirror):
    """CHECKLIST 8: K-BERT's released splits share texts; the full profile's dev and test keep none of train's."""
    from kbench.data import fetch
    from kbench.data.kbert_datasets import load_kbert_dataset, text_of, without_texts
    from kbench.profiles.kbert import setup

    for name in ("kbert/kgs", "kbert/vocab/google_vocab.txt",
                 *(f"kbert/datasets/{d}/{p}.tsv" for d in ("chnsenticorp", "medical_ner") for p in ("train", "dev", "test"))):
        fetch(name, tmp_path, mirror, progress=False)
    s = setup("full", data_dir=str(tmp_path), base_model="tiny")
    for splits, dataset in ((s.splits, "chnsenticorp"), (s.ner_splits, "medical_ner")):
        train = {text_of(t) for t in load_kbert_dataset(dataset, "train", str(tmp_path)).texts}
        raw_test = load_kbert_dataset(dataset, "test", str(tmp_path))
        assert any(text_of(t) in train for t in raw_test.texts)             # the released split shares texts ...
        assert not any(text_of(t) in train for part in splits[1:] for t in part[0])    # ... ours none
        kept, dropped = without_texts(raw_test, train)
        assert kept.texts == splits[2][0] and kept.labels == splits[2][1] and dropped > 0
    assert "dev/test texts that are also training texts left out" in s.about


def test_wordnet_typing_is_split_by_synset_with_each_sentence_once():
    from kbench.profiles.wklm import typing_by_synset

    names = [f"n{i}" for i in range(10)]
    types = {name: ("noun.animal" if i % 2 else "noun.plant") for i, name in enumerate(names)}
    examples = [(["a", name, "b"], 1, 2, name) for name in names]
    examples += [(["shared", "x"], 0, 1, "n0"), (["shared", "x"], 0, 1, "n1"), (["a", "@", "n2"], 2, 3, "n2")]
    write = lambda words, start, end: " ".join(words[:start] + ["<"] + words[start:end] + [">"] + words[end:])
    parts, labels, splits = typing_by_synset(examples, types, 3, write, keep=lambda words: "@" not in words)
    assert labels == ["noun.animal", "noun.plant"] and [len(p) for p in parts] == [6, 2, 2]
    assert sorted(n for p in parts for n in p) == sorted(names)
    texts = [t for split, _ in splits for t in split]
    assert len(texts) == len(set(texts)) == 11                        # "shared x" once, the marked one dropped
    for part, (split_texts, split_labels) in zip(parts, splits):
        for text, label in zip(split_texts, split_labels):
            owner = next(n for n in names if f"< {n} >" in text) if "shared" not in text else None
            assert owner is None or (owner in part and labels[label] == types[owner])
    assert typing_by_synset(examples, types, 3, write)[2] != splits   # without keep, the marked sentence stays
