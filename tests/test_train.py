"""The training loop: it learns, it is repeatable, it stops early, it rejects bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kbench.errors import InputError
from kbench import train
from kbench.train import TrainConfig, accuracy, evaluate, fit, predict


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(2, 2)

    def forward(self, x, labels=None):
        logits = self.layer(x)
        return {"logits": logits, **({"loss": nn.functional.cross_entropy(logits, labels)} if labels is not None else {})}


def separable(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return {"x": x, "labels": (x[:, 0] > 0).long()}


def test_fit_learns_and_keeps_best_dev():
    model = Linear()
    before = evaluate(model, separable(seed=1), device="cpu")
    history = fit(model, separable(), separable(seed=1),
                  TrainConfig(epochs=8, batch_size=8, learning_rate=0.1, device="cpu", progress=False))
    after = evaluate(model, separable(seed=1), device="cpu")
    assert after > 0.9 and after >= before and after == pytest.approx(history.best_dev)
    assert len(history.train_loss) == len(history.dev_metric) * 8 and history.train_loss[-1] < history.train_loss[0]


def test_fit_is_repeatable():
    runs = []
    for _ in range(2):
        model = Linear()
        fit(model, separable(), None, TrainConfig(epochs=2, batch_size=8, device="cpu", progress=False))
        runs.append(model.layer.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_early_stopping():
    model = Linear()
    history = fit(model, separable(), separable(seed=1),
                  TrainConfig(epochs=50, batch_size=64, learning_rate=0.0, patience=2, device="cpu", progress=False))
    assert len(history.dev_metric) == 3 and history.best_epoch == 0


def test_bad_inputs():
    with pytest.raises(InputError, match="labels"):
        fit(Linear(), {"x": torch.zeros(4, 2)})
    with pytest.raises(InputError, match="same length"):
        fit(Linear(), {"x": torch.zeros(4, 2), "labels": torch.zeros(3, dtype=torch.long)},
            config=TrainConfig(progress=False, device="cpu"))
    with pytest.raises(InputError):
        accuracy(torch.zeros(2, 3), torch.tensor([-100, -100]))
    assert predict(Linear(), {"x": torch.zeros(5, 2)}, device="cpu").shape == (5, 2)


def test_learning_rate_schedule_by_hand():
    """Linear warm-up over the first 25% of 8 steps, then linear decay to zero: values worked out by hand."""
    config = TrainConfig(epochs=1, batch_size=8, learning_rate=0.1, warmup=0.25, device="cpu", progress=False)
    history = fit(Linear(), separable(64), None, config)       # 64 examples / 8 = 8 steps, warm-up 2 steps
    assert history.learning_rate == pytest.approx([0.05, 0.1, 0.1, 0.1 * 5 / 6, 0.1 * 4 / 6, 0.1 * 3 / 6,
                                                   0.1 * 2 / 6, 0.1 * 1 / 6])


def test_fit_matches_a_plain_adamw_loop():
    """The fused AdamW kernel fit uses changes speed, not the result: same weights as the per-tensor optimizer
    driven by the same (recorded, hand-checked above) learning rates."""
    data, config = separable(), TrainConfig(epochs=2, batch_size=8, learning_rate=0.05, device="cpu", progress=False)
    model = Linear()
    history = fit(model, data, None, config)

    reference = Linear()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data["x"], data["labels"]),
                                         batch_size=config.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.AdamW(reference.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  foreach=False)
    rates = iter(history.learning_rate)
    for _ in range(config.epochs):
        for x, labels in loader:
            optimizer.param_groups[0]["lr"] = next(rates)
            reference(x, labels)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad()
    assert torch.allclose(model.layer.weight, reference.layer.weight, atol=1e-6)
    assert not torch.equal(reference.layer.weight, Linear().layer.weight)


def test_fits_with_different_precisions_in_one_process():
    """A bf16 fit then a full-precision one: accelerate's one-state-per-process must not refuse the second."""
    for precision in ("bf16", "no", "bf16"):
        model = Linear()
        fit(model, separable(), separable(seed=1),
            TrainConfig(epochs=1, batch_size=16, device="cpu", precision=precision, progress=False))
        assert evaluate(model, separable(seed=1), device="cpu", precision=precision) >= 0.0
    with pytest.raises(InputError, match="unknown precision"):
        fit(Linear(), separable(), config=TrainConfig(precision="fp8", device="cpu", progress=False))


def test_the_model_comes_back_unwrapped():
    """Neither fit (with autocast) nor predict leaves wrappers on the model's forward."""
    model = Linear()
    forward = type(model).forward
    fit(model, separable(), separable(seed=1),
        TrainConfig(epochs=3, batch_size=16, device="cpu", precision="bf16", progress=False))
    for _ in range(3):
        predict(model, separable(seed=2), device="cpu", precision="bf16")
    assert model.forward.__func__ is forward and not hasattr(model, "_original_forward")


class Examples(torch.utils.data.Dataset):
    """Variable-length examples: a row of ``length`` 2-D points, each labelled by the sign of its first value."""

    def __init__(self, n=40, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.rows = [torch.randn(int(torch.randint(1, 6, (1,), generator=g)), 2, generator=g) for _ in range(n)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def pad_rows(rows):
    width = max(len(r) for r in rows)
    x = torch.zeros(len(rows), width, 2)
    labels = torch.full((len(rows), width), -100)
    for i, r in enumerate(rows):
        x[i, :len(r)] = r
        labels[i, :len(r)] = (r[:, 0] > 0).long()
    return {"x": x, "labels": labels}


class Tokens(Linear):
    def forward(self, x, labels=None):
        logits = self.layer(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out


def test_datasets_are_batched_by_collate_and_padded_per_batch():
    model = Tokens()
    model.collate = pad_rows
    history = fit(model, Examples(), Examples(seed=1),
                  TrainConfig(epochs=6, batch_size=8, learning_rate=0.1, device="cpu", progress=False))
    assert history.best_dev > 0.9
    logits = predict(model, Examples(seed=2), batch_size=8, device="cpu")
    assert logits.shape == (40, 5, 2)       # batches of different widths, padded to the widest
    with pytest.raises(InputError, match="collate"):
        fit(Linear(), Examples(), config=TrainConfig(device="cpu", progress=False))
    with pytest.raises(InputError, match="dict of tensors or a torch Dataset"):
        fit(Linear(), [1, 2, 3], config=TrainConfig(device="cpu", progress=False))


def test_batches_pad_rows_and_mask_real_tokens():
    batch = train.token_batch([np.array([5, 6, 7]), np.array([8])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert train.pad_rows([np.array([], np.int64)], -1, minimum=2).tolist() == [[-1, -1]]
    with pytest.raises(InputError, match="empty batch"):
        train.pad_rows([], 0)


def test_labelled_examples_check_counts_before_building():
    class Row:
        pass

    built = []
    examples = train.labelled_examples(["a", "b"], [1, 0], lambda index, text: built.append((index, text)) or Row())
    assert [e.label for e in examples] == [1, 0] and built == [(0, "a"), (1, "b")]
    assert train.labelled_examples(["a"], None, lambda index, text: Row())[0].label is None
    with pytest.raises(InputError, match="2 documents but 1 labels"):
        train.labelled_examples(["a", "b"], [1], lambda index, text: built.append("too early"), noun="documents")
    assert "too early" not in built


def test_eval_mode_turns_dropout_off_and_puts_the_mode_back_even_on_error():
    import pytest
    import torch

    from kbench.train import eval_mode

    model = torch.nn.Sequential(torch.nn.Dropout(0.5))
    with eval_mode(model):
        assert not model.training and not model[0].training
        x = torch.ones(100)
        assert torch.equal(model(x), x)
    assert model.training and model[0].training
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(model):
            raise RuntimeError("inside")
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training                                   # an eval-mode model stays in eval mode


def test_progress_is_drawn_live_and_not_in_a_batch_run(monkeypatch):
    from kbench import BATCH
    from kbench.train import show_progress

    monkeypatch.delenv(BATCH, raising=False)
    assert show_progress(None) and show_progress(True) and not show_progress(False)
    monkeypatch.setenv(BATCH, "1")
    assert not show_progress(None) and show_progress(True)       # an explicit choice wins
