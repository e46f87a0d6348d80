"""Knowledge probes: ranks from a hand-made scorer, multi-piece masks, held-out templates."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from kbench.data.fact_corpus import WORLD_TEMPLATES, fact_corpus
from kbench.errors import InputError
from kbench.probes import MaskedLMScorer, ProbeItem, rank_of, run_probe

CITIES = ("Paris", "Lagos", "Lima", "Tokyo")


def item(gold="Lagos", subject="Muman Nakel"):
    return ProbeItem(subject, "born in", gold, f"{subject} is a native of [Y] .", CITIES)


def test_rank_of_hand_cases():
    assert rank_of({"a": 3.0, "b": 2.0, "c": 1.0}, "a") == 1
    assert rank_of({"a": 3.0, "b": 2.0, "c": 1.0}, "c") == 3
    assert rank_of({"a": 1.0, "b": 1.0, "c": 0.0}, "a") == 2          # ties: pessimistic
    assert rank_of({"a": float("nan"), "b": 0.0}, "a") == 2
    with pytest.raises(InputError, match="gold"):
        rank_of({"a": 1.0}, "z")


@given(st.integers(2, 40))
def test_a_constant_scorer_gets_the_worst_rank(n):
    scores = {str(i): 0.5 for i in range(n)}
    assert rank_of(scores, "0") == n


def test_run_probe_with_a_hand_made_scorer():
    items = [item("Lagos"), item("Paris", "Vapa Gebi"), item("Tokyo", "Zovo Kunor")]
    preference = {"Lagos": 4.0, "Paris": 3.0, "Lima": 2.0, "Tokyo": 1.0}
    result = run_probe(items, lambda batch: [dict(preference) for _ in batch])
    assert result.ranks == [1, 2, 4] and result.top == ["Lagos"] * 3
    assert result.mrr() == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)
    assert result.hits(1) == pytest.approx(1 / 3) and result.hits(2) == pytest.approx(2 / 3)
    assert result.table()[-1]["relation"] == "all"
    with pytest.raises(InputError, match="no probe item"):
        result.mrr("works for")
    with pytest.raises(InputError, match="score tables"):
        run_probe(items, lambda batch: [])
    with pytest.raises(InputError, match="no items"):
        run_probe([], lambda batch: [])


def test_bad_items():
    with pytest.raises(InputError, match="exactly one"):
        ProbeItem("a", "r", "Paris", "a is in Paris .", CITIES)
    with pytest.raises(InputError, match="not among"):
        ProbeItem("a", "r", "Rome", "a is in [Y] .", CITIES)


class FakeLM(torch.nn.Module):
    """Puts all its mass on the pieces of ``favourite`` at consecutive [MASK]s; records the mask counts."""

    def __init__(self, tokenizer, favourite: str):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.tokenizer, self.pieces = tokenizer, tokenizer(favourite, add_special_tokens=False)["input_ids"]
        self.mask_counts = []

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        logits = torch.zeros(*input_ids.shape, len(self.tokenizer))
        for row in range(input_ids.shape[0]):
            positions = (input_ids[row] == self.tokenizer.mask_token_id).nonzero().flatten()
            self.mask_counts.append(len(positions))
            for k, position in enumerate(positions):
                if k < len(self.pieces):
                    logits[row, position, self.pieces[k]] = 20.0
        return type("Out", (), {"logits": logits})()


def test_masked_lm_scorer_puts_one_mask_per_piece():
    from kbench.encoders import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    candidates = ("Paris", "Muman Nakel", "Zovo", "Lagos")
    lengths = {len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in candidates}
    assert len(lengths) > 1                     # the test needs multi-piece names of different lengths
    fake = FakeLM(tokenizer, "Zovo")
    probe_item = ProbeItem("X", "born in", "Zovo", "X was born in [Y] .", candidates)
    result = run_probe([probe_item], MaskedLMScorer(fake, tokenizer))
    assert result.ranks == [1] and sorted(fake.mask_counts) == sorted(lengths)


def test_fact_corpus_holds_each_probe_template_out():
    triples = [(f"P{i}", "born in", CITIES[i % 4]) for i in range(40)] + [("Lima", "part of", "America")]
    corpus = fact_corpus(triples, seed=3)
    assert len(corpus.texts) == 2 * 41
    for probe_item in corpus.probe:
        held = probe_item.statement.replace("[Y]", probe_item.gold)
        assert held not in corpus.texts
        assert sum(t.startswith(probe_item.subject + " ") or f" {probe_item.subject} " in t
                   for t in corpus.texts) == 2
    used = {form for form in WORLD_TEMPLATES["born in"] if any(
        form.format(s=s, o=o) in corpus.texts for s, _, o in triples)}
    assert used == set(WORLD_TEMPLATES["born in"])       # every template is seen, for other facts
    assert all(p.relation == "born in" for p in corpus.probe)   # "part of" has one object: not asked


def test_fact_corpus_bad_inputs():
    with pytest.raises(InputError, match="no triple"):
        fact_corpus([("a", "likes", "b")])
    with pytest.raises(InputError, match="two templates"):
        fact_corpus([("a", "r", "b")], {"r": ["{s} r {o}"]})
    with pytest.raises(InputError, match="one \\{s\\}"):
        fact_corpus([("a", "r", "b")], {"r": ["{s} r", "{s} r {o}"]})


# --- the probe's controls: subject swapped, answer prior, chance --------------------------------------------------

PEOPLE = {"Muman Nakel": "Lagos", "Vapa Gebi": "Paris", "Zovo Kunor": "Lagos", "Kira Dale": "Lima"}


def facts():
    return [item(gold, subject) for subject, gold in PEOPLE.items()]


def knower(batch):
    """Knows every person's city: reads the subject out of the statement."""
    return [{c: float(c == PEOPLE[next(s for s in PEOPLE if s in i.statement)]) for c in CITIES} for i in batch]


def template_reader(batch):
    """Reads only the template: the same preference for every subject (the answer prior's shape)."""
    return [{"Lagos": 3.0, "Paris": 2.0, "Lima": 1.0, "Tokyo": 0.0} for _ in batch]


def test_swapped_items_change_the_subject_to_one_with_another_answer_and_keep_the_gold():
    from kbench.probes import swapped_items

    items = facts()
    swapped = swapped_items(items, seed=3)
    for before, after in zip(items, swapped):
        assert after.gold == before.gold and after.relation == before.relation
        assert after.subject != before.subject and after.subject in PEOPLE
        assert PEOPLE[after.subject] != before.gold         # another answer: the swap changes the fact
        assert after.statement == before.statement.replace(before.subject, after.subject)
    assert swapped_items(items, seed=3) == swapped           # seeded


def test_swapped_items_bad_inputs():
    from kbench.probes import swapped_items

    with pytest.raises(InputError, match="one subject"):
        swapped_items([item("Lagos")])
    lone = ProbeItem("Someone", "born in", "Lima", "A person is a native of [Y] .", CITIES)
    with pytest.raises(InputError, match="does not contain its subject"):
        swapped_items([lone, item("Paris", "Vapa Gebi")])


def test_the_swap_separates_a_model_that_knows_the_facts_from_one_that_reads_the_template():
    from kbench.probes import swapped_items

    items = facts()
    for scorer, knows in ((knower, True), (template_reader, False)):
        result = run_probe(items, scorer)
        result.swapped = run_probe(swapped_items(items), scorer)
        if knows:
            assert result.mrr() == 1.0 and result.knowledge > 0.5
        else:
            assert result.knowledge == 0.0                    # the template reader does not move


def test_the_answer_prior_ranks_by_answer_frequency_ignoring_the_subject():
    from kbench.probes import prior_result

    items = facts()
    prior = prior_result(items)                                # Lagos twice, Paris and Lima once, Tokyo never
    assert prior.top == ["Lagos"] * 4
    assert prior.ranks == [1, 3, 1, 2]                         # Lima before Paris: ties broken by name, not pessimistic
    training = [("born in", "Tokyo")] * 3
    assert prior_result(items, training).top == ["Tokyo"] * 4
    table = run_probe(items, knower).table(prior)
    assert table[-1]["prior mrr"] == pytest.approx(prior.mrr())


@given(st.integers(1, 30))
def test_chance_mrr_is_the_mean_reciprocal_rank_of_a_uniform_ranking(n):
    from kbench.probes import chance_mrr

    names = tuple(f"c{i}" for i in range(n))
    single = ProbeItem("a", "r", "c0", "a is [Y] .", names)
    assert chance_mrr([single]) == pytest.approx(sum(1 / r for r in range(1, n + 1)) / n)


def test_knowledge_needs_the_swapped_run():
    with pytest.raises(InputError, match="swapped"):
        run_probe(facts(), knower).knowledge
