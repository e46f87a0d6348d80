"""WordNet's domains: the parser, domain text without task text, the gloss task and the disorder-mention task."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.data.wordnet_domains import (DOMAINS, disease_mentions, disorder_names, domain_texts, gloss_task,
                                         read_glosses, tag_mentions)
from kbench.errors import DataError, InputError, UnknownNameError
from kbench.text.vocabulary import text_key

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"
# offset lexfile(hex-ish decimal) pos count(hex) lemma lexid ... pointer-count pointers | gloss
LINES = [
    '00000001 08 n 01 arm 0 001 ~ 00000002 n 0000 | a human limb; "he broke his arm"\n',
    '00000002 08 n 02 forearm 0 lower_arm 0 001 @ 00000001 n 0000 | the part of the arm between elbow and wrist\n',
    '00000003 27 n 01 salt 0 000 | a compound formed by replacing hydrogen; "add salt"; "Add  SALT"\n',
]


def write_wordnet(tmp_path, lines=LINES):
    (tmp_path / "data.noun").write_text(HEADER + "".join(lines), encoding="utf-8")
    return str(tmp_path)


def test_the_parser_reads_lexname_lemmas_gloss_examples_and_hyponyms(tmp_path):
    glosses = read_glosses(write_wordnet(tmp_path))
    assert [g.offset for g in glosses] == ["00000001", "00000002", "00000003"]
    arm, forearm, salt = glosses
    assert arm.lexname == "noun.body" and salt.lexname == "noun.substance"
    assert forearm.lemmas == ("forearm", "lower arm")
    assert arm.definition == "a human limb" and arm.examples == ("he broke his arm",)
    assert arm.hyponyms == ("00000002",) and forearm.hyponyms == ()          # '@' is a hypernym, not a hyponym
    assert salt.examples == ("add salt", "Add  SALT")


def test_a_broken_line_and_a_missing_file_are_data_errors_naming_them(tmp_path):
    with pytest.raises(DataError, match=r"data.noun:2: not a WordNet data line"):
        read_glosses(write_wordnet(tmp_path, ["00000001 xx n 01 arm 0 000 | a limb\n"]))
    with pytest.raises(DataError, match="does not exist"):
        read_glosses(str(tmp_path / "nowhere"))


def test_domain_text_is_deduplicated_and_leaves_out_excluded_text_by_its_words(tmp_path):
    source = write_wordnet(tmp_path)
    assert domain_texts("science", source=source) == ["a compound formed by replacing hydrogen", "add salt"]
    body = domain_texts("biomedical", source=source)
    assert body == ["a human limb", "he broke his arm", "the part of the arm between elbow and wrist"]
    kept = domain_texts("biomedical", exclude=[["He", "broke", "his", "ARM"]], source=source)
    assert kept == ["the part of the arm between elbow and wrist"]     # the held-out example's gloss goes too


def test_bad_domains_and_an_empty_domain_are_named_errors(tmp_path):
    source = write_wordnet(tmp_path)
    with pytest.raises(UnknownNameError, match="unknown domain 'physics'"):
        domain_texts("physics", source=source)
    with pytest.raises(InputError, match="no text left"):
        domain_texts("society", source=source)
    with pytest.raises(InputError, match="at least 5"):
        gloss_task("biomedical", per_class=2)


def test_the_gloss_task_labels_each_definition_with_its_file_and_splits_by_content():
    labels, splits = gloss_task("science", per_class=40, seed=3)
    assert labels == list(DOMAINS["science"])
    by_text = {g.definition: g.lexname for g in read_glosses()}
    keys = [set(map(text_key, split.texts)) for split in splits]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    for split in splits:
        assert all(labels[label] == by_text[text] for text, label in zip(split.texts, split.labels))
    assert sum(len(s.texts) for s in splits) == 160
    assert gloss_task("science", per_class=40, seed=3)[1][2].texts == splits[2].texts
    assert gloss_task("science", per_class=40, seed=4)[1][2].texts != splits[2].texts


def test_disorder_names_are_the_unambiguous_lemmas_under_the_roots():
    names = disorder_names()
    assert {"measles", "diabetes", "heart failure", "tuberculosis", "disease"} <= names
    assert "cold" not in names and "consumption" not in names         # each has a sense outside disorders
    assert "arm" not in names and "salt" not in names


def test_tagging_marks_the_longest_mention_in_any_case():
    names = {"heart failure", "heart", "failure of nerve"}
    words = "Congestive HEART failure of nerve and heart".split()
    assert tag_mentions(words, names) == ["O", "B-Disease", "I-Disease", "O", "O", "O", "B-Disease"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["the", "flu", "of", "acute", "renal", "failure", "x"]), max_size=12))
def test_every_tag_sequence_is_valid_bio_and_covers_only_names(words):
    names = {"flu", "acute renal failure", "renal failure"}
    tags = tag_mentions(words, names)
    assert len(tags) == len(words)
    spans, start = [], None
    for i, tag in enumerate(tags + ["O"]):
        if tag != "I-Disease" and start is not None:
            spans.append(" ".join(words[start:i]))
            start = None
        if tag == "B-Disease":
            start = i
        assert tag != "I-Disease" or tags[i - 1] in ("B-Disease", "I-Disease")
    assert all(span in names for span in spans)
    assert "flu" not in [w for w, t in zip(words, tags) if t == "O"]


def test_disease_mentions_are_sentences_with_a_mention_split_by_content():
    splits = disease_mentions(seed=0)
    assert all(len(words) == len(tags) for s in splits for words, tags in zip(s.texts, s.labels))
    assert all("B-Disease" in tags for s in splits for tags in s.labels)
    keys = [set(map(text_key, s.texts)) for s in splits]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert 900 < len(splits[0].texts) < 1200
    held_out = [w for s in splits[1:] for w in s.texts]
    assert not set(map(text_key, held_out)) & set(map(text_key, domain_texts("biomedical", exclude=held_out)))
