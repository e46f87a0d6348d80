"""Views of domain vocabularies: one sentence cut by each vocabulary, and the overlap of domains.

Pure functions (no scripts, no network). :func:`tokenization_rows_html` writes one
sentence once per tokenizer, each word framed with its pieces inside, a word cut into
several pieces shaded — SciBERT's point (§2) at a glance: a general vocabulary cuts
domain words into fragments that a domain vocabulary keeps whole.
:func:`overlap_heatmap` is Don't Stop Pretraining's Figure 2: the top-word overlap of
every pair of domains (:func:`kbench.text.vocabulary.domain_overlap`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
import plotly.graph_objects as go

from kbench.errors import InputError
from kbench.text.vocabulary import words_of

CUT, UNKNOWN = "#f7c873", "#f4a6a6"


def _word_html(pieces: Sequence[str], unk: str) -> str:
    color = UNKNOWN if list(pieces) == [unk] else CUT if len(pieces) > 1 else ""
    inner = "".join(f"<span style='padding:0 2px'>{escape(p)}</span>" for p in pieces)
    background = f"background:{color};" if color else ""
    return (f"<span title='{len(pieces)} piece{'s' * (len(pieces) != 1)}' style='{background}border:1px solid #bbb;"
            f"border-radius:4px;padding:1px 2px;margin:0 2px;display:inline-block'>{inner}</span>")


def tokenization_rows_html(sentence: str, tokenizers: Mapping[str, object], caption: str = "") -> str:
    """Return ``sentence`` once per tokenizer: each word framed with its pieces, cut words shaded, with counts."""
    words = words_of(sentence)
    if not words:
        raise InputError("the sentence has no words to tokenise")
    if not tokenizers:
        raise InputError("give at least one tokenizer")
    rows = []
    for name, tokenizer in tokenizers.items():
        pieces = [tokenizer.tokenize(word) for word in words]
        total, cut = sum(map(len, pieces)), sum(len(p) > 1 for p in pieces)
        cells = " ".join(_word_html(p, tokenizer.unk_token) for p in pieces)
        rows.append(f"<tr><td style='padding:4px 8px;white-space:nowrap;vertical-align:top'><b>{escape(name)}</b><br>"
                    f"<span style='color:#555;font-size:90%'>{total} pieces, {cut} of {len(words)} words cut</span>"
                    f"</td><td style='padding:4px 8px;line-height:2'>{cells}</td></tr>")
    legend = (f"<div style='font-size:90%;color:#444'><span style='background:{CUT};padding:0 6px'>cut into pieces"
              f"</span> <span style='background:{UNKNOWN};padding:0 6px'>[UNK]: not spelled at all</span></div>")
    head = f"<caption style='text-align:left'>{escape(caption)}</caption>" if caption else ""
    return f"<table style='border-collapse:collapse'>{head}{''.join(rows)}</table>{legend}"


def overlap_heatmap(names: Sequence[str], matrix, title: str = "vocabulary overlap (%) of the top words") -> go.Figure:
    """Return the domains' overlap matrix as an annotated heatmap in percent (Gururangan et al., Figure 2)."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(names), len(names)):
        raise InputError(f"a {len(names)}-domain heatmap needs a {len(names)} x {len(names)} matrix, got {matrix.shape}")
    percent = np.round(100 * matrix, 1)
    figure = go.Figure(go.Heatmap(z=percent, x=list(names), y=list(names), colorscale="Blues", zmin=0, zmax=100,
                                  text=percent, texttemplate="%{text}", hovertemplate="%{y} / %{x}: %{z}%<extra></extra>"))
    figure.update_layout(title=title, width=120 + 90 * len(names), height=120 + 80 * len(names),
                         yaxis={"autorange": "reversed"}, margin={"l": 80, "r": 20, "t": 50, "b": 60})
    return figure
