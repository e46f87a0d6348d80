"""BERT + metadata + KG embeddings: the concatenation per variant, the mean entity vector, the document world, BBC."""
from __future__ import annotations

import pytest
import torch

from kbench.data.bbc_news import Article, frequent_nouns, load_bbc_news, metadata_of, split_articles
from kbench.data.document_world import make_document_world
from kbench.errors import InputError
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
def test_the_mlp_reads_the_concatenation_of_its_variant(variant):
    m = model(**variant.options)
    width = 128 + (2 if variant.options["use_metadata"] else 0) + (4 if variant.options["use_kg"] else 0)
    assert m.mlp[1].in_features == width
    assert m(**batch_of(m))["logits"].shape == (2, 3)


def test_mean_of_known_entities_and_zero_without_any():
    m = model()
    features = m.entity_features(torch.tensor([[0, 1], [1, -1], [-1, -1]]))
    assert torch.equal(features[0], torch.tensor([2.0, 3.0, 4.0, 5.0]))
    assert torch.equal(features[1], torch.tensor([4.0, 5.0, 6.0, 7.0]))
    assert torch.equal(features[2], torch.zeros(4))
    assert batch_of(m)["entity_ids"].tolist() == [[0, -1], [1, -1]]   # "zed" is not in the KG


def test_metadata_is_standardised_with_the_first_split_given():
    m = model()
    m.dataset(DOCS, [0, 1])
    assert torch.allclose(m.metadata_mean, torch.tensor([2.0, 3.5])) and torch.allclose(m.metadata_scale,
                                                                                      torch.tensor([1.0, 0.5]))
    m.dataset([(["x"], [100.0, 100.0], [])], [0])
    assert torch.allclose(m.metadata_mean, torch.tensor([2.0, 3.5]))


def test_each_variant_reads_only_its_inputs():
    for options, reads_metadata, reads_kg in ((VARIANTS[0].options, False, False), (VARIANTS[2].options, True, True)):
        m = model(**options)
        batch = batch_of(m)
        base = m(**batch)["logits"]
        moved_metadata = m(**(batch | {"metadata": batch["metadata"] + 5}))["logits"]
        moved_entities = m(**(batch | {"entity_ids": torch.tensor([[2, -1], [2, -1]])}))["logits"]
        assert (not torch.allclose(base, moved_metadata)) == reads_metadata
        assert (not torch.allclose(base, moved_entities)) == reads_kg


def test_the_loss_is_softmax_cross_entropy():
    m = model()
    batch = batch_of(m)
    out = m(**batch)
    assert torch.allclose(out["loss"], torch.nn.functional.cross_entropy(out["logits"], batch["labels"]))


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


def test_bbc_news_loads_and_splits_by_label():
    articles, labels = load_bbc_news()
    assert len(articles) == 2225 and labels == ["business", "entertainment", "politics", "sports", "tech"]
    train, dev, test = split_articles(articles, 500, seed=0)
    assert 490 <= len(train) + len(dev) + len(test) <= 510
    assert {a.label for a in test} == set(range(5)) and abs(len(train) - 0.6 * 500) <= 5
    assert not {id(a) for a in train} & {id(a) for a in test}


def test_bbc_metadata_and_linked_nouns(tmp_path):
    wordnet = load_wordnet(str(tmp_path))
    article = Article("Horse wins prize", "The horse jumped.\n\nThe horse won a prize. xqzv xqzv xqzv", 0)
    assert metadata_of(article)[1:] == [2.0, 3.0]
    nouns = frequent_nouns(wordnet, article, top=2)
    assert nouns == ["horse.n.01", "prize.n.01"]   # by frequency; "xqzv" is no WordNet noun
