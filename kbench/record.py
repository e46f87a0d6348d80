"""Record a metric from a notebook, and compare recorded metrics with baselines and their lessons.

``record(name, value)`` displays the value under kbench's own mimetype, so the
executed notebook carries it: that output is the one channel the runner reads.
It shows the reader nothing (an empty HTML part beside it): a notebook shows the
numbers a reader needs in its own tables and charts, not as ``name = value`` lines.
Baselines live in ``notebooks/baselines/<notebook>.<profile>.json``::

    {"recorded_on": "CPU, 2 cores", "parameters": {"base_model": "mini", "limit": 400},
     "metrics": {name: {"value": v, "rel": r, "abs": a}},
     "lessons": [{"claim": "K-BERT beats BERT on unseen people", "left": "kbert_test_accuracy",
                  "right": "bert_test_accuracy", "min_difference": 0.3}]}

``parameters`` are the notebook parameters the values were recorded with (the
runner applies them); a lesson holds when ``left - right >= min_difference``
(or, with ``max_difference``, when ``left - right <= max_difference``).
An optional ``spread`` holds every metric over several seeds
(``{"seeds": [0, 1, ...], "on": "CPU, 2 cores", "metrics": {name: [one value per seed]}}``,
written by ``kbench spread``), so a notebook can show a lesson's seed spread
(:func:`recorded_spread`) and a reader can see how far one run may stray.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kbench.errors import BaselineError, InputError

MIMETYPE = "application/vnd.kbench.metric+json"
DEFAULT_TOLERANCE = {"rel": 0.0, "abs": 0.03}


def record(name: str, value: float) -> None:
    """Record ``name = value`` in the notebook's outputs, where the runner collects it, quietly; return nothing.

    Returning nothing keeps a cell that ends in ``record(...)`` from echoing the
    value as an ``Out[]``.
    """
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

        display({MIMETYPE: {"name": name, "value": number}, "text/html": ""}, raw=True)
    except ImportError:  # outside IPython there is nothing to display
        pass


def write_json_atomic(path: Path, document: dict) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(document, out, indent=2, sort_keys=True, ensure_ascii=False)
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
class Lesson:
    """A comparison between two metrics that a baseline says must hold: the paper's point, as data."""

    claim: str
    left: str
    right: str
    min_difference: float | None = None
    max_difference: float | None = None

    def check(self, got: dict[str, float]) -> tuple[bool, str]:
        """Return whether the lesson holds in ``got`` and a one-line account of it."""
        if self.left not in got or self.right not in got:
            missing = [name for name in (self.left, self.right) if name not in got]
            return False, f"MISSING {', '.join(missing)}"
        difference = got[self.left] - got[self.right]
        ok = ((self.min_difference is None or difference >= self.min_difference - 1e-12)
              and (self.max_difference is None or difference <= self.max_difference + 1e-12))
        bounds = " and ".join(part for part in (
            f">= {self.min_difference:+.3f}" if self.min_difference is not None else "",
            f"<= {self.max_difference:+.3f}" if self.max_difference is not None else "") if part)
        return ok, f"{self.left} - {self.right} = {difference:+.3f} (needs {bounds})"


@dataclass
class Baseline:
    """A baseline file: metric values with tolerances, lessons, and the parameters they were recorded with."""

    path: Path
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    lessons: list[Lesson] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    recorded_on: str = ""
    spread: dict = field(default_factory=dict)

    def document(self) -> dict:
        """Return the JSON document of this baseline."""
        out: dict = {"metrics": self.metrics}
        if self.lessons:
            out["lessons"] = [{k: v for k, v in vars(lesson).items() if v is not None} for lesson in self.lessons]
        if self.parameters:
            out["parameters"] = self.parameters
        if self.recorded_on:
            out["recorded_on"] = self.recorded_on
        if self.spread:
            out["spread"] = self.spread
        return out


def load_baseline(path: Path) -> Baseline | None:
    """Return the baseline in ``path``, or None when the file does not exist."""
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        metrics = document["metrics"]
        for name, spec in metrics.items():
            float(spec["value"]), float(spec.get("rel", 0)), float(spec.get("abs", 0))
        lessons = [Lesson(**lesson) for lesson in document.get("lessons", [])]
        for lesson in lessons:
            if lesson.min_difference is None and lesson.max_difference is None:
                raise ValueError(f"lesson {lesson.claim!r} has neither min_difference nor max_difference")
            for name in (lesson.left, lesson.right):
                if name not in metrics:
                    raise ValueError(f"lesson {lesson.claim!r} names {name!r}, which is not among the metrics")
        parameters = dict(document.get("parameters", {}))
        spread = dict(document.get("spread", {}))
        if spread:
            seeds = list(spread["seeds"])
            for name, values in spread["metrics"].items():
                if len(values) != len(seeds) or not all(math.isfinite(float(v)) for v in values):
                    raise ValueError(f"spread of {name!r} needs one finite value for each of the {len(seeds)} seeds")
    except (ValueError, KeyError, TypeError) as error:
        raise BaselineError(f"{path}: malformed baseline ({error}); expected "
                            '{"metrics": {name: {"value": v, "rel": r, "abs": a}}, "lessons": [...]}') from error
    return Baseline(path, metrics, lessons, parameters, str(document.get("recorded_on", "")), spread)


def recorded_spread(notebook: str, profile: str, directory: Path | None = None) -> dict[str, list[float]]:
    """Return each metric's values over the seeds recorded in the notebook's baseline (empty when none).

    ``notebook`` is the notebook's name (``05_ernie_thu``); the baselines are
    read from ``directory`` (default: the repository's ``notebooks/baselines``).
    """
    directory = directory or Path(__file__).resolve().parents[1] / "notebooks" / "baselines"
    baseline = load_baseline(Path(directory) / f"{notebook}.{profile}.json")
    if baseline is None or not baseline.spread:
        return {}
    return {name: [float(v) for v in values] for name, values in baseline.spread["metrics"].items()}


def with_spread(baseline: Baseline, seeds: list[int], runs: list[dict[str, float]], on: str) -> Baseline:
    """Return ``baseline`` with the metrics of ``runs`` (one dict per seed, in ``seeds`` order) as its spread."""
    if len(seeds) != len(runs) or not seeds:
        raise InputError(f"{len(runs)} runs for {len(seeds)} seeds")
    names = sorted(set.intersection(*(set(run) for run in runs)))
    metrics = {name: [round(run[name], 6) for run in runs] for name in names}
    spread = {"seeds": list(seeds), "on": on, "metrics": metrics}
    return Baseline(baseline.path, baseline.metrics, baseline.lessons, baseline.parameters, baseline.recorded_on,
                    spread)


@dataclass
class Verdict:
    """One metric's comparison with its baseline, or one lesson's check."""

    name: str
    baseline: float | None
    got: float | None
    tolerance: str
    ok: bool
    verdict: str


def compare(got: dict[str, float], baseline: Baseline | None) -> list[Verdict]:
    """Return a verdict per metric (within ``max(abs, rel * |baseline|)``, outside, missing or new).

    ``baseline=None`` means no baseline file exists for this notebook and
    profile: that fails (record one with ``kbench run --update-baselines``).
    """
    if baseline is None:
        return [Verdict("(baseline file)", None, None, "-", False,
                        "MISSING: record one with `kbench run --update-baselines` and review it")]
    verdicts = []
    for name in sorted(set(got) | set(baseline.metrics)):
        spec = baseline.metrics.get(name)
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


def check_lessons(got: dict[str, float], baseline: Baseline | None) -> list[Verdict]:
    """Return a verdict per lesson of the baseline: the claim, whether it holds, and the difference found."""
    if baseline is None:
        return []
    verdicts = []
    for lesson in baseline.lessons:
        ok, account = lesson.check(got)
        verdicts.append(Verdict(lesson.claim, None, None, "", ok, ("holds: " if ok else "FAILS: ") + account))
    return verdicts


def updated_baseline(got: dict[str, float], baseline: Baseline | None, path: Path) -> Baseline:
    """Return the baseline with the new values, keeping each metric's tolerance, the lessons and parameters."""
    old = baseline or Baseline(path)
    metrics = {}
    for name, value in sorted(got.items()):
        spec = old.metrics.get(name, DEFAULT_TOLERANCE)
        metrics[name] = {"value": round(value, 6), "rel": spec.get("rel", 0.0), "abs": spec.get("abs", 0.0)}
    return Baseline(path, metrics, old.lessons, old.parameters, old.recorded_on, old.spread)
