"""The ``kbench`` command: run notebooks against baselines, and fetch data."""
from __future__ import annotations

import argparse
import sys

from kbench.errors import KBenchError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="kbench", description="knowledge-enhanced language model workbench")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks and compare their metrics with baselines")
    run.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    run.add_argument("--only", help="run only notebooks whose name contains this")
    run.add_argument("--update-baselines", action="store_true", help="write the metrics as the new baselines")
    run.add_argument("--out", help="directory for executed notebooks and HTML (default runs/<time>-<profile>)")
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="set a notebook parameter (repeatable), e.g. -p base_model=tiny -p limit=500")
    run.add_argument("--quiet", action="store_true", help="no per-cell progress lines on stderr")
    spread = commands.add_parser("spread", help="run one notebook over several seeds; write the spread into its baseline")
    spread.add_argument("--only", required=True, help="the notebook (a part of its name matching exactly one)")
    spread.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    spread.add_argument("--seeds", default="0-4", help="seeds as a range or list: 0-9, or 0,3,7 (default 0-4)")
    spread.add_argument("--on", default="", help="where it ran (default: CPU and its cores)")
    spread.add_argument("--quiet", action="store_true", help="no per-cell progress lines on stderr")
    rep = commands.add_parser("report", help="one offline HTML page of every notebook's baselines and latest run")
    rep.add_argument("--runs", action="append", default=[], metavar="DIR",
                     help="a directory of executed notebooks (default runs/; repeatable)")
    rep.add_argument("--out", default="runs/report.html", help="the HTML file to write (default runs/report.html)")
    pre = commands.add_parser("pretrain", help="pretrain a BERT on a corpus; write a checkpoint directory")
    pre.add_argument("--corpus", required=True, help="world, kbert-zh, scientific, or a text file (one text a line)")
    pre.add_argument("--base", default="tiny", help="a size (tiny, mini, small, base), 'embedded', or a directory")
    pre.add_argument("--objective", default="mlm", help="mlm, wwm, ernie, sensebert, libert, kepler, wklm ... (kbench.pretrain.OBJECTIVES)")
    pre.add_argument("--steps", type=int, required=True, help="optimizer steps (per process)")
    pre.add_argument("--out", required=True, help="the checkpoint directory to write")
    pre.add_argument("--batch-size", type=int, default=32)
    pre.add_argument("--lr", type=float, default=1e-4)
    pre.add_argument("--warmup", type=float, default=0.1, help="share of the steps spent warming up")
    pre.add_argument("--max-length", type=int, default=128, help="tokens per text, [CLS] and [SEP] included")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--vocab", help="a vocab.txt for a random-init size (default: the corpus's, or English)")
    pre.add_argument("--kg", help="a subject/predicate/object TSV whose names are entity units (file corpora)")
    pre.add_argument("--checkpoint-every", type=int, default=200, help="steps between resumable checkpoints")
    pre.add_argument("--device", default="auto")
    pre.add_argument("--precision", default="auto", help="auto, no, bf16, fp16")
    pre.add_argument("--data-dir", help="where the data is (default $KBENCH_DATA_DIR or ~/.cache/kbench/data)")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    head = commands.add_parser("mlm-head", help="fit MiniLM's missing MLM head on WordNet glosses, encoder frozen; "
                                                "print what it predicts and where the checkpoint is (cached)")
    head.add_argument("--base", default="embedded", help="the encoder whose head to fit (default: embedded MiniLM)")
    head.add_argument("--steps", type=int, default=300)
    head.add_argument("--texts", type=int, default=20000, help="WordNet gloss texts to fit on")
    head.add_argument("--held-out", type=int, default=400, help="other gloss texts to score it on")
    head.add_argument("--seed", type=int, default=0)
    head.add_argument("--out", help="the checkpoint directory (default: cached under the data dir)")
    head.add_argument("--data-dir", help="where the cache lives (default $KBENCH_DATA_DIR or ~/.cache/kbench/data)")
    head.add_argument("--quiet", action="store_true", help="no progress bar")
    lab = commands.add_parser("lab", help="open JupyterLab on notebooks/ (127.0.0.1; also as root)")
    lab.add_argument("--port", type=int, default=8888)
    data = commands.add_parser("data", help="external data declared in data_manifest/")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser("list", help="list the manifest")
    fetch = data_commands.add_parser("fetch", help="fetch a file or a group (e.g. kbert, kbert/kgs)")
    fetch.add_argument("name", nargs="+")
    fetch.add_argument("--mirror", help="a local directory laid out like the manifest names")
    fetch.add_argument("--data-dir", help="where to put the data (default $KBENCH_DATA_DIR or ~/.cache/kbench/data)")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from pathlib import Path

            from kbench.runner import report, run as run_notebooks

            progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
            results = run_notebooks(args.profile, args.only, args.update_baselines,
                                    Path(args.out) if args.out else None, args.timeout, _parameters(args.param),
                                    progress)
            print(report(results))
            if results:
                out_dir = results[0].executed.parent
                print(f"\nexecuted notebooks and HTML: {out_dir}\nresults report: {out_dir / 'report.html'}")
            return 0 if all(r.ok for r in results) else 1
        if args.command == "spread":
            from kbench.runner import record_spread

            progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
            values = record_spread(args.only, args.profile, _seeds(args.seeds), args.on, progress=progress)
            for name, runs in values.items():
                mean = sum(runs) / len(runs)
                print(f"{name:<36} mean {mean:.4f}  min {min(runs):.4f}  max {max(runs):.4f}  "
                      + " ".join(f"{v:.3f}" for v in runs))
            return 0
        if args.command == "report":
            from pathlib import Path

            from kbench.report import RUNS_DIR, write_report

            print(write_report(Path(args.out), runs_dirs=[Path(d) for d in args.runs] or [RUNS_DIR]))
            return 0
        if args.command == "pretrain":
            from kbench.models import load_objectives
            from kbench.pretrain import run_pretraining

            load_objectives()
            summary = run_pretraining(corpus=args.corpus, base=args.base, objective=args.objective, steps=args.steps,
                                      out=args.out, batch_size=args.batch_size, learning_rate=args.lr,
                                      warmup=args.warmup, max_length=args.max_length, seed=args.seed,
                                      vocab=args.vocab, kg=args.kg, checkpoint_every=args.checkpoint_every,
                                      device=args.device, precision=args.precision, data_dir=args.data_dir,
                                      progress=not args.quiet)
            print(" ".join(f"{key}={value}" for key, value in summary.items()))
            return 0
        if args.command == "mlm-head":
            from kbench.mlm_head import warm_mlm_head

            path, r = warm_mlm_head(args.base, steps=args.steps, texts=args.texts, held_out=args.held_out,
                                    seed=args.seed, out=args.out, data_dir=args.data_dir, progress=not args.quiet)
            print(f"held-out masked tokens ({r.positions}): accuracy / loss  fresh head {r.fresh_accuracy:.3f} / "
                  f"{r.fresh_loss:.2f}  fitted head {r.fitted_accuracy:.3f} / {r.fitted_loss:.2f}  unigram prior "
                  f"{r.prior_accuracy:.3f} / {r.prior_loss:.2f}\n{path}")
            return 0
        if args.command == "lab":
            import os

            command = lab_command(port=args.port)
            os.execvp(command[0], command)
        from kbench.data import fetch as fetch_data, read_manifest

        if args.data_command == "list":
            for entry in read_manifest().values():
                print(f"{entry.name:<64} {entry.size:>9}  {entry.license}")
            return 0
        for name in args.name:
            for path in fetch_data(name, args.data_dir, args.mirror):
                print(path)
        return 0
    except KBenchError as error:
        print(f"kbench: error: {error}", file=sys.stderr)
        return 2


def lab_command(port: int = 8888, notebook_dir: str | None = None, open_browser: bool = False) -> list[str]:
    """Return the command that serves JupyterLab on ``notebooks/`` at 127.0.0.1.

    Root is the default user on containers and CI machines, and JupyterLab
    refuses to start as root unless told ``--allow-root``.
    """
    import os
    import shutil

    from kbench.runner import NOTEBOOK_DIR

    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or shutil.which("jupyter")
    if jupyter is None:
        from kbench.errors import DataError

        raise DataError("JupyterLab is not installed: `make lab` installs it (pip install -e '.[lab]')")
    command = [jupyter, "lab", "--ip", "127.0.0.1", "--port", str(port),
               "--notebook-dir", str(notebook_dir or NOTEBOOK_DIR)]
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def _seeds(text: str) -> list[int]:
    """Return the seeds of ``0-9`` (inclusive) or ``0,3,7``."""
    from kbench.errors import InputError

    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-", 1))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"seeds are a range (0-9) or a list (0,3,7), not {text!r}") from None
    if not seeds:
        raise InputError(f"{text!r} names no seed")
    return seeds


def _parameters(pairs: list[str]) -> dict:
    """Return notebook parameters from ``NAME=VALUE`` strings (values read as JSON when they parse)."""
    import json

    from kbench.errors import InputError

    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise InputError(f"a parameter is NAME=VALUE, not {pair!r}")
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value
    return parameters


if __name__ == "__main__":
    sys.exit(main())
