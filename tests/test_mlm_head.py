"""MiniLM's MLM head fitted with the encoder frozen: the encoder unchanged, the head better than fresh and than the
unigram prior on held-out glosses, the checkpoint a base with its own head, the cache, bad input."""
from __future__ import annotations

import json

import pytest
import torch

from kbench.errors import InputError
from kbench.mlm_head import gloss_texts, warm_mlm_head

SMALL = dict(steps=25, texts=256, held_out=64, layers=1, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("head") / "minilm"
    return warm_mlm_head(out=out, **SMALL)


def test_the_fitted_head_beats_the_fresh_head_and_the_unigram_prior_on_held_out_glosses(fitted):
    _, report = fitted
    assert report.positions > 50
    assert report.fitted_loss < report.fresh_loss - 2.0            # a fresh head is near uniform over 30k pieces
    assert report.fitted_loss < report.prior_loss                  # it reads the context, not only frequencies
    assert report.fitted_accuracy > report.fresh_accuracy


def test_the_checkpoint_keeps_the_encoder_and_carries_its_own_head(fitted):
    from kbench.encoders import load_encoder
    from kbench.pretrain import masked_lm

    path, report = fitted
    lm, _, description = masked_lm(str(path))
    assert "its own MLM head" in description
    original = load_encoder("embedded", layers=1).model.state_dict()
    saved = lm.bert.state_dict()
    assert all(torch.equal(original[k], saved[k]) for k in original if k in saved)
    fresh, _, _ = masked_lm("embedded", layers=1)
    assert not torch.equal(fresh.cls.predictions.transform.dense.weight, lm.cls.predictions.transform.dense.weight)
    assert json.loads((path / "kbench.json").read_text())["head_report"]["fitted_loss"] == report.fitted_loss


def test_a_second_call_returns_the_cached_checkpoint(fitted):
    path, report = fitted
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    again, same = warm_mlm_head(out=path, **SMALL)
    assert again == path and same == report and (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_gloss_texts_are_distinct_and_seeded():
    texts = gloss_texts(500, seed=1)
    assert len(texts) == len(set(texts)) == 500 and gloss_texts(500, seed=1) == texts != gloss_texts(500, seed=2)


def test_bad_settings(tmp_path):
    with pytest.raises(InputError, match="steps"):
        warm_mlm_head(steps=0, out=tmp_path / "x")
    with pytest.raises(InputError, match="one batch"):
        warm_mlm_head(texts=4, batch_size=16, out=tmp_path / "y")
