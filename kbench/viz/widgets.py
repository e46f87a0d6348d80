"""ipywidgets wrappers: live versions of the pure views (the static default is shown by the notebook)."""
from __future__ import annotations

from collections.abc import Callable

from kbench.errors import KBenchError
from kbench.viz.tree import tree_view_html

STATIC_NOTE = ("<div style='color:#666;font-style:italic;margin:4px 0'>Static view of the explorer's default state "
               "(the controls above need a live kernel).</div>")


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
