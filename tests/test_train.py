"""The training loop: it learns, it is repeatable, it stops early, it rejects bad input."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kbench.errors import InputError
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


def test_fit_matches_a_plain_adamw_loop():
    """The fused AdamW kernel fit uses changes speed, not the result: same weights as the per-tensor optimizer."""
    data, config = separable(), TrainConfig(epochs=2, batch_size=8, learning_rate=0.05, device="cpu", progress=False)
    model = Linear()
    fit(model, data, None, config)

    reference = Linear()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data["x"], data["labels"]),
                                         batch_size=config.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.AdamW(reference.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  foreach=False)
    total = config.epochs * len(loader)
    warm = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
    for _ in range(config.epochs):
        for x, labels in loader:
            reference(x, labels)["loss"].backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    assert torch.allclose(model.layer.weight, reference.layer.weight, atol=1e-6)
    assert not torch.equal(reference.layer.weight, Linear().layer.weight)
