"""Charts as plotly figures, shown offline: plotly.js is inlined once, never loaded from a CDN.

Series are labelled by the papers' model names, and a model keeps one colour
in every chart of every notebook (:func:`color_of`).
"""
from __future__ import annotations

from html import escape

import plotly.graph_objects as go

_PLOTLY_INLINED = False
#: One colour per model name, the same in every chart; other names take the palette in order of first use.
MODEL_COLORS = {"BERT": "#7f7f7f", "K-BERT": "#1f77b4", "K-BERT w/o VM": "#ff7f0e"}
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


def accuracy_bars(results: dict[str, float], chance: float | None = None, title: str = "test accuracy",
                  metric: str = "accuracy") -> go.Figure:
    """Return a bar chart of one score per model (keyed by the model's name), with chance as a dashed line.

    The chance line is named in the legend, so no text sits on it or on a bar.
    """
    names = list(results)
    figure = go.Figure(go.Bar(x=names, y=list(results.values()), marker_color=[color_of(n) for n in names],
                              text=[f"{v:.3f}" for v in results.values()], textposition="outside",
                              showlegend=False))
    if chance is not None:
        figure.add_trace(go.Scatter(x=[-0.5, len(names) - 0.5], y=[chance, chance], mode="lines",
                                    line=dict(dash="dash", color="#444"), name=f"chance ({chance:.2f})",
                                    xaxis="x2"))
        figure.update_layout(xaxis2=dict(overlaying="x", range=[-0.5, len(names) - 0.5], visible=False),
                             legend=dict(orientation="h", y=-0.2))
    figure.update_layout(title=title, yaxis=dict(range=[0, 1.12], title=metric), xaxis_title="model",
                         height=380, width=540)
    return figure


def dev_curves(histories: dict[str, list[float]], title: str = "dev accuracy per epoch",
               metric: str = "dev accuracy") -> go.Figure:
    """Return one line per model (keyed by its name) of its dev metric after each epoch."""
    figure = go.Figure([go.Scatter(x=list(range(1, len(v) + 1)), y=v, mode="lines+markers", name=name,
                                   line=dict(color=color_of(name))) for name, v in histories.items()])
    figure.update_layout(title=title, xaxis=dict(title="epoch", tickmode="linear", tick0=1, dtick=1),
                         yaxis=dict(title=metric, range=[0, 1.05]), height=380, width=540)
    return figure


def attention_bars(tokens: list[str], weights: dict[str, list[float]], title: str,
                   knowledge: list[bool] | None = None) -> go.Figure:
    """Return grouped bars of how much one token attends to each token, per model.

    ``knowledge`` marks injected tokens: their columns are shaded and their
    labels bracketed (``⟨china⟩``), so weight on knowledge is visible at a glance.
    """
    knowledge = list(knowledge) if knowledge is not None else [False] * len(tokens)
    labels = [f"{i}:⟨{t}⟩" if k else f"{i}:{t}" for i, (t, k) in enumerate(zip(tokens, knowledge))]
    figure = go.Figure([go.Bar(x=labels, y=w, name=name, marker_color=color_of(name)) for name, w in weights.items()])
    for index, is_knowledge in enumerate(knowledge):
        if is_knowledge:
            figure.add_vrect(x0=index - 0.5, x1=index + 0.5, fillcolor=KNOWLEDGE_COLOR, line_width=0, layer="below")
    figure.update_layout(title=title + (" (shaded ⟨tokens⟩: injected knowledge)" if any(knowledge) else ""),
                         barmode="group", height=400, xaxis=dict(title="token", tickangle=-60),
                         yaxis_title="attention weight")
    return figure


def results_table_html(rows: list[dict], columns: list[str], caption: str = "") -> str:
    """Return a plain HTML table with a header row: one dict per row, ``columns`` in order."""
    head = "".join(f"<th style='text-align:left;padding:2px 10px;border-bottom:1px solid #888'>{escape(c)}</th>"
                   for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{escape(str(row.get(c, '')))}</td>"
                                    for c in columns) + "</tr>" for row in rows)
    title = f"<caption style='text-align:left;font-weight:bold'>{escape(caption)}</caption>" if caption else ""
    return f"<table style='border-collapse:collapse;font-family:sans-serif'>{title}<tr>{head}</tr>{body}</table>"
