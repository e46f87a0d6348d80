"""Views of masked-language-model pretraining: what each masking strategy hides, and what the model predicts.

Pure functions to self-contained HTML (no scripts, no network). :func:`masking_rows_html`
draws one sentence once per strategy — the tokens a strategy predicts coloured
by what happened to them (replaced by [MASK], by a random token, or kept) and
the strategy's units outlined — so ERNIE's point is visible at a glance: basic
masking hides pieces of a name, entity masking hides the whole name.
:func:`prediction_table_html` puts the top-k predictions at a masked position
before and after pretraining side by side.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from kbench.errors import InputError
from kbench.pretrain import STRATEGIES, MaskingCollator, Sentence
from kbench.text.masking import IGNORE

ACTION_COLORS = {"masked": "#f4a6a6", "random": "#f7c873", "kept": "#b9d7f0"}
LEGEND = ("<div style='font-size:90%;color:#444;margin-top:4px'>"
          + " ".join(f"<span style='background:{color};padding:0 6px;border-radius:3px'>{name}</span>"
                     for name, color in (("→ [MASK]", ACTION_COLORS["masked"]),
                                         ("→ random token", ACTION_COLORS["random"]),
                                         ("kept, still predicted", ACTION_COLORS["kept"])))
          + " &nbsp;a frame marks each unit of the strategy</div>")


def _token_cells(tokens: Sequence[str], inputs: np.ndarray, labels: np.ndarray, ids: np.ndarray,
                 units: Sequence[tuple[int, int]], mask_id: int, shown: Sequence[str]) -> str:
    first = {start: end for start, end in units}
    cells, position = [], 0
    while position < len(tokens):
        end = first.get(position, position + 1)
        group = []
        for index in range(position, end):
            style = "padding:1px 3px;margin:0 1px;border-radius:3px;"
            title = ""
            if labels[index] != IGNORE:
                action = "masked" if inputs[index] == mask_id else "kept" if inputs[index] == ids[index] else "random"
                style += f"background:{ACTION_COLORS[action]};"
                title = f" title='{escape(action)}: {escape(tokens[index])} → {escape(shown[index])}'"
            group.append(f"<span style='{style}'{title}>{escape(tokens[index])}</span>")
        if end - position > 1:
            cells.append("<span style='border:1px solid #999;border-radius:4px;padding:1px;margin:0 2px'>"
                         + "".join(group) + "</span>")
        else:
            cells.append(group[0])
        position = end
    return " ".join(cells)


def masking_rows_html(sentence: Sentence, tokenizer, strategies: Sequence[str] = tuple(STRATEGIES), seed: int = 0,
                      rate: float = 0.5, caption: str = "") -> str:
    """Return one sentence masked once per strategy, one row each (same seed per row).

    ``rate`` defaults to 0.5 rather than the 15% used in training so that one
    sentence shows several units chosen; the shares are the maskers' own.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise InputError(f"unknown masking strategy {unknown[0]!r}: use {', '.join(STRATEGIES)}")
    from kbench.text.masking import MaskVocab

    vocab = MaskVocab.of(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens([int(i) for i in sentence.ids])
    rows = []
    for strategy in strategies:
        collator = MaskingCollator(vocab, tokenizer.pad_token_id, strategy, seed=seed, rate=rate)
        inputs, labels = collator.mask(sentence, strategy)
        kind = STRATEGIES[strategy]
        units = sentence.units.get(kind, []) if kind else []
        shown = tokenizer.convert_ids_to_tokens([int(i) for i in inputs])
        rows.append(f"<tr><td style='padding:3px 10px;font-weight:bold;white-space:nowrap'>{escape(strategy)}</td>"
                    f"<td style='padding:3px 6px;line-height:1.9'>"
                    f"{_token_cells(tokens, inputs, labels, sentence.ids, units, vocab.mask_id, shown)}</td>"
                    f"<td style='padding:3px 10px;color:#555'>{int((labels != IGNORE).sum())} predicted</td></tr>")
    head = f"<div style='margin-bottom:4px'>{escape(caption)}</div>" if caption else ""
    return (f"<div>{head}<table style='border-collapse:collapse'>{''.join(rows)}</table>{LEGEND}</div>")


def masking_picker(sentences: Sequence[Sentence], tokenizer, strategies: Sequence[str] = tuple(STRATEGIES),
                   seed: int = 0, rate: float = 0.5):
    """Return a widget: pick a sentence and a seed, see it under every strategy (the live :func:`masking_rows_html`)."""
    import ipywidgets as widgets

    if not sentences:
        raise InputError("the picker needs at least one sentence")
    choice = widgets.Dropdown(options=[(s.text[:80], i) for i, s in enumerate(sentences)], description="sentence",
                              layout=widgets.Layout(width="90%"))
    draw = widgets.IntSlider(value=seed, min=0, max=50, description="mask seed")
    pick = widgets.SelectMultiple(options=list(STRATEGIES), value=tuple(strategies), description="strategies")
    view = widgets.HTML()

    def update(_=None) -> None:
        view.value = masking_rows_html(sentences[choice.value], tokenizer, pick.value or strategies, draw.value, rate)

    for control in (choice, draw, pick):
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([choice]), widgets.HBox([draw, pick]), view])


def prediction_table_html(text: str, columns: dict[str, Sequence[Sequence[tuple[str, float]]]],
                          gold: Sequence[str] | None = None) -> str:
    """Return the top-k predictions at each [MASK] of ``text``, one column per model (e.g. before / after).

    ``columns`` maps a model's name to :func:`kbench.pretrain.top_predictions`'
    output; ``gold`` (one token per mask) is marked ★ wherever it appears.
    """
    if not columns:
        raise InputError("prediction_table_html needs at least one model's predictions")
    masks = {len(rows) for rows in columns.values()}
    if len(masks) != 1:
        raise InputError(f"the models' predictions cover different numbers of masks: {sorted(masks)}")
    count = masks.pop()
    if gold is not None and len(gold) != count:
        raise InputError(f"{count} masks but {len(gold)} gold tokens")
    header = "".join(f"<th style='padding:2px 10px;text-align:left'>{escape(name)}</th>" for name in columns)
    body = []
    for mask in range(count):
        cells = []
        for rows in columns.values():
            items = []
            for token, probability in rows[mask]:
                star = " ★" if gold is not None and token == gold[mask] else ""
                weight = "font-weight:bold;" if star else ""
                items.append(f"<div style='{weight}display:flex;justify-content:space-between;gap:14px'>"
                             f"<span>{escape(token)}{star}</span>"
                             f"<span style='color:#777;font-variant-numeric:tabular-nums'>p={probability:.2f}</span>"
                             "</div>")
            cells.append(f"<td style='padding:2px 10px;vertical-align:top'>{''.join(items)}</td>")
        label = f"[MASK] {mask + 1}" + (f" (gold: {escape(gold[mask])})" if gold is not None else "")
        body.append(f"<tr><td style='padding:2px 10px;color:#555;vertical-align:top'>{label}</td>{''.join(cells)}</tr>")
    return (f"<div><div style='margin-bottom:4px'><code>{escape(text)}</code></div>"
            f"<table style='border-collapse:collapse'><tr><th></th>{header}</tr>{''.join(body)}</table></div>")
