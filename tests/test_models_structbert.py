"""StructBERT and the shared sentence pairs: the five relations built as stated on a toy document, the schemes'
shares and soft targets, trigram shuffles only over unmasked tokens, the word loss through the MLM head, one init
for every variant, the probes, the story world, and the bad inputs."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.data.story_world import STAGES, entailment_pairs, make_story_world
from kbench.errors import InputError, UnknownNameError
from kbench.models.structbert import (VARIANT_NAMES, StructBERT, WordStructureCollator, pretrainer, restored_share,
                                      shuffle_trigrams, shuffled_sentences, swapped_words)
from kbench.sentence_pairs import (SCHEMES, PairScheme, draw_relation, document_corpus, order_pairs,
                                   pooled_features, smoothed_scheme)
from kbench.text.masking import IGNORE

DOCUMENT = ["alpha one", "beta two", "gamma three", "delta four"]
OTHER = ["omega nine", "psi eight", "chi seven"]


@pytest.fixture(scope="module")
def world():
    return make_story_world((40, 10), 8, seed=0)


@pytest.fixture(scope="module")
def vocab(world):
    from kbench.profiles.ernie_baidu import corpus_vocabulary

    return str(corpus_vocabulary(world.texts + DOCUMENT + OTHER))


@pytest.fixture(scope="module")
def model(vocab):
    return pretrainer("structbert", "tiny", vocab, seed=0, max_length=40)


def words(tokenizer, ids):
    return tokenizer.decode([i for i in ids if i != tokenizer.pad_token_id])


def test_each_relation_builds_its_pair_on_a_toy_document(model):
    """next (A, A+1), previous (A+1, A), next_inadjacent (A, A+2), previous_inadjacent (A+2, A), random (A, other)."""
    tokenizer = model.tokenizer
    corpus = document_corpus([DOCUMENT, OTHER], tokenizer, 16)
    first = corpus.sentences[0]                                 # "alpha one" with next and later
    segments = [(s.ids[1:-1], s.next_ids) for s in corpus.sentences]
    documents = [("document", s.document) for s in corpus.sentences]
    expected = {"next": ("alpha one", "beta two"), "previous": ("beta two", "alpha one"),
                "next_inadjacent": ("alpha one", "gamma three"), "previous_inadjacent": ("gamma three", "alpha one")}
    collate = WordStructureCollator(model.collate.vocab, tokenizer.pad_token_id, tokenizer.cls_token_id,
                                    tokenizer.sep_token_id, scheme="order5")
    seen = collections.defaultdict(set)
    for _ in range(60):
        a, b, relation = collate.draw_pair(0, corpus.sentences, segments, documents)
        seen[collate.scheme.relations[relation]].add((tokenizer.decode(a), tokenizer.decode(b)))
    for name, pair in expected.items():
        assert seen[name] == {pair}
    assert all(a == "alpha one" and b in {"psi eight", "chi seven"} for a, b in seen["random"])  # an other example's next
    assert first.later_ids is not None and corpus.sentences[2].later_ids is None   # the last pair has no A+2


def test_the_last_segment_pair_draws_only_what_it_has():
    scheme = SCHEMES["order5"]
    rng = np.random.default_rng(0)
    drawn = {scheme.relations[draw_relation(scheme, {"random", "next", "previous"}, rng)] for _ in range(200)}
    assert drawn == {"random", "next", "previous"}
    before = rng.bit_generator.state
    assert scheme.relations[draw_relation(scheme, {"random"}, rng)] == "random"
    assert rng.bit_generator.state == before                                   # one left: nothing drawn


@pytest.mark.parametrize("name, shares", [("nsp", {"next": 0.5, "random": 0.5}),
                                          ("order3", {"next": 1 / 3, "previous": 1 / 3, "random": 1 / 3})])
def test_schemes_draw_their_shares(name, shares):
    scheme, rng = SCHEMES[name], np.random.default_rng(1)
    everything = {"next", "previous", "random", "next_inadjacent", "previous_inadjacent"}
    counts = collections.Counter(scheme.relations[draw_relation(scheme, everything, rng)] for _ in range(6000))
    for relation, share in shares.items():
        assert abs(counts[relation] / 6000 - share) < 0.03


@given(st.floats(0.0, 0.99))
@settings(max_examples=30, deadline=None)
def test_smoothed_targets_are_distributions_with_the_adjacent_class_at_one_minus_epsilon(epsilon):
    scheme = smoothed_scheme(epsilon)
    targets = scheme.target_matrix
    assert torch.allclose(targets.sum(1), torch.ones(5))
    inadjacent_next = targets[scheme.relations.index("next_inadjacent")]
    assert inadjacent_next[scheme.classes.index("next")] == pytest.approx(1 - epsilon)
    assert scheme.hard_class(scheme.relations.index("previous_inadjacent")) == scheme.classes.index("previous") \
        or epsilon > 2 / 3


def test_bad_schemes_and_inputs_are_named(model):
    with pytest.raises(InputError, match="no shuffled sentences"):
        restored_share(model, [])
    with pytest.raises(InputError, match="one length"):
        shuffle_trigrams(np.arange(5), np.full(4, IGNORE), np.zeros(5, bool), np.random.default_rng(0))
    with pytest.raises(InputError, match="epsilon"):
        smoothed_scheme(1.0)
    with pytest.raises(InputError, match="always has 'random'"):
        PairScheme("x", ("next", "previous"), (1, 1), ("a", "b"), ((1, 0), (0, 1)))
    with pytest.raises(InputError, match="distribution"):
        PairScheme("x", ("next", "random"), (1, 1), ("a", "b"), ((0.5, 0.6), (0, 1)))
    with pytest.raises(InputError, match="at least two non-blank"):
        document_corpus([["a single sentence ."]], model.tokenizer)
    with pytest.raises(UnknownNameError, match="unknown StructBERT variant"):
        pretrainer("ernie")
    with pytest.raises(InputError, match="batches of 2"):
        model.collate(document_corpus([DOCUMENT], model.tokenizer).sentences[:1])
    with pytest.raises(InputError, match="at least two documents"):
        order_pairs([DOCUMENT])
    with pytest.raises(InputError, match="shuffled span"):
        shuffle_trigrams(np.arange(5), np.full(5, IGNORE), np.zeros(5, bool), np.random.default_rng(0), span=1)
    with pytest.raises(InputError, match="two different words"):
        swapped_words(["a b"])


@given(st.integers(0, 10_000), st.floats(0.05, 1.0))
@settings(max_examples=60, deadline=None)
def test_shuffled_trigrams_never_touch_masked_or_special_tokens(seed, rate):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 40, size=30)
    ids[0], ids[-1] = 2, 3
    labels = np.where(rng.random(30) < 0.3, ids, IGNORE)
    special = np.isin(ids, [2, 3])
    out, word_labels, starts = shuffle_trigrams(ids, labels, special, rng, rate)
    moved = word_labels != IGNORE
    assert not (moved & (labels != IGNORE)).any() and not (moved & special).any()
    assert (out[~moved] == ids[~moved]).all()                          # nothing else changes
    for start in starts:                                               # each span: a permutation, not the same
        span = slice(start, start + 3)
        assert sorted(out[span]) == sorted(ids[span]) and (out[span] != ids[span]).any()
        assert (word_labels[span] == ids[span]).all()
    assert len(starts) * 3 == moved.sum()                              # spans never overlap


def test_the_shuffle_rate_is_five_percent_of_candidate_trigrams_on_average():
    rng = np.random.default_rng(0)
    ids = np.arange(10, 110)
    counts = [len(shuffle_trigrams(ids, np.full(100, IGNORE), np.zeros(100, bool), rng)[2]) for _ in range(400)]
    assert abs(np.mean(counts) - 0.05 * 98) < 0.4                    # 98 candidate starts; overlaps are rare


def test_the_word_loss_reads_the_shuffled_positions_through_the_mlm_head(model, world):
    corpus = document_corpus(world.train, model.tokenizer, 40)
    batch = model.collate(corpus.sentences[:64])
    keep = batch["word_labels"] != IGNORE
    assert keep.any()
    model.eval()
    with torch.no_grad():
        out = model(**batch)
        assert torch.allclose(out["loss"], out["mlm_loss"] + out["pair_loss"] + out["word_loss"], atol=1e-5)
        moved = dict(batch, word_labels=batch["word_labels"].clone())
        row, col = keep.nonzero()[0].tolist()
        moved["word_labels"][row, col] = (moved["word_labels"][row, col] + 1) % len(model.tokenizer)
        assert not torch.allclose(model(**moved)["word_loss"], out["word_loss"])      # a target there counts
        none = dict(batch, word_labels=torch.full_like(batch["word_labels"], IGNORE))
        assert model(**none)["word_loss"].item() == 0.0
        saved = model.lm.cls.predictions.bias.clone()                  # the MLM head's bias moves the word loss
        model.lm.cls.predictions.bias[batch["word_labels"][keep]] += 5.0
        assert model(**batch)["word_loss"] < out["word_loss"]
        model.lm.cls.predictions.bias.copy_(saved)


def test_word_shuffles_leave_the_masks_and_pairs_of_the_variant_without_them(vocab, world):
    """StructBERT's batch is the sentence-objective variant's with trigrams shuffled: same pairs, labels, masks."""
    with_word, without = pretrainer("structbert", "tiny", vocab, 3, 40), pretrainer("sentence", "tiny", vocab, 3, 40)
    corpus = document_corpus(world.train, with_word.tokenizer, 40)
    for start in (0, 16):
        a, b = with_word.collate(corpus.sentences[start:start + 16]), without.collate(corpus.sentences[start:start + 16])
        assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["pair_label"], b["pair_label"])
        moved = a["word_labels"] != IGNORE
        assert torch.equal(a["input_ids"][~moved], b["input_ids"][~moved]) and moved.any()


def test_every_variant_starts_from_one_init(vocab):
    models = {name: pretrainer(name, "tiny", vocab, seed=5, max_length=40) for name in VARIANT_NAMES}
    reference = models["bert"].state_dict()
    for name, m in models.items():
        state = m.state_dict()
        shared = [k for k in state if k in reference and state[k].shape == reference[k].shape]
        assert all(torch.equal(state[k], reference[k]) for k in shared), name
        assert any(k.startswith("pooler") for k in shared)
    assert isinstance(models["structbert"], StructBERT) and not isinstance(models["sentence"], StructBERT)
    assert models["structbert"].seq_relationship.out_features == 3 and models["bert"].seq_relationship.out_features == 2


def test_pair_order_reaches_the_pooled_output(model):
    """(A, B) and (B, A) are different inputs to the head (direction survives)."""
    ab = pooled_features(model, [("alpha one", "beta two")])
    ba = pooled_features(model, [("beta two", "alpha one")])
    assert np.abs(ab - ba).max() > 1e-4


def test_restored_share_counts_only_moved_tokens(model, world):
    items = shuffled_sentences(world.test[0] + world.test[1], model.tokenizer, seed=0)
    assert all(item["positions"] and all(item["shuffled"][p] != item["ids"][p] for p in item["positions"])
               for item in items)

    class Oracle(torch.nn.Module):                          # predicts the original token everywhere
        tokenizer = model.tokenizer

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            rows = {tuple(i["shuffled"].tolist()): i["ids"] for i in items}
            logits = torch.zeros(*input_ids.shape, len(model.tokenizer))
            for r, row in enumerate(input_ids.tolist()):
                original = rows[tuple(t for t in row if t != model.tokenizer.pad_token_id)]
                logits[r, torch.arange(len(original)), torch.as_tensor(original)] = 1.0
            return {"logits": logits}

    class Copier(Oracle):                                   # repeats its input (MLM's kept-token habit)
        def forward(self, input_ids, attention_mask=None):
            return {"logits": torch.nn.functional.one_hot(input_ids, len(model.tokenizer)).float()}

    assert restored_share(Oracle(), items) == 1.0 and restored_share(Copier(), items) == 0.0


def test_swapped_words_are_three_or_more_apart_and_change_the_sentence():
    texts = ["Kovi was born in Paris .", "as a child Kovi kept a dog , a kind of bird ."]
    for seed in range(20):
        for original, swapped in swapped_words(texts, seed=seed):
            a, b = original.split(), swapped.split()
            changed = [i for i in range(len(a)) if a[i] != b[i]]
            assert len(changed) == 2 and changed[1] - changed[0] >= 3 and sorted(a) == sorted(b)
            assert all(a[i].isalnum() for i in changed)                  # punctuation never moves


def test_story_order_follows_the_stages_and_splits_are_person_disjoint(world):
    for doc in world.train[:10]:
        stages = [next(i for i, t in enumerate(STAGES) if t.split()[-3:] == s.split()[-3:] or
                       t.split()[1:3] == s.split()[1:3]) for s in doc]
        assert stages == sorted(stages)
    assert not set(world.train_people) & set(world.test_people)
    assert not {t for d in world.train for t in d} & {t for d in world.test for t in d}


def test_entailment_pairs_label_by_construction():
    pairs = entailment_pairs(["Kovi", "Dana"], ["Paris"], 30, seed=0)
    by_group = collections.defaultdict(dict)
    for p in pairs:
        by_group[p.group][p.kind] = p
    for group in by_group.values():
        forward, swap = group["specific→general"], group["general→specific"]
        assert forward.label == 1 and swap.label == 0 and group["other family"].label == 0
        assert (forward.premise, forward.hypothesis) == (swap.hypothesis, swap.premise)
    with pytest.raises(InputError):
        entailment_pairs([], ["Paris"], 3)


def test_kbench_pretrain_runs_the_structbert_objective(tmp_path, world):
    from kbench.pretrain import OBJECTIVES, run_pretraining

    assert OBJECTIVES["structbert"][0] == ("word",)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for doc in world.train[:20] for t in doc))
    options = dict(base="tiny", steps=3, batch_size=4, max_length=24, device="cpu", progress=False)
    summary = run_pretraining(str(corpus), objective="structbert", out=str(tmp_path / "out"), **options)
    plain = run_pretraining(str(corpus), objective="mlm", out=str(tmp_path / "mlm"), **options)
    assert summary["steps"] == 3
    # the same init and text: the 3-way pair loss (about ln 3 untrained) and the word loss come on top of MLM
    assert summary["first_loss"] - plain["first_loss"] > 0.8


def test_aligned_random_partners_come_from_the_same_place_of_another_document(model):
    """Aligned: A's random partner is the next segment of the example at A's place in another document."""
    tokenizer = model.tokenizer
    corpus = document_corpus([DOCUMENT, OTHER], tokenizer, 16)
    assert [s.position for s in corpus.sentences] == [0, 1, 2, 0, 1]
    segments = [(s.ids[1:-1], s.next_ids) for s in corpus.sentences]
    documents = [("document", s.document) for s in corpus.sentences]
    args = (model.collate.vocab, tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id)
    partners = {}
    for aligned in (True, False):
        collate = WordStructureCollator(*args, scheme="order3", aligned=aligned)
        partners[aligned] = {tokenizer.decode(b) for a, b, r in (collate.draw_pair(1, corpus.sentences, segments,
                                                                                    documents) for _ in range(80))
                             if collate.scheme.relations[r] == "random"}
    assert partners[True] == {"chi seven"}                       # OTHER's position-1 example's next
    assert partners[False] == {"psi eight", "chi seven"}         # any other example's next


def test_order_pairs_build_next_previous_and_other_document_pairs():
    documents = [[f"{letter}{i} x" for i in range(3)] for letter in "abcdefghij"] + [["k0 z"]]   # the last: too short
    pairs = order_pairs(documents, seed=0)
    home = {t: n for n, doc in enumerate(documents) for t in doc}
    place = {t: i for doc in documents for i, t in enumerate(doc)}
    assert len(pairs) == 20 and {label for *_, label in pairs} == {0, 1, 2}
    for a, b, label in pairs:
        if label == 0:
            assert home[a] == home[b] and place[b] == place[a] + 1
        elif label == 1:
            assert home[a] == home[b] and place[a] == place[b] + 1
        else:
            assert home[a] != home[b]
    two_way = order_pairs(documents, ("next", "previous"), seed=1)
    assert {label for *_, label in two_way} <= {0, 1}


def test_libert_batches_are_the_ones_before_the_move_to_shared_pairs():
    """LIBERT's NSP batches from the shared collator: a fingerprint recorded before the move (the same draws)."""
    import hashlib

    from kbench.data.lexical_relations import LexicalPair
    from kbench.models.libert import pretrainer as libert

    pairs = [LexicalPair(f"word{i}", f"term{i}", "synonym", i % 2) for i in range(40)]
    docs = [[f"the cat {i} sat on a mat .", f"a dog {i} ran home .", f"birds {i} fly south ."][: 2 + i % 2]
            for i in range(20)]
    model = libert("tiny", "libert", pairs, seed=3)
    corpus = document_corpus(docs, model.tokenizer, 32)
    batches = [model.collate(corpus.sentences[:8]), model.collate(corpus.sentences[8:16])]
    digest = hashlib.sha256()
    for batch in batches:
        for key in ("input_ids", "labels", "token_type_ids", "pair_label", "lrc_input_ids", "lrc_labels"):
            digest.update(batch[key].numpy().tobytes())
    assert batches[0]["pair_label"].tolist() == [0, 0, 1, 0, 0, 0, 0, 1]
    assert batches[0]["input_ids"][0].tolist() == [101, 1996, 4937, 103, 2938, 2006, 1037, 13523, 103, 102, 1037,
                                                   3899, 1014, 2743, 2188, 1012, 102]   # dumped before the move
    assert digest.hexdigest()[:16] == "212a75bfee422655"
