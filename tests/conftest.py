"""Shared fixtures: the Figure 2 KG, the data mirror, and hypothesis settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from kbench.kg import KnowledgeGraph

ROOT = Path(__file__).resolve().parents[1]
settings.register_profile("kbench", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kbench")


def mirror_dir() -> Path | None:
    """Return the data mirror: $KBENCH_DATA_MIRROR, else ../shared/data beside the checkout, else None."""
    candidates = [os.environ.get("KBENCH_DATA_MIRROR"), ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def mirror() -> Path:
    found = mirror_dir()
    if found is None:
        pytest.skip("no data mirror (set KBENCH_DATA_MIRROR); CI always has one")
    return found


@pytest.fixture
def figure2_kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_triples([("Tim Cook", "CEO", "Apple"), ("Beijing", "capital", "China"),
                                        ("Beijing", "is_a", "City")])


@pytest.fixture(scope="session")
def real_data(tmp_path_factory):
    """Fetch HowNet and ChnSentiCorp's test split from the mirror into a temporary data dir."""
    from kbench.data import fetch

    found = mirror_dir()
    if found is None:
        pytest.skip("no data mirror (set KBENCH_DATA_MIRROR); CI always has one")
    data_dir = tmp_path_factory.mktemp("data")
    for name in ("kbert/kgs/HowNet.spo", "kbert/datasets/chnsenticorp/test.tsv", "kbert/vocab/google_vocab.txt",
                 "kbert/kgs/Medical.spo", "kbert/datasets/medical_ner/dev.tsv"):
        fetch(name, data_dir, found, progress=False)
    return data_dir
