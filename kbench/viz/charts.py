"""Charts as plotly figures, shown offline: plotly.js is inlined once, never loaded from a CDN.

Series are labelled by the papers' model names, and a model keeps one colour
in every chart of every notebook (:func:`color_of`).
"""
from __future__ import annotations

import re
from html import escape

import plotly.graph_objects as go

from kbench.errors import InputError

_PLOTLY_INLINED = False
#: One colour per model name, the same in every chart; other names take the palette in order of first use.
MODEL_COLORS = {"BERT": "#7f7f7f", "K-BERT": "#1f77b4", "K-BERT w/o VM": "#ff7f0e", "BERT + metadata": "#9467bd"}
_PALETTE = ["#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
KNOWLEDGE_COLOR = "rgba(253, 226, 196, 0.6)"


def color_of(name: str) -> str:
    """Return the colour of a model name (stable within a process: a new name takes the next free colour)."""
    if name not in MODEL_COLORS:
        used = set(MODEL_COLORS.values())
        MODEL_COLORS[name] = next((c for c in _PALETTE if c not in used), _PALETTE[len(MODEL_COLORS) % len(_PALETTE)])
    return MODEL_COLORS[name]


def show(figure: go.Figure) -> None:
    """Display a plotly figure as HTML that works offline and in static exports."""
    global _PLOTLY_INLINED
    from IPython.display import HTML, display

    display(HTML(figure.to_html(include_plotlyjs=not _PLOTLY_INLINED, full_html=False)))
    _PLOTLY_INLINED = True


def _wrap(text: str, width: int) -> str:
    """Break ``text`` into lines of at most about ``width`` characters at spaces (plotly draws ``<br>`` breaks)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join(lines + [line])


def value_range(values: list[float]) -> list[float]:
    """Return a y-axis range holding every value: 0 to 1.05 for shares (accuracy, MRR, F1, AUC), else a range
    around the values with room above and below, so a loss of 6.3-6.7 is neither cut nor flattened."""
    low, high = min(values), max(values)
    if 0 <= low and high <= 1:
        return [0, 1.05]
    span = max(high - low, 0.05 * max(abs(high), abs(low)), 1e-6)
    bottom = 0 if 0 <= low < 0.5 * span else low - 0.25 * span
    return [bottom, high + 0.25 * span]


def accuracy_bars(results: dict[str, float], *, majority: float | None = None, chance: float | None = None,
                  lines: dict[str, float] | None = None, runs: dict[str, list[float]] | None = None,
                  title: str | None = None, metric: str = "accuracy") -> go.Figure:
    """Return a bar chart of one score per model (keyed by the model's name), with its reference lines.

    ``metric`` names the y-axis (accuracy, MRR, F1, MLM loss ...) and the default title; the axis holds every
    bar, dot and line (:func:`value_range`). ``majority`` is the share of the most common test label (always
    guessing it scores that), ``chance`` a uniform guess, and ``lines`` any other reference by what it is
    ("untrained", "answer prior"): each is a dashed line named in the legend. ``runs`` gives a model's scores
    over several seeds: each run is a dot on the bar, so the spread is seen, not only the one value. The values
    are written under the model's name, so no line ever runs through them; names are wrapped, the legend sits
    above the plot and the chart widens with the bars, so no label runs into another.
    """
    names = list(results)
    runs = runs or {}
    unknown = set(runs) - set(names)
    if unknown:
        raise InputError(f"runs for {sorted(unknown)}, which have no bar: use the names {names}")
    references = [(value, label, dash) for value, label, dash in
                  ((majority, "majority class", "dash"), (chance, "chance", "dot")) if value is not None]
    references += [(value, label, "dashdot") for label, value in (lines or {}).items()]
    ticks = [_wrap(name, 14) + f"<br>{results[name]:.3f}" + (f"<br>{min(runs[name]):.2f}–{max(runs[name]):.2f}"
                                                          f"<br>({len(runs[name])} seeds)" if runs.get(name) else "")
             for name in names]
    figure = go.Figure(go.Bar(x=ticks, y=list(results.values()), marker_color=[color_of(n) for n in names],
                              showlegend=False))
    for name, tick in zip(names, ticks):
        if runs.get(name):
            figure.add_trace(go.Scatter(x=[tick] * len(runs[name]), y=list(runs[name]), mode="markers",
                                        marker=dict(color="#222", size=6, symbol="circle-open"),
                                        name="one seed", legendgroup="seeds",
                                        showlegend=name == next(n for n in names if runs.get(n))))
    for value, label, dash in references:
        figure.add_trace(go.Scatter(x=[-0.5, len(names) - 0.5], y=[value, value], mode="lines",
                                    line=dict(dash=dash, color="#444"), name=f"{label} ({value:.2f})",
                                    xaxis="x2"))
    if references:
        figure.update_layout(xaxis2=dict(overlaying="x", range=[-0.5, len(names) - 0.5], visible=False))
    everything = list(results.values()) + [v for r in runs.values() for v in r] + [v for v, _, _ in references]
    width = max(560, 125 * len(names) + 140)
    title = title or f"test {metric}"
    wrapped = _wrap(title, width // 10)   # about 9 px a character at the title's size: a line fits the width
    figure.update_layout(title=dict(text=wrapped, x=0, xanchor="left", y=1, yref="container",
                                    yanchor="top", pad=dict(t=20, l=12)),
                         yaxis=dict(range=value_range(everything), title=metric),
                         xaxis=dict(title="model", tickangle=0),
                         legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom"),
                         margin=dict(t=84 + 18 * wrapped.count("<br>"), b=100),
                         height=460, width=width)
    return figure


def dev_curves(histories: dict[str, list[float]], title: str = "dev accuracy per epoch",
               metric: str = "dev accuracy") -> go.Figure:
    """Return one line per model (keyed by its name) of its dev metric after each epoch."""
    figure = go.Figure([go.Scatter(x=list(range(1, len(v) + 1)), y=v, mode="lines+markers", name=name,
                                   line=dict(color=color_of(name))) for name, v in histories.items()])
    figure.update_layout(title=title, xaxis=dict(title="epoch", tickmode="linear", tick0=1, dtick=1),
                         yaxis=dict(title=metric, range=value_range([x for v in histories.values() for x in v]
                                                                   or [0.0])),
                         height=380, width=540)
    return figure


def attention_bars(tokens: list[str], weights: dict[str, list[float]], title: str,
                   knowledge: list[bool] | None = None, shaded: str = "injected knowledge") -> go.Figure:
    """Return grouped bars of one value per token (attention weight, or any per-token score), per model.

    ``knowledge`` marks the tokens that carry knowledge: their columns are shaded
    and their labels bracketed (``⟨china⟩``), so weight on knowledge is visible
    at a glance; ``shaded`` says in the title what they are (K-BERT's injected
    tokens by default; an aligned entity for ERNIE).
    """
    knowledge = list(knowledge) if knowledge is not None else [False] * len(tokens)
    labels = [f"{i}:⟨{t}⟩" if k else f"{i}:{t}" for i, (t, k) in enumerate(zip(tokens, knowledge))]
    figure = go.Figure([go.Bar(x=labels, y=w, name=name, marker_color=color_of(name)) for name, w in weights.items()])
    for index, is_knowledge in enumerate(knowledge):
        if is_knowledge:
            figure.add_vrect(x0=index - 0.5, x1=index + 0.5, fillcolor=KNOWLEDGE_COLOR, line_width=0, layer="below")
    figure.update_layout(title=title + (f" (shaded ⟨tokens⟩: {shaded})" if any(knowledge) else ""),
                         barmode="group", height=400, xaxis=dict(title="token", tickangle=-60),
                         yaxis_title="attention weight")
    return figure


NUMBER = re.compile(r"^[-+−]?\d[\d,]*(\.\d+)?(%|x| s)?( [\[(].*[\])])?$")


def results_table_html(rows: list[dict], columns: list[str], caption: str = "") -> str:
    """Return a plain HTML table with a header row: one dict per row, ``columns`` in order.

    Every cell is aligned explicitly — numbers to the right, words and sentences to the left (JupyterLab's own
    table style right-aligns every cell) — and the caption sits above the table at the text's width, not
    squeezed to the table's."""
    align = lambda value: "right" if NUMBER.match(value) else "left"
    head = "".join(f"<th style='text-align:left;padding:2px 10px;border-bottom:1px solid #888'>{escape(c)}</th>"
                   for c in columns)
    cells = lambda row: "".join(f"<td style='padding:2px 10px;text-align:{align(str(row.get(c, '')))}'>"
                                f"{escape(str(row.get(c, '')))}</td>" for c in columns)
    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
    title = (f"<div style='font-weight:bold;margin:6px 0 2px;max-width:60em'>{escape(caption)}</div>"
             if caption else "")
    return (f"<div>{title}<table style='border-collapse:collapse;font-family:sans-serif'><tr>{head}</tr>{body}"
            "</table></div>")
