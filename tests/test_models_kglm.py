"""KGLM: the path sum over parents and relations, the copy over alias tokens, the recent-entity cutoff, the KG
reaching the output, a reversed triple taking its fact away, greedy decoding and the KG edit following the parent and
edge the heads pick, the token scores as the type, entity and word terms by hand, the LSTM without KG heads as KGLM's
no-entity path (and its one guess for every held-out person), UPP's penalty, the answer prior, the named errors, and
the linked world (held-out people only in the KG; annotations that the KG explains)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.data.linked_world import (CUTOFF, REFLEXIVE, LinkedDocument, Mention, edges_of, link, make_linked_world,
                                      recent_entities)
from kbench.errors import InputError, UnknownNameError
from kbench.kg import KnowledgeGraph
from kbench.kg.embeddings import FrozenEmbeddings
from kbench.models.kglm import (KGLM, UNK, completion_accuracy, edit_follows, edit_shares, evaluate, fact_completion,
                                generate, next_word_distribution, path_probabilities, prior_completion,
                                related_log_prob, token_scores, type_id, word_distribution)


def vectors_for(kg: KnowledgeGraph, dim: int = 8, seed: int = 0) -> FrozenEmbeddings:
    """Random KG vectors with PyKEEN's id convention (sorted labels): the tests need shapes, not TransE."""
    generator = torch.Generator().manual_seed(seed)
    entities = sorted({s for s, _, _ in kg} | {o for _, _, o in kg})
    relations = sorted({r for _, r, _ in kg})
    return FrozenEmbeddings("random", {e: i for i, e in enumerate(entities)}, {r: i for i, r in enumerate(relations)},
                            torch.randn(len(entities), dim, generator=generator),
                            torch.randn(len(relations), dim, generator=generator), 0)


TOY = [("Kovi Dana", "born in", "Paris"), ("Kovi Dana", "lives in", "Paris"), ("Kovi Dana", "works for", "Zolo"),
       ("Zolo", "based in", "Paris"), ("Zolo", "based in", "Rome"), ("Paris", "located in", "France"),
       ("Rome", "located in", "Italy")]
WORDS = ["works", "for", ".", "is", "based", "in", "was", "born", "Paris", "Rome", "France", "Italy", "Zolo", "Dana"]


@pytest.fixture()
def toy():
    kg = KnowledgeGraph.from_triples(TOY)
    aliases = {e: tuple(e.split()) for e in edges_of(kg)}
    return kg, aliases, vectors_for(kg)


def toy_document(kg, aliases, parts):
    return link(parts, edges_of(kg), aliases, "Kovi Dana")


E = lambda name: ("entity", name)
# "Kovi Dana works for Zolo . Zolo is based in Paris ." : Paris is reached from Kovi Dana (born in, lives in) and
# from Zolo (based in) -- two parents, and two relations from one of them
TWO_PATHS = [E("Kovi Dana"), "works", "for", E("Zolo"), ".", E("Zolo"), "is", "based", "in", E("Paris"), "."]


# ---- the linked world -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    return make_linked_world((40, 8), firms=4, seed=3)


def test_an_acquaintance_is_named_once_in_all_the_text_and_about_half_the_names_are_frequent(world):
    for person, acquaintance in world.acquaintances.items():
        mentions = [m for d in world.train + world.test for m in d.mentions if m.entity == acquaintance]
        assert len(mentions) <= 1 and all(m.paths == ((person, "knows"),) for m in mentions)
    vocabulary = set(world.vocabulary())
    known = [p for p in world.train_people if p.split()[0] in vocabulary]
    assert 0.25 < len(known) / len(world.train_people) < 0.75


def test_held_out_people_are_in_the_kg_and_in_no_training_text(world):
    training_tokens = {t for d in world.train for t in d.tokens}
    held_out = world.test_people + [world.acquaintances[p] for p in world.test_people]
    for person in held_out:
        assert not set(person.split()) & training_tokens, f"{person} is named in the training text"
        assert {r for s, r, _ in world.kg if s == person} >= {"born in", "works as", "works for"}
    assert all(d.subject in world.test_people for d in world.test)
    vocabulary = set(world.vocabulary())
    assert not {w for p in held_out for w in p.split()} & vocabulary
    # the vocabulary keeps frequent names and leaves the rare ones out, as the training text has both
    named = {p: sum(d.tokens.count(p.split()[0]) for d in world.train) for p in world.train_people}
    assert any(p.split()[0] in vocabulary for p, n in named.items() if n >= 3)
    assert any(p.split()[0] not in vocabulary for p, n in named.items() if n < 3)


def test_every_related_mention_is_explained_by_the_kg_from_a_recent_entity_and_no_path_is_missed(world):
    triples = set(world.kg)
    related = 0
    for document in world.train + world.test:
        entities = [e for _, e in document.annotations()]
        for mention in document.mentions:
            recent = recent_entities(entities, mention.start, world.cutoff)
            every = {(p, r) for p in recent for r, t in world.edges[p] if t == mention.entity}
            assert set(mention.paths) == every
            for parent, relation in mention.paths:
                assert parent in recent
                assert (parent, relation, mention.entity) in triples or (relation == REFLEXIVE
                                                                         and parent == mention.entity)
            related += mention.kind == "related"
            assert document.tokens[mention.start:mention.end] == world.aliases[mention.entity]
        for blank in document.blanks:
            assert document.tokens[blank.position] == blank.answer
            assert (document.subject, blank.relation, blank.entity) in triples
    assert related > 0
    multiple = [m for d in world.train for m in d.mentions if len({p for p, _ in m.paths}) > 1]
    assert multiple, "the world should hold mentions reached from two parents"


def test_a_mention_is_related_only_within_the_cutoff(toy):
    kg, aliases, _ = toy
    filler = ["."] * 5
    near = link([E("Zolo")] + filler + [E("Rome")], edges_of(kg), aliases, "x", cutoff=6)
    far = link([E("Zolo")] + filler + ["."] + [E("Rome")], edges_of(kg), aliases, "x", cutoff=6)
    assert near.mentions[1].kind == "related" and near.mentions[1].paths == (("Zolo", "based in"),)
    assert far.mentions[1].kind == "new" and far.mentions[1].paths == ()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([None, "a", "b", "c"]), min_size=1, max_size=40), st.integers(1, 12),
       st.data())
def test_recent_entities_are_those_of_the_last_cutoff_tokens(entities, cutoff, data):
    position = data.draw(st.integers(0, len(entities)))
    found = recent_entities(entities, position, cutoff)
    by_definition = {e for s, e in enumerate(entities[:position]) if e is not None and position - s <= cutoff}
    assert set(found) == by_definition and len(found) == len(set(found))
    if found:                                     # the most recently mentioned first
        last = {e: max(s for s in range(position) if entities[s] == e) for e in found}
        assert found == sorted(found, key=lambda e: -last[e])


# ---- the model --------------------------------------------------------------------------------------------------
def states(model, document):
    batch = model.collate([model.encode(document)])
    with torch.no_grad():
        h, _ = model.encode_states(batch["input_ids"])
    return batch, model.split(h[0])


def test_the_path_sum_adds_every_parent_and_relation_that_reaches_the_entity(toy):
    kg, aliases, vectors = toy
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=1).eval()
    document = toy_document(kg, aliases, TWO_PATHS)
    paris = document.mentions[-1]
    assert set(paris.paths) == {("Zolo", "based in"), ("Kovi Dana", "born in"), ("Kovi Dana", "lives in")}
    batch, (h_x, h_p, h_r) = states(model, document)
    h_p, h_r = h_p.detach(), h_r.detach()
    t = paris.start
    # by hand: p(parent) over the recent entities, p(edge | parent) over the parent's edges
    recent = recent_entities([e for _, e in document.annotations()], t)
    parent_scores = [float(model.entity_table[model.entity_to_id[p]] @ h_p[t]) for p in recent]
    p_parent = dict(zip(recent, np.exp(parent_scores) / np.exp(parent_scores).sum()))
    total = 0.0
    for parent in recent:
        edges = edges_of(kg)[parent]
        scores = [float(model.relation_vectors.detach()[model.relation_to_id[r]] @ h_r[t]) for r, _ in edges]
        p_edge = np.exp(scores) / np.exp(scores).sum()
        total += p_parent[parent] * sum(p for (_, tail), p in zip(edges, p_edge) if tail == "Paris")
    with torch.no_grad():
        out = model(**batch)
        alone = related_log_prob(model, h_p[t:t + 1], h_r[t:t + 1], batch["related_candidates"][-1:],
                                 batch["related_reach"][-1:])
    assert out["entity_logp"][0, t].item() == pytest.approx(math.log(total), abs=1e-5)
    assert alone.item() == pytest.approx(math.log(total), abs=1e-5)
    paths = path_probabilities(model, document, t)                # the notebook's table of the same paths
    assert {(p, r) for p, r, _ in paths} == set(paris.paths) and sum(p for _, _, p in paths) == pytest.approx(total)
    # one path alone is less: dropping Zolo's edge, or Kovi Dana's second relation, lowers p(Paris)
    reach = batch["related_reach"][-1:].clone()
    reach[0, recent.index("Zolo")] = False
    with torch.no_grad():
        fewer = related_log_prob(model, h_p[t:t + 1], h_r[t:t + 1], batch["related_candidates"][-1:], reach)
    assert fewer.item() < math.log(total) - 1e-4


def test_a_related_mention_with_no_path_in_the_models_kg_is_a_named_error(toy):
    kg, aliases, vectors = toy
    document = toy_document(kg, aliases, TWO_PATHS)
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6)
    model.set_kg(KnowledgeGraph.from_triples([t for t in TOY if t[2] != "Paris"] + [("Zolo", "based in", "Rome")]))
    with pytest.raises(InputError, match="'Paris'.*no path from a recent entity"):
        model.collate([model.encode(document)])


def test_the_copy_adds_alias_mass_to_vocabulary_mass_and_an_unknown_alias_word_is_only_copied(toy):
    kg, aliases, vectors = toy
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=2, unknown_types=10).eval()
    h_x = torch.randn(6, generator=torch.Generator().manual_seed(0))
    person = model.entity_to_id["Kovi Dana"]                  # alias: Kovi (not a word of the vocabulary), Dana
    with torch.no_grad():
        words = word_distribution(model, h_x, person)
        plain = word_distribution(model, h_x, 0)
    assert sum(p for p, _ in words.values()) == pytest.approx(1.0, abs=1e-5)
    assert "Kovi" not in model.word_to_id and words["Kovi"][1] == pytest.approx(1.0)          # copy mass only
    assert 0.0 < words["Dana"][1] < 1.0                                                       # both masses
    assert "Kovi" not in plain and plain["Dana"][1] == 0.0                                    # no entity, no copy
    # the forward pass scores the same words: an unknown copied word is <unk>'s vocabulary mass plus its copy
    document = LinkedDocument("Kovi Dana", ("Kovi", "Dana"), (Mention(0, 2, "Kovi Dana", "new"),))
    batch = model.collate([model.encode(document)])
    with torch.no_grad():
        h, _ = model.encode_states(batch["input_ids"])
        out = model(**batch)
        first = word_distribution(model, model.split(h[0, 0])[0], person)
    assert math.exp(out["word_ppl"][0, 0]) == pytest.approx(first["Kovi"][0] + first[UNK][0], abs=1e-5)
    assert math.exp(out["word_logp"][0, 0]) == pytest.approx(first["Kovi"][0], abs=1e-5)     # trained by copying
    # UPP divides the vocabulary's <unk> mass by |U| and leaves the copied mass whole
    assert math.exp(out["word_upp"][0, 0]) == pytest.approx(first["Kovi"][0] + first[UNK][0] / 10, abs=1e-5)
    assert batch["unk_copy"][0].tolist() == [1, 0]


def test_changing_a_kg_edge_changes_the_next_word(toy):
    kg, aliases, vectors = toy
    prompt = toy_document(kg, aliases, [E("Kovi Dana"), "was", "born", "in"])
    for knowledge in (True, False):
        model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, knowledge=knowledge, seed=4)
        before = next_word_distribution(model, prompt)
        assert sum(before.values()) == pytest.approx(1.0, abs=1e-5)
        moved = [("Kovi Dana", r, "Rome" if o == "Paris" else o) for s, r, o in TOY if s == "Kovi Dana"]
        model.set_kg(KnowledgeGraph.from_triples(moved + [t for t in TOY if t[0] != "Kovi Dana"]))
        after = next_word_distribution(model, prompt)
        if knowledge:          # born in / lives in now lead to Rome: its probability rises, Paris's falls
            assert after["Rome"] > before["Rome"] + 1e-3 and after["Paris"] < before["Paris"] - 1e-3
        else:                  # the LSTM without KG heads never reads the KG
            assert after == pytest.approx(before)
        model.set_kg(kg)       # one edge moved in place is the same as the KG with that triple changed
        model.move_edge("Kovi Dana", "born in", "Paris", "Rome")
        model.move_edge("Kovi Dana", "lives in", "Paris", "Rome")
        assert next_word_distribution(model, prompt) == pytest.approx(after)
        with pytest.raises(InputError, match="no edge"):
            model.move_edge("Kovi Dana", "born in", "Paris", "Rome")


def test_the_marginal_next_word_is_at_least_its_joint_probability_with_the_gold_annotation(toy):
    kg, aliases, vectors = toy
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=5).eval()
    document = toy_document(kg, aliases, TWO_PATHS)
    t = document.mentions[-1].start                           # Paris, a word of the vocabulary
    batch = model.collate([model.encode(document)])
    with torch.no_grad():
        out = model(**batch)
    joint = math.exp(out["type_logp"][0, t] + out["entity_logp"][0, t] + out["word_ppl"][0, t])
    marginal = next_word_distribution(model, document.prefix(t))["Paris"]
    assert joint < marginal             # p(x) >= p(x, E_gold): gold-annotation perplexity is an upper bound


def test_the_lstm_without_kg_heads_is_kglms_no_entity_path_from_the_same_init(toy):
    kg, aliases, vectors = toy
    kglm = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=7).eval()
    lstm = KGLM(WORDS, kg, aliases, vectors, word_dim=6, knowledge=False, seed=7).eval()
    shared = lstm.state_dict()
    assert all(torch.equal(shared[k], kglm.state_dict()[k]) for k in shared)
    assert set(kglm.state_dict()) - set(shared) >= {"type_head.weight", "relation_vectors", "copy.weight"}
    document = toy_document(kg, aliases, TWO_PATHS)
    batch = kglm.collate([kglm.encode(document)])
    with torch.no_grad():
        with_heads, without = kglm(**batch), lstm(**batch)
    none = batch["types"][0] == type_id("none")
    assert none.any() and torch.allclose(with_heads["word_ppl"][0][none], without["word_ppl"][0][none], atol=1e-6)
    mention = ~none
    assert not torch.allclose(with_heads["word_ppl"][0][mention], without["word_ppl"][0][mention], atol=1e-3)
    assert without["type_logp"].abs().sum() == 0 and without["entity_logp"].abs().sum() == 0


def test_upp_divides_unk_mass_by_the_unknown_types_and_nothing_else(world):
    words = world.vocabulary()
    vectors = vectors_for(world.kg)
    documents = world.test[:4]
    scores = {}
    for types in (1, 50):
        model = KGLM(words, world.kg, world.aliases, vectors, word_dim=8, knowledge=False, unknown_types=types)
        scores[types] = evaluate(model, documents)
    unk = sum(t not in set(words) for d in documents for t in d.tokens)
    n = sum(len(d.tokens) for d in documents)
    assert unk > 0 and scores[1]["upp"] == pytest.approx(scores[1]["ppl"])
    assert math.log(scores[50]["upp"] / scores[50]["ppl"]) == pytest.approx(math.log(50) * unk / n, rel=1e-4)
    assert scores[50]["ppl"] == pytest.approx(scores[1]["ppl"])


def pinned(model, h_x, h_p, h_r, kind="related"):
    """Return ``model`` with its heads set by hand: the last LSTM layer outputs ``[h_x; h_p; h_r]`` whatever it reads
    (input and output gates open, forget gate shut, cell input ``tanh(b)`` with ``tanh(tanh(b))`` the target), the
    type head always says ``kind``, the vocabulary scores are flat (``W_proj`` = 0) and every alias position scores
    ``h_x · 1`` (``W_copy`` = 0, bias large): with ``h_x`` = 0.7 the entity's alias takes most of the word mass."""
    target = torch.cat([h_x, h_p, h_r])
    n = target.numel()
    rnn = model.rnns[-1]
    with torch.no_grad():
        rnn.weight_ih_l0.zero_()
        rnn.weight_hh_l0.zero_()
        rnn.bias_hh_l0.zero_()
        rnn.bias_ih_l0.copy_(torch.cat([torch.full((n,), 30.0), torch.full((n,), -30.0),
                                        torch.atanh(torch.atanh(target)), torch.full((n,), 30.0)]))
        model.type_head.weight.zero_()
        model.type_head.bias.copy_(torch.tensor([9.0 if k == kind else 0.0 for k in ("none", "new", "related",
                                                                                     "continuation")]))
        model.condense.weight.zero_()
        model.condense.bias.zero_()
        model.copy.weight.zero_()
        model.copy.bias.fill_(30.0)
    return model.eval()


def relation_head(model, relation):
    """Make ``relation`` the only relation with a score under ``h_r`` = 0.7 (every other relation vector zero)."""
    with torch.no_grad():
        model.relation_vectors.zero_()
        model.relation_vectors[model.relation_to_id[relation]] = 1.0


PEOPLE_KG = TOY + [("Rasu Pel", "born in", "Rome")]


@pytest.fixture()
def people():
    kg = KnowledgeGraph.from_triples(PEOPLE_KG)
    return kg, {e: tuple(e.split()) for e in edges_of(kg)}, vectors_for(kg)


def test_pinning_the_heads_pins_the_lstm_output(people):
    kg, aliases, vectors = people
    ones = torch.ones(8)
    model = pinned(KGLM(WORDS, kg, aliases, vectors, word_dim=6), 0.7 * torch.ones(6), -0.5 * ones, 0.3 * ones)
    document = toy_document(kg, aliases, TWO_PATHS)
    _, (h_x, h_p, h_r) = states(model, document)
    assert torch.allclose(h_x, torch.full_like(h_x, 0.7), atol=1e-5)
    assert torch.allclose(h_p, torch.full_like(h_p, -0.5), atol=1e-5)
    assert torch.allclose(h_r, torch.full_like(h_r, 0.3), atol=1e-5)


def test_greedy_decoding_takes_the_parent_and_the_edge_the_heads_pick(people):
    kg, aliases, vectors = people
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=0)
    kovi, zolo = (model.entity_table[model.entity_to_id[e]] for e in ("Kovi Dana", "Zolo"))
    prompt = toy_document(kg, aliases, [E("Kovi Dana"), "works", "for", E("Zolo"), "."])     # recent: Zolo, Kovi Dana
    relation_head(model, "works for")
    # h_p along sign(v_Kovi - v_Zolo): Kovi Dana is the parent, and its only "works for" edge leads to Zolo
    pinned(model, 0.7 * torch.ones(6), 0.7 * torch.sign(kovi - zolo), 0.7 * torch.ones(8))
    step = generate(model, prompt, 1)[0]
    assert (step.type, step.parent, step.relation, step.entity) == ("related", "Kovi Dana", "works for", "Zolo")
    assert step.word == "Zolo" and step.copied > 0.9                         # rendered by copying its alias
    # the other sign: Zolo is the parent; its edges score alike, and the first, (Zolo, based in, Paris), is taken
    pinned(model, 0.7 * torch.ones(6), 0.7 * torch.sign(zolo - kovi), 0.7 * torch.ones(8))
    step = generate(model, prompt, 1)[0]
    assert (step.type, step.parent, step.relation, step.entity, step.word) == ("related", "Zolo", "based in",
                                                                               "Paris", "Paris")


def born_and_works(kg, aliases):
    """'Kovi Dana was born in Paris . Kovi Dana works for Zolo .' with its two blanks (Paris at 5, Zolo at 11)."""
    from kbench.data.linked_world import Blank

    document = toy_document(kg, aliases, [E("Kovi Dana"), "was", "born", "in", E("Paris"), ".",
                                          E("Kovi Dana"), "works", "for", E("Zolo"), "."])
    assert document.tokens[5] == "Paris" and document.tokens[11] == "Zolo"
    return LinkedDocument(document.subject, document.tokens, document.mentions,
                          (Blank("born in", "Paris", "Paris", 5), Blank("works for", "Zolo", "Zolo", 11)))


def test_completion_and_the_edit_follow_the_kg_edge_the_heads_pick(people):
    kg, aliases, vectors = people
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=0)
    kovi, paris = (model.entity_table[model.entity_to_id[e]] for e in ("Kovi Dana", "Paris"))
    relation_head(model, "born in")          # every prompt is read as (Kovi Dana, born in, ?)
    pinned(model, 0.7 * torch.ones(6), 0.7 * torch.sign(kovi - paris), 0.7 * torch.ones(8))
    document = born_and_works(kg, aliases)
    completions = fact_completion(model, [document])
    # "... was born in" -> Paris (right); "... works for" -> Paris too (wrong: the heads only follow born in)
    assert [step.word for _, _, step in completions] == ["Paris", "Paris"]
    assert completion_accuracy(completions) == {"born in": 1.0, "works for": 0.0, "all": 0.5}
    moved = edit_follows(model, [document], "born in")
    assert [(b.entity, new, step.word) for _, b, new, step in moved] == [("Paris", "Rome", "Rome")]   # follows
    assert edit_shares(model, moved) == {"follows": 1.0, "keeps_old": 0.0}
    # the edge is moved back: the same prompt is completed with Paris again
    assert [step.word for _, _, step in fact_completion(model, [document])] == ["Paris", "Paris"]


def test_completion_accuracy_and_the_edit_shares_by_hand(people):
    from kbench.data.linked_world import Blank
    from kbench.models.kglm import Step

    paris, zolo = Blank("born in", "Paris", "Paris", 5), Blank("works for", "Zolo", "Zolo", 11)
    rows = [(None, paris, Step("Paris", "related")), (None, paris, Step("Rome", "related")),
            (None, zolo, Step("Zolo", "related"))]
    # per relation, and over all blanks (2 of 3), not the mean of the relations' shares (0.75)
    assert completion_accuracy(rows) == pytest.approx({"born in": 0.5, "works for": 1.0, "all": 2 / 3})
    kg, aliases, vectors = people
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6)
    edited = [(None, paris, "Rome", Step(word, "related")) for word in ("Rome", "Paris", "Italy")]
    assert edit_shares(model, edited) == pytest.approx({"follows": 1 / 3, "keeps_old": 1 / 3})


def test_the_prior_answers_the_most_frequent_training_answer_whatever_the_test_answer():
    from kbench.data.linked_world import Blank

    def asked(person, city):
        return LinkedDocument(person, (person, "was", "born", "in", city), (), (Blank("born in", city, city, 4),))

    train = [asked("A", "Paris"), asked("B", "Paris"), asked("C", "Rome")]
    assert prior_completion(train, [asked("D", "Rome")]) == {"born in": 0.0, "all": 0.0}    # the prior says Paris
    assert prior_completion(train, [asked("D", "Rome"), asked("E", "Paris")]) == {"born in": 0.5, "all": 0.5}


def test_reversing_a_triple_takes_its_fact_away_from_the_subject(people):
    """CHECKLIST 3: (Kovi Dana, born in, Paris) read the other way round, (Paris, born in, Kovi Dana), is not the
    same fact: Paris after "Kovi Dana was born in" loses the mass of that edge, the gold annotation has no path,
    and the linker finds the edge from Paris instead."""
    kg, aliases, vectors = people
    forward = [t for t in PEOPLE_KG if t[1] != "lives in"]          # born in is Kovi Dana's only edge to Paris
    backward = [("Paris", "born in", "Kovi Dana") if t == ("Kovi Dana", "born in", "Paris") else t for t in forward]
    model = KGLM(WORDS, KnowledgeGraph.from_triples(forward), aliases, vectors, word_dim=6, seed=0)
    pinned(model, 0.7 * torch.ones(6), torch.zeros(8), torch.zeros(8))     # related; every edge alike
    prompt = toy_document(kg, aliases, [E("Kovi Dana"), "was", "born", "in"])
    before = next_word_distribution(model, prompt)["Paris"]
    model.set_kg(KnowledgeGraph.from_triples(backward))
    after = next_word_distribution(model, prompt)["Paris"]
    assert before > 0.2 and after < before / 5
    forward_edges, backward_edges = (edges_of(KnowledgeGraph.from_triples(t)) for t in (forward, backward))
    document = link([E("Kovi Dana"), "was", "born", "in", E("Paris"), "."], forward_edges, aliases, "Kovi Dana")
    assert document.mentions[1].paths == (("Kovi Dana", "born in"),)
    with pytest.raises(InputError, match="'Paris'.*no path from a recent entity"):
        model.collate([model.encode(document)])
    parts = [E("Paris"), ".", E("Kovi Dana")]
    assert link(parts, forward_edges, aliases, "x").mentions[1].kind == "new"
    assert link(parts, backward_edges, aliases, "x").mentions[1].paths == (("Paris", "born in"),)


def test_the_lstm_completes_every_held_out_person_alike_as_their_names_are_unk(world):
    """The LSTM reads a held-out name as <unk>, so its completion of "X Y was born in" is one guess for every
    held-out person: it can say no more than a constant (the answer prior at best). The KGLM, given the prompt's
    annotations, reads two people's different birthplaces from the KG."""
    words, vectors = world.vocabulary(), vectors_for(world.kg)
    prompts = {}
    for document in world.test:
        blank = next(b for b in document.blanks if b.relation == "born in")
        prompts.setdefault(blank.entity, document.prefix(blank.position))
    (first_city, first), (second_city, second) = list(prompts.items())[:2]
    lstm = KGLM(words, world.kg, world.aliases, vectors, word_dim=8, knowledge=False, seed=0)
    ids = lambda prompt: [lstm.word_id(t) for t in prompt.tokens]
    assert first.tokens != second.tokens and ids(first) == ids(second)          # the names are both <unk> <unk>
    assert next_word_distribution(lstm, first) == pytest.approx(next_word_distribution(lstm, second), abs=1e-7)
    assert generate(lstm, first, 1)[0].word == generate(lstm, second, 1)[0].word
    kglm = KGLM(words, world.kg, world.aliases, vectors, word_dim=8, seed=0)
    a, b = next_word_distribution(kglm, first), next_word_distribution(kglm, second)
    assert a[first_city] - b[first_city] > 1e-4 and b[second_city] - a[second_city] > 1e-4


def test_token_scores_are_the_type_entity_and_word_terms_computed_by_hand(toy):
    kg, aliases, vectors = toy
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=3).eval()
    document = toy_document(kg, aliases, TWO_PATHS)
    score = token_scores(model, [document])[0]
    assert score["entity"].tolist() == [e is not None for _, e in document.annotations()]
    _, (h_x, h_p, h_r) = states(model, document)
    h_x, h_p, h_r = h_x.detach().numpy(), h_p.detach().numpy(), h_r.detach().numpy()
    softmax = lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    table = model.entity_table.numpy()
    relations = model.relation_vectors.detach().numpy()
    W, b = model.type_head.weight.detach().numpy(), model.type_head.bias.detach().numpy()
    annotations = document.annotations()
    entities = [e for _, e in annotations]
    kinds_seen = set()
    for t, (token, (kind, entity)) in enumerate(zip(document.tokens, annotations)):
        p_type = softmax(W @ h_x[t] + b)[type_id(kind)]
        if kind == "new":                      # over every entity (id 0, no entity, is none of them)
            logits = table[1:] @ (h_p[t] + h_r[t]) + model.new_entity_bias.detach().numpy()[1:]
            p_entity = softmax(logits)[model.entity_to_id[entity] - 1]
        elif kind == "related":                # the path sum over recent parents and their edges
            recent = recent_entities(entities, t)
            p_parent = softmax(np.array([table[model.entity_to_id[p]] @ h_p[t] for p in recent]))
            p_entity = 0.0
            for parent, q in zip(recent, p_parent):
                edges = edges_of(kg)[parent]
                p_edge = softmax(np.array([relations[model.relation_to_id[r]] @ h_r[t] for r, _ in edges]))
                p_entity += q * sum(p for (_, tail), p in zip(edges, p_edge) if tail == entity)
        else:                                  # none, or a continuation: no entity is chosen
            p_entity = 1.0
        with torch.no_grad():
            words = word_distribution(model, torch.from_numpy(h_x[t]), model.entity_to_id[entity] if entity else 0)
        p_word = words.get(token, (0.0, 0.0))[0] + (words[UNK][0] if token not in model.word_to_id else 0.0)
        assert score["word"][t] == pytest.approx(math.log(p_word), abs=1e-4), (t, token)
        assert score["joint"][t] == pytest.approx(math.log(p_type) + math.log(p_entity) + math.log(p_word),
                                                  abs=1e-4), (t, token, kind)
        kinds_seen.add(kind)
    assert kinds_seen == {"none", "new", "related", "continuation"}


# ---- named errors -----------------------------------------------------------------------------------------------
def test_bad_input_gets_named_errors(toy):
    kg, aliases, vectors = toy
    with pytest.raises(InputError, match="'Zolo' has no alias"):
        KGLM(WORDS, kg, {k: v for k, v in aliases.items() if k != "Zolo"}, vectors)
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6)
    with pytest.raises(UnknownNameError, match="entity 'Lyon' has no embedding"):
        model.set_kg(KnowledgeGraph.from_triples(TOY + [("Zolo", "based in", "Lyon")]))
    with pytest.raises(UnknownNameError, match="relation 'founded' has no embedding"):
        model.set_kg(KnowledgeGraph.from_triples(TOY + [("Zolo", "founded", "Rome")]))
    with pytest.raises(UnknownNameError, match="unknown mention type 'old'"):
        type_id("old")
    with pytest.raises(UnknownNameError, match="unknown mention type 'old'"):
        Mention(0, 1, "Zolo", "old")
    with pytest.raises(InputError, match="has no tokens"):
        LinkedDocument("Kovi Dana", (), ())
    with pytest.raises(InputError, match="no documents"):
        model.dataset([])
    with pytest.raises(InputError, match="empty batch"):
        model.collate([])
    with pytest.raises(InputError, match="one \\(batch, tokens\\) shape"):
        model(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0))
    with pytest.raises(InputError, match="overlaps"):
        LinkedDocument("x", ("Kovi", "Dana"), (Mention(0, 2, "Kovi Dana", "new"), Mention(1, 2, "Zolo", "new")))
    with pytest.raises(InputError, match="no alias"):
        link([E("Lyon")], edges_of(kg), aliases, "x")
    document = toy_document(kg, aliases, TWO_PATHS)
    with pytest.raises(InputError, match="inside a mention"):
        document.prefix(1)
    with pytest.raises(UnknownNameError, match="'Lyon'"):
        model.encode(LinkedDocument("x", ("Lyon",), (Mention(0, 1, "Lyon", "new"),)))


def test_held_out_people_have_kg_vectors_from_the_kg_alone():
    from kbench.profiles.kglm import setup

    s = setup("smoke", seed=0, people=(20, 4), transe_epochs=20, steps=1)
    model = s.model()
    first, second = s.world.test_people[:2]
    row = lambda person: model.entity_table[model.entity_to_id[person]]
    assert torch.equal(row(first), s.vectors.vector(first)) and not torch.equal(row(first), row(second))
    assert s.unknown_types == s.world.unknown_types(s.words) > 0 and CUTOFF == s.chosen["cutoff"]


def test_entity_vectors_stay_fixed_while_relation_vectors_train_and_entities_are_charged_once(toy):
    from kbench.train import TrainConfig, fit

    kg, aliases, vectors = toy
    model = KGLM(WORDS, kg, aliases, vectors, word_dim=6, seed=0)
    assert "entity_table" not in dict(model.named_parameters())
    assert torch.equal(model.relation_vectors[:-1], vectors.relation_embeddings)        # TransE's, then reflexive
    assert model.relations[-1] == REFLEXIVE and not model.relation_vectors[-1].any()
    entities, relations = model.entity_table.clone(), model.relation_vectors.detach().clone()
    document = toy_document(kg, aliases, TWO_PATHS)
    fit(model, model.dataset([document] * 4), None, TrainConfig(batch_size=2, max_steps=2, learning_rate=1e-2,
                                                                 progress=False, device="cpu", precision="no"))
    assert torch.equal(model.entity_table, entities) and not torch.equal(model.relation_vectors.detach(), relations)
    batch = model.collate([model.encode(document)])
    with torch.no_grad():
        entity_logp = model(**batch)["entity_logp"][0]
    first = (batch["types"][0] == type_id("new")) | (batch["types"][0] == type_id("related"))
    assert (entity_logp[first] < 0).all() and (entity_logp[~first] == 0).all()      # continuations: no choice


def test_the_views_show_every_mention_path_and_decoded_choice(toy):
    from kbench.models.kglm import Step
    from kbench.viz.kglm import linked_document_html, local_graph_svg, scored_tokens_html, steps_html

    kg, aliases, _ = toy
    document = toy_document(kg, aliases, TWO_PATHS)
    page = linked_document_html(document, caption="<b>x</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<script" not in page
    assert "(Zolo, based in) or (Kovi Dana, born in) or (Kovi Dana, lives in)" in page
    assert page.count("<tr>") == len(document.mentions) + 1
    svg = local_graph_svg(document)
    arrows = {(p, r, m.entity) for m in document.mentions for p, r in m.paths if p != m.entity}
    assert svg.startswith("<svg") and svg.count("<line") == len(arrows) == 4
    steps = [Step("Paris", "related", "Paris", "Zolo", "based in", 0.5, 0.75, 0.9), Step(".", "none", None)]
    cards = steps_html(["Zolo", "is", "based", "in"], steps, answer="Rome")
    assert "(Zolo, based in, Paris)" in cards and "✗ (gold: Rome)" in cards and "75% copied" in cards
    assert "✓" in steps_html(["x"], steps[:1], answer="Paris")
    with pytest.raises(InputError, match="one of each per token"):
        scored_tokens_html(["a", "b"], ["none"], {"m": [0.0, 0.0]})
    row = scored_tokens_html(["a"], ["none"], {"KGLM": [math.log(0.5)], "LSTM": [math.log(0.25)]})
    assert "<div style='font-weight:bold'>0.50</div>" in row and ">0.25<" in row
