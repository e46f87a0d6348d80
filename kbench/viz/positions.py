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
