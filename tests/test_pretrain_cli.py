"""``kbench pretrain``: the directory it writes is a base every notebook takes, and a killed run resumes.

The in-process resume test is in ``tests/test_pretrain.py``; here the command
itself is killed with SIGKILL (no clean-up of any kind) and started again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEXT = [f"the river number {i} runs past the old mill and into the grey sea" for i in range(48)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(TEXT))
    return path


def command(corpus: Path, out: Path, steps: int, every: int) -> list[str]:
    return [sys.executable, "-m", "kbench.cli", "pretrain", "--corpus", str(corpus), "--base", "tiny",
            "--steps", str(steps), "--batch-size", "4", "--max-length", "24", "--checkpoint-every", str(every),
            "--device", "cpu", "--precision", "no", "--out", str(out), "--quiet"]


def environment() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}


def test_pretrain_writes_a_directory_the_profiles_take_as_base_model(corpus, tmp_path, capsys):
    out = tmp_path / "pretrained"
    assert main(["pretrain", "--corpus", str(corpus), "--base", "tiny", "--steps", "3", "--batch-size", "4",
                 "--max-length", "24", "--device", "cpu", "--precision", "no", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "steps=3" in printed and "objective=mlm" in printed
    about = json.loads((out / "kbench.json").read_text())
    assert about["steps"] == 3 and about["tokens_seen"] > 0 and len(about["loss"]) == 3
    saved = load_file(out / "model.safetensors")

    from kbench.encoders import load_encoder

    encoder = load_encoder(str(out))
    name = next(k for k in saved if k.endswith("embeddings.word_embeddings.weight"))
    assert torch.equal(encoder.model.embeddings.word_embeddings.weight.detach(), saved[name])
    # the notebook run with it: the executed notebook's encoder is the pretrained one
    runs = tmp_path / "runs"
    assert main(["run", "--only", "04_doc", "--profile", "smoke", "-p", f"base_model={out}", "--out", str(runs),
                 "--quiet"]) == 0
    executed = next(runs.rglob("04_doc*.ipynb")).read_text()
    assert str(out) in executed


def test_a_killed_pretrain_resumes_to_the_weights_of_an_unkilled_run(corpus, tmp_path):
    steps, every = 40, 2
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(command(corpus, whole, steps, every), cwd=ROOT, env=environment(), check=True, timeout=300)

    process = subprocess.Popen(command(corpus, killed, steps, every), cwd=ROOT, env=environment())
    state = killed / "checkpoint" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed: give it more steps"
    assert not (killed / "model.safetensors").exists()

    subprocess.run(command(corpus, killed, steps, every), cwd=ROOT, env=environment(), check=True, timeout=300)
    about = json.loads((killed / "kbench.json").read_text())
    assert about["resumed_from"] >= every and about["steps"] == steps
    first, second = load_file(whole / "model.safetensors"), load_file(killed / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_one_process_keeps_its_draws_exactly(corpus, tmp_path, monkeypatch):
    """The per-process seeding is for several processes only: one process pretrains with the collator, the seed
    and the hooks it always had, so every single-process result (each notebook's baseline) stays bit-identical."""
    import numpy as np

    import kbench.pretrain as pipeline

    seen = {}
    plain = pipeline.pretrain

    def spying(model, built, config, description="pretrain"):
        seen["collate"] = type(model.collate)
        seen["hooks"] = len(model._forward_pre_hooks)
        seen["state"] = model.collate.rng.bit_generator.state
        return plain(model, built, config, description)

    monkeypatch.setattr(pipeline, "pretrain", spying)
    summary = pipeline.run_pretraining(str(corpus), base="tiny", steps=2, out=str(tmp_path / "one"), batch_size=4,
                                       max_length=24, seed=3, device="cpu", precision="no", progress=False)
    assert seen["collate"] is pipeline.MaskingCollator and seen["hooks"] == 0
    assert seen["state"] == np.random.default_rng(3).bit_generator.state       # seeded by the seed alone
    assert summary["processes"] == 1 and "tokens_seen_per_process" not in summary
