"""Views of SKEP (notebook 19): a review with its mined sentiment words and aspect-sentiment pairs coloured by
polarity, what sentiment masking hides, and what each pretrained model puts back at the masked sentiment words.
Pure functions to self-contained HTML."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import plotly.graph_objects as go
import torch

from kbench.errors import InputError
from kbench.viz.pairs import token_cell

POLARITY_COLOURS = {1: "#b7e1b0", 0: "#f4a6a6"}
ASPECT, MASKED = "#cfe0f5", "#d9d9d9"


def _legend() -> str:
    return ("<div style='font-size:85%;color:#444;margin-top:4px'>"
            f"<span style='background:{POLARITY_COLOURS[1]};padding:0 5px'>positive</span> "
            f"<span style='background:{POLARITY_COLOURS[0]};padding:0 5px'>negative</span> "
            f"<span style='background:{ASPECT};padding:0 5px'>aspect of a pair (its number under both words)</span> "
            f"<span style='background:{MASKED};padding:0 5px'>masked</span></div>")


def review_html(words: Sequence[str], lexicon: Mapping[str, int], pairs: Sequence[tuple[int, int]],
                truth: Mapping[str, int] | None = None, caption: str = "") -> str:
    """A review's words: sentiment words coloured by the lexicon's polarity, each pair's aspect blue with the pair's
    number under both words; with ``truth``, a word the lexicon gets wrong or misses is outlined red."""
    if not words:
        raise InputError("an empty review has nothing to show")
    number = {}
    for k, (a, s) in enumerate(pairs, 1):
        number.setdefault(a, []).append(str(k))
        number.setdefault(s, []).append(str(k))
    cells = []
    for i, w in enumerate(words):
        wrong = truth is not None and (truth.get(w) != lexicon.get(w)) and (w in truth or w in lexicon)
        background = POLARITY_COLOURS.get(lexicon.get(w), ASPECT if i in number else "")
        cells.append(token_cell(w, ",".join(number.get(i, [])), background, "2px solid #c92a2a" if wrong else ""))
    title = f"<div style='font-weight:bold;margin-bottom:2px'>{escape(caption)}</div>" if caption else ""
    note = ("<div style='font-size:85%;color:#444'>outlined red: the mined lexicon disagrees with the hidden one "
            "(a wrong polarity, a neutral word mined, or a sentiment word missed)</div>") if truth is not None else ""
    return f"{title}<div style='line-height:2.2'>{''.join(cells)}</div>{_legend()}{note}"


@torch.no_grad()
def masked_predictions_html(models: Mapping[str, torch.nn.Module], text: str, hide: Sequence[int],
                            truth: Mapping[str, int], labels: Mapping[str, str] | None = None, k: int = 3) -> str:
    """``text`` with its words at ``hide`` masked and, one row per model, its top ``k`` words there from the MLM
    head, each coloured by its true polarity (grey: not a sentiment word), and SKEP's polarity head's p(positive)
    where the model has one."""
    from kbench.train import eval_mode

    words = text.split()
    if not hide or any(not 0 <= h < len(words) for h in hide):
        raise InputError(f"hide must name word positions of the review (0-{len(words) - 1}), got {list(hide)}")
    labels = labels or {}
    first = next(iter(models.values()))
    tokenizer = first.tokenizer
    shown = [("[MASK]" if i in hide else w) for i, w in enumerate(words)]
    encoded = tokenizer(shown, is_split_into_words=True, return_tensors="pt")
    positions = [p for p, w in enumerate(encoded.word_ids()) if w in hide]
    head = "".join(token_cell(w, w if i in hide else "", MASKED if i in hide else "") for i, w in enumerate(words))
    rows = [f"<tr><td style='padding-right:8px'>review (hidden word under each mask)</td><td>{head}</td></tr>"]
    for name, model in models.items():
        with eval_mode(model):
            states = model.hidden(encoded["input_ids"], encoded["attention_mask"])
            logits = model.lm.cls(states[0, positions])
            polarity = model.polarity_head(states[0, positions]).softmax(-1)[:, 1] if hasattr(model, "polarity_head") else None
        cells = []
        for j, row in enumerate(logits):
            top = tokenizer.convert_ids_to_tokens(row.topk(k).indices.tolist())
            guesses = " ".join(f"<span style='background:{POLARITY_COLOURS.get(truth.get(t), '#eee')};padding:0 3px'>"
                               f"{escape(t)}</span>" for t in top)
            extra = f" <span style='color:#555'>p(positive) {float(polarity[j]):.2f}</span>" if polarity is not None else ""
            cells.append(f"<span style='margin-right:14px'>{guesses}{extra}</span>")
        rows.append(f"<tr><td style='padding-right:8px'>{escape(labels.get(name, name))}</td><td>{''.join(cells)}</td></tr>")
    return f"<table style='border-collapse:collapse'>{''.join(rows)}</table>{_legend()}"


def polarity_scatter(polarity: Mapping[str, float], counts: Mapping[str, int], truth: Mapping[str, int],
                     margin: float, seeds: Sequence[str] = ()) -> go.Figure:
    """Every mined-over word at (its count, its WP): green / red the world's positive / negative words, grey the
    rest; the dashed lines at ±``margin`` are where mining starts calling a word a sentiment word."""
    if not polarity:
        raise InputError("no word polarities to draw")
    figure = go.Figure()
    for label, colour, keep in (("positive (hidden truth)", "#2b8a3e", lambda w: truth.get(w) == 1),
                                ("negative (hidden truth)", "#c92a2a", lambda w: truth.get(w) == 0),
                                ("not a sentiment word", "#adb5bd", lambda w: w not in truth)):
        words = [w for w in polarity if keep(w)]
        figure.add_trace(go.Scatter(x=[counts[w] for w in words], y=[polarity[w] for w in words], mode="markers",
                                    name=label, text=words, marker=dict(color=colour, size=7),
                                    hovertemplate="%{text}: WP %{y:.2f}, %{x} texts<extra></extra>"))
    for value in (margin, -margin):
        figure.add_hline(y=value, line_dash="dash", line_color="#495057")
    figure.update_layout(title="word polarity mined from the seeds" + (f" ({', '.join(seeds)})" if seeds else ""),
                         xaxis_title="texts containing the word (log)", yaxis_title="WP(w)", xaxis_type="log",
                         height=380, width=720, legend=dict(orientation="h", y=1.12), margin=dict(t=70))
    return figure
