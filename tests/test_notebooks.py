"""Notebook regression: every notebook runs in the smoke profile, meets its baselines and their lessons."""
from __future__ import annotations

import os
import re

import nbformat
import pytest

from kbench.runner import NOTEBOOK_DIR, notebooks, report, run, run_notebook


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Every notebook in the smoke profile: executed here, or, when ``KBENCH_EXECUTED`` names the folder of a live
    browser run (``make test-browser`` writes ``runs/live``), the notebooks that run executed, judged again."""
    return run("smoke", out_dir=tmp_path_factory.mktemp("runs"), executed_dir=os.environ.get("KBENCH_EXECUTED"))


def test_smoke_notebooks_meet_baselines_and_lessons(smoke_run):
    assert [r.name for r in smoke_run] == [p.stem for p in notebooks()]
    assert all(r.ok for r in smoke_run), report(smoke_run)


def test_every_notebook_checked_a_lesson(smoke_run):
    for result in smoke_run:
        assert result.error is None, f"{result.name} failed, so its lessons could not be checked: {result.error}"
        assert result.lessons and all(lesson.ok for lesson in result.lessons), report([result])


def test_the_run_writes_a_report_where_every_notebook_passed(smoke_run):
    page = (smoke_run[0].executed.parent / "report.html").read_text(encoding="utf-8")
    for result in smoke_run:
        row = re.search(rf'<tr><td><a href="#{result.name}">{result.name}</a></td><td>(.*?)</td>', page)
        assert row and ">ok<" in row.group(1), f"{result.name}: the report says {row and row.group(1)}"


def test_html_export_loads_nothing_from_the_network(smoke_run):
    """A static check of every smoke export (the browser test in tests/browser records real requests)."""
    for result in smoke_run:
        html = result.html.read_text(encoding="utf-8")
        assert not re.search(r"""<script[^>]+src=["']?https?:""", html), f"{result.html} loads a script"
        assert "unpkg.com" not in html and "require.min.js" not in html and "<svg" in html
        assert "application/vnd.jupyter.widget-view+json" not in html, "a widget view would render as an empty box"


def write_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {"name": "kbench", "display_name": "Python (kbench)", "language": "python"}
    nbformat.write(notebook, path)


def test_a_timeout_names_the_notebook_the_cell_and_the_limit(tmp_path):
    (tmp_path / "baselines").mkdir()
    path = tmp_path / "99_slow.ipynb"
    write_notebook(path, 'profile = "smoke"', "import time\ntime.sleep(30)")
    result = run_notebook(path, "smoke", tmp_path / "out", timeout=3)
    assert not result.ok
    assert result.error == "99_slow: cell 3/3 `import time` ran past the 3 s limit per cell (kbench run --timeout)"


def test_a_failing_cell_and_a_missing_baseline_are_reported(tmp_path):
    (tmp_path / "baselines").mkdir()
    path = tmp_path / "98_broken.ipynb"
    write_notebook(path, 'profile = "smoke"', "import kbench, os\nkbench.record('a', 1.0)\n"
                   "kbench.record('batch', float(os.environ.get('KBENCH_BATCH') == '1'))\n"
                   "kbench.record('hf_bars_off', float(os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS') == '1'))", "1 / 0")
    lines = []
    result = run_notebook(path, "smoke", tmp_path / "out", progress=lines.append)
    assert result.error == "98_broken: cell 4/4 `1 / 0` raised ZeroDivisionError: division by zero"
    assert [line.split()[1:3] for line in lines] == [["cell", "1/4"], ["cell", "2/4"], ["cell", "3/4"], ["cell", "4/4"]]
    assert result.metrics == {"a": 1.0, "batch": 1.0, "hf_bars_off": 1.0}   # a batch run leaves no progress bar
    assert [v.verdict.split(":")[0] for v in result.verdicts] == ["MISSING"]
    assert "98_broken  [FAILED" in report([result]) and "division by zero" in report([result])


def run_full_path(notebook: str, out_dir, data_dir, expected: set[str], **parameters) -> None:
    """Run ``notebook``'s full profile on a tiny BERT; it reports (does not compare) ``expected`` metrics in [0, 1]."""
    from kbench.runner import ensure_kernel

    ensure_kernel()
    result = run_notebook(NOTEBOOK_DIR / f"{notebook}.ipynb", "full", out_dir,
                          parameters={"base_model": "tiny", "epochs": 1, "data_dir": str(data_dir)} | parameters)
    assert result.error is None, result.error
    assert not result.comparable and result.ok  # other parameters than the baseline's: reported, not compared
    assert set(result.metrics) == expected
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())


def test_full_profile_path_runs_on_real_data(real_data, mirror, tmp_path):
    """The full profile's code path (real dataset, HowNet, Chinese vocab) on a few sentences and a tiny BERT."""
    from kbench.data import fetch

    for split in ("train", "dev", "test"):
        for dataset in ("chnsenticorp", "medical_ner"):
            fetch(f"kbert/datasets/{dataset}/{split}.tsv", real_data, mirror, progress=False)
    variants = ("bert", "kbert", "kbert_no_vm")
    run_full_path("01_k_bert", tmp_path, real_data, {f"{v}_test_accuracy" for v in variants}
                  | {f"ner_{v}_test_f1" for v in variants} | {f"ner_{v}_test_authors_f1" for v in variants}
                  | {"majority_test_accuracy"}, limit=24)


def test_knowbert_full_profile_path_runs_on_wordnet(tmp_path):
    """The full profile's code path (WordNet supersenses, candidates, TransE on the neighbourhood) in small."""
    run_full_path("02_knowbert", tmp_path, tmp_path / "data",
                  {"bert_test_accuracy", "knowbert_test_accuracy", "knowbert_no_link_test_accuracy", "prior_accuracy",
                   "linker_accuracy", "linker_no_link_accuracy", "kg_untrained_mrr", "kg_trained_mrr",
                   "knowbert_gold_only_test_accuracy", "majority_test_accuracy"}, limit=60)


def test_ernie_full_profile_path_runs_on_wordnet_and_wikipedia(mirror, tmp_path):
    """The full profile's code path (WordNet supersenses aligned to synsets, dEA on the Wikipedia sample) in small."""
    from kbench.data import fetch
    from kbench.data.ernie_wiki import FILES

    for name in FILES:
        fetch(name, tmp_path / "data", mirror, progress=False)
    run_full_path("05_ernie_thu", tmp_path, tmp_path / "data",
                  {"bert_test_accuracy", "ernie_no_dea_test_accuracy", "ernie_test_accuracy", "dea_kept_accuracy",
                   "dea_removed_accuracy", "dea_chance", "kg_untrained_mrr", "kg_trained_mrr",
                   "wiki_dea_kept_accuracy", "wiki_dea_removed_accuracy", "ernie_random_kg_test_accuracy",
                   "majority_test_accuracy"}, limit=60)


def test_doc_classification_full_profile_path_runs_on_bbc_news(tmp_path):
    """The full profile's code path (BBC News, metadata, WordNet-linked nouns with TransE) in small."""
    run_full_path("04_doc_classification_kg", tmp_path, tmp_path / "data",
                  {"text_test_accuracy", "text_meta_test_accuracy", "text_meta_kg_test_accuracy",
                   "kg_untrained_mrr", "kg_trained_mrr", "majority_test_accuracy"}, limit=40)


def test_saved_notebooks_keep_no_widget_view_without_its_state():
    """JupyterLab shows "model not found" for a view whose state is not saved: keep its readable fallback only."""
    from kbench.runner import WIDGET_VIEW, without_orphan_widgets

    view = lambda model, text: nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": model},
                                                                           "text/plain": text})
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x", outputs=[view("saved", "Slider(value=1)"),
                                                              view("bar", "epoch 1: 100%|####| 30/30"),
                                                              view("box", "VBox(children=(HTML(value='a'),))")])]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"saved": {}}}}
    outputs = without_orphan_widgets(notebook).cells[0].outputs
    assert [list(o.data) for o in outputs] == [[WIDGET_VIEW, "text/plain"], ["text/plain"]]
    assert outputs[1].data["text/plain"].startswith("epoch 1") and len(notebook.cells[0].outputs) == 3


def test_smoke_runs_save_no_orphan_widget_view(smoke_run):
    from kbench.runner import WIDGET_VIEW

    for result in smoke_run:
        executed = nbformat.read(result.executed, as_version=4)
        state = executed.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                view = output.get("data", {}).get(WIDGET_VIEW)
                assert view is None or view["model_id"] in state.get("state", {}), f"{result.name}: orphan widget"


@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("2,5", [2, 5]), ("7", [7])])
def test_seed_lists_parse(text, seeds):
    from kbench.cli import _seeds

    assert _seeds(text) == seeds


def test_a_bad_seed_list_or_notebook_is_a_clear_error(capsys):
    from kbench.cli import main

    assert main(["spread", "--only", "05", "--seeds", "a-b"]) == 2
    assert "seeds are a range" in capsys.readouterr().err
    assert main(["spread", "--only", "zz_none", "--seeds", "0"]) == 2
    assert "no notebook matches" in capsys.readouterr().err


def test_the_offline_copy_keeps_a_widgets_html_fallback_only():
    from kbench.runner import WIDGET_VIEW, offline_copy

    view = lambda data: nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "m"}} | data)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x", outputs=[view({"text/html": "<b>tree</b>", "text/plain": "VBox()"}),
                                                              view({"text/plain": "epoch 1: 100%"}),
                                                              nbformat.v4.new_output("stream", text="hi")])]
    notebook.metadata["widgets"] = {"state": {}}
    offline = offline_copy(notebook)
    assert [dict(o.get("data", {})) for o in offline.cells[0].outputs] == [{"text/html": "<b>tree</b>"}, {}]
    assert "widgets" not in offline.metadata and "widgets" in notebook.metadata
