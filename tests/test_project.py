"""The project's own promises: one dependency list, stripped notebooks, every paper complete, the CLI."""
from __future__ import annotations

import importlib
import json
import re
import tomllib

import nbformat
import pytest
import yaml

from conftest import ROOT
from kbench.cli import main

PAPERS = {"kbert": "01_k_bert"}  # module in kbench.models -> notebook


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


@pytest.mark.parametrize("module,notebook", PAPERS.items())
def test_every_paper_has_module_notebook_baseline_and_tests(module, notebook):
    citation = importlib.import_module(f"kbench.models.{module}").CITATION
    assert {"title", "authors", "year", "url"} <= set(citation)
    assert (ROOT / "notebooks" / f"{notebook}.ipynb").is_file()
    baseline = json.loads((ROOT / "notebooks" / "baselines" / f"{notebook}.smoke.json").read_text())
    assert baseline["metrics"]
    assert (ROOT / "tests" / f"test_models_{module}.py").is_file()


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
