"""Execute notebooks with papermill, collect their metrics, and compare them with baselines and lessons.

``kbench run`` is the workbench's regression test: each notebook runs end to end
in a profile, its recorded metrics are checked against
``notebooks/baselines/<notebook>.<profile>.json`` (a missing file fails), the
baseline's lessons are checked, and the executed notebook and an offline HTML
export are written under ``runs/``.
"""
from __future__ import annotations

import copy
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from kbench import BATCH
from kbench.errors import InputError, UnknownNameError
from kbench.record import (Baseline, Verdict, check_lessons, compare, load_baseline, metrics_from_notebook,
                           updated_baseline, write_json_atomic)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL_NAME = "kbench"
PROFILES = ("smoke", "full")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
OFFLINE_TEMPLATE = Path(__file__).resolve().parent / "templates" / "offline.html.j2"


@dataclass
class NotebookResult:
    """What one notebook run produced."""

    name: str
    executed: Path | None = None
    html: Path | None = None
    seconds: float = 0.0
    error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    lessons: list[Verdict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    comparable: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None and all(v.ok for v in self.verdicts) and all(v.ok for v in self.lessons)


def notebooks(only: str | None = None, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """Return the notebooks to run (all ``NN_*.ipynb``, or those whose name contains ``only``)."""
    found = sorted(directory.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [path for path in found if only in path.stem]
        if not found:
            raise UnknownNameError(f"no notebook matches {only!r}")
    return found


def ensure_kernel() -> None:
    """Register this interpreter as the ``kbench`` Jupyter kernel when it is not registered yet."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="Python (kbench)", prefix=sys.prefix)


def _rewrite_widget_views(notebook, rewrite: Callable[[dict], bool]):
    """Return a copy of ``notebook`` where ``rewrite(data)`` edits each widget view's data in place; False drops it."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = [output for output in cell.get("outputs", [])
                           if WIDGET_VIEW not in output.get("data", {}) or rewrite(output["data"])]
    return notebook


def offline_copy(notebook):
    """Return a copy of an executed notebook that renders with no network.

    Widget views need a widget manager script from a CDN; offline they are
    empty boxes. Each is replaced by its HTML or plain-text fallback when it
    has one, and dropped otherwise (the notebooks show every widget's default
    state statically beside it); the saved widget state goes too.
    """
    def html_only(data: dict) -> bool:
        data.pop(WIDGET_VIEW)
        # A widget's text fallback is its repr (``VBox(children=...)``); only HTML is worth keeping.
        data.pop("text/plain", None)
        return "text/html" in data

    notebook = _rewrite_widget_views(notebook, html_only)
    notebook.metadata.pop("widgets", None)
    return notebook


def without_orphan_widgets(notebook):
    """Return a copy of an executed notebook whose widget views all have their state saved beside them.

    A view whose model state is not in ``metadata.widgets`` (papermill saves
    none for, e.g., a training progress bar) shows "Error displaying widget:
    model not found" when the notebook is opened in JupyterLab. Such a view
    keeps its fallbacks only: a progress bar's text (``epoch 3: 100%|…|``), the
    HTML a view offers; a bare widget repr (``VBox(children=…)``) is dropped.
    """
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})

    def fallback(data: dict) -> bool:
        if data[WIDGET_VIEW].get("model_id") in state:
            return True
        data.pop(WIDGET_VIEW)
        text = data.get("text/plain", "")
        if _is_widget_repr("".join(text) if isinstance(text, list) else text):
            data.pop("text/plain")
        return bool(data)

    return _rewrite_widget_views(notebook, fallback)


def _is_widget_repr(text: str) -> bool:
    """Whether ``text`` is an ipywidgets repr such as ``VBox(children=(...))`` rather than a readable fallback."""
    head = text.strip().split("(", 1)[0]
    return bool(head) and head.isidentifier() and head[0].isupper() and text.strip().endswith(")")


def export_html(notebook, path: Path) -> None:
    """Write an HTML export that requests nothing from another host: styles and plotly inline, no scripts
    from a CDN (no MathJax, Mermaid or widget manager), widget outputs replaced by their static fallback."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file=str(OFFLINE_TEMPLATE))
    exporter.exclude_input_prompt = False
    body, _ = exporter.from_notebook_node(offline_copy(notebook))
    path.write_text(body, encoding="utf-8")


class _Progress:
    """Follows a notebook's execution: which cell of how many is running, since when; reports it."""

    def __init__(self, name: str, notebook_path: Path, report: Callable[[str], None] | None):
        self.name = name
        cells = nbformat.read(notebook_path, as_version=4).cells
        self.total = len(cells) + 1  # papermill adds a cell for the injected parameters
        self.number = 0
        self.first_line = ""
        self.start = time.perf_counter()
        self.report = report

    def on_cell_start(self, cell, cell_index) -> None:
        self.number += 1
        self.first_line = next((line for line in cell.source.splitlines() if line.strip()), "")[:70]
        if self.report is not None:
            self.report(f"[{self.name}] cell {self.number}/{self.total}  {time.perf_counter() - self.start:5.0f} s  "
                        f"{self.first_line}")

    def describe(self, error: Exception, timeout: int) -> str:
        """Return what failed: the notebook, the cell (its number and first line) and why."""
        where = f"{self.name}: cell {self.number}/{self.total} `{self.first_line}`"
        kind = type(error).__name__
        if "Timeout" in kind:
            return f"{where} ran past the {timeout} s limit per cell (kbench run --timeout)"
        ename, evalue = getattr(error, "ename", None), getattr(error, "evalue", None)
        if ename:
            return f"{where} raised {ename}: {evalue}"
        lines = [line for line in str(error).strip().splitlines() if line.strip() and set(line.strip()) != {"-"}]
        return f"{where} failed: {kind}: {lines[-1] if lines else ''}"


def baseline_file(path: Path, profile: str) -> Path:
    """Where the ``profile`` baseline of the notebook at ``path`` lives: ``baselines/`` beside it."""
    return path.parent / "baselines" / f"{path.stem}.{profile}.json"


def run_notebook(path: Path, profile: str, out_dir: Path, update_baselines: bool = False,
                 timeout: int = 1800, parameters: dict | None = None,
                 progress: Callable[[str], None] | None = None) -> NotebookResult:
    """Execute one notebook, compare (or update) its baseline, and write its outputs under ``out_dir``.

    The baseline's ``parameters`` are applied under ``parameters``; when the
    caller changes one of them, the metrics are reported but not compared.
    """
    import papermill

    result = NotebookResult(path.stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.executed = out_dir / path.name
    baseline = load_baseline(baseline_file(path, profile))
    recorded_with = baseline.parameters if baseline else {}
    given = parameters or {}
    result.comparable = all(given.get(name, value) == value for name, value in recorded_with.items()) and not (
        set(given) - set(recorded_with))
    follower = _Progress(path.stem, path, progress)
    os.environ[BATCH] = "1"   # the kernel inherits these: no progress bar left in the executed notebook,
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"   # neither a training loop's nor Hugging Face's (model shards)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(result.executed),
                                   parameters={**recorded_with, **given, "profile": profile},
                                   kernel_name=KERNEL_NAME, execution_timeout=timeout, progress_bar=False,
                                   cwd=str(path.parent), on_cell_start=follower.on_cell_start)
    except Exception as error:  # papermill and nbclient raise their own types for a failed or stuck cell
        result.error = follower.describe(error, timeout)
    finally:
        result.seconds = time.perf_counter() - start
    return judge(result, path, profile, update_baselines and result.error is None, baseline)


def judge(result: NotebookResult, path: Path, profile: str, update_baseline: bool = False,
          baseline: Baseline | None = None) -> NotebookResult:
    """Read ``result.executed`` (however it was executed: papermill, or Run All in JupyterLab and saved), export it
    as HTML, collect its metrics and compare them with ``path``'s baseline and lessons (or update the baseline).
    ``baseline``: the baseline already read by the caller (else it is read here)."""
    baseline_path = baseline_file(path, profile)
    baseline = baseline if baseline is not None else load_baseline(baseline_path)
    if result.executed is not None and result.executed.is_file():
        executed = without_orphan_widgets(nbformat.read(result.executed, as_version=4))
        nbformat.write(executed, result.executed)
        result.html = result.executed.with_suffix(".html")
        export_html(executed, result.html)
        result.metrics = metrics_from_notebook(executed)
        if result.error is None:
            result.error = error_in(executed, path.stem)
    if not result.comparable:
        result.verdicts = [Verdict(name, None, value, "-", True, "reported (parameters differ from the baseline's)")
                           for name, value in sorted(result.metrics.items())]
        return result
    if update_baseline:
        baseline = updated_baseline(result.metrics, baseline, baseline_path)
        write_json_atomic(baseline_path, baseline.document())
    result.verdicts = compare(result.metrics, baseline)
    result.lessons = check_lessons(result.metrics, baseline)
    return result


def judge_executed(path: Path, profile: str, executed_dir: Path, out_dir: Path) -> NotebookResult:
    """Judge ``executed_dir/<path's name>``, a run of ``path`` in ``profile`` made elsewhere, as :func:`run_notebook`
    judges its own (copied to ``out_dir`` first): a missing run, or one of another profile, is an error."""
    from kbench.report import run_parameters

    result = NotebookResult(path.stem)
    source = executed_dir / path.name
    if not source.is_file():
        result.error = f"{path.stem}: no executed copy in {executed_dir}"
        return result
    ran_with = run_parameters(nbformat.read(source, as_version=4))
    if ran_with != {"profile": profile}:
        result.error = f"{path.stem}: the copy in {executed_dir} ran with {ran_with}, not the {profile} profile's defaults"
        return result
    out_dir.mkdir(parents=True, exist_ok=True)
    result.executed = out_dir / path.name
    shutil.copyfile(source, result.executed)
    return judge(result, path, profile)


def error_in(notebook, name: str) -> str | None:
    """Return the first error output of an executed notebook as ``name: cell k/n `first line` raised E: why``."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = next((line for line in cell.source.splitlines() if line.strip()), "")[:70]
                return f"{name}: cell {number}/{len(code)} `{first}` raised {output.ename}: {output.evalue}"
    return None

def run(profile: str = "smoke", only: str | None = None, update_baselines: bool = False,
        out_dir: Path | None = None, timeout: int = 1800, parameters: dict | None = None,
        progress: Callable[[str], None] | None = None, executed_dir: Path | None = None) -> list[NotebookResult]:
    """Execute the selected notebooks in ``profile``; return their results (see :func:`report`).

    The results report of every notebook (:mod:`kbench.report`: baselines and
    latest runs, this one included) is written to ``out_dir/report.html``.

    ``parameters`` override the notebooks' parameters cell (``profile`` is set
    from ``profile``); ``progress`` receives a line as each cell starts.
    ``executed_dir`` names notebooks already executed in ``profile`` (the live
    browser run saves them): they are judged, not executed again.
    """
    if profile not in PROFILES:
        raise UnknownNameError(f"unknown profile {profile!r}: use {' or '.join(PROFILES)}")
    if parameters and update_baselines:
        raise UnknownNameError("--update-baselines records the profile's defaults: run it without parameters")
    from kbench.report import RUNS_DIR, write_report

    ensure_kernel()
    out_dir = out_dir or ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"
    if executed_dir is not None:
        results = [judge_executed(path, profile, Path(executed_dir), out_dir) for path in notebooks(only)]
    else:
        results = [run_notebook(path, profile, out_dir, update_baselines, timeout, parameters, progress)
                   for path in notebooks(only)]
    write_report(out_dir / "report.html", runs_dirs=[RUNS_DIR, out_dir])
    return results


def record_spread(only: str, profile: str = "smoke", seeds: list[int] = tuple(range(5)), on: str = "",
                  out_dir: Path | None = None, timeout: int = 1800,
                  progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run one notebook once per seed and write every metric's values into its baseline's ``spread``.

    The baseline's values and lessons are left as they are (review the spread,
    then set tolerances and lessons that hold on every seed). Returns the
    spread; a seed whose run fails stops it with the notebook's error.
    """
    from kbench.record import with_spread

    if profile not in PROFILES:
        raise UnknownNameError(f"unknown profile {profile!r}: use {' or '.join(PROFILES)}")
    paths = notebooks(only)
    if len(paths) != 1:
        raise UnknownNameError(f"{only!r} matches {len(paths)} notebooks: name exactly one")
    seeds = list(seeds)
    if not seeds:
        raise InputError("give at least one seed")
    ensure_kernel()
    path = paths[0]
    baseline_path = baseline_file(path, profile)
    baseline = load_baseline(baseline_path)
    if baseline is None:
        raise UnknownNameError(f"{path.stem} has no {profile} baseline: record one first (kbench run --update-baselines)")
    out_dir = out_dir or ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}-seeds"
    runs = []
    for seed in seeds:
        result = run_notebook(path, profile, out_dir / f"seed{seed}", timeout=timeout,
                              parameters={**baseline.parameters, "seed": seed}, progress=progress)
        if result.error:
            raise InputError(f"seed {seed}: {result.error}")
        runs.append(result.metrics)
    updated = with_spread(baseline, seeds, runs, on or f"CPU, {os.cpu_count()} cores")
    write_json_atomic(baseline_path, updated.document())
    return updated.spread["metrics"]


def report(results: list[NotebookResult]) -> str:
    """Return a plain-text table of metric / baseline / got / verdict, then the lessons, per notebook."""
    lines = []
    for result in results:
        status = "ok" if result.ok else "FAILED"
        lines.append(f"{result.name}  [{status}, {result.seconds:.0f} s]  {result.html or ''}")
        if result.error:
            lines.append(f"  error: {result.error}")
        lines.append(f"  {'metric':<32} {'baseline':>10} {'got':>10} {'tolerance':>10}  verdict")
        for v in result.verdicts:
            base = "-" if v.baseline is None else f"{v.baseline:.4f}"
            got = "-" if v.got is None else f"{v.got:.4f}"
            lines.append(f"  {v.name:<32} {base:>10} {got:>10} {v.tolerance:>10}  {v.verdict}")
        for lesson in result.lessons:
            lines.append(f"  lesson: {lesson.name} — {lesson.verdict}")
    return "\n".join(lines)

