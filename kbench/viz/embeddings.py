"""Entity embeddings in two dimensions, with ``h + r ≈ t`` arrows (KEPLER, ``notebooks/03_kepler.ipynb``).

A pure function from vectors to a plotly figure: the entities placed by a PCA
of their vectors, coloured by group, and for a few triples an arrow from the
head to ``h + r`` (projected by the same linear map) with the tail marked, so
one sees whether the translation lands near the tail.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from kbench.errors import InputError
from kbench.viz.charts import _PALETTE


def pca_basis(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(mean, components)``: the first two principal axes of ``vectors`` (rows)."""
    vectors = np.asarray(vectors, dtype=float)
    if vectors.ndim != 2 or len(vectors) < 3:
        raise InputError("a projection needs at least three vectors as rows of a matrix")
    mean = vectors.mean(0)
    _, _, components = np.linalg.svd(vectors - mean, full_matrices=False)
    return mean, components[:2]


def translation_figure(vectors, entities: Sequence[str], groups: Sequence[str], relation_vectors: dict,
                       triples: Sequence[tuple[str, str, str]], title: str = "") -> go.Figure:
    """Return the entities' 2-D PCA map with an arrow ``h → h + r`` and a line to ``t`` for each of ``triples``.

    ``relation_vectors`` maps a relation to its vector (same space as ``vectors``).
    """
    vectors = np.asarray(vectors, dtype=float)
    if len(entities) != len(vectors) or len(groups) != len(vectors):
        raise InputError("one entity name and one group per vector")
    mean, components = pca_basis(vectors)
    points = (vectors - mean) @ components.T
    index = {e: i for i, e in enumerate(entities)}
    figure = go.Figure()
    for number, group in enumerate(dict.fromkeys(groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        figure.add_trace(go.Scatter(x=points[rows, 0], y=points[rows, 1], mode="markers", name=group,
                                    text=[entities[i] for i in rows], hoverinfo="text",
                                    marker=dict(size=7, color=_PALETTE[number % len(_PALETTE)], opacity=0.7)))
    for head, relation, tail in triples:
        if head not in index or tail not in index or relation not in relation_vectors:
            raise InputError(f"cannot draw {(head, relation, tail)!r}: unknown entity or relation")
        start = points[index[head]]
        end = (vectors[index[head]] + np.asarray(relation_vectors[relation], dtype=float) - mean) @ components.T
        goal = points[index[tail]]
        figure.add_annotation(x=end[0], y=end[1], ax=start[0], ay=start[1], xref="x", yref="y", axref="x",
                              ayref="y", showarrow=True, arrowhead=2, arrowwidth=1.5, arrowcolor="#333")
        figure.add_trace(go.Scatter(x=[end[0], goal[0]], y=[end[1], goal[1]], mode="lines+markers",
                                    line=dict(dash="dot", color="#d62728", width=1), showlegend=False,
                                    marker=dict(symbol=["x", "circle-open"], size=10, color="#d62728"),
                                    hoverinfo="text", text=[f"{head} + {relation}", tail]))
    if triples:   # what the marks mean, once each in the legend
        for name, style in (("arrow: h → h + r", dict(mode="lines", line=dict(color="#333", width=1.5))),
                            ("× h + r: where the translation lands", dict(mode="markers", marker=dict(
                                symbol="x", size=10, color="#d62728"))),
                            ("◯ t: the true tail", dict(mode="markers", marker=dict(symbol="circle-open", size=10,
                                                                                      color="#d62728"))),
                            ("dotted: the miss, h + r − t", dict(mode="lines", line=dict(dash="dot", color="#d62728",
                                                                                        width=1)))):
            figure.add_trace(go.Scatter(x=[None], y=[None], name=name, hoverinfo="skip", **style))
    figure.update_layout(title=title, height=480, width=600, margin=dict(l=50, r=20, t=50, b=20),
                         xaxis=dict(showticklabels=False, title="first principal component"),
                         yaxis=dict(showticklabels=False, title="second principal component"),
                         legend=dict(orientation="h", x=0, xanchor="left", y=-0.08, yanchor="top"))
    return figure
