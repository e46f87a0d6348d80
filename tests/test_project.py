"""The project's own promises: one dependency list, stripped notebooks, every paper complete, the CLI."""
from __future__ import annotations

import importlib
import os
import re
import tomllib
import unicodedata
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
from kbench.cli import main

PAPERS = sorted(path.stem for path in (ROOT / "kbench" / "models").glob("*.py") if path.stem != "__init__")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | {d for extra in project["optional-dependencies"].values() for d in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert set(pip) - {"-e ."} == wanted
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=" + project["requires-python"].removeprefix(">=")


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stripped_and_parameterised(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: strip them"
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    for name in ("profile", "device", "seed", "base_model", "data_dir"):
        assert re.search(rf"^{name} = ", parameters.source, re.M), f"{path.name}: parameter {name} missing"
    # one kernel for all: a notebook naming "python3" starts outside the project's environment wherever another
    # python3 kernel is registered
    from kbench.runner import KERNEL_NAME

    assert notebook.metadata.kernelspec.name == KERNEL_NAME, f"{path.name} declares {notebook.metadata.kernelspec}"


def test_papers_are_discovered():
    assert "kbert" in PAPERS


@pytest.mark.parametrize("module", PAPERS)
def test_every_paper_has_module_notebook_baselines_lessons_and_tests(module):
    from kbench.record import load_baseline

    paper = importlib.import_module(f"kbench.models.{module}")
    assert {"title", "authors", "year", "url"} <= set(paper.CITATION)
    assert (ROOT / "notebooks" / f"{paper.NOTEBOOK}.ipynb").is_file()
    for profile in ("smoke", "full"):
        baseline = load_baseline(ROOT / "notebooks" / "baselines" / f"{paper.NOTEBOOK}.{profile}.json")
        assert baseline is not None and baseline.metrics, f"{paper.NOTEBOOK} has no {profile} baseline"
        assert baseline.recorded_on, f"{paper.NOTEBOOK}.{profile}: say where the baseline was recorded"
    assert load_baseline(ROOT / "notebooks" / "baselines" / f"{paper.NOTEBOOK}.smoke.json").lessons
    assert (ROOT / "tests" / f"test_models_{module}.py").is_file()


def _ascii(name: str) -> str:
    """Return ``name`` without diacritics (the paper writes "Vulić", a list may write "Vulic")."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()


@pytest.mark.parametrize("module", PAPERS)
def test_every_citation_names_the_papers_first_authors(module):
    """The seed list names each paper's first two authors ("(He, Zhou et al. 2019)"): the CITATION must agree."""
    notes = ROOT.parent / "shared" / "seed" / "paper_notes.md"
    if not notes.is_file():
        pytest.skip("no ../shared/seed/paper_notes.md beside the checkout; CI always has it")
    citation = importlib.import_module(f"kbench.models.{module}").CITATION
    paper_id = citation["url"].rstrip("/").rsplit("/", 1)[-1]
    line = next((line for line in notes.read_text().splitlines() if paper_id in line), None)
    assert line is not None, f"{module}: {citation['url']} is not in the paper list"
    first, second = re.search(r"\((?:[^()]*?)?\b([A-Z][\w-]+), ([A-Z][\w-]+) et al\.", line).groups()
    suffixes = {"Jr.", "Jr", "II", "III", "IV"}                       # "Robert L. Logan IV": the surname is Logan
    authors = [_ascii([part for part in name.split() if part not in suffixes][-1])   # "Matthew E. Peters" or "Peters"
               for name in citation["authors"].split(",")]
    assert authors[:2] == [_ascii(first), _ascii(second)], f"{module}: CITATION authors {authors[:2]}, the paper list {first}, {second}"


def test_lab_starts_as_root(monkeypatch):
    from kbench.cli import lab_command

    monkeypatch.setattr("os.geteuid", lambda: 0)
    command = lab_command(port=9999)
    assert command[1:5] == ["lab", "--ip", "127.0.0.1", "--port"] and "--allow-root" in command
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "--allow-root" not in lab_command()


def test_cli_lists_data_and_reports_bad_names(capsys):
    assert main(["data", "list"]) == 0
    assert "kbert/kgs/HowNet.spo" in capsys.readouterr().out
    assert main(["data", "fetch", "no-such-data"]) == 2
    assert "no data named" in capsys.readouterr().err
    assert main(["run", "--only", "no-such-notebook"]) == 2
    assert "no notebook matches" in capsys.readouterr().err


def test_cli_fetch_from_mirror(tmp_path, mirror, capsys):
    assert main(["data", "fetch", "kbert/kgs/Medical.spo", "--mirror", str(mirror), "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "kbert/kgs/Medical.spo").is_file()


def test_cli_parameters_are_parsed_and_checked(capsys):
    from kbench.cli import _parameters

    assert _parameters(["limit=40", "base_model=tiny", "rate=1e-4", "flag=true"]) == {
        "limit": 40, "base_model": "tiny", "rate": 1e-4, "flag": True}
    assert main(["run", "-p", "no equals sign"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["run", "-p", "limit=3", "--update-baselines"]) == 2
    assert "without parameters" in capsys.readouterr().err


@pytest.mark.parametrize("module", PAPERS)
def test_every_paper_declares_its_place_on_the_map(module):
    from kbench.taxonomy import KNOWLEDGE, WHERE, Place

    place = getattr(importlib.import_module(f"kbench.models.{module}"), "PLACE", None)
    assert isinstance(place, Place), f"kbench.models.{module} declares no PLACE = kbench.taxonomy.Place(...)"
    assert place.where in WHERE and set(place.knowledge) <= set(KNOWLEDGE) and place.name


@pytest.mark.parametrize("module", PAPERS)
def test_every_paper_declares_a_headline_its_baselines_record(module):
    from kbench.record import load_baseline
    from kbench.taxonomy import Headline

    paper = importlib.import_module(f"kbench.models.{module}")
    headline = getattr(paper, "HEADLINE", None)
    assert isinstance(headline, Headline), f"kbench.models.{module} declares no HEADLINE = kbench.taxonomy.Headline(...)"
    for profile in ("smoke", "full"):
        baseline = load_baseline(ROOT / "notebooks" / "baselines" / f"{paper.NOTEBOOK}.{profile}.json")
        pair, probe = headline.metrics(profile)
        missing = [name for name in pair if name not in baseline.metrics]
        assert not missing, f"{paper.NOTEBOOK}.{profile} records no {missing}: fix the HEADLINE's metric names"
        if profile == "smoke":
            assert probe is None or set(probe) <= set(baseline.metrics)
            spread = baseline.spread.get("metrics", {})
            assert set(pair) <= set(spread), f"{paper.NOTEBOOK}: the headline needs a seed spread (kbench spread)"


@pytest.mark.parametrize("module", PAPERS)
def test_every_headline_declares_its_controls_and_the_smoke_spread_records_them(module):
    """Each paper names its strongest trivial baselines and a positive control; both are recorded over the smoke
    spread's seeds; a positive control that is run passes on every seed and is one of the baseline's lessons."""
    from kbench.record import load_baseline
    from kbench.taxonomy import PositiveControl

    paper = importlib.import_module(f"kbench.models.{module}")
    headline = paper.HEADLINE
    assert headline.trivial, (f"kbench.models.{module}: HEADLINE names no trivial baseline (trivial=(...): untrained, "
                              "answer prior, subject swapped, untrained module, no pretraining)")
    assert isinstance(headline.positive, PositiveControl), f"kbench.models.{module}: HEADLINE has no positive control"
    baseline = load_baseline(ROOT / "notebooks" / "baselines" / f"{paper.NOTEBOOK}.smoke.json")
    spread = baseline.spread.get("metrics", {})
    missing = [name for name in headline.trivial if name not in spread]
    assert not missing, f"{paper.NOTEBOOK}.smoke: the spread records no trivial baseline {missing}"
    control = headline.positive
    if control.is_run:
        assert {control.left, control.right} <= set(spread), f"{paper.NOTEBOOK}.smoke: positive control not in spread"
        passed, seeds = control.verdict(spread[control.left], spread[control.right])
        if control.fails:                 # declared failing, with its reason: it must still fail, or the reason is stale
            assert passed < seeds, f"{paper.NOTEBOOK}: the positive control declared failing passes on every seed"
            return
        assert passed == seeds, f"{paper.NOTEBOOK}: the positive control fails on {seeds - passed} of {seeds} seeds"
        assert any(lesson.left == control.left and lesson.right == control.right
                   and lesson.min_difference is not None and lesson.min_difference >= control.min_difference - 1e-9
                   for lesson in baseline.lessons), \
            f"{paper.NOTEBOOK}.smoke: record the positive control as a lesson"


def test_kbench_makes_openmp_threads_sleep_while_they_wait_unless_told_otherwise():
    """On a busy machine spinning OpenMP threads made a training loop 2.3x slower (benchmarks/threads.py): importing
    kbench, as every notebook, `kbench run` and `kbench lab` do, sets the passive policy before torch loads."""
    import subprocess
    import sys

    code = "import kbench, os, sys; import torch; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split() == ["PASSIVE", "True"]
    kept = subprocess.run([sys.executable, "-c", code], env=env | {"OMP_WAIT_POLICY": "ACTIVE"},
                          capture_output=True, text=True, check=True)
    assert kept.stdout.split()[0] == "ACTIVE"                     # a user's own setting wins
    first = subprocess.run([sys.executable, "-c", "import kbench, sys; print('torch' in sys.modules)"], env=env,
                           capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "False"                        # importing kbench loads no torch before it is set


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks" / "baselines").glob("*.json")), ids=lambda p: p.name)
def test_no_tolerance_admits_every_value_of_a_share(path):
    """A share (accuracy, F1, MRR, AUC ... in [0, 1]) whose tolerance reaches from 0 to 1 is compared with nothing."""
    from kbench.record import load_baseline

    baseline = load_baseline(path)
    spread = baseline.spread.get("metrics", {})
    for name, spec in baseline.metrics.items():
        value = float(spec["value"])
        values = [value, *spread.get(name, [])]
        if all(0 <= v <= 1 for v in values) and any(0 < v < 1 for v in values):
            width = max(float(spec.get("abs", 0)), float(spec.get("rel", 0)) * abs(value))
            assert not (value - width <= 0 and value + width >= 1), f"{name}: {value} ± {width} admits every value"
