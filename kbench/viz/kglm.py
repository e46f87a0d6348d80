"""Views of the KGLM (notebook 20): a linked document with its local knowledge graph, and tokens decoded or scored
one at a time with the mention type, entity, parent and relation behind each.

Pure functions to self-contained HTML (inline SVG, no script, no network). :func:`linked_document_html` is the
paper's Figure 1 and Table 1 for our text: each mention bracketed and coloured by its type, the path(s) that
explain it underneath, and the local graph they draw. :func:`steps_html` shows decoded tokens
(:class:`kbench.models.kglm.Step`): what type the model chose, which fact it followed, and how much of the word's
probability came from copying the entity's alias. :func:`scored_tokens_html` puts two models' probability of
each gold token side by side.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from kbench.errors import InputError

TYPE_COLORS = {"none": "#adb5bd", "new": "#e8590c", "related": "#1c7ed6", "continuation": "#7048e8"}
TYPE_LEGEND = "".join(f"<span style='color:{c};margin-right:12px'>■ {escape(t)}</span>"
                      for t, c in TYPE_COLORS.items())


def _mention_label(mention) -> str:
    if mention.kind == "new":
        return "new entity"
    return " or ".join(f"({escape(p)}, {escape(r)})" for p, r in mention.paths)


def local_graph_svg(document, width: int = 520) -> str:
    """Return an SVG of the document's local knowledge graph: each entity mentioned once (on a ring, framed in the
    colour of its first mention's type), an arrow for every annotated path ``parent —relation→ entity`` (reflexive
    paths left out: they point back at the same node)."""
    entities: list[str] = []
    for mention in document.mentions:
        if mention.entity not in entities:
            entities.append(mention.entity)
    edges = sorted({(p, r, m.entity) for m in document.mentions for p, r in m.paths if p != m.entity})
    if not entities:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="30"><text x="4" y="20">'
                'no entity mentioned</text></svg>')
    height = int(width * 0.62)
    cx, cy, rx, ry = width / 2, height / 2, width / 2 - 70, height / 2 - 24
    angle = lambda i: 2 * math.pi * i / len(entities) - math.pi / 2
    where = {e: (cx + rx * math.cos(angle(i)), cy + ry * math.sin(angle(i))) for i, e in enumerate(entities)}
    half = {e: (3.3 * len(e) + 8, 10) for e in entities}          # half width and height of each node's box

    def rim(entity: str, towards: tuple[float, float]) -> tuple[float, float]:
        (x, y), (w, h) = where[entity], half[entity]
        dx, dy = towards[0] - x, towards[1] - y
        t = min(w / abs(dx) if dx else math.inf, h / abs(dy) if dy else math.inf)
        return x + dx * t, y + dy * t

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="11" role="img"><defs><marker id="kglm-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
           f'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#1c7ed6"/></marker>'
           f'</defs>']
    for parent, relation, entity in edges:
        a, b = rim(parent, where[entity]), rim(entity, where[parent])
        out.append(f'<g><title>({escape(parent)}, {escape(relation)}, {escape(entity)})</title>'
                   f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}" stroke="#1c7ed6" '
                   f'stroke-width="1.3" marker-end="url(#kglm-arrow)"/>'
                   f'<text x="{(a[0] + b[0]) / 2:.1f}" y="{(a[1] + b[1]) / 2 - 3:.1f}" text-anchor="middle" '
                   f'fill="#1c7ed6" stroke="white" stroke-width="3" paint-order="stroke">{escape(relation)}</text></g>')
    for entity, (x, y) in where.items():
        first = next(m for m in document.mentions if m.entity == entity)
        (w, h), colour = half[entity], TYPE_COLORS[first.kind]
        out.append(f'<g><title>{escape(entity)}: first mentioned as {escape(first.kind)}</title>'
                   f'<rect x="{x - w:.1f}" y="{y - h:.1f}" width="{2 * w:.1f}" height="{2 * h}" rx="9" '
                   f'fill="#f8f9fa" stroke="{colour}" stroke-width="2"/>'
                   f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">{escape(entity)}</text></g>')
    return "".join(out) + "</svg>"


def linked_document_html(document, caption: str = "") -> str:
    """Return the document with every mention bracketed and coloured by its type (§2.2), a table of each
    mention's entity and the path(s) that explain it (Table 1 of the paper), and its local graph."""
    if not document.tokens:
        raise InputError("the document has no tokens to show")
    starts = {m.start: m for m in document.mentions}
    parts, position = [], 0
    while position < len(document.tokens):
        mention = starts.get(position)
        if mention is None:
            parts.append(escape(document.tokens[position]))
            position += 1
            continue
        colour = TYPE_COLORS[mention.kind]
        text = " ".join(escape(t) for t in document.tokens[mention.start:mention.end])
        parts.append(f"<span style='border:2px solid {colour};border-radius:4px;padding:0 3px' "
                     f"title='{escape(mention.kind)}: {escape(mention.entity)}'>{text}</span>")
        position = mention.end
    rows = "".join(f"<tr><td style='padding:1px 8px'>{escape(' '.join(document.tokens[m.start:m.end]))}</td>"
                   f"<td style='padding:1px 8px;color:{TYPE_COLORS[m.kind]}'>{escape(m.kind)}</td>"
                   f"<td style='padding:1px 8px'>{escape(m.entity)}</td>"
                   f"<td style='padding:1px 8px'>{_mention_label(m)}</td></tr>" for m in document.mentions)
    head = "".join(f"<th style='text-align:left;padding:1px 8px;border-bottom:1px solid #888'>{h}</th>"
                   for h in ("tokens", "type t", "entity e", "(parent p, relation r): every path"))
    title = f"<div style='font-weight:bold;margin-bottom:4px'>{escape(caption)}</div>" if caption else ""
    return (f"<div style='font-family:sans-serif'>{title}<div style='line-height:2;max-width:60em'>"
            f"{' '.join(parts)}</div><div style='font-size:85%'>{TYPE_LEGEND}</div>"
            f"<div style='display:flex;gap:24px;align-items:flex-start'><table style='border-collapse:collapse;"
            f"font-size:90%'><tr>{head}</tr>{rows}</table>{local_graph_svg(document)}</div></div>")


def steps_html(prompt: Sequence[str], steps: Sequence, caption: str = "", answer: str | None = None) -> str:
    """Return the prompt, then each decoded token as a card: the word, its probability and the share of it that
    was copied from the alias, the mention type and, for an entity, the entity and the fact that led to it.
    ``answer``: the gold first token, marked ✓ or ✗ on the first card."""
    if not steps:
        raise InputError("no decoded tokens to show")
    cards = []
    for index, step in enumerate(steps):
        colour = TYPE_COLORS.get(step.type, "#333")
        if step.parent is not None:
            fact = f"({escape(step.parent)}, {escape(step.relation)}, {escape(step.entity)})"
        elif step.entity is not None:
            fact = f"{escape(step.type)}: {escape(step.entity)}"
        else:
            fact = "no entity"
        mark = ""
        if answer is not None and index == 0:
            mark = " ✓" if step.word == answer else f" ✗ (gold: {escape(answer)})"
        copied = f"{step.copied:.0%} copied" if step.entity is not None else "vocabulary"
        cards.append(f"<div style='border:2px solid {colour};border-radius:6px;padding:4px 8px;min-width:7em'>"
                     f"<div style='font-size:120%;font-weight:bold'>{escape(step.word)}{mark}</div>"
                     f"<div style='color:{colour}'>{escape(step.type)} ({step.type_probability:.2f})</div>"
                     f"<div>{fact}</div><div style='color:#555'>p = {step.probability:.2f}, {copied}</div></div>")
    title = f"<div style='font-weight:bold;margin-bottom:4px'>{escape(caption)}</div>" if caption else ""
    return (f"<div style='font-family:sans-serif'>{title}<div style='margin-bottom:6px'>"
            f"{escape(' '.join(prompt))} …</div><div style='display:flex;gap:8px;flex-wrap:wrap'>{''.join(cards)}"
            f"</div><div style='font-size:85%;margin-top:4px'>{TYPE_LEGEND}</div></div>")


def scored_tokens_html(tokens: Sequence[str], types: Sequence[str], scores: dict[str, Sequence[float]],
                       caption: str = "") -> str:
    """Return one column per token (coloured by its gold mention type) with each model's probability of it:
    ``scores`` maps a model's name to one log-probability per token. A higher probability is printed bold."""
    if not tokens or len(types) != len(tokens) or any(len(v) != len(tokens) for v in scores.values()):
        raise InputError(f"{len(tokens)} tokens, {len(types)} types and "
                         f"{[len(v) for v in scores.values()]} scores: give one of each per token")
    names = list(scores)
    cells = []
    for index, (token, kind) in enumerate(zip(tokens, types)):
        values = {name: math.exp(float(scores[name][index])) for name in names}
        best = max(values.values())
        lines = "".join(f"<div style='{'font-weight:bold' if v == best and len(names) > 1 else ''}'>"
                        f"{v:.2f}</div>" for v in values.values())
        cells.append(f"<div style='text-align:center;padding:2px 4px;border-top:4px solid "
                     f"{TYPE_COLORS.get(kind, '#333')}'><div>{escape(token)}</div>{lines}</div>")
    legend = "".join(f"<div style='color:#555'>{escape(n)}</div>" for n in names)
    title = f"<div style='font-weight:bold;margin-bottom:4px'>{escape(caption)}</div>" if caption else ""
    return (f"<div style='font-family:sans-serif'>{title}<div style='display:flex;flex-wrap:wrap;gap:2px'>"
            f"<div style='padding:2px 4px;text-align:right'><div>token</div>{legend}</div>{''.join(cells)}</div>"
            f"<div style='font-size:85%;margin-top:4px'>{TYPE_LEGEND} (the gold type)</div></div>")
