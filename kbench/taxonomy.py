"""Where each paper puts knowledge, and which knowledge: the map the overview draws from the models' own words.

Every model module declares its ``PLACE`` beside its ``CITATION`` (a test fails when one
does not): *where* the knowledge enters the model — its input text, entity vectors fused
into the encoder's states, the pretraining objective, adapters beside a frozen base, or
the data and vocabulary it is trained on — and *which* knowledge (a knowledge graph,
a lexical resource, linguistic structure, a domain's text). :func:`declarations`
reads them all; :func:`taxonomy_svg` draws them as one picture, each paper a box
linked to its notebook.
"""
from __future__ import annotations

import html
import importlib
import pkgutil
from dataclasses import dataclass

from kbench.errors import InputError

#: Where knowledge enters, in the order of the picture's columns.
WHERE = ("input", "fused entity vectors", "objective", "adapters", "data and vocabulary")
#: Which knowledge.
KNOWLEDGE = ("KG", "lexical", "linguistic", "domain")
COLOURS = {"KG": "#4a78a8", "lexical": "#2f9e44", "linguistic": "#e8590c", "domain": "#862e9c"}


@dataclass(frozen=True)
class Place:
    """A paper's place on the map: its short name, where its knowledge enters, which knowledge, and how (one line)."""

    name: str
    where: str
    knowledge: tuple[str, ...]
    how: str

    def __post_init__(self):
        if self.where not in WHERE:
            raise InputError(f"unknown place {self.where!r}: use one of {', '.join(WHERE)}")
        if not self.knowledge or any(k not in KNOWLEDGE for k in self.knowledge):
            raise InputError(f"knowledge {self.knowledge!r}: name one or more of {', '.join(KNOWLEDGE)}")
        if not self.how.strip():
            raise InputError("say in one line how the knowledge gets in")


@dataclass(frozen=True)
class Declaration:
    """One model module's declaration: its name, short title, notebook and place."""

    module: str
    title: str
    notebook: str
    place: Place


def declarations() -> list[Declaration]:
    """Return every model module's declaration, in notebook order; a module without a ``PLACE`` is an error."""
    import kbench.models

    found = []
    for info in pkgutil.iter_modules(kbench.models.__path__):
        module = importlib.import_module(f"kbench.models.{info.name}")
        place = getattr(module, "PLACE", None)
        if not isinstance(place, Place):
            raise InputError(f"kbench.models.{info.name} declares no PLACE (a kbench.taxonomy.Place)")
        found.append(Declaration(info.name, place.name, module.NOTEBOOK, place))
    return sorted(found, key=lambda d: d.notebook)


def taxonomy_svg(items: list[Declaration] | None = None, link_prefix: str = "") -> str:
    """Return the map as an SVG: a column per place, a box per paper (a stripe per kind of knowledge) linked
    to ``link_prefix + notebook + '.ipynb'``, and the legend."""
    items = declarations() if items is None else items
    e = html.escape
    column, box_h, gap, top = 190, 46, 10, 56
    rows = max([sum(d.place.where == w for d in items) for w in WHERE] + [1])
    width, height = column * len(WHERE) + 20, top + rows * (box_h + gap) + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">']
    for c, where in enumerate(WHERE):
        x = 10 + c * column
        out.append(f'<text x="{x + column / 2 - 5}" y="30" text-anchor="middle" font-weight="bold">{e(where)}</text>')
        for r, item in enumerate(d for d in items if d.place.where == where):
            y = top + r * (box_h + gap)
            out.append(f'<a href="{e(link_prefix + item.notebook)}.ipynb"><g><title>{e(item.place.how)}</title>'
                       f'<rect x="{x}" y="{y}" width="{column - 10}" height="{box_h}" rx="6" fill="#f8f9fa" '
                       f'stroke="#868e96"/>')
            for k, kind in enumerate(item.place.knowledge):
                out.append(f'<rect x="{x + 6 + 12 * k}" y="{y + 6}" width="8" height="{box_h - 12}" '
                           f'fill="{COLOURS[kind]}"><title>{e(kind)}</title></rect>')
            text_x = x + 10 + 12 * len(item.place.knowledge)
            out.append(f'<text x="{text_x}" y="{y + 20}" font-weight="bold">{e(item.title[:24])}</text>'
                       f'<text x="{text_x}" y="{y + 36}" fill="#555">{e(item.notebook)}</text></g></a>')
    legend_y = height - 20
    for k, kind in enumerate(KNOWLEDGE):
        x = 10 + k * 130
        out.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS[kind]}"/>'
                   f'<text x="{x + 18}" y="{legend_y}">{e(kind)}</text>')
    return "".join(out) + "</svg>"
