"""K-BERT speed, as ratios against baselines measured in the same run.

0. ``KnowledgeGraph.from_spo`` on HowNet and on 200,000 synthetic triples (triples per second).
1. Compact examples (``KnowledgeLayer.example``) vs a straightforward per-word loop that fills the
   visible matrix row by row with numpy (``tests/oracle_kbert.py: build_rowwise``), on 1,000
   ChnSentiCorp sentences with HowNet, one core: at max_length 128 (target: >= 10x) and 256
   (target: >= 10k sentences/s), plus the dense ``build`` and the cell-by-cell oracle for scale.
2. Peak memory of encoding book_review's train split at max_length 256: dense L x L matrices
   stacked up front (the previous encoding) vs compact examples (target: under 10%).
3. Mention detection over HowNet's subjects, sentences per second (target: >= 50k/s),
   and its ratio against the unit-level FMM reference.
4. A K-BERT forward pass with the visible matrix vs the same forward with no mask
   (same shapes, SDPA attention, boolean mask; target: <= 1.15x), and ``collate`` per batch.
5. With ``--smoke``: the wall time of each notebook in the smoke profile (target: under 60 s each,
   and at most 40% of the 131 s the K-BERT notebook took before the speed work, on the same machine).

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
from kbench.models.kbert import KnowledgeLayer, attention_mask, collate  # noqa: E402
from kbench.text import MentionDetector, forward_maximum_match  # noqa: E402
from oracle_kbert import build_oracle, build_rowwise  # noqa: E402


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


def bench_build(kg, sentences, tokenizer) -> None:
    tokenize, vocab = tokenizer.tokenize, tokenizer.get_vocab()
    detector = MentionDetector(kg.subjects)
    words = [["[CLS]"] + detector.segment(s) for s in sentences]
    for length in (128, 256):
        def compact():
            layer = KnowledgeLayer(kg, max_entities=2, max_length=length, tokenize=tokenize, vocab=vocab)  # cold
            for w in words:
                layer.example(w)

        def from_text():
            layer = KnowledgeLayer(kg, max_entities=2, max_length=length, tokenize=tokenize, vocab=vocab)
            layer._detector = detector     # the automaton is built once per KG, not per sentence
            for s in sentences:
                layer.example(["[CLS]"] + layer.words(s))

        def dense():
            layer = KnowledgeLayer(kg, max_entities=2, max_length=length, tokenize=tokenize)
            for w in words:
                layer.build(w)

        def rowwise():
            for w in words:
                build_rowwise(w, kg, tokenize, 2, length)

        warm = KnowledgeLayer(kg, max_entities=2, max_length=length, tokenize=tokenize, vocab=vocab)
        for w in words:
            warm.example(w)
        rowwise_s, compact_s, text_s = best_of(3, rowwise), best_of(3, compact), best_of(3, from_text)
        warm_s = best_of(3, lambda: [warm.example(w) for w in words])
        dense_s = best_of(1, dense)
        print(f"sentence trees, {len(words)} sentences, max_length {length}, one core:")
        print(f"  row-wise numpy loop {rowwise_s * 1e3:7.1f} ms | compact examples (cold caches) "
              f"{compact_s * 1e3:6.1f} ms -> {rowwise_s / compact_s:5.1f}x, {len(words) / compact_s:,.0f} sentences/s")
        print(f"  compact (warm caches) {warm_s * 1e3:6.1f} ms -> {rowwise_s / warm_s:5.1f}x, "
              f"{len(words) / warm_s:,.0f} sentences/s | from raw text, mention detection included "
              f"{len(words) / text_s:,.0f} sentences/s | dense build() {dense_s * 1e3:.1f} ms "
              f"({rowwise_s / dense_s:.1f}x)")
    cell_s = best_of(1, lambda: [build_oracle(w, kg, tokenize, 2, 128) for w in words[:200]]) * len(words) / 200
    print(f"  (for scale: the cell-by-cell oracle, L=128: {cell_s * 1e3:.0f} ms per {len(words)} sentences)")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _peak_memory_child(mode: str, data_dir: str | None, length: int) -> None:
    """Encode book_review's train split one way and print the peak RSS growth (MiB) past loading.

    The kernel's peak (VmHWM) is reset just before encoding (``/proc/self/clear_refs``), so
    loading the KG and tokenizer does not hide a smaller peak.
    """
    from kbench.encoders import load_tokenizer

    kg = load_kg("HowNet", data_dir)
    texts = load_kbert_dataset("book_review", "train", data_dir).texts
    tokenizer = load_tokenizer(vocab=str(local_path("kbert/vocab/google_vocab.txt", data_dir)))
    layer = KnowledgeLayer(kg, max_entities=2, max_length=length, tokenize=tokenizer.tokenize,
                           vocab=tokenizer.get_vocab())
    layer.words(texts[0])
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    if mode == "dense":
        trees = [layer.build(["[CLS]"] + layer.words(t)) for t in texts]
        ids = torch.tensor([tokenizer.convert_tokens_to_ids(tree.tokens) for tree in trees])
        positions = torch.from_numpy(np.stack([tree.soft_positions for tree in trees]))
        mask = attention_mask(np.stack([tree.visible_matrix for tree in trees]))
        held = (ids, positions, mask)
    else:
        held = [layer.example(["[CLS]"] + layer.words(t)) for t in texts]
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    print(f"{len(texts)} {(peak - before) / 1024:.1f} {seconds:.1f} {len(held)}")


def bench_memory(data_dir, length: int = 256) -> None:
    import subprocess

    figures = {}
    for mode in ("dense", "compact"):
        out = subprocess.run([sys.executable, __file__, "--memory-child", mode, "--length", str(length),
                              *(["--data-dir", data_dir] if data_dir else [])],
                             capture_output=True, text=True, check=True).stdout.split()
        figures[mode] = (int(out[0]), float(out[1]), float(out[2]))
    count = figures["dense"][0]
    dense_mib, compact_mib = figures["dense"][1], figures["compact"][1]
    print(f"encoding book_review train ({count:,} sentences) at max_length {length}, peak memory past loading:")
    print(f"  dense matrices up front {dense_mib:8.1f} MiB ({figures['dense'][2]:.0f} s) | compact examples "
          f"{compact_mib:6.1f} MiB ({figures['compact'][2]:.0f} s) -> {compact_mib / dense_mib:.1%} of dense")


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
    mask = attention_mask(np.stack([t.visible_matrix for t in trees]))
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
    vocab_layer = KnowledgeLayer(kg, max_entities=2, max_length=128, tokenize=tokenize,
                                 vocab={t: i for i, t in enumerate(sorted({t for tree in trees for t in tree.tokens}))})
    examples = [vocab_layer.example(["[CLS]"] + vocab_layer.words(s)) for s in sentences[:batch]]
    collate_s = best_of(5, lambda: collate(examples, 128, 0))
    print(f"  no mask {plain_s * 1e3:7.1f} ms | visible matrix (bool) {masked_s * 1e3:7.1f} ms "
          f"-> {masked_s / plain_s:.3f}x | collate (mask built per batch) {collate_s * 1e3:.2f} ms "
          f"= {collate_s / masked_s:.1%} of the forward")


def bench_smoke() -> None:
    from kbench.runner import report, run

    results = run("smoke")
    print(report(results))
    for result in results:
        verdict = "within" if result.seconds <= 60 else "OVER"
        print(f"smoke notebook {result.name}: {result.seconds:.0f} s ({verdict} the 60 s target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--smoke", action="store_true", help="also time every notebook in the smoke profile")
    parser.add_argument("--memory-child", choices=["dense", "compact"], help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _peak_memory_child(args.memory_child, args.data_dir, args.length)
        return
    torch.set_num_threads(1)
    kg = load_kg("HowNet", args.data_dir)
    sentences = []
    for split in ("test", "dev", "train"):
        sentences += load_kbert_dataset("chnsenticorp", split, args.data_dir).texts
        if len(sentences) >= args.sentences:
            break
    sentences = sentences[:args.sentences]
    tokenizer = load_tokenizer(vocab=str(local_path("kbert/vocab/google_vocab.txt", args.data_dir)))
    tokenize = tokenizer.tokenize
    print(f"{len(sentences)} ChnSentiCorp sentences (mean {np.mean([len(s) for s in sentences]):.0f} characters), "
          f"HowNet {len(kg)} triples\n")
    bench_kg_load(args.data_dir)
    bench_build(kg, sentences, tokenizer)
    bench_memory(args.data_dir)
    bench_mentions(kg, sentences)
    torch.set_num_threads(2)
    bench_forward(kg, sentences, tokenize)
    if args.smoke:
        bench_smoke()


if __name__ == "__main__":
    main()
