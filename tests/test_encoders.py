"""Encoders: the size ladder, the embedded checkpoint, local directories, unknown names."""
from __future__ import annotations

import pytest
import torch

from kbench.encoders import SIZES, HookedEncoder, fast_tokenize, load_encoder, load_tokenizer, resolve_device
from kbench.errors import InputError, UnknownNameError


def test_size_ladder_is_random_init_and_seeded():
    a, b = load_encoder("tiny", seed=3), load_encoder("tiny", seed=3)
    assert a.model.config.num_hidden_layers == 2 and a.model.config.hidden_size == 128
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert list(SIZES) == ["tiny", "mini", "small", "base"]


def mean_pooled(encoder, sentences):
    with torch.no_grad():
        ids = encoder.tokenizer(sentences, return_tensors="pt", padding=True)
        states = encoder.model(**ids).last_hidden_state
        mask = ids["attention_mask"][:, :, None].float()
        return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)


def paraphrase_margin(encoder) -> float:
    """Cosine of a paraphrase pair minus cosine of an unrelated pair (all-MiniLM is trained for this)."""
    a, b, c = mean_pooled(encoder, ["a man is playing a guitar", "someone plays the guitar",
                                    "the stock market fell sharply today"])
    return float(a @ b - a @ c)


def test_embedded_encoder_is_pretrained_minilm():
    encoder = load_encoder("embedded")
    assert encoder.model.config.num_hidden_layers == 6 and encoder.model.config.hidden_size == 384
    assert encoder.tokenizer.tokenize("Tim Cook") == ["tim", "cook"]
    # trained, not random: paraphrases are far closer than unrelated sentences; a random init of the same
    # architecture cannot tell them apart (its sentence vectors are all nearly the same direction)
    assert paraphrase_margin(encoder) > 0.4
    random_init = load_encoder("tiny", seed=0)
    assert abs(paraphrase_margin(random_init)) < 0.1


def test_pretrained_prefix_and_frozen_word_embeddings():
    encoder = load_encoder("embedded", layers=2, freeze_word_embeddings=True)
    full = load_encoder("embedded")
    assert len(encoder.model.encoder.layer) == 2 and encoder.model.config.num_hidden_layers == 2
    assert torch.equal(encoder.model.encoder.layer[1].output.dense.weight, full.model.encoder.layer[1].output.dense.weight)
    assert not encoder.model.embeddings.word_embeddings.weight.requires_grad
    assert encoder.model.embeddings.position_embeddings.weight.requires_grad
    assert "first 2 of 6 layers" in encoder.description
    with pytest.raises(InputError, match="between 1 and 6"):
        load_encoder("embedded", layers=7)


def test_hooked_encoder_without_hooks_equals_bert_model():
    encoder = load_encoder("tiny", seed=2)
    model = encoder.model.eval()
    ids = encoder.tokenizer(["paris is in france", "a b"], return_tensors="pt", padding=True)
    hooked = HookedEncoder(model)
    with torch.no_grad():
        assert torch.equal(hooked(**ids), model(**ids).last_hidden_state)
        length = ids["input_ids"].shape[1]
        mask = torch.rand(2, 1, length, length, generator=torch.Generator().manual_seed(0)) > 0.3
        mask |= torch.eye(length, dtype=torch.bool)
        positions = torch.arange(length).flip(0).expand(2, length)
        assert torch.equal(hooked(ids["input_ids"], mask, positions),
                           model(input_ids=ids["input_ids"], attention_mask=mask, position_ids=positions).last_hidden_state)


def test_hooks_run_between_layers_with_their_context():
    encoder = load_encoder("tiny", seed=2)
    model = encoder.model.eval()
    seen = []

    class Shift(torch.nn.Module):
        def forward(self, states, context):
            seen.append(context["tag"])
            context["passed"] = context.get("passed", 0) + 1
            return states + 1.0

    ids = encoder.tokenizer(["paris is in france"], return_tensors="pt")
    with torch.no_grad():
        after_first = HookedEncoder(model, {0: Shift()})(**ids, tag="t")
        manual = model.embeddings(input_ids=ids["input_ids"])
        manual = model.encoder.layer[0](manual, None) + 1.0
        manual = model.encoder.layer[1](manual, None)
    assert seen == ["t"] and torch.allclose(after_first, manual, atol=1e-6)
    context = {"tag": "u"}                       # a caller's dict: what the modules leave in it comes back
    with torch.no_grad():
        HookedEncoder(model, {0: Shift(), 1: Shift()})(**ids, context=context)
    assert context["passed"] == 2 and seen == ["t", "u", "u"]
    with pytest.raises(InputError, match="layer index"):
        HookedEncoder(model, {2: Shift()})


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
