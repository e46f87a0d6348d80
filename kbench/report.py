"""The results report: every notebook's baselines and its latest run, on one offline HTML page.

``kbench report`` (and every ``kbench run``, beside the notebooks' exports) reads
``notebooks/baselines/<notebook>.<profile>.json`` and the newest executed notebook
of each notebook and profile under ``runs/`` whose parameters are the baseline's
(a seed sweep or a hand-set parameter is not a regression run), and writes one
self-contained page: per notebook and profile, each metric with its baseline,
tolerance, latest value and verdict, its recorded seed spread drawn beside the
tolerance band, each lesson with whether it held in the latest run and on how many
recorded seeds, and when and where the baseline was recorded.

Nothing in it is fatal: a missing, corrupt or stale baseline, a missing or unreadable
run is one named line of the page (:attr:`Entry.problems`), so the report of a broken
tree is still a report. The page loads nothing: inline CSS and SVG only.
"""
from __future__ import annotations

import html
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from kbench.errors import BaselineError
from kbench.record import Baseline, Verdict, check_lessons, compare, load_baseline, metrics_from_notebook
from kbench.runner import NOTEBOOK_DIR, PROFILES, ROOT, baseline_file, notebooks

RUNS_DIR = ROOT / "runs"


@dataclass
class Entry:
    """One notebook in one profile: its baseline, its latest comparable run, verdicts, and what is wrong."""

    notebook: str
    profile: str
    baseline: Baseline | None = None
    run: Path | None = None
    run_time: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    lessons: list[Verdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    other_runs: list[dict] = field(default_factory=list)   # parameters of runs that do not match the baseline's

    @property
    def status(self) -> str:
        if self.baseline is None:
            return "no baseline"   # `kbench run` fails on a missing or corrupt baseline: so does the page
        if self.run is None:
            return "problem" if self.problems else "no run"
        if not all(v.ok for v in self.verdicts + self.lessons):
            return "fails"
        return "problem" if self.problems else "ok"

    @property
    def why(self) -> str:
        """One sentence saying what the status means for this entry (the badge's tooltip and the section's note)."""
        if self.baseline is None:
            return "no readable baseline: `kbench run` fails on this notebook and profile until one is recorded"
        if self.run is None:
            wanted = ", ".join(f"{k}={v!r}" for k, v in sorted(self.baseline.parameters.items())) or "the defaults"
            found = (f"; {len(self.other_runs)} run(s) with other parameters were found "
                     f"(e.g. {', '.join(f'{k}={v!r}' for k, v in sorted(self.other_runs[0].items())) or 'defaults'})"
                     if self.other_runs else "")
            return (f"no run of this profile with the baseline's parameters ({wanted}) under the runs "
                    f"directories{found}: run `kbench run --only {self.notebook} --profile {self.profile}`")
        return MEANINGS[self.status]


def run_parameters(notebook) -> dict:
    """The parameters a run was executed with: papermill's, or those a live run wrote (``metadata.kbench``)."""
    written = notebook.metadata.get("kbench", {}).get("parameters")
    return dict(written if written is not None else notebook.metadata.get("papermill", {}).get("parameters", {}))


def latest_runs(runs_dirs: Iterable[Path], baselines: dict[tuple[str, str], Baseline | None],
                others: dict[tuple[str, str], list[dict]] | None = None
                ) -> tuple[dict[tuple[str, str], tuple[Path, float, dict]], list[str]]:
    """Return the newest comparable run of each ``(notebook, profile)`` and a line for each unreadable one.

    A run is an executed ``NN_name.ipynb`` anywhere under a runs directory; its
    profile and parameters are those papermill wrote into it. It is comparable when
    its parameters are exactly the baseline's (any other parameter, a seed of a
    sweep included, makes it a different experiment); ``others``, when given, gets
    the parameters of each run that is not, by ``(notebook, profile)``.
    """
    found: dict[tuple[str, str], tuple[Path, float, dict]] = {}
    others = {} if others is None else others
    unreadable = []
    for directory in runs_dirs:
        if not Path(directory).is_dir():
            continue
        for path in sorted(Path(directory).rglob("[0-9][0-9]_*.ipynb")):
            try:
                executed = nbformat.read(path, as_version=4)
            except Exception as error:  # nbformat raises several types for a truncated or foreign file
                unreadable.append(f"{path}: unreadable run ({type(error).__name__})")
                continue
            parameters = run_parameters(executed)
            profile = parameters.pop("profile", None)
            key = (path.stem, profile)
            if key not in baselines:
                continue
            baseline = baselines[key]
            if parameters != (baseline.parameters if baseline is not None else {}):
                others.setdefault(key, []).append(parameters)
                continue
            when = path.stat().st_mtime
            if key not in found or when > found[key][1]:
                found[key] = (path, when, metrics_from_notebook(executed))
    return found, unreadable


def collect(notebook_dir: Path = NOTEBOOK_DIR, runs_dirs: Sequence[Path] = (RUNS_DIR,),
            profiles: Sequence[str] = PROFILES) -> tuple[list[Entry], list[str]]:
    """Return an :class:`Entry` per notebook and profile, and the lines about runs that could not be read."""
    entries, baselines = [], {}
    for path in notebooks(directory=notebook_dir):
        for profile in profiles:
            entry = Entry(path.stem, profile)
            baseline_path = baseline_file(path, profile)
            try:
                entry.baseline = load_baseline(baseline_path)
                if entry.baseline is None:
                    entry.problems.append(f"missing baseline: {baseline_path.name} does not exist (record one with "
                                          f"`kbench run --only {path.stem} --profile {profile} --update-baselines`)")
            except BaselineError as error:
                entry.problems.append(f"corrupt baseline: {error}")
            baselines[(path.stem, profile)] = entry.baseline
            entries.append(entry)
    others: dict[tuple[str, str], list[dict]] = {}
    runs, unreadable = latest_runs(runs_dirs, baselines, others)
    for entry in entries:
        entry.other_runs = others.get((entry.notebook, entry.profile), [])
        if (entry.notebook, entry.profile) not in runs:
            continue
        entry.run, entry.run_time, entry.metrics = runs[(entry.notebook, entry.profile)]
        if entry.baseline is None:
            continue
        entry.verdicts = compare(entry.metrics, entry.baseline)
        entry.lessons = check_lessons(entry.metrics, entry.baseline)
        new = sorted(set(entry.metrics) - set(entry.baseline.metrics))
        gone = sorted(set(entry.baseline.metrics) - set(entry.metrics))
        if new or gone:
            entry.problems.append("stale baseline: the latest run " + "; ".join(part for part in (
                f"records {', '.join(new)}, which the baseline lacks" if new else "",
                f"no longer records {', '.join(gone)}" if gone else "") if part))
        source = notebook_dir / f"{entry.notebook}.ipynb"
        if source.is_file() and source.stat().st_mtime > entry.run_time:
            entry.problems.append("stale run: the notebook changed after its latest run")
    return entries, unreadable


# ----------------------------------------------------------------------------------------------- rendering

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0; } td, th { padding: .2em .6em; text-align: left; }
th { border-bottom: 1px solid #999; } tr:nth-child(even) td { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; } .fails { color: #cf222e; font-weight: 600; } .problem { color: #9a6700; font-weight: 600; }
.norun { color: #777; } .note { color: #555; font-size: .92em; } li.problem { font-weight: normal; }
"""


BADGES = {"ok": "ok", "fails": "fails", "no baseline": "fails", "problem": "problem", "no run": "norun"}
#: What each status means: the page's legend, and an entry's note where nothing more specific is to be said.
MEANINGS = {"ok": "every metric within tolerance and every lesson holds",
            "fails": "a metric outside its tolerance, missing or new, or a lesson that fails",
            "no baseline": "the baseline file is missing or unreadable: `kbench run` fails on it",
            "problem": "the run is checked, but something needs a look (named in its section)",
            "no run": "no run with the baseline's parameters under the runs directories: nothing to check yet"}


def _badge(status: str, why: str = "") -> str:
    title = f' title="{html.escape(why, quote=True)}"' if why else ""
    return f'<span class="{BADGES[status]}"{title}>{html.escape(status)}</span>'


def _strip_range(values: Sequence[float], centre: float, tolerance: float, got: float | None) -> tuple[float, float]:
    """Return the lowest and highest value a strip draws: the seeds, the tolerance band's ends, the latest value."""
    points = [*values, centre - tolerance, centre + tolerance] + ([got] if got is not None else [])
    return min(points), max(points)


def spread_svg(values: Sequence[float], centre: float, tolerance: float, got: float | None = None,
               width: int = 160, height: int = 18) -> str:
    """Return an inline SVG strip: the tolerance band around the baseline, a dot per seed, a bar at the latest value."""
    low, high = _strip_range(values, centre, tolerance, got)
    span = (high - low) or 1.0
    x = lambda v: 4 + (width - 8) * (v - low) / span
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
             f'<rect x="{x(centre - tolerance):.1f}" y="3" width="{max(x(centre + tolerance) - x(centre - tolerance), 1):.1f}" '
             f'height="{height - 6}" fill="#dbe9f6"/>',
             f'<line x1="{x(centre):.1f}" x2="{x(centre):.1f}" y1="2" y2="{height - 2}" stroke="#4a78a8"/>']
    parts += [f'<circle cx="{x(v):.1f}" cy="{height / 2}" r="2.6" fill="#555" fill-opacity=".7"/>' for v in values]
    if got is not None:
        parts.append(f'<rect x="{x(got) - 1.5:.1f}" y="1" width="3" height="{height - 2}" fill="#d9480f"/>')
    return "".join(parts) + "</svg>"


def spread_cell(values: Sequence[float], centre: float, tolerance: float, got: float | None = None) -> str:
    """Return the strip (:func:`spread_svg`) between the values at its two ends: its scale."""
    low, high = _strip_range(values, centre, tolerance, got)
    number = lambda v: f'<span class="note" style="font-variant-numeric:tabular-nums">{v:.3g}</span>'
    return f"{number(low)} {spread_svg(values, centre, tolerance, got)} {number(high)}"


def _tolerance(spec: dict) -> float:
    return max(float(spec.get("abs", 0)), float(spec.get("rel", 0)) * abs(float(spec["value"])))


def _lesson_seeds(entry: Entry) -> dict[str, str]:
    """Return, for each lesson claim, 'k/n seeds' it holds on in the baseline's recorded spread."""
    if entry.baseline is None or not entry.baseline.spread:
        return {}
    spread = entry.baseline.spread
    runs = [{name: values[i] for name, values in spread["metrics"].items()} for i in range(len(spread["seeds"]))]
    return {lesson.claim: f"{sum(lesson.check(run)[0] for run in runs)}/{len(runs)} seeds"
            for lesson in entry.baseline.lessons}


def _entry_html(entry: Entry) -> str:
    e = html.escape
    out = [f"<h3>{e(entry.profile)} {_badge(entry.status, entry.why)}</h3>"]
    if entry.baseline is not None and entry.baseline.recorded_on:
        out.append(f'<p class="note">Baseline recorded on: {e(entry.baseline.recorded_on)}</p>')
    if entry.run is not None:
        out.append(f'<p class="note">Latest run: {e(str(entry.run))}, '
                   f'{e(time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.run_time)))}</p>')
    else:
        out.append(f'<p class="note">{e(entry.why[0].upper() + entry.why[1:])}.</p>')
    if entry.problems:
        out.append("<ul>" + "".join(f'<li class="problem">{e(p)}</li>' for p in entry.problems) + "</ul>")
    if entry.baseline is None:
        return "\n".join(out)
    spread = (entry.baseline.spread or {}).get("metrics", {})
    seeds = (entry.baseline.spread or {}).get("seeds", [])
    verdicts = {v.name: v for v in entry.verdicts}
    rows = []
    for name, spec in sorted(entry.baseline.metrics.items()):
        verdict = verdicts.get(name)
        got = entry.metrics.get(name)
        css = "norun" if verdict is None else ("ok" if verdict.ok else "fails")
        rows.append(f"<tr><td>{e(name)}</td><td class=num>{float(spec['value']):.4f}</td>"
                    f"<td class=num>±{_tolerance(spec):.4g}</td>"
                    f"<td class=num>{'—' if got is None else f'{got:.4f}'}</td>"
                    f'<td class="{css}">{e(verdict.verdict if verdict else "no run")}</td>'
                    f"<td>{spread_cell(spread.get(name, []), float(spec['value']), _tolerance(spec), got)}</td></tr>")
    header = "<tr><th>metric</th><th>baseline</th><th>tolerance</th><th>latest</th><th>verdict</th>" \
             f"<th>seeds {e(', '.join(map(str, seeds))) if seeds else '(no spread recorded)'}</th></tr>"
    out.append("<table>" + header + "".join(rows) + "</table>")
    if entry.baseline.lessons:
        held = {v.name: v for v in entry.lessons}
        on_seeds = _lesson_seeds(entry)
        items = []
        for lesson in entry.baseline.lessons:
            verdict = held.get(lesson.claim)
            state = (f'<span class="{"ok" if verdict.ok else "fails"}">{e(verdict.verdict)}</span>'
                     if verdict else '<span class="norun">not checked (no run)</span>')
            seeds_note = f" — recorded seeds: {e(on_seeds[lesson.claim])}" if lesson.claim in on_seeds else ""
            items.append(f"<li>{e(lesson.claim)}<br>{state}{seeds_note}</li>")
        out.append("<p><b>Lessons</b></p><ul>" + "".join(items) + "</ul>")
    return "\n".join(out)


def render(entries: Sequence[Entry], unreadable: Sequence[str] = (), title: str = "kbench results") -> str:
    """Return the report as one self-contained HTML page (inline CSS and SVG, no script, no link)."""
    e = html.escape
    by_notebook: dict[str, list[Entry]] = {}
    for entry in entries:
        by_notebook.setdefault(entry.notebook, []).append(entry)
    profiles = sorted({entry.profile for entry in entries}, key=list(PROFILES).index)
    summary = ["<table><tr><th>notebook</th>" + "".join(f"<th>{e(p)}</th>" for p in profiles) + "</tr>"]
    for name, group in by_notebook.items():
        cells = {entry.profile: _badge(entry.status, entry.why) for entry in group}
        summary.append(f'<tr><td><a href="#{e(name)}">{e(name)}</a></td>'
                       + "".join(f"<td>{cells.get(p, '')}</td>" for p in profiles) + "</tr>")
    summary.append("</table>")
    summary.append('<p class="note">' + "; ".join(f"{_badge(status)}: {e(meaning)}" for status, meaning
                                                  in MEANINGS.items()) + ".</p>")
    sections = [f'<h2 id="{e(name)}">{e(name)}</h2>' + "".join(_entry_html(entry) for entry in group)
                for name, group in by_notebook.items()]
    notes = ("<ul>" + "".join(f'<li class="problem">{e(line)}</li>' for line in unreadable) + "</ul>") if unreadable else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1>"
            f'<p class="note">Generated {e(time.strftime("%Y-%m-%d %H:%M"))}. Each metric: its baseline, the '
            "tolerance a run may stray, the latest run's value and verdict; the strip draws the tolerance band "
            "(blue), the recorded seeds (grey dots) and the latest value (orange bar).</p>"
            + "".join(summary) + notes + "".join(sections) + "</body></html>")


def write_report(out: str | Path, notebook_dir: Path = NOTEBOOK_DIR, runs_dirs: Sequence[Path] = (RUNS_DIR,),
                 profiles: Sequence[str] = PROFILES) -> Path:
    """Collect and render the report into ``out`` (through a temporary file and a rename); return the path."""
    entries, unreadable = collect(Path(notebook_dir), [Path(d) for d in runs_dirs], profiles)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(render(entries, unreadable))
    os.replace(temporary, out)
    return out
