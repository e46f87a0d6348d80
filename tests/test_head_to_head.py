"""The overview's head-to-head under equal inputs: each link handed to each method as its paper takes an entity."""
from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.errors import InputError
from kbench.head_to_head import (HEAD_TO_HEAD, LINKS, equal_inputs_frame, head_to_head_model, linked_text,
                                 named_words, relink, text_encoder)
from kbench.text.links import Candidate, LinkedMention


@functools.cache
def world(seed: int = 0):
    from kbench.data import make_linking_world

    return make_linking_world(seed=seed)


def table(kg):
    entities = sorted({t[0] for t in kg} | {t[2] for t in kg})
    return torch.randn(len(entities), 8, generator=torch.Generator().manual_seed(0)), {e: i for i, e in
                                                                                        enumerate(entities)}


def build(method, link=None, seed=0):
    vectors, ids = table(world(seed).kg)
    return head_to_head_model(4, vectors, ids, world(seed).kg, "tiny", method, link=link, layers=None, max_length=64)


def test_relink_hands_over_the_gold_or_the_priors_entity_as_the_only_candidate():
    mention = LinkedMention(2, 3, "Zuma", [Candidate("Zuma_1", 0.7), Candidate("Zuma_2", 0.3)], chosen="Zuma_2")
    gold, prior = relink(mention, "gold"), relink(mention, "prior")
    assert (gold.chosen, [c.entity for c in gold.candidates]) == ("Zuma_2", ["Zuma_2"])
    assert (prior.chosen, [c.entity for c in prior.candidates]) == ("Zuma_1", ["Zuma_1"])
    assert relink(mention, "candidates") is mention and mention.chosen == "Zuma_2"      # the original is untouched
    assert relink(LinkedMention(0, 1, "x"), "prior").chosen is None                     # no candidate: no link
    with pytest.raises(InputError, match="unknown link"):
        relink(mention, "oracle")


def test_named_words_write_the_kg_name_over_each_linked_span():
    words = "the new chief of Acme Corp met Zuma".split()
    mentions = [LinkedMention(4, 6, "Acme Corp", chosen="Acme"), LinkedMention(7, 8, "Zuma", chosen="Zuma_3"),
                LinkedMention(1, 2, "new")]
    assert named_words((words, mentions)) == "the new chief of Acme met Zuma_3".split()


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 3), st.sampled_from(LINKS))
def test_every_link_keeps_the_words_and_spans_and_gold_keeps_the_gold_entity(seed, link):
    for example in world(seed).test[:20]:
        text = (example.words, example.mentions())
        words, mentions = linked_text(text, link)
        assert words == example.words and [(m.start, m.end) for m in mentions] == [(m.start, m.end) for m in text[1]]
        if link == "gold":
            assert [m.chosen for m in mentions] == [m.chosen for m in text[1]]
        if link != "candidates":
            assert all(len(m.candidates) == 1 and m.candidates[0].entity == m.chosen for m in mentions)


def test_each_method_reads_the_link_it_is_handed():
    w = world(0)
    example = next(e for e in w.test if e.mention.candidates[0].entity != e.mention.chosen)   # the prior is wrong
    gold, top = example.mention.chosen, example.mention.candidates[0].entity
    text = (example.words, example.mentions())
    vectors, ids = table(w.kg)
    for link, person in (("gold", gold), ("prior", top)):
        ernie = build("ernie", link)
        assert ids[person] in ernie.dataset([text])[0].entity_ids.tolist()
        knowbert = build("knowbert", link).dataset([text])[0]
        assert ids[person] in knowbert.candidates.ravel() and (knowbert.candidates >= 0).sum() == 2   # one each
        kbert = build("kbert", link)
        tree = kbert.dataset([text])[0]
        injected = kbert.tokenizer.convert_ids_to_tokens(tree.input_ids[tree.branch_index >= 0].tolist())
        city = next(o for s, p, o in w.kg if s == person and p == "born in")
        continent = next(o for s, p, o in w.kg if s == person and p == "comes from")
        # the person's first two branches, as K-BERT's authors' code takes them (MAX_ENTITIES = 2)
        assert " ".join(injected).replace(" ##", "").count("born in " + city.lower()) == 1
        assert "comes from " + continent.lower() in " ".join(injected).replace(" ##", "")
    own = build("knowbert", "candidates").dataset([text])[0]
    assert (own.candidates >= 0).sum() == len(example.mention.candidates) + 1   # its paper's candidates
    assert build("ernie", "gold").dataset([text])[0].entity_ids.tolist() == \
        build("ernie").dataset([text])[0].entity_ids.tolist()          # ERNIE's own input is the gold link here
    with pytest.raises(InputError, match="unknown link"):
        head_to_head_model(4, vectors, ids, w.kg, "tiny", "ernie", link="oracle")


def test_head_to_head_models_and_their_text_encoders():
    models = {v.name: build(v.options["method"], v.options.get("link")) for v in HEAD_TO_HEAD}
    for model in models.values():
        assert text_encoder(model).config.num_hidden_layers == 2
    example = world(0).test[0]
    kbert = models["kbert"]
    from_linked = kbert.dataset([(example.words, example.mentions())])[0]
    from_words = kbert.dataset([example.words])[0]
    assert from_linked.input_ids.tolist() == from_words.input_ids.tolist()     # K-BERT's own input: the words
    with pytest.raises(InputError, match="unknown method"):
        build("oracle")
    with pytest.raises(InputError, match="text encoder"):
        text_encoder(torch.nn.Linear(2, 2))


def test_kbert_by_name_never_reaches_a_persons_facts_in_the_linking_world():
    """K-BERT on its own input: a person is named only by an ambiguous family name, never by the KG's name for
    them, so the sentence tree can hold the second entity's branches but not the person's."""
    w = world(0)
    people = {t[0] for t in w.kg if t[1] == "born in"}
    model = build("kbert")
    examples = w.train + w.dev + w.test
    trees = model.dataset([(e.words, e.mentions()) for e in examples])
    injected = 0
    for example, tree in zip(examples, trees):
        assert not people & set(example.words)
        branch = tree.branch_index >= 0
        injected += bool(branch.any())
        tokens = model.tokenizer.convert_ids_to_tokens(tree.input_ids[branch].tolist())
        assert "born" not in tokens                                # no "born in" fact of anyone is injected
    assert injected > len(examples) // 4                            # ... while other entities' branches are


def test_the_equal_inputs_table_puts_each_variant_under_its_link():
    frame = equal_inputs_frame({"bert": 0.25, "ernie": 0.6, "ernie_prior": 0.26, "kbert_gold": 0.4},
                               {"ernie_test_accuracy": [0.5, 0.7]})
    rows = frame.set_index("method")
    assert list(rows.columns) == ["gold link (upper bound)", "prior's link (one shared linker)"]
    assert rows.loc["ERNIE"].tolist() == ["0.600 [0.500, 0.700]", "0.260"]
    assert rows.loc["K-BERT"].tolist() == ["0.400", "—"]
    assert rows.loc["BERT (no knowledge)"].tolist() == ["0.250", "0.250"]      # no link: the same in every column
    assert "KnowBert" not in rows.index
    with pytest.raises(InputError, match="unknown head-to-head variant"):
        equal_inputs_frame({"oracle": 1.0})


def test_the_profiles_run_equal_inputs_and_full_adds_each_papers_own():
    from kbench.profiles.overview import CHOICES, EQUAL_INPUTS, setup

    names = [v.name for v in HEAD_TO_HEAD]
    assert set(EQUAL_INPUTS) <= set(names) and CHOICES["smoke"]["variants"] == EQUAL_INPUTS
    assert set(CHOICES["full"]["variants"]) == set(names)
    for name in EQUAL_INPUTS:   # under equal inputs every knowledge variant is handed the gold or the prior's link
        options = next(v for v in HEAD_TO_HEAD if v.name == name).options
        assert options["method"] == "bert" or options["link"] in ("gold", "prior")
    links = {next(v for v in HEAD_TO_HEAD if v.name == n).options.get("link") for n in EQUAL_INPUTS}
    assert links == {None, "gold", "prior"}
    assert setup("smoke").variants == EQUAL_INPUTS
