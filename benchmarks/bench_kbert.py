"""K-BERT speed, as ratios against baselines measured in the same run.

0. ``KnowledgeGraph.from_spo`` on HowNet and on 200,000 synthetic triples (triples per second).
1. ``KnowledgeLayer.build`` vs the straightforward per-word loop (``tests/oracle_kbert.py``)
   on 1,000 ChnSentiCorp sentences with HowNet at max_length 128 (target: >= 10x).
2. Mention detection over HowNet's subjects, sentences per second (target: >= 50k/s),
   and its ratio against the unit-level FMM reference.
3. A K-BERT forward pass with the visible matrix vs the same forward with no mask
   (same shapes, SDPA attention, boolean mask; target: <= 1.15x).
4. With ``--smoke``: the wall time of each notebook in the smoke profile (target: about a minute).

Needs the K-BERT data: ``kbench data fetch kbert`` (or ``KBENCH_DATA_MIRROR``).
Run: ``python benchmarks/bench_kbert.py [--sentences 1000] [--smoke]``.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kbench.data import load_kbert_dataset, load_kg, local_path  # noqa: E402
from kbench.encoders import load_encoder, load_tokenizer  # noqa: E402
from kbench.models.kbert import KnowledgeLayer, attention_mask  # noqa: E402
from kbench.text import MentionDetector, forward_maximum_match  # noqa: E402
from oracle_kbert import build_oracle  # noqa: E402


def best_of(repeats: int, function) -> float:
    """Return the fastest of ``repeats`` timings of ``function()`` in seconds (GC off while timing, as timeit)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def bench_kg_load(data_dir) -> None:
    import tempfile

    from kbench.kg import KnowledgeGraph

    hownet = local_path("kbert/kgs/HowNet.spo", data_dir)
    hownet_s = best_of(3, lambda: KnowledgeGraph.from_spo(hownet))
    with tempfile.TemporaryDirectory() as directory:
        big = Path(directory) / "big.spo"
        big.write_text("".join(f"subject{i % 50000}\tpredicate{i % 13}\tobject{i}\n" for i in range(200_000)))
        big_s = best_of(3, lambda: KnowledgeGraph.from_spo(big))
    print(f"KnowledgeGraph.from_spo: HowNet (52,576 triples) {hownet_s * 1e3:.0f} ms; "
          f"200,000 synthetic triples {big_s * 1e3:.0f} ms ({200_000 / big_s:,.0f} triples/s)")


def bench_build(kg, sentences, tokenize) -> None:
    words = [MentionDetector(kg.subjects).segment(s) for s in sentences]
    words = [["[CLS]"] + w for w in words]

    def fast():
        layer = KnowledgeLayer(kg, max_entities=2, max_length=128, tokenize=tokenize)  # cold caches each time
        for w in words:
            layer.build(w)

    def loop():
        for w in words:
            build_oracle(w, kg, tokenize, 2, 128)

    warm_layer = KnowledgeLayer(kg, max_entities=2, max_length=128, tokenize=tokenize)
    for w in words:
        warm_layer.build(w)
    fast_s, loop_s = best_of(3, fast), best_of(3, loop)
    warm_s = best_of(3, lambda: [warm_layer.build(w) for w in words])
    print(f"KnowledgeLayer.build, {len(words)} sentences, max_length 128:")
    print(f"  per-word loop {loop_s * 1e3:8.1f} ms | build (cold caches) {fast_s * 1e3:8.1f} ms "
          f"-> {loop_s / fast_s:5.1f}x | build (warm) {warm_s * 1e3:8.1f} ms -> {loop_s / warm_s:5.1f}x")


def bench_mentions(kg, sentences) -> None:
    start = time.perf_counter()
    detector = MentionDetector(kg.subjects)
    built = time.perf_counter() - start
    fast_s = best_of(5, lambda: [detector.segment(s) for s in sentences])
    sample = sentences[:100]
    reference_s = best_of(1, lambda: [forward_maximum_match(s, kg.subjects) for s in sample]) * len(sentences) / len(sample)
    print(f"mention detection over {len(detector)} HowNet subjects (automaton built in {built * 1e3:.0f} ms):")
    print(f"  {len(sentences) / fast_s:,.0f} sentences/s | unit-level FMM reference {len(sentences) / reference_s:,.0f} "
          f"sentences/s -> {reference_s / fast_s:,.0f}x")


def bench_forward(kg, sentences, tokenize, batch: int = 16, repeats: int = 5) -> None:
    torch.manual_seed(0)
    encoder = load_encoder("embedded")
    model = encoder.model.eval()
    layer = KnowledgeLayer(kg, max_entities=2, max_length=128, tokenize=tokenize)
    trees = [layer.build(["[CLS]"] + layer.words(s)) for s in sentences[:batch]]
    ids = torch.randint(1000, 20000, (batch, 128))  # same shapes; the vocabularies differ, the cost does not
    positions = torch.from_numpy(np.stack([t.soft_positions for t in trees]))
    mask = attention_mask(torch.from_numpy(np.stack([t.visible_matrix for t in trees])))
    with torch.inference_mode():
        def plain():
            model(input_ids=ids, position_ids=positions)

        def masked():
            model(input_ids=ids, position_ids=positions, attention_mask=mask)

        plain(), masked()
        pairs = [(best_of(1, plain), best_of(1, masked)) for _ in range(repeats)]
    plain_s = statistics.median(p for p, _ in pairs)
    masked_s = statistics.median(m for _, m in pairs)
    print(f"forward, all-MiniLM-L6-v2, batch {batch} x 128, SDPA, {torch.get_num_threads()} threads:")
    print(f"  no mask {plain_s * 1e3:7.1f} ms | visible matrix (bool) {masked_s * 1e3:7.1f} ms "
          f"-> {masked_s / plain_s:.3f}x")


def bench_smoke() -> None:
    from kbench.runner import report, run

    results = run("smoke")
    print(report(results))
    for result in results:
        print(f"smoke notebook {result.name}: {result.seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--smoke", action="store_true", help="also time every notebook in the smoke profile")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    kg = load_kg("HowNet", args.data_dir)
    sentences = []
    for split in ("test", "dev", "train"):
        sentences += load_kbert_dataset("chnsenticorp", split, args.data_dir).texts
        if len(sentences) >= args.sentences:
            break
    sentences = sentences[:args.sentences]
    tokenize = load_tokenizer(vocab=str(local_path("kbert/vocab/google_vocab.txt", args.data_dir))).tokenize
    print(f"{len(sentences)} ChnSentiCorp sentences (mean {np.mean([len(s) for s in sentences]):.0f} characters), "
          f"HowNet {len(kg)} triples\n")
    bench_kg_load(args.data_dir)
    bench_build(kg, sentences, tokenize)
    bench_mentions(kg, sentences)
    bench_forward(kg, sentences, tokenize)
    if args.smoke:
        bench_smoke()


if __name__ == "__main__":
    main()
