"""Views of what knowledge changed in a model: per-layer state similarity, attention shift, top predictions.

Pure render functions over :class:`kbench.enhanced.Enhancement` (static HTML, no
script); :func:`enhancement_explorer` wraps them in a widget that picks the sentence
and the pair of models, and the notebook shows the default pick statically too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

import numpy as np

from kbench.errors import InputError


def _shade(value: float, top: float = 1.0) -> str:
    """White for no change to deep orange for ``top`` or more."""
    t = float(np.clip(value / top, 0.0, 1.0)) if top > 0 else 0.0
    r, g, b = (255 + t * (217 - 255), 255 + t * (72 - 255), 255 + t * (15 - 255))
    return f"rgb({r:.0f},{g:.0f},{b:.0f})"


def similarity_table_html(tokens: Sequence[str], similarity: np.ndarray) -> str:
    """A layers x tokens table of ``1 - cosine``: white where the enhanced model's state is the base's."""
    top = max(float((1 - similarity).max()), 1e-6)
    head = "".join(f"<th style='padding:2px 4px;font-weight:normal'>{escape(t)}</th>" for t in tokens)
    rows = []
    for layer, row in enumerate(similarity):
        name = "embeddings" if layer == 0 else f"layer {layer}"
        cells = "".join(f"<td title='cosine {v:.4f}' style='background:{_shade(1 - v, top)};padding:2px 4px;"
                        f"text-align:center'>{1 - v:.2f}</td>" for v in row)
        rows.append(f"<tr><th style='text-align:right;padding-right:6px'>{name}</th>{cells}</tr>")
    return (f"<table style='border-collapse:collapse;font-size:12px'><tr><th></th>{head}</tr>{''.join(rows)}</table>"
            f"<div style='color:#555;font-size:12px'>1 − cosine similarity of the two models' states "
            f"(darkest: {top:.3f})</div>")


def attention_shift_html(shift: np.ndarray) -> str:
    """A layers x heads grid of the attention's total variation distance (0 same, 1 disjoint)."""
    head = "".join(f"<th style='font-weight:normal;padding:2px 6px'>head {h + 1}</th>" for h in range(shift.shape[1]))
    rows = "".join(f"<tr><th style='text-align:right;padding-right:6px'>layer {layer + 1}</th>"
                   + "".join(f"<td style='background:{_shade(v)};padding:2px 6px;text-align:center'>{v:.2f}</td>"
                             for v in row) + "</tr>" for layer, row in enumerate(shift))
    return (f"<table style='border-collapse:collapse;font-size:12px'><tr><th></th>{head}</tr>{rows}</table>"
            "<div style='color:#555;font-size:12px'>how far each head's attention moved: total variation "
            "distance, mean over the query tokens (0: same, 1: disjoint)</div>")


def predictions_html(predictions: dict[str, list[list[tuple[str, float]]]]) -> str:
    """Side by side, the top tokens each model predicts at every [MASK]."""
    if not predictions:
        return ""
    names = list(predictions)
    slots = len(next(iter(predictions.values())))
    blocks = []
    for slot in range(slots):
        columns = "".join(
            f"<td style='vertical-align:top;padding:0 12px'><b>{escape(name)}</b><br>"
            + "<br>".join(f"{escape(token)} <span style='color:#666'>{p:.2f}</span>"
                          for token, p in predictions[name][slot]) + "</td>" for name in names)
        blocks.append(f"<div style='margin:4px 0'>[MASK] {slot + 1}<table><tr>{columns}</tr></table></div>")
    return "".join(blocks)


def enhancement_html(enhancement, names: tuple[str, str] = ("base", "enhanced")) -> str:
    """All three views of one :class:`~kbench.enhanced.Enhancement`, headed by the sentence and the pair."""
    return (f"<div style='font-family:sans-serif'><div><b>{escape(names[1])}</b> against <b>{escape(names[0])}</b> "
            f"on “{escape(enhancement.sentence)}”</div>"
            f"<h4 style='margin:8px 0 2px'>Token states, layer by layer</h4>"
            f"{similarity_table_html(enhancement.tokens, enhancement.similarity)}"
            f"<h4 style='margin:8px 0 2px'>Attention</h4>{attention_shift_html(enhancement.attention_shift)}"
            + (f"<h4 style='margin:8px 0 2px'>Top predictions</h4>{predictions_html(enhancement.predictions)}"
               if enhancement.predictions else "") + "</div>")


def enhancement_explorer(sentences: Sequence[str], pairs: Sequence[str], compare: Callable[[str, str], object]):
    """Return a widget: pick a sentence and a pair of models (``compare(sentence, pair)`` -> Enhancement)."""
    import ipywidgets as widgets

    if not sentences or not pairs:
        raise InputError("the explorer needs at least one sentence and one pair of models")
    sentence = widgets.Dropdown(options=list(sentences), description="sentence", layout=widgets.Layout(width="90%"))
    pair = widgets.Dropdown(options=list(pairs), description="pair", layout=widgets.Layout(width="60%"))
    view = widgets.HTML()

    def update(_=None) -> None:
        base, enhanced = pair.value.split(" → ") if " → " in pair.value else ("base", pair.value)
        view.value = enhancement_html(compare(sentence.value, pair.value), (base, enhanced))

    sentence.observe(update, names="value")
    pair.observe(update, names="value")
    update()
    return widgets.VBox([sentence, pair, view])
