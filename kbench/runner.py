"""Execute notebooks with papermill, collect their metrics, and compare them with baselines.

``kbench run`` is the workbench's regression test: each notebook runs end to end
in a profile, its recorded metrics are checked against
``notebooks/baselines/<notebook>.<profile>.json``, and the executed notebook and
a self-contained HTML export are written under ``runs/``.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from kbench.errors import UnknownNameError
from kbench.record import (RECORD_FILE_ENV, Verdict, compare, load_baseline, metrics_from_notebook,
                           updated_baseline, write_json_atomic)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL_NAME = "kbench"
PROFILES = ("smoke", "full")


@dataclass
class NotebookResult:
    """What one notebook run produced."""

    name: str
    executed: Path | None = None
    html: Path | None = None
    seconds: float = 0.0
    error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(v.ok for v in self.verdicts)


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


def export_html(notebook, path: Path) -> None:
    """Write a self-contained HTML export: inline styles and plotly, no CDN scripts, no require.js."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.require_js_url = ""
    exporter.mathjax_url = ""
    exporter.exclude_input_prompt = False
    body, _ = exporter.from_notebook_node(notebook)
    path.write_text(body, encoding="utf-8")


def run_notebook(path: Path, profile: str, out_dir: Path, update_baselines: bool = False,
                 timeout: int = 1800, parameters: dict | None = None) -> NotebookResult:
    """Execute one notebook, compare (or update) its baseline, and write its outputs under ``out_dir``."""
    import papermill

    result = NotebookResult(path.stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.executed = out_dir / path.name
    sidecar = out_dir / f"{path.stem}.metrics.json"
    sidecar.unlink(missing_ok=True)
    os.environ[RECORD_FILE_ENV] = str(sidecar)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(result.executed), parameters={"profile": profile, **(parameters or {})},
                                   kernel_name=KERNEL_NAME, execution_timeout=timeout, progress_bar=False,
                                   cwd=str(path.parent))
    except Exception as error:  # papermill raises its own error types for a failed cell
        result.error = f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
    finally:
        os.environ.pop(RECORD_FILE_ENV, None)
        result.seconds = time.perf_counter() - start
    if result.executed.is_file():
        executed = nbformat.read(result.executed, as_version=4)
        result.html = result.executed.with_suffix(".html")
        export_html(executed, result.html)
        got = metrics_from_notebook(executed)
    else:
        got = {}
    baseline_path = path.parent / "baselines" / f"{path.stem}.{profile}.json"
    baseline = load_baseline(baseline_path)
    if update_baselines and result.error is None:
        write_json_atomic(baseline_path, updated_baseline(got, baseline))
        baseline = load_baseline(baseline_path)
    result.verdicts = compare(got, baseline if baseline_path.is_file() else None)
    return result


def run(profile: str = "smoke", only: str | None = None, update_baselines: bool = False,
        out_dir: Path | None = None, timeout: int = 1800, parameters: dict | None = None) -> list[NotebookResult]:
    """Execute the selected notebooks in ``profile``; return their results (see :func:`report`).

    ``parameters`` override the notebooks' parameters cell (``profile`` is set from ``profile``).
    """
    if profile not in PROFILES:
        raise UnknownNameError(f"unknown profile {profile!r}: use {' or '.join(PROFILES)}")
    ensure_kernel()
    out_dir = out_dir or ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"
    if parameters and update_baselines:
        raise UnknownNameError("--update-baselines records the profile's defaults: run it without parameters")
    return [run_notebook(path, profile, out_dir, update_baselines, timeout, parameters) for path in notebooks(only)]


def report(results: list[NotebookResult]) -> str:
    """Return a plain-text table of metric / baseline / got / verdict per notebook."""
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
    return "\n".join(lines)
