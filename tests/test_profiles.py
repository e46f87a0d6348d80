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
