"""Record a metric from a notebook, and compare recorded metrics with baselines.

``record(name, value)`` displays the value under kbench's own mimetype (so the
executed notebook carries it) and, when the runner set ``KBENCH_RECORD_FILE``,
also writes it to that JSON sidecar. Baselines live in
``notebooks/baselines/<notebook>.<profile>.json`` as
``{"metrics": {name: {"value": v, "rel": r, "abs": a}}}``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kbench.errors import BaselineError, InputError

MIMETYPE = "application/vnd.kbench.metric+json"
RECORD_FILE_ENV = "KBENCH_RECORD_FILE"
DEFAULT_TOLERANCE = {"rel": 0.0, "abs": 0.03}


def record(name: str, value: float) -> float:
    """Show ``name = value`` in the notebook and record it for the runner; return ``value``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"a metric name must be an identifier such as 'kbert_test_accuracy', not {name!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise InputError(f"metric {name!r} must be a number, not {value!r}") from error
    if not math.isfinite(number):
        raise InputError(f"metric {name!r} is {number}: a recorded metric must be finite")
    try:
        from IPython.display import display

        display({MIMETYPE: {"name": name, "value": number}, "text/plain": f"{name} = {number:.4f}"}, raw=True)
    except ImportError:  # outside IPython there is nothing to display
        pass
    sidecar = os.environ.get(RECORD_FILE_ENV)
    if sidecar:
        path = Path(sidecar)
        metrics = json.loads(path.read_text()) if path.is_file() else {}
        metrics[name] = number
        write_json_atomic(path, metrics)
    return number


def write_json_atomic(path: Path, document: dict) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(document, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(temporary, path)


def metrics_from_notebook(notebook) -> dict[str, float]:
    """Return every metric recorded in an executed notebook (``nbformat`` node), last value winning."""
    metrics: dict[str, float] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIMETYPE in data:
                metrics[data[MIMETYPE]["name"]] = float(data[MIMETYPE]["value"])
    return metrics


@dataclass
class Verdict:
    """One metric's comparison with its baseline."""

    name: str
    baseline: float | None
    got: float | None
    tolerance: str
    ok: bool
    verdict: str


def load_baseline(path: Path) -> dict[str, dict[str, float]]:
    """Return the ``metrics`` mapping of a baseline file ({} when the file does not exist)."""
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text())["metrics"]
        for name, spec in metrics.items():
            float(spec["value"]), float(spec.get("rel", 0)), float(spec.get("abs", 0))
    except (ValueError, KeyError, TypeError) as error:
        raise BaselineError(f"{path}: malformed baseline ({error!r}); expected "
                            '{"metrics": {name: {"value": v, "rel": r, "abs": a}}}') from error
    return metrics


def compare(got: dict[str, float], baseline: dict[str, dict[str, float]] | None) -> list[Verdict]:
    """Return a verdict per metric: within ``max(abs, rel * |baseline|)``, outside, missing or new.

    ``baseline=None`` means no baseline file exists for this notebook and
    profile: every metric is reported as unchecked, and none fails.
    """
    if baseline is None:
        return [Verdict(name, None, value, "-", True, "unchecked (no baseline file)")
                for name, value in sorted(got.items())]
    verdicts = []
    for name in sorted(set(got) | set(baseline)):
        spec = baseline.get(name)
        value = got.get(name)
        if spec is None:
            verdicts.append(Verdict(name, None, value, "-", False, "new (not in the baseline)"))
            continue
        allowed = max(float(spec.get("abs", 0)), float(spec.get("rel", 0)) * abs(float(spec["value"])))
        tolerance = f"±{allowed:.4g}"
        if value is None:
            verdicts.append(Verdict(name, spec["value"], None, tolerance, False, "MISSING"))
            continue
        ok = abs(value - float(spec["value"])) <= allowed + 1e-12
        verdicts.append(Verdict(name, float(spec["value"]), value, tolerance, ok, "ok" if ok else "OUTSIDE"))
    return verdicts


def updated_baseline(got: dict[str, float], baseline: dict[str, dict[str, float]]) -> dict:
    """Return a baseline document with the new values, keeping each metric's tolerance."""
    metrics = {}
    for name, value in sorted(got.items()):
        old = baseline.get(name, DEFAULT_TOLERANCE)
        metrics[name] = {"value": round(value, 6), "rel": old.get("rel", 0.0), "abs": old.get("abs", 0.0)}
    return {"metrics": metrics}
