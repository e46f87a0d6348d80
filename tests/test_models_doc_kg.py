"""BERT + metadata + KG embeddings: the authors' two heads, the pretrained pooler, the first author's vector,
the loss by hand, BERT's init, the document world and BBC News disjoint by content, the profiles."""
from __future__ import annotations

from collections import Counter

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.data.bbc_news import (Article, content_key, distinct_articles, frequent_nouns, load_bbc_news, metadata_of,
                                  split_articles)
from kbench.data.document_world import make_document_world
from kbench.errors import DataError, InputError
from kbench.kg.wordnet import load_wordnet
from kbench.models.doc_kg import VARIANTS, DocumentClassifier

ENTITIES = {"ana": 0, "bo": 1, "group x": 2}
DOCS = [("a quantum study".split(), [1.0, 3.0], ["ana"]), ("new market data here".split(), [3.0, 4.0], ["bo", "zed"])]


def model(**kw):
    options = dict(use_metadata=True, use_kg=True, hidden=16, seed=0) | kw
    vectors = torch.arange(12, dtype=torch.float).view(3, 4)
    return DocumentClassifier(3, 2, vectors, ENTITIES, "tiny", **options).eval()


def batch_of(m, docs=DOCS, labels=(0, 2)):
    return m.collate(list(m.dataset(docs, list(labels))))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_each_variant_has_the_authors_head(variant):
    """Text only: one linear layer on the pooled output; with extras: two hidden layers of ``hidden`` units."""
    m = model(**variant.options)
    extras = (2 if variant.options["use_metadata"] else 0) + (4 if variant.options["use_kg"] else 0)
    if not extras:
        assert isinstance(m.head, torch.nn.Linear) and (m.head.in_features, m.head.out_features) == (128, 3)
    else:
        shapes = [(layer.in_features, layer.out_features) for layer in m.head if isinstance(layer, torch.nn.Linear)]
        assert shapes == [(128 + extras, 16), (16, 16), (16, 3)]
        assert [type(layer).__name__ for layer in m.head] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert m(**batch_of(m))["logits"].shape == (2, 3)


def test_dropout_covers_the_pooled_output_only():
    m = model(dropout=0.9).train()
    batch = batch_of(m)
    seen = {}
    m.head[0].register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    m(**batch)
    metadata = (batch["metadata"] - m.metadata_mean) / m.metadata_scale
    assert torch.equal(seen["x"][:, 128:130], metadata)            # never zeroed nor rescaled
    assert torch.equal(seen["x"][:, 130:], m.entity_features(batch["entity_ids"]))
    assert (seen["x"][:, :128] == 0).float().mean() > 0.5           # the text part is dropped


def test_a_pretrained_base_keeps_its_checkpoints_pooler():
    from safetensors import safe_open

    from kbench.encoders import embedded_model_dir

    m = DocumentClassifier(3, 2, torch.zeros(3, 4), ENTITIES, "embedded", layers=1, hidden=8)
    with safe_open(str(embedded_model_dir() / "model.safetensors"), "pt") as handle:
        assert torch.equal(m.pooler.dense.weight, handle.get_tensor("pooler.dense.weight"))
        assert torch.equal(m.pooler.dense.bias, handle.get_tensor("pooler.dense.bias"))
    assert "pretrained pooler" in m.description


def test_new_layers_get_berts_initialisation():
    m = model(hidden=512)
    for layer in [*[x for x in m.head if isinstance(x, torch.nn.Linear)], m.pooler.dense]:  # tiny: a new pooler
        assert abs(layer.weight.std().item() - 0.02) < 0.002 and abs(layer.weight.mean().item()) < 0.002
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    text_only = model(use_metadata=False, use_kg=False)
    assert torch.equal(text_only.head.bias, torch.zeros(3)) and text_only.head.weight.std() < 0.03


def test_the_first_author_with_a_vector_as_the_authors_do_or_the_mean():
    first, mean = model(), model(entity_pooling="mean")
    ids = torch.tensor([[0, 1], [-1, 1], [-1, -1], [2, 0]])
    assert first.entity_features(ids).tolist() == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [0.0] * 4,
                                                   [8.0, 9.0, 10.0, 11.0]]
    assert mean.entity_features(ids).tolist() == [[2.0, 3.0, 4.0, 5.0], [4.0, 5.0, 6.0, 7.0], [0.0] * 4,
                                                  [4.0, 5.0, 6.0, 7.0]]
    assert batch_of(first)["entity_ids"].tolist() == [[0, -1], [1, -1]]   # "zed" is not in the KG


def test_the_first_author_reaches_the_logits_and_later_ones_do_not():
    m = model()
    batch = batch_of(m) | {"entity_ids": torch.tensor([[0, 1], [1, 0]])}
    base = m(**batch)["logits"]
    assert not torch.allclose(base, m(**(batch | {"entity_ids": torch.tensor([[2, 1], [1, 0]])}))["logits"])
    assert torch.equal(base, m(**(batch | {"entity_ids": torch.tensor([[0, 2], [1, 2]])}))["logits"])


def test_metadata_is_standardised_with_the_first_split_given():
    m = model()
    m.dataset(DOCS, [0, 1])
    assert torch.allclose(m.metadata_mean, torch.tensor([2.0, 3.5])) and torch.allclose(m.metadata_scale,
                                                                                      torch.tensor([1.0, 0.5]))
    m.dataset([(["x"], [100.0, 100.0], [])], [0])
    assert torch.allclose(m.metadata_mean, torch.tensor([2.0, 3.5]))


def test_each_variant_reads_only_its_inputs():
    for options, reads_metadata, reads_kg in ((VARIANTS[0].options, False, False), (VARIANTS[1].options, True, False),
                                              (VARIANTS[2].options, True, True)):
        m = model(**options)
        batch = batch_of(m)
        base = m(**batch)["logits"]
        moved_metadata = m(**(batch | {"metadata": batch["metadata"] + 5}))["logits"]
        moved_entities = m(**(batch | {"entity_ids": torch.tensor([[2, -1], [2, -1]])}))["logits"]
        assert (not torch.allclose(base, moved_metadata)) == reads_metadata
        assert (not torch.allclose(base, moved_entities)) == reads_kg


def test_the_loss_against_a_hand_value():
    """Logits fixed to (0, ln 2, ln 4): p = (1, 2, 4) / 7; labels 0 and 2: loss = (ln 7 + ln 7/4) / 2 = ln 3.5."""
    m = model(use_metadata=False, use_kg=False)
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.copy_(torch.tensor([0.0, math.log(2), math.log(4)]))
    out = m(**batch_of(m, labels=(0, 2)))
    assert out["loss"].item() == pytest.approx(math.log(3.5), abs=1e-6)


@pytest.mark.parametrize("docs, message", [
    ([(["a"], [1.0], ["ana"])], "expected 2 metadata features"),
    ([([], [1.0, 2.0], ["ana"])], "at least one word"),
])
def test_bad_documents_get_a_clear_error(docs, message):
    with pytest.raises(InputError, match=message):
        model().dataset(docs, [0])


def test_bad_configuration_gets_a_clear_error():
    with pytest.raises(InputError, match="num_labels"):
        DocumentClassifier(1, 2, torch.zeros(3, 4), ENTITIES, "tiny")
    with pytest.raises(InputError, match="entity_pooling"):
        DocumentClassifier(3, 2, torch.zeros(3, 4), ENTITIES, "tiny", entity_pooling="last")
    with pytest.raises(InputError, match="hidden"):
        DocumentClassifier(3, 2, torch.zeros(3, 4), ENTITIES, "tiny", hidden=0)
    with pytest.raises(InputError, match="points past"):
        DocumentClassifier(3, 2, torch.zeros(2, 4), ENTITIES, "tiny")
    with pytest.raises(InputError, match="non-empty"):
        DocumentClassifier(3, 2, torch.zeros(0, 4), {}, "tiny")
    with pytest.raises(InputError, match="2 documents but 3 labels"):
        model().dataset(DOCS, [0, 1, 2])


def test_document_world_keeps_authors_apart_and_topics_out_of_the_kg():
    world = make_document_world(seed=3)
    authors = [{a for d in part for a in d.authors} for part in (world.train, world.dev, world.test)]
    assert not (authors[0] & authors[1]) and not (authors[0] & authors[2]) and not (authors[1] & authors[2])
    assert {r for _, r, _ in world.kg} == {"co-author of", "member of"}
    assert not {e for t in world.kg for e in (t[0], t[2])} & set(world.labels)
    assert all(h < t for h, r, t in world.kg if r == "co-author of")   # one triple per pair
    assert all(d.metadata[0] == len(d.authors) for d in world.train)
    with pytest.raises(InputError, match="probabilities"):
        make_document_world(topic_word=1.5)
    with pytest.raises(InputError, match="groups"):
        make_document_world(groups=2)


def test_document_world_repeats_no_text_in_or_across_splits():
    for seed in range(4):
        world = make_document_world(seed=seed)
        texts = [tuple(d.words) for part in (world.train, world.dev, world.test) for d in part]
        assert len(texts) == len(set(texts))


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000))
def test_a_world_with_three_generic_words_still_repeats_no_text(seed):
    # 3 generic words: 240 texts of 5-11 words would repeat many times if nothing prevented it
    from kbench.data import document_world

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(document_world, "GENERIC", ["study", "new", "data"])
        world = make_document_world(authors=(24, 8, 8), groups=4, documents_per_author=6, topic_word=0.0, seed=seed)
        texts = [tuple(d.words) for part in (world.train, world.dev, world.test) for d in part]
        assert len(texts) == len(set(texts)) == 240
        patch.setattr(document_world, "GENERIC", ["study"])
        with pytest.raises(InputError, match="distinct texts"):
            make_document_world(authors=(24, 8, 8), groups=4, topic_word=0.0, seed=seed)


def test_bbc_news_loads_and_splits_by_label_and_content():
    articles, labels = load_bbc_news()
    assert len(articles) == 2225 and labels == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(distinct_articles(articles, near=None)) == 2124   # the corpus repeats 101 texts exactly ...
    assert len(distinct_articles(articles)) == 2051              # ... and 73 more as near copies
    train, dev, test = split_articles(articles, 500, seed=0)
    assert 490 <= len(train) + len(dev) + len(test) <= 510
    assert {a.label for a in test} == set(range(5)) and abs(len(train) - 0.6 * 500) <= 5
    train, dev, test = split_articles(articles, None, seed=0)
    keys = [[content_key(a) for a in part] for part in (train, dev, test)]
    assert sum(map(len, keys)) == 2051 and all(len(k) == len(set(k)) for k in keys)
    assert not set(keys[0]) & set(keys[1]) and not set(keys[0]) & set(keys[2]) and not set(keys[1]) & set(keys[2])


@pytest.mark.parametrize("limit", [None, 500])
def test_no_test_article_is_mostly_a_training_article(limit):
    """The near copies the corpus holds ("Concern over RFID tags" / "Consumer concern over RFID tags") stay out of
    the splits: no test article shares even 0.8 of its 8-word shingles with a training article."""
    from kbench.data.bbc_news import shingles

    articles, _ = load_bbc_news()
    for seed in (0, 1):
        train, _, test = split_articles(articles, limit, seed=seed)
        holders: dict = {}
        for index, article in enumerate(train):
            for shingle in shingles(article):
                holders.setdefault(shingle, set()).add(index)
        for article in test:
            found = shingles(article)
            shared = Counter(i for shingle in found for i in holders.get(shingle, ()))
            assert not shared or max(shared.values()) / len(found) < 0.8, article.title
    exact = [a for a in articles if a.title.lower() in ("concern over rfid tags", "consumer concern over rfid tags")]
    assert len(distinct_articles(exact, near=None)) == 2 and len(distinct_articles(exact)) == 1


def test_near_copies_by_shared_shingles():
    from kbench.data.bbc_news import near_copies, overlap, shingles

    words = " ".join("w" + chr(97 + i % 26) + chr(97 + i // 26) for i in range(40))    # letters: shingles read words
    whole, cut, other = Article("t", words, 0), Article("t", words.rsplit(" ", 10)[0], 0), Article("c", "x " * 40, 0)
    assert overlap(shingles(whole), shingles(cut)) == 1.0                  # one text inside the other
    assert near_copies([whole, cut, other]) == [(0, 1)]
    assert near_copies([whole, Article("t", words[:60] + " new" * 30, 0)], near=0.9) == []
    assert distinct_articles([cut, whole, other]) == [cut, other]          # the first of a group is kept
    with pytest.raises(DataError, match="near copies"):
        distinct_articles([whole, Article("t", cut.body, 1)])
    with pytest.raises(InputError, match="share"):
        near_copies([whole], near=0)


def test_repeated_texts_are_kept_once_by_content():
    one = Article("Rates rise", "The bank  raised rates.", 0)
    same = Article("rates RISE", "the bank raised\nrates.", 0)   # case and whitespace differ only
    other = Article("Rates rise", "The bank cut rates.", 0)
    assert distinct_articles([one, other, same]) == [one, other]
    parts = split_articles([one, same, other] * 3 + [Article("t" + chr(97 + i), "b", 1) for i in range(6)], None, seed=0)
    assert sum(map(len, parts)) == 8
    with pytest.raises(DataError, match="labels 0 and 1"):
        distinct_articles([one, Article(same.title, same.body, 1)])


def test_bbc_metadata_and_linked_nouns(tmp_path):
    wordnet = load_wordnet(str(tmp_path))
    article = Article("Horse wins prize", "The horse jumped.\n\nThe horse won a prize. xqzv xqzv xqzv", 0)
    assert metadata_of(article)[1:] == [2.0, 3.0]
    nouns = frequent_nouns(wordnet, article, top=2)
    assert nouns == ["horse.n.01", "prize.n.01"]   # by frequency; "xqzv" is no WordNet noun
    # "horses" and "horse" are one synset: top=2 still gives two distinct synsets
    plural = Article("Horses", "horses horse horse prize", 0)
    assert frequent_nouns(wordnet, plural, top=2) == ["horse.n.01", "prize.n.01"]


def test_the_profiles_are_data_with_the_same_keys():
    from kbench.profiles.doc_kg import CHOICES, METADATA

    assert set(CHOICES) == {"smoke", "full"} and set(CHOICES["smoke"]) == set(CHOICES["full"])
    assert CHOICES["smoke"]["data"] in METADATA and CHOICES["full"]["data"] in METADATA
    assert CHOICES["smoke"]["hidden"] == CHOICES["full"]["hidden"] == 1024          # the authors' MLP_DIM
    assert CHOICES["smoke"]["entity_pooling"] == CHOICES["full"]["entity_pooling"] == "first"


def test_the_smoke_setup_loads_the_document_world_and_splits_its_kg():
    from kbench.profiles.doc_kg import setup

    s = setup("smoke", seed=1)
    assert s.sizes() == "288 / 96 / 96" and s.labels == ["physics", "biology", "history", "economics"]
    assert set(s.kg_train) | set(s.kg_held_out) == set(s.kg) and not set(s.kg_train) & set(s.kg_held_out)
    assert abs(len(s.kg_held_out) - 0.1 * len(s.kg)) <= 2
    assert s.options["layers"] == 2 and s.options["hidden"] == 1024 and s.config.epochs == 6 and s.config.seed == 1
    assert s.kg_options == dict(model="TransE", dim=32, epochs=200, batch_size=4096, seed=1, progress=False)
    assert s.metadata_text([3.0, 9.0]) == "authors 3, length (words) 9"
    test_labels = s.splits[2][1]
    assert s.majority() == max(test_labels.count(c) for c in set(test_labels)) / len(test_labels)
    known, linked = s.linked({"nobody": 0})
    assert known == 0 and linked == sum(len(e) for texts, _ in s.splits for _, _, e in texts)
    tiny = setup("smoke", base_model="tiny", epochs=2)
    assert tiny.options["layers"] is None and tiny.config.epochs == 2 and tiny.base_model == "tiny"


def test_the_full_setup_loads_distinct_bbc_articles_linked_to_wordnet():
    from kbench.profiles.doc_kg import setup

    s = setup("full", limit=30)
    texts = [" ".join(words).lower() for part, _ in s.splits for words, _, _ in part]
    assert len(texts) == len(set(texts)) and 25 <= len(texts) <= 35
    assert s.metadata_names == ["log(1 + body words)", "paragraphs", "title words"]
    assert all(len(metadata) == 3 for part, _ in s.splits for _, metadata, _ in part)
    assert s.options["layers"] is None and s.options["max_length"] == 128
    linked = {e for part, _ in s.splits for _, _, nouns in part for e in nouns}
    assert linked and linked <= {e for t in s.kg_train for e in (t[0], t[2])}   # every noun keeps a vector


def test_bad_profiles_and_overrides_get_a_clear_error():
    from kbench.errors import UnknownNameError
    from kbench.profiles.doc_kg import setup

    with pytest.raises(UnknownNameError, match="unknown profile"):
        setup("medium")
    with pytest.raises(InputError, match="'width' is not a choice"):
        setup("smoke", width=3)


def test_the_positive_control_links_each_document_to_its_authors_groups():
    from kbench.models import doc_kg
    from kbench.profiles.doc_kg import setup

    s = setup("smoke", seed=0)
    group_of = {h: t for h, r, t in s.kg if r == "member of"}
    relinked = s.group_linked()
    train_groups = {e for _, _, linked in relinked[0][0] for e in linked}
    for (texts, labels), (original, original_labels) in zip(relinked, s.splits):
        assert labels == list(original_labels)
        for (words, metadata, linked), (w, m, authors) in zip(texts, original):
            assert words == w and metadata == m and linked == [group_of[a] for a in authors]
    # the test documents' groups are linked in training too: what training taught of them is in reach
    test_groups = {e for _, _, linked in relinked[2][0] for e in linked}
    assert test_groups <= train_groups
    authors = [{a for _, _, linked in s.splits[split][0] for a in linked} for split in (0, 2)]
    assert not authors[0] & authors[1]   # while the authors themselves are new
    assert doc_kg.HEADLINE.positive.left == f"{doc_kg.GROUP_LINKED.name}_test_accuracy"
