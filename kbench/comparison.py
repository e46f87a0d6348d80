"""Every method side by side: each notebook's own answer to "does the knowledge help?", with its cost.

The overview (``notebooks/12_overview``) puts the papers next to each other. Each
model module declares its ``HEADLINE`` (:class:`kbench.taxonomy.Headline`): the
metric its notebook records with the paper's knowledge and the same base's metric
without it, on the same split, seed and budget. :func:`recorded` reads those pairs
from every notebook's baseline: over the seeds of its recorded spread when it has
one (``kbench spread``), else the single recorded run, and says which. A missing,
corrupt or incomplete baseline is a row with a note, not an error.

The gain is a difference of two numbers measured together (Δ = with − without, per
seed), so it is comparable across papers in sign and seed-robustness, not in size:
the tasks and metrics differ (accuracy, MRR, F1). :func:`runtime_costs` measures
what each method costs where it changes the model that runs (parameters added,
training and inference tokens/s against its own plain base on the same sentences,
:func:`kbench.cost.relative_cost`); the methods that change only pretraining or
data run the plain base's architecture, so they cost nothing at run time and their
cost is the pretraining they need (their ``needs``).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from kbench.errors import BaselineError, InputError
from kbench.record import load_baseline
from kbench.taxonomy import SAME_NETWORK, Declaration, declarations

BASELINES = Path(__file__).resolve().parents[1] / "notebooks" / "baselines"


@dataclass
class Row:
    """One paper's headline comparison as recorded: values with and without its knowledge, per seed."""

    declaration: Declaration
    metrics: tuple[str, str]
    seeds: list = field(default_factory=list)        # the seeds of the values (["recorded run"] without a spread)
    knowledge: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    probe: tuple[list[float], list[float]] | None = None
    note: str = ""                                   # why a value is missing, or where the values come from
    trivial: dict[str, list[float]] = field(default_factory=dict)   # each trivial baseline's values, per seed
    positive: tuple[list[float], list[float]] | None = None         # the positive control's (left, right), per seed
    plain: list[float] = field(default_factory=list)                # plain BERT's values where the base is another's

    @property
    def deltas(self) -> list[float]:
        """Per seed: with knowledge minus without."""
        return [k - b for k, b in zip(self.knowledge, self.base)]

    @property
    def probe_deltas(self) -> list[float]:
        return [k - b for k, b in zip(*self.probe)] if self.probe else []

    @property
    def wins(self) -> int:
        """Seeds on which the knowledge variant scored strictly higher."""
        return sum(d > 0 for d in self.deltas)

    @property
    def strongest(self) -> list[float]:
        """Per seed: the highest of the recorded trivial baselines (empty when none is recorded)."""
        if not self.trivial:
            return []
        return [max(values) for values in zip(*self.trivial.values())]

    @property
    def strongest_name(self) -> str:
        """The trivial baseline with the highest mean over the seeds ('' when none is recorded)."""
        if not self.trivial:
            return ""
        return max(self.trivial, key=lambda name: statistics.mean(self.trivial[name]))

    @property
    def deltas_vs_strongest(self) -> list[float]:
        """Per seed: with knowledge minus the strongest trivial baseline of that seed."""
        return [k - s for k, s in zip(self.knowledge, self.strongest)]

    @property
    def beats_strongest(self) -> int:
        """Seeds on which the knowledge variant scored strictly above every trivial baseline."""
        return sum(d > 0 for d in self.deltas_vs_strongest)

    def positive_verdict(self) -> str:
        """The positive control's verdict: 'passed on n/n seeds', 'FAILED on k of n seeds', 'not run: why', or
        'not declared' / 'not recorded'."""
        control = self.declaration.headline.positive
        if control is None:
            return "not declared"
        if not control.is_run:
            return f"not run: {control.reason}"
        if self.positive is None:
            return "not recorded"
        passed, seeds = control.verdict(*self.positive)
        if passed == seeds:
            return f"passed on {passed}/{seeds} seeds" + (" (declared failing: check the reason)" if control.fails
                                                          else "")
        return f"FAILED on {seeds - passed} of {seeds} seeds" + (f": {control.reason}" if control.fails else "")


def _recorded_value(baseline, name: str) -> list[float] | None:
    """The recorded (seed-0) value of ``name`` as a one-item list; None if absent."""
    return [float(baseline.metrics[name]["value"])] if name in baseline.metrics else None


def _values(baseline, name: str) -> list[float] | None:
    """Per-seed values from the spread when it holds ``name``; else the recorded value alone; None if absent."""
    if baseline.spread and name in baseline.spread.get("metrics", {}):
        return [float(v) for v in baseline.spread["metrics"][name]]
    return _recorded_value(baseline, name)


def recorded(profile: str = "smoke", directory: Path | str | None = None,
             items: list[Declaration] | None = None) -> list[Row]:
    """Return each paper's :class:`Row` from ``directory/<notebook>.<profile>.json``, in notebook order."""
    directory = Path(directory or BASELINES)
    rows = []
    for item in declarations() if items is None else items:
        pair, probe = item.headline.metrics(profile)
        row = Row(item, pair)
        path = directory / f"{item.notebook}.{profile}.json"
        try:
            baseline = load_baseline(path)
        except BaselineError as error:
            row.note = f"unreadable baseline: {error}"
            rows.append(row)
            continue
        if baseline is None:
            row.note = f"no {profile} baseline ({path.name})"
            rows.append(row)
            continue
        knowledge, base = _values(baseline, pair[0]), _values(baseline, pair[1])
        missing = [name for name, v in zip(pair, (knowledge, base)) if v is None]
        if missing:
            row.note = f"{path.name} records no {' or '.join(missing)}"
            rows.append(row)
            continue
        if len(knowledge) != len(base):              # one in the spread, the other not: compare recorded runs
            knowledge, base = _recorded_value(baseline, pair[0]), _recorded_value(baseline, pair[1])
            if knowledge is None or base is None:
                row.note = f"{path.name}: {pair[0]} and {pair[1]} are not recorded over the same seeds"
                rows.append(row)
                continue
        spread = len(knowledge) > 1
        row.seeds = list(baseline.spread["seeds"]) if spread else ["recorded run"]
        row.knowledge, row.base = knowledge, base
        row.note = (f"seeds {', '.join(map(str, row.seeds))} ({baseline.spread.get('on', '')})" if spread
                    else "one recorded run")
        if item.headline.plain and profile == "smoke":
            values = _values(baseline, item.headline.plain)
            if values is not None and len(values) == len(knowledge):
                row.plain = values
        for name in item.headline.trivial:
            values = _values(baseline, name)
            if values is not None and len(values) == len(knowledge):
                row.trivial[name] = values
            else:
                row.note += f"; trivial baseline {name} not recorded over these seeds"
        control = item.headline.positive
        if control is not None and control.is_run:
            left, right = _values(baseline, control.left), _values(baseline, control.right)
            if left is not None and right is not None and len(left) == len(right):
                row.positive = (left, right)
            else:
                row.note += f"; positive control {control.left} / {control.right} not recorded over the same seeds"
        if probe:
            pk, pb = _values(baseline, probe[0]), _values(baseline, probe[1])
            if pk is not None and pb is not None and len(pk) == len(pb) == len(knowledge):
                row.probe = (pk, pb)
            else:
                row.note += f"; probe {probe[0]} / {probe[1]} not recorded over these seeds"
        rows.append(row)
    return rows


def _span(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:+.3f}"
    return f"{statistics.mean(values):+.3f} [{min(values):+.3f}, {max(values):+.3f}]"


def table(rows: list[Row], costs: dict | None = None, profile: str = "smoke"):
    """Return the head-to-head as a pandas DataFrame, one row per paper (costs from :func:`runtime_costs`)."""
    import pandas as pd

    costs = costs or {}
    records = []
    for row in rows:
        d = row.declaration
        cost = costs.get(d.notebook)
        same = d.place.where in SAME_NETWORK
        records.append({
            "paper": d.title, "where": d.place.where, "knowledge": ", ".join(d.place.knowledge),
            "task": d.headline.task_in(profile),
            "with": round(statistics.mean(row.knowledge), 3) if row.knowledge else None,
            "without": round(statistics.mean(row.base), 3) if row.base else None,
            "Δ mean [min, max]": _span(row.deltas) or "—",
            "higher on": f"{row.wins}/{len(row.deltas)}" if row.deltas else "—",
            "Δ vs plain BERT": _span([k - p for k, p in zip(row.knowledge, row.plain)]) if row.plain
            else "(the base is plain BERT)" if row.deltas else "—",
            "strongest trivial": (f"{row.strongest_name} {statistics.mean(row.trivial[row.strongest_name]):.3f}"
                                  if row.trivial else "none recorded"),
            "Δ vs strongest [min, max]": _span(row.deltas_vs_strongest) or "—",
            "above it on": f"{row.beats_strongest}/{len(row.deltas_vs_strongest)}" if row.trivial else "—",
            "positive control": row.positive_verdict().split(": ", 1)[0],     # the reason: Row.positive_verdict()
            "probe Δ (MRR)": _span(row.probe_deltas) or "—",
            "params added": f"{cost.added:+,}" if cost else "0 (same network)" if same else "not measured",
            "train speed": cost.speed_text(True) if cost else "1x at run time" if same else "not measured",
            "infer speed": cost.speed_text(False) if cost else "1x" if same else "not measured",
            "needs": d.headline.needs, "values": row.note,
        })
    return pd.DataFrame.from_records(records)


def runtime_costs(world, base_model: str, layers: int | None = 2, seed: int = 0, sentences: int = 32,
                  batch_size: int = 16, entity_dim: int = 64, repeats: int = 5) -> dict:
    """Measure, per notebook, what its method adds to the model that runs: a :class:`kbench.cost.Cost` each.

    Every method that changes the run-time network is built over ``base_model``
    (its first ``layers`` layers) and timed against its own plain variant on the
    same first ``sentences`` of ``world`` (a linking world): K-BERT's tree over the
    world's KG, ERNIE's aggregators (BERT-MK's network too: the same one over other
    vectors), KnowBert's KAR layer, K-Adapter's two adapters beside the frozen base
    (its plain variant: the frozen base and the same head). Entity vectors and
    adapters are random: cost does not depend on what they hold. The sizes are the
    smoke notebooks' (entity vectors of ``entity_dim``, adapters 64 wide) whatever
    the base. Entity tables are buffers, not parameters: "added" counts the fusion
    modules, not the KG vectors a method also holds at run time. The document-KG
    classifier reads documents, not these sentences, and is left out (its KG input
    is one vector per document: "not measured").
    """
    import torch

    from kbench.cost import relative_cost
    from kbench.data.adapter_tasks import SUBJECT_MARK
    from kbench.encoders import load_encoder
    from kbench.head_to_head import head_to_head_model
    from kbench.models.k_adapter import KAdapterModel, fresh_adapter

    examples = (world.train + world.dev + world.test)[:sentences]
    if not examples:
        raise InputError("time the costs on at least one sentence")
    labels = [e.label for e in examples]
    linked = [(e.words, e.mentions()) for e in examples]
    entities = sorted({t[0] for t in world.kg} | {t[2] for t in world.kg})
    vectors = torch.nn.functional.normalize(torch.randn(len(entities), entity_dim,
                                                        generator=torch.Generator().manual_seed(seed)), dim=-1)
    ids = {entity: i for i, entity in enumerate(entities)}
    n = len(world.labels)
    build = lambda method, kg=world.kg, **extra: head_to_head_model(n, vectors, ids, kg, base_model, method,
                                                                    seed=seed, layers=layers, max_length=32, **extra)

    def batches(model, texts):
        data = model.dataset(texts, labels)
        return [model.collate([data[i] for i in range(start, min(start + batch_size, len(data)))])
                for start in range(0, len(data), batch_size)]

    def pair(plain, enhanced, texts):
        return relative_cost({"plain": (plain, batches(plain, texts)), "enhanced": (enhanced, batches(enhanced, texts))},
                             "plain", repeats=repeats, seed=seed)["enhanced"]

    costs = {"01_k_bert": pair(build("kbert", kg=None), build("kbert"), linked),
             "02_knowbert": pair(build("knowbert", kar_layer=None), build("knowbert"), linked)}
    costs["05_ernie_thu"] = costs["07_bert_mk"] = pair(build("bert"), build("ernie"), linked)
    encoder = load_encoder(base_model, layers=layers, seed=seed)
    adapters = [fresh_adapter(encoder, name, None, 64, seed) for name in ("factual", "linguistic")]
    typed = [" ".join(e.words[:e.mention.start] + [SUBJECT_MARK] + e.words[e.mention.start:e.mention.end]
                      + [SUBJECT_MARK] + e.words[e.mention.end:]) for e in examples]
    costs["11_k_adapter"] = pair(KAdapterModel(encoder, "typing", n, (), train_adapters=False, seed=seed),
                                 KAdapterModel(encoder, "typing", n, adapters, train_adapters=False, seed=seed), typed)
    return costs
