"""Views of entity tagging: one sentence's gold mentions beside each model's, and a pretraining loss curve.

Pure functions (no scripts, no network), used by ``notebooks/14_biobert.ipynb``:
:func:`mention_contrast_html` writes a sentence once per model, each predicted
mention framed green when it is exactly a gold mention and red when it is not,
each gold mention the model missed underlined in orange — where the domain-adapted
model and the general one differ (BioBERT §4, "which entities does it get right").
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
import plotly.graph_objects as go

from kbench.errors import InputError
from kbench.metrics import bio_spans

RIGHT, WRONG, MISSED = "#b7e4b0", "#f4a6a6", "#f7c873"


def _row(words: Sequence[str], gold: set, predicted: set) -> str:
    """Write ``words`` with each predicted span shaded (right or wrong) and each missed gold mention underlined.

    A wrong prediction may overlap a missed gold mention ("cystic" for "cystic
    fibrosis"): its words are shaded and underlined both.
    """
    shade, missed = [None] * len(words), [False] * len(words)
    for start, end, *_ in predicted:
        for i in range(start, end):
            shade[i] = (start, end, RIGHT if (start, end, *_) in gold else WRONG)
    for start, end, *rest in gold - predicted:
        for i in range(start, end):
            missed[i] = True
    out, i = [], 0
    while i < len(words):
        end = shade[i][1] if shade[i] else i + 1
        inner = " ".join(f"<span style='border-bottom:3px solid {MISSED}'>{escape(w)}</span>" if missed[j]
                         else escape(w) for j, w in zip(range(i, end), words[i:end]))
        out.append(f"<span style='background:{shade[i][2]};border-radius:3px;padding:0 2px'>{inner}</span>"
                   if shade[i] else inner)
        i = end
    return " ".join(out)


def mention_contrast_html(words: Sequence[str], gold: Sequence[str], predictions: Mapping[str, Sequence[str]],
                          caption: str = "") -> str:
    """Return the sentence once per model of ``predictions`` (name -> BIO tags), mentions marked against ``gold``."""
    if not words:
        raise InputError("the sentence has no words")
    if len(gold) != len(words) or any(len(tags) != len(words) for tags in predictions.values()):
        raise InputError("every tag sequence must have one tag per word")
    gold_spans = bio_spans(gold)
    rows = [f"<tr><td style='padding:3px 8px;white-space:nowrap'><b>gold</b></td>"
            f"<td style='padding:3px 8px'>{_row(words, gold_spans, gold_spans)}</td></tr>"]
    for name, tags in predictions.items():
        rows.append(f"<tr><td style='padding:3px 8px;white-space:nowrap'><b>{escape(name)}</b></td>"
                    f"<td style='padding:3px 8px'>{_row(words, gold_spans, bio_spans(tags))}</td></tr>")
    legend = (f"<div style='font-size:90%;color:#444'><span style='background:{RIGHT};padding:0 6px'>found exactly"
              f"</span> <span style='background:{WRONG};padding:0 6px'>predicted, not a gold mention</span> "
              f"<span style='border-bottom:3px solid {MISSED};padding:0 6px'>gold mention missed</span></div>")
    head = f"<caption style='text-align:left'>{escape(caption)}</caption>" if caption else ""
    return f"<table style='border-collapse:collapse'>{head}{''.join(rows)}</table>{legend}"


def loss_curve(losses: Sequence[float], title: str = "masked-LM loss per step", window: int = 5) -> go.Figure:
    """Return a pretraining run's loss per step with its running mean over ``window`` steps."""
    losses = np.asarray(losses, dtype=float)
    if not len(losses):
        raise InputError("no losses to plot: the run took no step")
    steps = np.arange(1, len(losses) + 1)
    window = max(1, min(window, len(losses)))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    figure = go.Figure([go.Scatter(x=steps, y=losses, mode="lines", name="loss", line=dict(color="#bbb")),
                        go.Scatter(x=steps[window - 1:], y=smooth, mode="lines", name=f"mean of {window} steps",
                                   line=dict(color="#1f77b4"))])
    figure.update_layout(title=title, xaxis=dict(title="step"), yaxis=dict(title="loss"), height=360, width=560)
    return figure
