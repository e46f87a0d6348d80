"""Encoders: the size ladder, the embedded checkpoint, local directories, unknown names."""
from __future__ import annotations

import pytest
import torch

from kbench.encoders import SIZES, fast_tokenize, load_encoder, load_tokenizer, resolve_device
from kbench.errors import UnknownNameError


def test_size_ladder_is_random_init_and_seeded():
    a, b = load_encoder("tiny", seed=3), load_encoder("tiny", seed=3)
    assert a.model.config.num_hidden_layers == 2 and a.model.config.hidden_size == 128
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert list(SIZES) == ["tiny", "mini", "small", "base"]


def test_embedded_encoder_is_pretrained_minilm():
    encoder = load_encoder("embedded")
    assert encoder.model.config.num_hidden_layers == 6 and encoder.model.config.hidden_size == 384
    assert encoder.tokenizer.tokenize("Tim Cook") == ["tim", "cook"]
    with torch.no_grad():
        ids = encoder.tokenizer(["paris is in france", "berlin is in germany"], return_tensors="pt")
        states = encoder.model(**ids).last_hidden_state[:, 0]
    assert torch.nn.functional.cosine_similarity(states[0], states[1], dim=0) > 0.3  # trained, not random


def test_checkpoint_directory_round_trip(tmp_path):
    encoder = load_encoder("tiny", seed=1)
    encoder.model.save_pretrained(tmp_path)
    encoder.tokenizer.save_pretrained(tmp_path)
    loaded = load_encoder(str(tmp_path))
    assert torch.equal(loaded.model.embeddings.word_embeddings.weight, encoder.model.embeddings.word_embeddings.weight)


def test_chinese_vocab_for_random_init(real_data):
    tokenizer = load_tokenizer("base", vocab=str(real_data / "kbert/vocab/google_vocab.txt"))
    assert tokenizer.tokenize("北京很好") == ["北", "京", "很", "好"] and len(tokenizer) == 21128


@pytest.mark.parametrize("name", ["bert-huge", "no/such-model", "~/not-a-dir"])
def test_unknown_base_model(name):
    with pytest.raises(UnknownNameError, match="unknown base model"):
        load_encoder(name)


def test_directory_without_config(tmp_path):
    with pytest.raises(UnknownNameError, match="config.json"):
        load_encoder(str(tmp_path))


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UnknownNameError):
        resolve_device("gpu-please")


def test_fast_tokenize_equals_the_tokenizer(real_data):
    """The backend shortcut gives a fast tokenizer's own tokens for every HowNet subject and branch text."""
    from kbench.data import load_kg

    kg = load_kg("HowNet", real_data)
    texts = list(kg.subjects)[::7] + [kg.branches(s, True, "", 2)[0] for s in list(kg.subjects)[:2000]]
    texts += ["Tim Cook", "naïve CAFÉ", "[CLS]", "[MASK]x", "  ", "", "ABC-def 12,3", "word " * 300]
    for tokenizer in (load_tokenizer("base", vocab=str(real_data / "kbert/vocab/google_vocab.txt")),
                      load_tokenizer("embedded")):
        # the embedded tokenizer.json itself pads and truncates at 128; tokenize() does neither
        fast = fast_tokenize(tokenizer.tokenize)
        assert fast is not tokenizer.tokenize
        assert [fast(t) for t in texts] == [tokenizer.tokenize(t) for t in texts]


def test_fast_tokenize_leaves_other_callables_alone():
    assert fast_tokenize(str.split) is str.split
    shortcut = fast_tokenize(load_tokenizer("embedded").tokenize)
    assert fast_tokenize(shortcut) is shortcut


def test_fast_tokenize_respects_an_overridden_tokenize():
    class Shouting(type(load_tokenizer("embedded"))):
        def tokenize(self, text, **kwargs):
            return [token.upper() for token in super().tokenize(text, **kwargs)]

    tokenizer = Shouting.from_pretrained(str(load_tokenizer("embedded").name_or_path))
    assert fast_tokenize(tokenizer.tokenize)("Tim Cook") == ["TIM", "COOK"]
