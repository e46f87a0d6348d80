"""Charts as plotly figures, shown offline: plotly.js is inlined once, never loaded from a CDN."""
from __future__ import annotations

import plotly.graph_objects as go

_PLOTLY_INLINED = False


def show(figure: go.Figure) -> None:
    """Display a plotly figure as HTML that works offline and in static exports."""
    global _PLOTLY_INLINED
    from IPython.display import HTML, display

    display(HTML(figure.to_html(include_plotlyjs=not _PLOTLY_INLINED, full_html=False)))
    _PLOTLY_INLINED = True


def accuracy_bars(results: dict[str, float], chance: float | None = None, title: str = "test accuracy") -> go.Figure:
    """Return a bar chart of one score per model, with a dashed line at chance."""
    figure = go.Figure(go.Bar(x=list(results), y=list(results.values()),
                              text=[f"{v:.3f}" for v in results.values()], textposition="outside"))
    if chance is not None:
        figure.add_hline(y=chance, line_dash="dash", annotation_text=f"chance {chance:.2f}")
    figure.update_layout(title=title, yaxis_range=[0, 1.1], height=350, width=520)
    return figure


def dev_curves(histories: dict[str, list[float]], title: str = "dev accuracy per epoch") -> go.Figure:
    """Return one line per model of its dev metric after each epoch."""
    figure = go.Figure([go.Scatter(x=list(range(1, len(v) + 1)), y=v, mode="lines+markers", name=name)
                        for name, v in histories.items()])
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_range=[0, 1.05], height=350, width=520)
    return figure


def attention_bars(tokens: list[str], weights: dict[str, list[float]], title: str) -> go.Figure:
    """Return grouped bars of how much one token attends to each token, per setting."""
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    figure = go.Figure([go.Bar(x=labels, y=w, name=name) for name, w in weights.items()])
    figure.update_layout(title=title, barmode="group", height=380, xaxis_tickangle=-60)
    return figure
