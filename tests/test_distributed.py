"""Beyond one process: ``fit`` and ``kbench pretrain`` under ``torchrun`` / ``accelerate launch`` (Accelerate's DDP).

Two CPU processes (gloo) on this machine stand for N GPUs or nodes: the same
code path (Accelerate's ``MULTI_CPU`` instead of ``MULTI_GPU``), the same
sharding of batches, the same gradient all-reduce.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

import distributed_fit  # noqa: E402  (tests/distributed_fit.py: the script each process runs)

PROCESSES = 2


def launch(command: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    """Run a launcher command from the repository root, one CPU thread per process; fail with its output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(PROCESSES), *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ranks(out: Path) -> list[dict]:
    files = sorted(out.glob("rank*.pt"))
    return [torch.load(f, weights_only=False) for f in files]


@pytest.fixture(scope="module")
def torchrun_fit(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("torchrun")
    launch(torchrun("tests/distributed_fit.py", str(out)))
    return ranks(out)


def test_fit_under_torchrun_shards_each_epoch_and_keeps_ranks_equal(torchrun_fit):
    assert [r["rank"] for r in torchrun_fit] == [0, 1]
    assert all(r["processes"] == PROCESSES and r["backend"] == "gloo" for r in torchrun_fit)
    # each process takes 1/N of the batches: 64 examples / (2 processes x 8) = 4 steps an epoch each
    per_epoch = distributed_fit.EXAMPLES // (PROCESSES * distributed_fit.BATCH)
    assert all(r["steps"] == distributed_fit.EPOCHS * per_epoch for r in torchrun_fit)
    # DDP averages the gradients: every process ends with exactly the same weights
    first = torchrun_fit[0]["weights"]
    for other in torchrun_fit[1:]:
        assert first.keys() == other["weights"].keys()
        assert all(torch.equal(first[k], other["weights"][k]) for k in first)
    # every example is seen exactly once an epoch, across the processes. The dataset size is a multiple of
    # processes x batch, so Accelerate's even_batches has nothing to pad and the check is exact (otherwise
    # it repeats a few examples to give every process a whole last batch).
    for epoch in range(distributed_fit.EPOCHS):
        seen = [i for r in torchrun_fit for batch in r["seen"][epoch * per_epoch:(epoch + 1) * per_epoch] for i in batch]
        assert sorted(seen) == list(range(distributed_fit.EXAMPLES)), f"epoch {epoch}"
    # ...in a new order each epoch
    assert torchrun_fit[0]["seen"][0] != torchrun_fit[0]["seen"][per_epoch]


def test_two_processes_train_as_one_process_would_not(torchrun_fit, tmp_path):
    """A positive control: one process on the same data ends elsewhere (twice the steps, half the batch)."""
    model = distributed_fit.Classifier()
    from kbench.train import TrainConfig, fit

    fit(model, distributed_fit.examples(), None, TrainConfig(epochs=distributed_fit.EPOCHS,
        batch_size=distributed_fit.BATCH, learning_rate=0.05, device="cpu", precision="no", progress=False))
    assert not torch.equal(model.layer.weight.detach(), torchrun_fit[0]["weights"]["layer.weight"])


def test_accelerate_launch_multi_gpu_flag_runs_two_cpu_processes(torchrun_fit, tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2`` on a CPU-only machine: two gloo processes.

    (``accelerate launch --cpu --num_processes 2`` starts one process: ``--cpu``
    takes its simple launcher, which spreads CPU processes only through
    ``--mpirun_hostfile``. ``--multi_gpu`` takes torchrun's launcher; kbench's
    ``accelerator_for`` asks for the CPU itself when there is no GPU.)
    """
    launch([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(PROCESSES),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), "tests/distributed_fit.py", str(tmp_path)])
    launched = ranks(tmp_path)
    assert [r["processes"] for r in launched] == [PROCESSES] * PROCESSES
    for r, t in zip(launched, torchrun_fit):
        assert r["seen"] == t["seen"]
        assert all(torch.equal(r["weights"][k], t["weights"][k]) for k in t["weights"])


def test_kbench_pretrain_under_torchrun_writes_one_loadable_directory(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the river number {i} runs past the old mill into the sea" for i in range(32)))
    out = tmp_path / "pretrained"
    done = launch(torchrun("-m", "kbench.cli", "pretrain", "--corpus", str(corpus), "--base", "tiny", "--steps", "4",
                           "--batch-size", "4", "--checkpoint-every", "2", "--device", "cpu", "--out", str(out),
                           "--quiet"))
    summaries = [line for line in done.stdout.splitlines() if line.startswith("objective=")]
    assert len(summaries) == PROCESSES and all("processes=2" in line and "steps=4" in line for line in summaries)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "pretrained"]
    assert {"config.json", "model.safetensors", "kbench.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "checkpoint").exists()          # the finished run's resumable checkpoint is removed
    from kbench.pretrain import check_checkpoint_dir, masked_lm

    check_checkpoint_dir(out)
    lm, tokenizer, description = masked_lm(str(out))
    assert "own MLM head" in description and tokenizer("the river")["input_ids"][0] == tokenizer.cls_token_id


def test_kbench_pretrain_ranks_draw_their_own_masks_and_dropout(tmp_path, objective="mlm"):
    """Every rank reads the same sentence, so only the random draws can tell them apart: each rank must draw its
    own masks and its own dropout, seeded by (seed, process index); the summary gives the totals over the ranks."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the river runs past the old mill and into the grey sea near the town"] * 32))
    launch(torchrun("tests/distributed_fit.py", "--pretrain", str(corpus), str(tmp_path), objective))
    runs = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(PROCESSES)]
    first, second = (r["masked"] for r in runs)
    assert len(first) == len(second) >= 3       # a batch a step, 3 steps (the loader may build one ahead)
    differ = sum(a != b for a, b in zip(first, second))
    assert differ == len(first), f"the ranks drew the same masks in {len(first) - differ} of {len(first)} batches"
    assert runs[0]["dropout"][0] != runs[1]["dropout"][0]       # their own dropout from the first step
    summaries = [r["summary"] for r in runs]
    assert summaries[0]["tokens_seen"] == summaries[1]["tokens_seen"] == sum(summaries[0]["tokens_seen_per_process"])
    assert len(summaries[0]["tokens_seen_per_process"]) == PROCESSES
    assert summaries[0]["first_loss"] == pytest.approx(sum(summaries[0]["first_loss_per_process"]) / PROCESSES,
                                                       abs=1e-3)
    saved = json.loads((tmp_path / "model" / "kbench.json").read_text())
    assert saved["tokens_seen"] == summaries[0]["tokens_seen"] and saved["processes"] == PROCESSES
    assert not (tmp_path / "model" / "checkpoint").exists()


def test_seed_for_process_gives_each_rank_its_own_stream_and_one_process_none():
    from kbench.pretrain import MaskingCollator, seed_for_process
    from kbench.text.masking import MaskVocab
    from kbench.encoders import load_encoder

    tokenizer = load_encoder("tiny", seed=0).tokenizer
    collators = [MaskingCollator(MaskVocab.of(tokenizer), 0, seed=0) for _ in range(3)]
    seed_for_process(collators[1], 0, 0)
    seed_for_process(collators[2], 0, 1)
    draws = [c.rng.integers(1 << 30, size=4).tolist() for c in collators]
    assert len({tuple(d) for d in draws}) == 3
    again = MaskingCollator(MaskVocab.of(tokenizer), 0, seed=0)
    seed_for_process(again, 0, 1)
    assert again.rng.integers(1 << 30, size=4).tolist() == draws[2]          # deterministic per (seed, rank)


def test_seed_for_process_reaches_a_collators_inner_generators():
    """LIBERT's collator holds a second generator (its LRC examples') and a first-pass order drawn from it."""
    from kbench.data.lexical_relations import LexicalPair
    from kbench.models.libert import pretrainer
    from kbench.pretrain import seed_for_process

    pairs = [LexicalPair(f"word{i}", f"term{i}", "synonym", i % 2) for i in range(40)]
    ranks = [pretrainer("tiny", "libert", pairs, seed=0).collate for _ in range(2)]
    for rank, collate in enumerate(ranks):
        seed_for_process(collate, 0, rank)
    assert ranks[0].extra.order.tolist() != ranks[1].extra.order.tolist()
    assert ranks[0].rng.integers(1 << 30) != ranks[1].rng.integers(1 << 30)
