"""KnowledgeGraph: loading, file order, malformed input."""
from __future__ import annotations

import pytest

from kbench.errors import InputError, KGFormatError
from kbench.kg import KnowledgeGraph


def write(tmp_path, text, name="kg.spo"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_spo_keeps_file_order_and_drops_duplicates(tmp_path):
    path = write(tmp_path, "b\tp\tz\na\tp\tx\nb\tp\ty\nb\tp\tz\n\n")
    kg = KnowledgeGraph.from_spo(path)
    assert kg.subjects == ["b", "a"]
    assert kg.lookup("b") == [("p", "z"), ("p", "y")]
    assert len(kg) == 3 and kg.report.duplicates == 1
    assert kg.branches("b", joiner="-") == ["p-z", "p-y"] and kg.branches("b", limit=1) == ["pz"]
    assert kg.lookup("missing") == [] and "a" in kg and "q" not in kg


def test_malformed_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "a\tp\tx\nbroken line\nc\tp\tz\n")
    with pytest.raises(KGFormatError) as caught:
        KnowledgeGraph.from_spo(path)
    assert caught.value.line_number == 2 and f"{path}:2" in str(caught.value)


@pytest.mark.parametrize("line", ["a\tp", "a\tp\tx\textra", "a\t\tx", "\tp\tx"])
def test_each_kind_of_malformed_line(tmp_path, line):
    with pytest.raises(KGFormatError, match=":1:"):
        KnowledgeGraph.from_spo(write(tmp_path, line + "\n"))


def test_skip_mode_counts_and_reports(tmp_path):
    kg = KnowledgeGraph.from_spo(write(tmp_path, "a\tp\tx\nbad\nworse\there\nc\tp\tz\n"), on_error="skip")
    assert len(kg) == 2 and kg.report.skipped == 2
    assert "skipped 2 malformed" in str(kg.report) and "line 2" in str(kg.report)


def test_missing_file_and_bad_option(tmp_path):
    with pytest.raises(KGFormatError, match="does not exist"):
        KnowledgeGraph.from_spo(tmp_path / "nope.spo")
    with pytest.raises(InputError):
        KnowledgeGraph.from_spo(write(tmp_path, "a\tb\tc\n"), on_error="ignore")


def test_tsv_with_header_and_round_trip(tmp_path):
    kg = KnowledgeGraph.from_tsv(write(tmp_path, "subject\tpredicate\tobject\na\tp\tx\n", "kg.tsv"), header=True)
    assert list(kg) == [("a", "p", "x")]
    kg.to_tsv(tmp_path / "out.spo")
    assert list(KnowledgeGraph.from_spo(tmp_path / "out.spo")) == [("a", "p", "x")]


@pytest.mark.parametrize("bad", [[("a", "b")], [("a", "b", "")], [("a", "b", 3)], ["abc"]])
def test_from_triples_rejects_bad_triples(bad):
    with pytest.raises(KGFormatError):
        KnowledgeGraph.from_triples(bad)


def test_large_graph_loads(tmp_path):
    lines = "".join(f"s{i % 40000}\tp{i % 7}\to{i}\n" for i in range(120_000))
    kg = KnowledgeGraph.from_spo(write(tmp_path, lines))
    assert len(kg) == 120_000 and len(kg.subjects) == 40_000
    assert kg.lookup("s5")[:2] == [("p5", "o5"), ("p0", "o40005")]


def test_real_kgs_load_cleanly(real_data):
    from kbench.data import load_kg

    hownet, medical = load_kg("HowNet", real_data), load_kg("Medical", real_data)
    assert len(hownet) == 52_576 - hownet.report.duplicates and hownet.report.skipped == 0
    assert len(medical) + medical.report.duplicates == 13_864
    assert medical.lookup("小儿狂犬病") == [("类别", "疾病")]
