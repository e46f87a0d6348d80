"""ipywidgets wrappers: live versions of the pure views, each displayed once with its static default as fallback.

:func:`live` displays a widget together with the HTML of its default state: a
frontend with a widget manager (JupyterLab with a kernel) shows the live widget
alone, and one without (the offline HTML export, a page with no kernel) shows the
static view with a line saying that it is live in JupyterLab — never both.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from kbench.errors import KBenchError
from kbench.viz.tree import tree_view_html

LIVE_NOTE = ("<div style='color:#666;font-style:italic;margin:4px 0'>A live view in JupyterLab with a running kernel "
             "(pick {what} there); here, its default state.</div>")


def live(widget, static_html: str, what: str = "another item") -> None:
    """Display ``widget`` once, with ``static_html`` (its default state) as the fallback a page without a widget
    manager shows, under a line saying the view is live in JupyterLab (``what``: what the reader picks there)."""
    from IPython.display import display

    bundle = dict(widget._repr_mimebundle_())
    bundle["text/html"] = LIVE_NOTE.format(what=what) + static_html
    display(bundle, raw=True)


def tree_explorer(kgs: dict, tokenize: Callable[[str], list[str]], sentence: str, joiner: str = " ",
                  max_length: int = 48):
    """Return a widget: type a sentence, choose the KG, max_entities, max_length and predicate; see its tree."""
    import ipywidgets as widgets

    from kbench.models.kbert import KnowledgeLayer

    text = widgets.Text(value=sentence, description="sentence", layout=widgets.Layout(width="80%"))
    kg_name = widgets.Dropdown(options=list(kgs), description="KG")
    entities = widgets.IntSlider(value=2, min=0, max=4, description="max_entities")
    length = widgets.IntSlider(value=max_length, min=4, max=max(64, max_length), description="max_length")
    predicate = widgets.Checkbox(value=True, description="predicate")
    view = widgets.HTML()

    def update(_=None) -> None:
        layer = KnowledgeLayer(kgs[kg_name.value], entities.value, length.value, tokenize, predicate.value, joiner)
        try:
            view.value = tree_view_html(layer.build(text.value))
        except KBenchError as error:
            view.value = f"<b style='color:#a33'>{error}</b>"

    for control in (text, kg_name, entities, length, predicate):
        control.observe(update, names="value")
    update()
    return widgets.VBox([text, widgets.HBox([kg_name, entities, length, predicate]), view])


def html_picker(labels: list[str], render: Callable[[int], str], description: str = "sentence"):
    """Return a widget: pick one of ``labels`` and see ``render(index)`` (an HTML string) below it.

    For any pure view over a list (ERNIE's alignment, a sentence's links); the
    notebook shows ``render(0)`` statically beside it, for exports.
    """
    import ipywidgets as widgets

    from kbench.errors import InputError

    if not labels:
        raise InputError("html_picker needs at least one item to pick")
    choice = widgets.Dropdown(options=list(zip(labels, range(len(labels)))), description=description,
                              layout=widgets.Layout(width="90%"))
    view = widgets.HTML(render(0))
    choice.observe(lambda change: setattr(view, "value", render(change["new"])), names="value")
    return widgets.VBox([choice, view])


def dependence_note(outputs: dict[str, list], what: str, tolerance: float = 0.02) -> str:
    """Return one line of HTML saying whether a view's model output depends on its input.

    ``outputs`` maps each choice a picker offers (a sentence, a pair) to what its view shows per row: a number
    (a probability per pair) or a mapping of names to numbers (a word's top supersenses and their probabilities).
    When every row of every choice is the same — the same names, numbers within ``tolerance`` — the model gives
    one answer whatever the input (it learned the prior), and the line says so, so a reader is not asked to
    compare rows that are all the same; otherwise it says how far the rows differ.
    """
    from html import escape

    rows = [row if isinstance(row, Mapping) else {"": float(row)} for values in outputs.values() for row in values]
    if not rows:
        raise KBenchError("dependence_note needs at least one output to compare")
    first = rows[0]
    same = all(set(row) == set(first) for row in rows) and \
        max((abs(row[k] - first[k]) for row in rows for k in first), default=0.0) <= tolerance
    shown = ", ".join(f"{escape(k)} {v:.2f}" if k else f"{v:.2f}" for k, v in first.items())
    if same:
        return (f"<div style='color:#a33;margin:4px 0'>The model's {escape(what)} is the same for every row of every "
                f"one of the {len(outputs)} choices here ({shown}, within {tolerance}): its output does not depend "
                f"on the input (it gives the prior), so the rows below do not differ.</div>")
    scalars = [row[""] for row in rows if set(row) == {""}]
    if len(scalars) == len(rows):
        detail = f"ranges {min(scalars):.2f}–{max(scalars):.2f}"
    else:
        alike = sum(set(row) == set(first) for row in rows)
        detail = f"— {escape(', '.join(first))} — in {alike} of its {len(rows)} rows"
    return (f"<div style='color:#555;margin:4px 0'>The model's {escape(what)} {detail}, across the "
            f"{len(outputs)} choices here.</div>")
