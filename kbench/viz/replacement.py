"""WKLM's view: a sentence with its replaced mentions struck through, and the head's replaced-or-not probability.

A pure function to self-contained HTML (no scripts, no network), taught in
``notebooks/08_wklm.ipynb`` (section 1): each mention is framed; a replaced one
shows the original struck through and the same-type entity written in its
place; a badge gives the probability the model's head assigns to "replaced".
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

from kbench.errors import InputError


def replacement_html(segments: Sequence[tuple[str, dict | None]], caption: str = "") -> str:
    """Return the HTML of one sentence from :func:`kbench.models.wklm.replacement_rows` segments."""
    if not segments:
        raise InputError("nothing to show: the sentence has no segments")
    parts = []
    for text, mark in segments:
        if mark is None:
            parts.append(f"<span>{escape(text)}</span>")
            continue
        p = float(mark["p_replaced"])
        color = f"rgba(214,39,40,{0.15 + 0.7 * p:.2f})"
        inner = (f"<s style='color:#888'>{escape(mark['original'])}</s> → <b>{escape(text)}</b>"
                 if mark["replaced"] else f"<b>{escape(text)}</b>")
        parts.append(f"<span title='{escape(mark['type'])}' style='border:1px solid #555;border-radius:3px;"
                     f"padding:1px 4px;margin:0 2px'>{inner} <sup style='background:{color};padding:0 3px;"
                     f"border-radius:3px'>p(replaced) {p:.2f}</sup></span>")
    head = f"<div style='font-size:90%;color:#444'>{escape(caption)}</div>" if caption else ""
    return f"<div style='font-family:sans-serif;line-height:2'>{head}{' '.join(parts)}</div>"
