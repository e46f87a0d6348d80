"""Views of entity links: mentions underlined with their candidates, and ERNIE's token-entity alignment.

Pure functions from :class:`~kbench.text.LinkedMention` records to
self-contained HTML (no scripts, no network): the same in a live notebook, an
executed one, and its HTML export. KnowBert's notebook shows what the linker
sees and chooses; ERNIE's shows which token carries which entity vector.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from kbench.errors import InputError

MENTION_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
CHOSEN_BACKGROUND = "#d8f0d2"
GOLD_BORDER = "#b8860b"
NULL = "NULL"
CHOSEN_MARK, GOLD_MARK = "✓", "★"
CELL = "padding:1px 8px"
LEGEND = {"chosen": f"{CHOSEN_MARK} the linker's choice (green)", "gold": f"{GOLD_MARK} the gold entity (gold frame)"}


def linked_sentence_html(units: Sequence[str], mentions: Sequence, caption: str = "",
                         gold: Sequence[str | None] | None = None, facts: Mapping[str, str] | None = None,
                         facts_label: str = "KG", show_choice: bool = True) -> str:
    """Return the sentence with each mention underlined, then each mention's candidates.

    A candidate row shows the entity, ``facts[entity]`` (what the KG says that
    tells the candidates apart, e.g. a person's occupation), its prior ``p(e|m)``
    and the linker's score when there is one. The linker's choice
    (``mention.chosen``) is marked ✓ on green; ``gold[i]``, the gold entity of
    mention ``i``, is marked ★ in a gold frame, so a wrong link shows as two
    different rows. A mention the linker sends to NULL shows a NULL row as
    chosen; ``show_choice=False`` shows no choice at all (candidates before any
    linker ran).
    """
    units = list(units)
    for mention in mentions:
        mention.check(len(units))
    if gold is not None and len(gold) != len(mentions):
        raise InputError(f"{len(mentions)} mentions but {len(gold)} gold entities")
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
    tables = [_candidates_html(index, mention, None if gold is None else gold[index], facts, facts_label, show_choice)
              for index, mention in enumerate(mentions)]
    title = f"<div style='font-weight:bold;margin-bottom:4px'>{escape(caption)}</div>" if caption else ""
    none = "" if mentions else "<div style='color:#666'>no mention found</div>"
    keys = (["chosen"] if show_choice else []) + (["gold"] if gold is not None else [])
    legend = (f"<div style='color:#555;font-size:85%;margin:2px 0'>{' · '.join(LEGEND[k] for k in keys)}</div>"
              if mentions and keys else "")
    return (f'<div style="font-family:sans-serif">{title}<div style="font-size:115%;margin-bottom:6px">'
            f'{" ".join(parts)}</div>{none}{legend}<div>{"".join(tables)}</div></div>')


def _candidates_html(index: int, mention, gold: str | None, facts: Mapping[str, str] | None, facts_label: str,
                     show_choice: bool) -> str:
    color = MENTION_COLORS[index % len(MENTION_COLORS)]
    scored = any(c.score is not None for c in mention.candidates)
    columns = ["entity"] + ([facts_label] if facts is not None else []) + ["prior"] + (["score"] if scored else [])
    header = "<tr>" + "".join(f"<th style='{CELL};text-align:{'left' if name in ('entity', facts_label) else 'right'}'>"
                              f"{escape(name)}</th>" for name in columns) + "</tr>"
    rows = []
    for candidate in mention.candidates:
        chosen = show_choice and candidate.entity == mention.chosen
        is_gold = gold is not None and candidate.entity == gold
        style = ";".join(([f"background:{CHOSEN_BACKGROUND};font-weight:bold"] if chosen else [])
                         + ([f"outline:2px solid {GOLD_BORDER}"] if is_gold else []))
        marks = (CHOSEN_MARK if chosen else "") + (GOLD_MARK if is_gold else "")
        cells = [f"<td style='{CELL}'>{marks + ' ' if marks else ''}{escape(candidate.entity)}</td>"]
        if facts is not None:
            cells.append(f"<td style='{CELL};color:#444'>{escape(facts.get(candidate.entity, ''))}</td>")
        cells.append(f"<td style='{CELL};text-align:right'>{candidate.prior:.3f}</td>")
        if scored:
            cells.append(f"<td style='{CELL};text-align:right'>"
                         f"{'' if candidate.score is None else f'{candidate.score:.3f}'}</td>")
        rows.append(f"<tr style='{style}'>{''.join(cells)}</tr>")
    if show_choice and mention.chosen is None:
        blanks = "".join(f"<td style='{CELL}'></td>" for _ in columns[1:])
        rows.append(f"<tr style='background:{CHOSEN_BACKGROUND};font-weight:bold'><td style='{CELL}'>{CHOSEN_MARK} "
                    f"{NULL}</td>{blanks}</tr>")
    return (f'<div style="display:inline-block;vertical-align:top;margin:4px 10px 4px 0;border-left:3px solid {color};'
            f'padding-left:6px"><div style="color:{color}">{index + 1}. {escape(mention.text)}</div>'
            f'<table style="border-collapse:separate;border-spacing:0 2px;font-size:85%">{header}{"".join(rows)}'
            f'</table></div>')


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


def link_explorer(sentences: Sequence[tuple[Sequence[str], Sequence]], labels: Sequence[str] | None = None,
                  gold: Sequence[Sequence[str | None]] | None = None, facts: Mapping[str, str] | None = None,
                  facts_label: str = "KG"):
    """Return a widget: pick a sentence, see its linked mentions (:func:`linked_sentence_html`).

    ``gold[i]`` holds sentence ``i``'s gold entity per mention. The widget
    carries its own static copy: displayed, it offers the picked sentence's
    HTML beside the live view, so a frontend with a live widget manager shows
    the widget alone and one without (an HTML export, a page with no kernel)
    shows the static view of the same sentence, never both.
    """
    import ipywidgets as widgets

    if not sentences:
        raise InputError("link_explorer needs at least one (units, mentions) sentence")
    if gold is not None and len(gold) != len(sentences):
        raise InputError(f"{len(sentences)} sentences but {len(gold)} gold lists")
    names = list(labels) if labels is not None else [" ".join(units)[:60] for units, _ in sentences]

    def render(index: int) -> str:
        units, mentions = sentences[index]
        return linked_sentence_html(units, mentions, gold=None if gold is None else gold[index], facts=facts,
                                    facts_label=facts_label)

    class Explorer(widgets.VBox):
        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)
            bundle["text/html"] = render(choice.value)
            return bundle

    choice = widgets.Dropdown(options=list(zip(names, range(len(sentences)))), description="sentence",
                              layout=widgets.Layout(width="80%"))
    view = widgets.HTML(render(0))
    choice.observe(lambda change: setattr(view, "value", render(change["new"])), names="value")
    explorer = Explorer([choice, view])
    explorer.render = render
    return explorer
