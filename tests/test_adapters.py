"""K-Adapter's adapters beside a frozen base: taps, near-identity start, the base untouched, save/load alone."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kbench.adapters import Adapter, AdapterLayer, KAdapterEncoder, default_taps, load_adapter, save_adapter
from kbench.encoders import HookedEncoder, load_encoder
from kbench.errors import InputError


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return load_encoder("tiny", seed=0)


def batch(tokenizer, texts=("the cat sat on the mat", "a dog")):
    return tokenizer(list(texts), padding=True, return_tensors="pt")


def test_hooked_encoder_keeps_every_hidden_state_as_bert_does(base):
    encoded = batch(base.tokenizer)
    hooked = HookedEncoder(base.model).eval()
    context = {"hidden_states": []}
    hooked(encoded["input_ids"], attention_mask=encoded["attention_mask"], context=context)
    reference = base.model.eval()(**encoded, output_hidden_states=True).hidden_states
    assert len(context["hidden_states"]) == len(reference) == base.model.config.num_hidden_layers + 1
    for ours, theirs in zip(context["hidden_states"], reference):
        torch.testing.assert_close(ours, theirs)


def test_default_taps_spread_as_the_paper():
    assert default_taps(24) == (0, 11, 22)
    assert default_taps(12) == (0, 6, 10)
    assert default_taps(2) == (0, 1)
    with pytest.raises(InputError, match="no layers"):
        default_taps(0)


def test_a_fresh_adapter_layer_is_nearly_the_identity_and_its_shapes_hold():
    torch.manual_seed(0)
    layer = AdapterLayer(hidden=32, width=16, heads=4)
    x = torch.randn(2, 5, 32)
    out = layer(x)
    assert out.shape == x.shape
    assert 0 < (out - x).abs().max() < 1e-2 * x.abs().max()                 # std 0.0002: x + about 1e-3
    assert len(layer.layers) == 2 and layer.down.out_features == 16 and layer.up.out_features == 32
    assert float(layer.down.weight.std()) == pytest.approx(2e-4, rel=0.2) and not layer.down.bias.any()
    assert float(layer.up.weight.std()) == pytest.approx(2e-4, rel=0.2)
    inner = layer.layers[0]          # PyTorch's default init, as the code's BertEncoder (only the projections re-set)
    weight = inner.attention.self.query.weight                              # Kaiming-uniform: U(±1/sqrt(16))
    assert float(weight.abs().max()) <= 0.25 and float(weight.std()) == pytest.approx(1 / 48 ** 0.5, rel=0.2)
    assert torch.equal(inner.output.LayerNorm.weight, torch.ones(16)) and not inner.output.LayerNorm.bias.any()


def test_bad_taps_are_named():
    with pytest.raises(InputError, match="tap 3 is beyond the base: a base of 2 layers has states 0"):
        Adapter(hidden=32, depth=2, taps=[0, 3])
    with pytest.raises(InputError, match="rise strictly"):
        Adapter(hidden=32, depth=4, taps=[2, 1])
    with pytest.raises(InputError, match="multiple of its 4 attention heads"):
        AdapterLayer(hidden=32, width=18)
    with pytest.raises(InputError, match="taps must be ints"):
        Adapter(hidden=32, depth=2, taps=[0, 1.0])
    adapter = Adapter(hidden=32, depth=2, taps=np.array([0, 2]))           # numpy ints are ints
    assert adapter.taps == (0, 2) and all(type(t) is int for t in adapter.spec["taps"])


def test_the_adapter_reads_its_taps_and_only_them(base):
    depth, hidden = base.model.config.num_hidden_layers, base.model.config.hidden_size
    torch.manual_seed(1)
    adapter = Adapter(hidden, depth, taps=[0, depth]).eval()
    states = [torch.randn(1, 4, hidden) for _ in range(depth + 1)]
    out = adapter(states)
    untapped = [s.clone() for s in states]
    untapped[1] = untapped[1] + 5.0
    if depth > 1:
        torch.testing.assert_close(adapter(untapped), out)               # state 1 is not a tap: no effect
    for tap in (0, depth):
        changed = [s.clone() for s in states]
        changed[tap] = changed[tap] + 1.0
        assert not torch.allclose(adapter(changed), out)
    with pytest.raises(InputError, match="hidden states"):
        adapter(states[:-1])


def test_base_is_bit_identical_after_adapter_training_and_the_adapters_learn(base):
    encoded = batch(base.tokenizer)
    hooked = HookedEncoder(base.model)
    before = {k: v.clone() for k, v in hooked.state_dict().items()}
    depth, hidden = base.model.config.num_hidden_layers, base.model.config.hidden_size
    torch.manual_seed(2)
    model = KAdapterEncoder(hooked, [Adapter(hidden, depth, name="factual"), Adapter(hidden, depth, name="linguistic")])
    adapter_before = {k: v.clone() for k, v in model.adapters.state_dict().items()}
    target = torch.randn(2, encoded["input_ids"].shape[1], hidden)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        optimiser.zero_grad()
        loss = ((model(encoded["input_ids"], attention_mask=encoded["attention_mask"]) - target) ** 2).mean()
        loss.backward()
        optimiser.step()
    after = hooked.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(adapter_before[k], v) for k, v in model.adapters.state_dict().items())
    assert model.combine.in_features == 3 * hidden                         # base + two adapters, concatenated


def test_adapters_change_the_output_and_padding_does_not(base):
    hooked = HookedEncoder(base.model)
    depth, hidden = base.model.config.num_hidden_layers, base.model.config.hidden_size
    torch.manual_seed(3)
    model = KAdapterEncoder(hooked, [Adapter(hidden, depth)]).eval()
    with torch.no_grad():                        # away from the near-zero init: the adapter's part must show
        for p in [*model.adapters.parameters(), model.combine.weight]:
            p.add_(0.05 * torch.randn_like(p))
    alone = batch(base.tokenizer, ["a dog"])
    padded = batch(base.tokenizer, ["a dog", "the cat sat on the mat"])
    out_alone = model(alone["input_ids"], attention_mask=alone["attention_mask"])
    out_padded = model(padded["input_ids"], attention_mask=padded["attention_mask"])
    torch.testing.assert_close(out_padded[0, :out_alone.shape[1]], out_alone[0], atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        model.adapters[0].layers[-1].up.bias.add_(1.0)                    # the adapter's output reaches the result
    assert not torch.allclose(model(alone["input_ids"], attention_mask=alone["attention_mask"]), out_alone)


def test_an_adapter_saves_and_loads_alone(base, tmp_path):
    depth, hidden = base.model.config.num_hidden_layers, base.model.config.hidden_size
    torch.manual_seed(4)
    adapter = Adapter(hidden, depth, name="factual").eval()
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_adapter(adapter, tmp_path / "factual")
    assert sorted(p.name for p in (tmp_path / "factual").iterdir()) == ["adapter.json", "adapter.safetensors"]
    loaded = load_adapter(tmp_path / "factual").eval()
    states = [torch.randn(1, 3, hidden) for _ in range(depth + 1)]
    torch.testing.assert_close(loaded(states), adapter(states))
    assert loaded.taps == adapter.taps and loaded.name == "factual"
    with pytest.raises(InputError, match="no saved adapter"):
        load_adapter(tmp_path / "missing")
    spec = json.loads((tmp_path / "factual" / "adapter.json").read_text())
    (tmp_path / "factual" / "adapter.json").write_text(json.dumps({**spec, "width": 2 * spec["width"]}))
    with pytest.raises(InputError, match="factual: adapter.safetensors does not fit"):
        load_adapter(tmp_path / "factual")
    with pytest.raises(InputError, match="built for a"):
        KAdapterEncoder(HookedEncoder(base.model), [Adapter(hidden, depth + 1)])


def test_with_fresh_adapters_the_features_start_as_the_base_alone(base):
    """The projection's base part starts as the identity and the adapters' parts at zero: any variant, trained
    adapters or untrained, starts from the base's last state; a projection moved off that start reads the adapter."""
    encoded = batch(base.tokenizer)
    hooked = HookedEncoder(base.model)
    depth, hidden = base.model.config.num_hidden_layers, base.model.config.hidden_size
    context = {"hidden_states": []}
    with torch.no_grad():
        hooked.eval()(encoded["input_ids"], attention_mask=encoded["attention_mask"], context=context)
    last = context["hidden_states"][-1]
    torch.manual_seed(5)
    adapters = [Adapter(hidden, depth, name="factual"), Adapter(hidden, depth, name="linguistic")]
    with torch.no_grad():
        for p in adapters[0].parameters():                                  # even a "trained" adapter
            p.add_(0.05 * torch.randn_like(p))
    for use in ([], adapters[:1], adapters):
        model = KAdapterEncoder(hooked, use).eval()
        with torch.no_grad():
            out = model(encoded["input_ids"], attention_mask=encoded["attention_mask"])
        torch.testing.assert_close(out, last, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        model.combine.weight[:, hidden:2 * hidden].add_(0.05)
        moved = model(encoded["input_ids"], attention_mask=encoded["attention_mask"])
    assert not torch.allclose(moved, last, atol=1e-3)


def test_train_base_lets_the_base_learn_beside_the_adapters(base):
    """The authors' downstream scripts train the base too (--freeze_bert ""): with train_base the base's weights
    get gradients and change; by default they get none."""
    import copy

    encoded = batch(base.tokenizer)
    depth, hidden = base.model.config.num_hidden_layers, base.model.config.hidden_size
    for train_base in (False, True):
        hooked = HookedEncoder(copy.deepcopy(base.model).requires_grad_(True))
        before = {k: v.clone() for k, v in hooked.state_dict().items()}
        torch.manual_seed(6)
        model = KAdapterEncoder(hooked, [Adapter(hidden, depth)], train_base=train_base).train()
        assert hooked.training == train_base                               # a frozen base runs in eval mode
        optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(2):
            optimiser.zero_grad()
            model(encoded["input_ids"], attention_mask=encoded["attention_mask"]).pow(2).mean().backward()
            optimiser.step()
        changed = [k for k, v in hooked.state_dict().items() if not torch.equal(before[k], v)]
        assert bool(changed) == train_base, (train_base, changed[:3])
