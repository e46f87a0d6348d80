"""The overview's pictures: each paper's gain against its run-time cost, and the survey's grouping beside the map."""
from __future__ import annotations

import html
import statistics
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from kbench.taxonomy import SAME_NETWORK, SURVEY, WHERE, Declaration

#: One colour per place on the map (where the knowledge enters).
WHERE_COLOURS = dict(zip(WHERE, ("#1971c2", "#e8590c", "#2f9e44", "#862e9c", "#c2255c", "#5c940d")))


def gain_cost_figure(rows: Sequence, costs: Mapping | None = None, title: str = "", profile: str = "smoke"
                     ) -> go.Figure:
    """Return each paper's Δ (with − without knowledge; mean, bars to the seeds' min and max) against the time its
    model takes to infer relative to its plain base (1: as fast; methods that change only pretraining or data
    run the plain network, so they sit at 1). Rows without values, and rows whose method changes the run-time
    network but whose inference ratio is not measured (no cost, or rounds that disagree by more than
    :data:`kbench.cost.MAX_SPREAD`), are left out and named under the plot."""
    costs = costs or {}
    figure = go.Figure()
    stacked = []   # (y, title, colour) of the points at 1x: labelled in a column beside them, never on each other
    for where in WHERE:
        same = where in SAME_NETWORK
        chosen = [r for r in rows if r.declaration.place.where == where and r.deltas
                  and (same or (r.declaration.notebook in costs and costs[r.declaration.notebook].measured(False)))]
        if not chosen:
            continue
        means = [statistics.mean(r.deltas) for r in chosen]
        x = [1 / costs[r.declaration.notebook].infer_speed if r.declaration.notebook in costs else 1.0
             for r in chosen]
        hover = [f"<b>{html.escape(r.declaration.title)}</b><br>{html.escape(r.declaration.headline.task_in(profile))}<br>"
                 f"Δ {m:+.3f} over {len(r.deltas)} seed(s), higher on {r.wins}<br>"
                 + (f"params added {costs[r.declaration.notebook].added:+,}" if r.declaration.notebook in costs
                    else "same network at run time")
                 for r, m in zip(chosen, means)]
        stacked += [(m, r.declaration.title, WHERE_COLOURS[where]) for r, m, at in zip(chosen, means, x) if at == 1.0]
        figure.add_trace(go.Scatter(
            x=x, y=means, mode="markers+text", name=where,
            text=["" if at == 1.0 else r.declaration.title for r, at in zip(chosen, x)],
            textposition="middle right", hovertext=hover, hoverinfo="text",
            marker=dict(size=11, color=WHERE_COLOURS[where]),
            error_y=dict(type="data", symmetric=False, array=[max(r.deltas) - m for r, m in zip(chosen, means)],
                         arrayminus=[m - min(r.deltas) for r, m in zip(chosen, means)], thickness=1.2)))
    xs = [v for trace in figure.data for v in trace.x] or [1.0]
    ends = [v for r in rows if r.deltas for v in (min(r.deltas), max(r.deltas))] or [0.0]
    span = max(max(xs) - 1.0, 0.2)
    height = 520
    low, high = min(ends + [0.0]), max(ends + [0.0])
    bottom = low
    for _ in range(4):   # a column reaching below the axis widens it, which shrinks a label's height in data units
        gap = max(high - bottom, 0.2) * 1.1 * 15 / (height - 170)   # one label (15 px) of the plot area, in data units
        placed = label_column(stacked, gap=gap)
        bottom = min([low] + [label_y for _, label_y, _, _ in placed])
    low = bottom
    for y, label_y, name, colour in placed:
        figure.add_annotation(x=1.0, y=y, ax=1.0 - 0.06 * span, ay=label_y, axref="x", ayref="y", text=name,
                              xanchor="right", showarrow=True, arrowhead=0, arrowwidth=0.8, arrowcolor=colour,
                              font=dict(size=11, color=colour))
    unmeasured = [r.declaration.title for r in rows if r.deltas and r.declaration.place.where not in SAME_NETWORK
                  and not (r.declaration.notebook in costs and costs[r.declaration.notebook].measured(False))]
    if unmeasured:
        figure.add_annotation(text="speed not measured (rounds disagree, or no cost): " + ", ".join(unmeasured),
                              xref="paper", yref="paper", x=0, y=-0.22, showarrow=False, font=dict(size=11))
    figure.add_hline(y=0, line_dash="dot", line_color="#868e96")
    pad = 0.05 * max(high - low, 0.2)
    figure.update_layout(title=title or "gain against run-time cost", template="plotly_white", height=height, width=900,
                         xaxis=dict(title="inference time relative to the plain base (same sentences)",
                                    range=[1.0 - 0.45 * span, max(xs) + 0.3 * span]),   # room for every label
                         yaxis=dict(title="Δ = with − without knowledge (the task's own metric)",
                                    range=[low - pad, high + pad]),
                         legend_title="where knowledge enters")
    return figure


def label_column(points: Sequence[tuple[float, str, str]], gap: float) -> list[tuple[float, float, str, str]]:
    """Return ``(y, label_y, title, colour)`` for points that share one x: the labels in the points' order from the
    top, each at its point's height unless that is within ``gap`` of the label above, then ``gap`` lower — so no
    two labels overlap however close the points are."""
    placed, previous = [], None
    for y, title, colour in sorted(points, key=lambda p: -p[0]):
        label_y = y if previous is None else min(y, previous - gap)
        placed.append((y, label_y, title, colour))
        previous = label_y
    return placed


def survey_grouping_html(items: Sequence[Declaration]) -> str:
    """Return the survey's own grouping (Qiu et al. 2020, §4.1) of the papers as a table: its kinds of knowledge
    as columns, "injected while pretraining" and "added at fine-tuning" as rows; a paper §4.1 does not name is
    marked with *; a paper the survey also lists under a second kind appears there too, marked "(also)"."""
    e = html.escape
    cells = []
    for when, label in (("pretraining", "injected while pretraining"), ("fine-tuning", "added at fine-tuning")):
        row = [f"<th style='text-align:left'>{label}</th>"]
        for kind in SURVEY:
            names = [d.title + ("*" if not d.place.in_survey else "") + (" (also)" if kind in d.place.also else "")
                     for d in items if kind in (d.place.survey, *d.place.also) and d.place.when == when]
            row.append(f"<td>{'<br>'.join(e(n) for n in names) or '—'}</td>")
        cells.append(f"<tr>{''.join(row)}</tr>")
    head = "".join(f"<th>{e(kind)}</th>" for kind in SURVEY)
    return ("<table style='border-collapse:collapse' border='1' cellpadding='5'>"
            "<caption>The survey's grouping (Qiu et al. 2020, §4.1: kind of knowledge × when it enters); "
            "* not named in §4.1, placed by the same rule; (also): listed under a second kind too</caption>"
            f"<tr><th></th>{head}</tr>{''.join(cells)}</table>")


def controls_figure(rows: Sequence, title: str = "", profile: str = "smoke") -> go.Figure:
    """Return, per paper, the gain over its own base beside the gain over its strongest trivial baseline.

    One row per paper (papers without recorded values are left out): grey dots are Δ = with − without
    knowledge, one per seed; coloured dots are Δ against the strongest trivial baseline of the same seed
    (untrained encoder, answer prior, untrained module, ...; :attr:`kbench.comparison.Row.deltas_vs_strongest`),
    green where the positive control passed on every seed, red where it failed, grey where it was not run.
    A gain that sits right of zero in grey but left of it in colour is a gain over a baseline that was
    worse than doing nothing."""
    chosen = [r for r in rows if r.deltas]
    names = [r.declaration.title for r in chosen]
    figure = go.Figure()
    verdict_colour = lambda v: "#2f9e44" if v.startswith("passed") else "#e03131" if v.startswith("FAILED") \
        else "#868e96"
    for r, name in zip(chosen, names):
        verdict = r.positive_verdict()
        task = html.escape(r.declaration.headline.task_in(profile))
        figure.add_trace(go.Scatter(
            x=r.deltas, y=[name] * len(r.deltas), mode="markers", showlegend=False, hoverinfo="text",
            marker=dict(size=7, color="#adb5bd", symbol="circle-open"),
            hovertext=[f"<b>{html.escape(name)}</b><br>{task}<br>Δ vs without knowledge {d:+.3f}" for d in r.deltas]))
        if r.trivial:
            figure.add_trace(go.Scatter(
                x=r.deltas_vs_strongest, y=[name] * len(r.deltas_vs_strongest), mode="markers", showlegend=False,
                hoverinfo="text", marker=dict(size=9, color=verdict_colour(verdict)),
                hovertext=[f"<b>{html.escape(name)}</b><br>Δ vs strongest trivial ({html.escape(r.strongest_name)}) "
                           f"{d:+.3f}<br>positive control: {html.escape(verdict)}" for d in r.deltas_vs_strongest]))
    for label, colour, symbol in (("Δ vs without knowledge", "#adb5bd", "circle-open"),
                                  ("Δ vs strongest trivial; positive control passed", "#2f9e44", "circle"),
                                  ("Δ vs strongest trivial; positive control failed", "#e03131", "circle"),
                                  ("Δ vs strongest trivial; no positive control run", "#868e96", "circle")):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label,
                                    marker=dict(size=9, color=colour, symbol=symbol)))
    figure.add_vline(x=0, line_dash="dot", line_color="#495057")
    figure.update_layout(title=title or "each paper's gain, against its base and against its strongest trivial "
                         "baseline (a dot per seed)", template="plotly_white", height=140 + 34 * len(chosen),
                         xaxis_title="Δ in the task's own metric (not comparable in size across papers)",
                         yaxis=dict(autorange="reversed", categoryorder="array", categoryarray=names),
                         legend=dict(orientation="h", y=-0.25), margin=dict(l=140))
    return figure
