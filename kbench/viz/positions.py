"""DeBERTa's relative positions, drawn: which row of the shared table each query–key pair reads (eq. 3)."""
from __future__ import annotations

import plotly.graph_objects as go

from kbench.errors import InputError


def delta_figure(n: int = 12, k: int = 4, title: str = "") -> go.Figure:
    """A heatmap of δ(i, j) for ``n`` tokens and maximum distance ``k``: the table row query ``i`` reads for key
    ``j`` (c2p); p2c reads δ(j, i), the same matrix transposed. Beyond ``k`` every distance shares an end row."""
    from kbench.models.deberta import delta

    if n < 2 or k < 1:
        raise InputError(f"draw at least 2 tokens with k >= 1, got n={n}, k={k}")
    z = [[delta(i, j, k) for j in range(n)] for i in range(n)]
    figure = go.Figure(go.Heatmap(z=z, x=list(range(n)), y=list(range(n)), colorscale="RdBu", zmin=0, zmax=2 * k - 1,
                                  text=z, texttemplate="%{text}", colorbar=dict(title="δ(i, j)")))
    figure.update_layout(title=title or f"δ(i, j) = clamp(i − j, −{k}, {k - 1}) + {k}<br>the row of the shared table P "
                         "that query i reads at key j", xaxis=dict(title="key j", dtick=1), yaxis=dict(title="query i", dtick=1,
                                                                                    autorange="reversed"),
                         width=560, height=520, margin=dict(t=70))
    return figure


def attention_terms_html(terms: dict, tokens: list[str], caption: str = "") -> str:
    """One head's eq. 4 terms side by side (:func:`kbench.models.deberta.attention_terms`), each an ``n × n`` grid
    of coloured cells (query rows, key columns; red above zero, blue below, on one scale for all three)."""
    from html import escape

    import numpy as np

    if not terms:
        raise InputError("no attention terms to draw")
    n = len(tokens)
    if any(np.shape(value) != (n, n) for value in terms.values()):
        raise InputError(f"every term must be {n} × {n} for {n} tokens")
    scale = max(float(np.abs(value).max()) for value in terms.values()) or 1.0

    def colour(v: float) -> str:
        share = min(1.0, abs(v) / scale)
        fade = int(255 * (1 - share))
        return f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"

    names = {"c2c": "content → content", "c2p": "content → position", "p2c": "position → content"}
    panels = []
    for name, value in terms.items():
        header = "".join(f"<th style='font-weight:normal;font-size:75%;writing-mode:vertical-rl;"
                         f"transform:rotate(180deg);padding:0'>{escape(t)}</th>" for t in tokens)
        rows = "".join(
            f"<tr><th style='font-weight:normal;font-size:75%;text-align:right;padding-right:3px'>{escape(tokens[i])}</th>"
            + "".join(f"<td title='{value[i][j]:+.2f}' style='width:14px;height:14px;padding:0;"
                      f"background:{colour(value[i][j])}'></td>" for j in range(n)) + "</tr>" for i in range(n))
        panels.append(f"<div><div style='text-align:center'>{escape(names.get(name, name))}<br>"
                      f"<span style='font-size:80%;color:#555'>|largest| {float(np.abs(value).max()):.2f}</span></div>"
                      f"<table style='border-collapse:collapse'><tr><th></th>{header}</tr>{rows}</table></div>")
    legend = (f"<div style='font-size:85%;color:#444'>{escape(caption)} query rows, key columns; red above zero, blue "
              f"below, one scale for the three (largest |value| {scale:.2f})</div>")
    return f"<div style='display:flex;gap:18px;flex-wrap:wrap'>{''.join(panels)}</div>{legend}"
