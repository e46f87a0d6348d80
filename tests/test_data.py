"""Data: the manifest, fetching with checksums, loaders, and the knowledge world."""
from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from kbench.data import fetch, load_kbert_dataset, load_kg, make_world, read_manifest
from kbench.data.manifest import local_path, select
from kbench.errors import ChecksumError, DataError, InputError, UnknownNameError


def test_manifest_declares_every_mirrored_file(mirror):
    manifest = read_manifest()
    mirrored = {str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file() and p.name != "README.md"}
    assert mirrored == {name for name, entry in manifest.items() if not entry.installed_by}
    for entry in manifest.values():
        if entry.installed_by:     # a system package (WordNet's): declared for the record, read where apt put it
            assert entry.installed_by.startswith("apt-get install ") and entry.sha256 and entry.size
            continue
        assert entry.url.startswith("https://") and entry.license and entry.citation
        path = mirror / entry.name
        assert path.stat().st_size == entry.size
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256


def test_fetch_copies_from_mirror_and_verifies(tmp_path, mirror):
    paths = fetch("kbert/kgs", tmp_path, mirror, progress=False)
    assert [p.name for p in paths] == ["HowNet.spo", "Medical.spo"]
    assert not list(tmp_path.rglob("*.part"))
    again = fetch("kbert/kgs/Medical.spo", tmp_path, mirror=tmp_path / "nowhere", progress=False)
    assert again == [paths[1]]  # present and valid: nothing to copy


def test_checksum_mismatch_leaves_nothing(tmp_path, mirror):
    bad_mirror = tmp_path / "mirror"
    (bad_mirror / "kbert/kgs").mkdir(parents=True)
    (bad_mirror / "kbert/kgs/Medical.spo").write_text("眼睛发红\t类别\t症状\n", encoding="utf-8")
    with pytest.raises(ChecksumError, match="sha256"):
        fetch("kbert/kgs/Medical.spo", tmp_path / "data", bad_mirror, progress=False)
    assert not (tmp_path / "data/kbert/kgs/Medical.spo").exists()
    assert not list((tmp_path / "data").rglob("*.part"))


def test_missing_data_without_mirror_names_the_option(tmp_path, monkeypatch):
    monkeypatch.delenv("KBENCH_DATA_MIRROR", raising=False)
    entry = read_manifest()["kbert/kgs/Medical.spo"]
    offline = {entry.name: replace(entry, url="http://127.0.0.1:9/Medical.spo")}
    with pytest.raises(DataError, match="KBENCH_DATA_MIRROR"):
        fetch(entry.name, tmp_path, manifest=offline, progress=False)
    assert not list(tmp_path.rglob("*.part"))


def test_unknown_data_and_kg_names():
    with pytest.raises(UnknownNameError, match="groups: "):
        select("kbert/nothing-here")
    with pytest.raises(UnknownNameError, match="HowNet"):
        load_kg("CN-DBpedia")
    with pytest.raises(UnknownNameError):
        load_kbert_dataset("imdb", "train")
    with pytest.raises(UnknownNameError):
        load_kbert_dataset("chnsenticorp", "validation")
    for name in ("msra_ner", "financial_ner"):  # declared for evaluation only: their train files are not in the manifest
        with pytest.raises(UnknownNameError, match="no train split"):
            load_kbert_dataset(name, "train")
        assert not any(entry.startswith(f"kbert/datasets/{name}/train") for entry in read_manifest())


def test_missing_local_file_without_fetch(tmp_path):
    with pytest.raises(DataError, match="kbench data fetch"):
        local_path("kbert/kgs/HowNet.spo", tmp_path, fetch_missing=False)


def test_kbert_loaders(real_data):
    split = load_kbert_dataset("chnsenticorp", "test", real_data, limit=5)
    assert len(split.texts) == 5 and set(split.labels) <= {0, 1}
    assert split.texts[0].startswith("这个宾馆比较陈旧了")
    ner = load_kbert_dataset("medical_ner", "dev", real_data, limit=3)
    assert all(len(units) == len(tags) for units, tags in zip(ner.texts, ner.labels))


def test_malformed_dataset_row(tmp_path):
    (tmp_path / "kbert/datasets/chnsenticorp").mkdir(parents=True)
    (tmp_path / "kbert/datasets/chnsenticorp/dev.tsv").write_text("label\ttext_a\n1\tgood\nbroken\n")
    with pytest.raises(DataError, match="dev.tsv:3"):
        load_kbert_dataset("chnsenticorp", "dev", tmp_path)


def test_world_is_deterministic_and_person_disjoint():
    a, b = make_world(seed=4), make_world(seed=4)
    assert [e.text for e in a.test] == [e.text for e in b.test] and list(a.kg) == list(b.kg)
    people = [{e.person for e in split} for split in (a.train, a.dev, a.test)]
    assert not (people[0] & people[1]) and not (people[0] & people[2]) and not (people[1] & people[2])
    assert (len(a.train), len(a.dev), len(a.test)) == (600, 120, 240)
    assert make_world(seed=5).train[0].text != a.train[0].text


def test_world_labels_follow_the_kg():
    world = make_world(people=(20, 5, 5), seed=1)
    continent = {s: o for s, p, o in world.kg if p == "part of"}
    for example in world.train + world.test:
        assert example.text.startswith(example.person)
        city = world.kg.lookup(example.person)[0][1]
        assert world.kg.lookup(example.person)[0][0] == "born in"
        assert world.labels[example.label] == continent[city]
    assert 0.25 <= world.chance < 0.6


def test_world_distractors_and_bad_sizes():
    plain = make_world(people=(10, 2, 2), distractors=False)
    assert all(" with " not in e.text and " met " not in e.text for e in plain.train)
    assert any(" met " in e.text or " with " in e.text for e in make_world(people=(30, 2, 2)).train)
    with pytest.raises(InputError):
        make_world(people=(0, 1, 1))
