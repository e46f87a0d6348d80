"""Views of entity links: mentions underlined with their candidates, and ERNIE's token-entity alignment.

Pure functions from :class:`~kbench.text.LinkedMention` records to
self-contained HTML (no scripts, no network): the same in a live notebook, an
executed one, and its HTML export. KnowBert's notebook shows what the linker
sees and chooses; ERNIE's shows which token carries which entity vector.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

from kbench.errors import InputError

MENTION_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
CHOSEN_BACKGROUND = "#d8f0d2"
NULL = "NULL"


def linked_sentence_html(units: Sequence[str], mentions: Sequence, caption: str = "") -> str:
    """Return the sentence with each mention underlined, then each mention's candidates.

    A candidate row shows the entity, its prior ``p(e|m)`` and the linker's
    score when there is one; the chosen entity is highlighted, and a mention
    that links to nothing shows NULL as chosen.
    """
    units = list(units)
    for mention in mentions:
        mention.check(len(units))
    starts = {m.start: (index, m) for index, m in enumerate(mentions)}
    parts, position = [], 0
    while position < len(units):
        if position in starts:
            index, mention = starts[position]
            color = MENTION_COLORS[index % len(MENTION_COLORS)]
            text = " ".join(escape(u) for u in units[mention.start:mention.end])
            parts.append(f'<span style="border-bottom:3px solid {color};padding-bottom:1px" '
                         f'title="mention {index + 1}">{text}<sub style="color:{color}">{index + 1}</sub></span>')
            position = mention.end
        else:
            parts.append(escape(units[position]))
            position += 1
    tables = [_candidates_html(index, mention) for index, mention in enumerate(mentions)]
    title = f"<div style='font-weight:bold;margin-bottom:4px'>{escape(caption)}</div>" if caption else ""
    none = "" if mentions else "<div style='color:#666'>no mention found</div>"
    return (f'<div style="font-family:sans-serif">{title}<div style="font-size:115%;margin-bottom:6px">'
            f'{" ".join(parts)}</div>{none}<div>{"".join(tables)}</div></div>')


def _candidates_html(index: int, mention) -> str:
    color = MENTION_COLORS[index % len(MENTION_COLORS)]
    scored = any(c.score is not None for c in mention.candidates)
    header = "<tr><th style='text-align:left'>entity</th><th>prior</th>" + ("<th>score</th>" if scored else "") + "</tr>"
    rows = []
    for candidate in mention.candidates:
        chosen = candidate.entity == mention.chosen
        style = f"background:{CHOSEN_BACKGROUND};font-weight:bold" if chosen else ""
        score = f"<td style='text-align:right'>{candidate.score:.3f}</td>" if scored and candidate.score is not None \
            else ("<td></td>" if scored else "")
        rows.append(f"<tr style='{style}'><td>{'✓ ' if chosen else ''}{escape(candidate.entity)}</td>"
                    f"<td style='text-align:right'>{candidate.prior:.3f}</td>{score}</tr>")
    if mention.chosen is None:
        rows.append(f"<tr style='background:{CHOSEN_BACKGROUND};font-weight:bold'><td>✓ {NULL}</td><td></td>"
                    + ("<td></td>" if scored else "") + "</tr>")
    return (f'<div style="display:inline-block;vertical-align:top;margin:4px 10px 4px 0;border-left:3px solid {color};'
            f'padding-left:6px"><div style="color:{color}">{index + 1}. {escape(mention.text)}</div>'
            f'<table style="border-collapse:collapse;font-size:85%">{header}{"".join(rows)}</table></div>')


def alignment_html(tokens: Sequence[str], entities: Sequence[str | None]) -> str:
    """Return ERNIE's alignment: each token over the entity whose vector it carries (blank where none).

    ``entities[i]`` is the entity aligned to token ``i`` — in ERNIE, the first
    token of each mention — or None.
    """
    if len(tokens) != len(entities):
        raise InputError(f"{len(tokens)} tokens but {len(entities)} entity slots")
    cells = []
    for token, entity in zip(tokens, entities):
        background = CHOSEN_BACKGROUND if entity else "#f4f4f4"
        cells.append(f'<td style="padding:2px 6px;text-align:center;vertical-align:top">'
                     f'<div style="font-family:monospace">{escape(token)}</div>'
                     f'<div style="font-size:80%;background:{background};margin-top:2px;min-height:1.2em">'
                     f'{escape(entity) if entity else ""}</div></td>')
    return (f'<table style="border-collapse:collapse;font-family:sans-serif"><tr>{"".join(cells)}</tr></table>')


def link_explorer(sentences: Sequence[tuple[Sequence[str], Sequence]], labels: Sequence[str] | None = None):
    """Return a widget: pick a sentence, see its linked mentions (:func:`linked_sentence_html`)."""
    import ipywidgets as widgets

    if not sentences:
        raise InputError("link_explorer needs at least one (units, mentions) sentence")
    names = list(labels) if labels is not None else [" ".join(units)[:60] for units, _ in sentences]
    choice = widgets.Dropdown(options=list(zip(names, range(len(sentences)))), description="sentence",
                              layout=widgets.Layout(width="80%"))
    view = widgets.HTML()

    def update(_=None) -> None:
        units, mentions = sentences[choice.value]
        view.value = linked_sentence_html(units, mentions)

    choice.observe(update, names="value")
    update()
    return widgets.VBox([choice, view])
