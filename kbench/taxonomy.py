"""Where each paper puts knowledge, and which knowledge: the map the overview draws from the models' own words.

Every model module declares its ``PLACE`` beside its ``CITATION`` (a test fails when one
does not): *where* the knowledge enters the model — its input text, entity vectors fused
into the encoder's states, the pretraining objective, adapters beside a frozen base, or
the data and vocabulary it is trained on — and *which* knowledge (a knowledge graph,
a lexical resource, linguistic structure, a domain's text). :func:`declarations`
reads them all; :func:`taxonomy_svg` draws them as one picture, each paper a box
linked to its notebook.

Beside it, each module declares its ``HEADLINE``: the one comparison of its notebook
that answers "does this knowledge help?" — the metric with the paper's knowledge, the
same base's metric without it, a knowledge probe's pair where the notebook probes
facts, and what the method needs beyond the text — and its two controls: the
*strongest trivial baselines* the gain must beat (an untrained encoder, the answer
prior, a subject-swapped input, an untrained module of the same shape, no
pretraining), and a *positive control*, the run in which the knowledge is certainly
present and usable, so a working mechanism must win it (:class:`PositiveControl`).
A gain below a trivial baseline is not a gain; a null without a passing positive
control is a statement about the pipeline, not the paper. The overview
(:mod:`kbench.comparison`) reads every notebook's recorded results through them.

The survey the map follows (Qiu, Sun, Xu, Shao, Dai and Huang 2020, "Pre-trained
Models for Natural Language Processing: A Survey", §4.1) groups the same papers its
own way: by the kind of knowledge (linguistic, semantic, commonsense, factual,
domain-specific) and by whether it is injected while pretraining or added to a
pretrained model without pretraining it again. :data:`SURVEY` is that grouping,
set by each ``Place``'s ``survey`` (our reading of §4.1; papers §4.1 does not
name are placed by the same rule and marked so).
"""
from __future__ import annotations

import html
import importlib
import pkgutil
from dataclasses import dataclass

from kbench.errors import InputError

#: Where knowledge enters, in the order of the picture's columns.
WHERE = ("input", "fused entity vectors", "objective", "adapters", "data and vocabulary", "attention")
#: Places whose methods run the plain base's own network: nothing is added at run time.
SAME_NETWORK = ("objective", "data and vocabulary")
#: Which knowledge.
KNOWLEDGE = ("KG", "lexical", "linguistic", "domain")
#: The survey's kinds of knowledge (Qiu et al. 2020, §4.1), and its "when": during pretraining or after it.
SURVEY = ("linguistic", "semantic", "commonsense", "factual", "domain-specific")
#: §4.1's own lists, as the survey reads (the papers this workbench covers): which it names under each kind. A test
#: checks the declarations against these, so a wrong ``Place.survey`` cannot pass by rebuilding the table from itself.
SURVEY_LISTS = {"factual": ("ERNIE (THU)", "KnowBert", "K-BERT", "WKLM", "KEPLER"),
                "linguistic": ("LIBERT", "KnowBert", "K-Adapter")}
WHEN = ("pretraining", "fine-tuning")
COLOURS = {"KG": "#4a78a8", "lexical": "#2f9e44", "linguistic": "#e8590c", "domain": "#862e9c"}


@dataclass(frozen=True)
class Place:
    """A paper's place on the map: its short name, where its knowledge enters, which knowledge, and how (one line)."""

    name: str
    where: str
    knowledge: tuple[str, ...]
    how: str
    survey: str = "factual"         # the survey's kind of knowledge (SURVEY)
    when: str = "pretraining"       # the survey's when (WHEN): injected while pretraining, or only when fine-tuning
    in_survey: bool = True          # False: §4.1 does not name the paper; placed by the same rule
    also: tuple[str, ...] = ()      # the survey's other kinds that list the paper too (a second listing)

    def __post_init__(self):
        if self.where not in WHERE:
            raise InputError(f"unknown place {self.where!r}: use one of {', '.join(WHERE)}")
        if not self.knowledge or any(k not in KNOWLEDGE for k in self.knowledge):
            raise InputError(f"knowledge {self.knowledge!r}: name one or more of {', '.join(KNOWLEDGE)}")
        if not self.how.strip():
            raise InputError("say in one line how the knowledge gets in")
        if self.survey not in SURVEY:
            raise InputError(f"unknown survey kind {self.survey!r}: use one of {', '.join(SURVEY)}")
        if any(kind not in SURVEY or kind == self.survey for kind in self.also):
            raise InputError(f"also={self.also!r}: name other survey kinds than {self.survey!r}, from {', '.join(SURVEY)}")
        if self.when not in WHEN:
            raise InputError(f"unknown survey time {self.when!r}: use {' or '.join(WHEN)}")


@dataclass(frozen=True)
class PositiveControl:
    """The run in which the paper's knowledge is certainly present and usable: a working mechanism must win it.

    ``left`` (the mechanism, given knowledge it can certainly use) minus ``right`` (the same without it) must be
    at least ``min_difference`` on every recorded seed; the notebook records the same comparison as a lesson.
    ``claim`` says what makes the knowledge certainly usable (facts trained until the model knows them, the true
    lexicon handed to the masker, the test entities seen in the knowledge training). Where a notebook cannot
    run such a case, ``left`` and ``right`` stay empty and ``reason`` says plainly why: the overview then shows
    the headline as untested by a positive control, never as passed. Where the control is run and *fails*
    (the pipeline cannot use knowledge that is certainly there), it names its metrics *and* gives ``reason``:
    what the failure means for the notebook's claim; the overview shows it as failed, with the reason.
    """

    claim: str
    left: str = ""
    right: str = ""
    min_difference: float = 0.0
    reason: str = ""

    def __post_init__(self):
        if not self.claim.strip():
            raise InputError("say what makes the knowledge certainly present and usable in the positive control")
        if bool(self.left) != bool(self.right):
            raise InputError("a positive control names both metrics (left, right) or neither")
        if self.left and self.left == self.right:
            raise InputError(f"a positive control compares two different metrics, got {self.left!r} twice")
        if not self.left and not self.reason.strip():
            raise InputError("a positive control with no metrics must say why the notebook cannot run one (reason=)")

    @property
    def is_run(self) -> bool:
        """True when the notebook records the control's two metrics."""
        return bool(self.left)

    @property
    def fails(self) -> bool:
        """True when the control is run and declared failing (metrics and a reason): the pipeline, not the paper."""
        return bool(self.left and self.reason)

    def verdict(self, left: list[float], right: list[float]) -> tuple[int, int]:
        """Return ``(seeds passed, seeds)``: how many seeds have ``left − right ≥ min_difference``."""
        if len(left) != len(right) or not left:
            raise InputError(f"the positive control needs both metrics over the same seeds, got {len(left)} and "
                             f"{len(right)} values")
        return sum(a - b >= self.min_difference - 1e-9 for a, b in zip(left, right)), len(left)


@dataclass(frozen=True)
class Headline:
    """A notebook's answer to "does the knowledge help?": two recorded metrics, with and without it.

    ``knowledge`` and ``base`` name metrics the notebook records (``kbench.record``)
    on the same split and seed — the paper's own comparison as the notebook runs it
    (where the paper gives its knowledge extra pretraining steps, as ERNIE's dEA or
    DAPT + TAPT do, so does the pair, and ``task`` says so); ``probe`` is a pair of knowledge-probe
    metrics (MRR of fact completion) when the notebook probes; ``full`` (and
    ``full_probe``) name the pair where the full profile records it under other names
    (its real task, named by ``full_task``); ``needs`` says what the method needs beyond the text.

    ``trivial`` names the metrics of the trivial baselines recorded on the same split and seed (untrained
    encoder, answer prior, subject-swapped input, untrained module, no pretraining): the strongest of them,
    per seed, is what the gain must beat (:meth:`kbench.comparison.Row.strongest`). ``positive`` is the
    notebook's :class:`PositiveControl`. Both are required of every paper (a meta-test checks).

    The headline is the paper's own comparison: where the paper compares against another method rather than
    plain BERT (BERT-MK against ERNIE), ``base`` is that method's metric, ``task`` says so, and ``plain``
    names the plain-BERT metric, shown as a second comparison.
    """

    task: str
    knowledge: str
    base: str
    needs: str
    probe: tuple[str, str] | None = None
    full: tuple[str, str] | None = None
    full_probe: tuple[str, str] | None = None
    full_task: str = ""
    trivial: tuple[str, ...] = ()
    positive: PositiveControl | None = None
    plain: str = ""

    def task_in(self, profile: str) -> str:
        """Return the task as ``profile`` runs it."""
        return self.full_task if profile == "full" and self.full_task else self.task

    def __post_init__(self):
        for pair in (self.probe, self.full, self.full_probe):
            if pair is not None and (len(pair) != 2 or pair[0] == pair[1]):
                raise InputError(f"a metric pair names two different metrics, got {pair!r}")
        if self.knowledge == self.base:
            raise InputError("the knowledge and the base metric must differ")
        if self.full_task and not self.full:
            raise InputError("a full_task needs the full profile's metric pair (full=...)")
        if not self.task.strip() or not self.needs.strip():
            raise InputError("say what the task is and what the method needs")
        if isinstance(self.trivial, str):
            raise InputError(f"trivial is a tuple of metric names, got the string {self.trivial!r}")
        if self.knowledge in self.trivial or self.base in self.trivial:
            raise InputError("a trivial baseline is neither the knowledge metric nor the base metric")
        if self.plain and self.plain in (self.knowledge, self.base):
            raise InputError("plain names the plain-BERT metric when the base is another method's, not the same one")
        if len(set(self.trivial)) != len(self.trivial):
            raise InputError(f"trivial baselines named twice: {self.trivial!r}")
        if self.positive is not None and not isinstance(self.positive, PositiveControl):
            raise InputError("positive must be a kbench.taxonomy.PositiveControl")

    def metrics(self, profile: str) -> tuple[tuple[str, str], tuple[str, str] | None]:
        """Return ``((knowledge, base), probe pair or None)`` as ``profile`` records them."""
        if profile == "full":
            return self.full or (self.knowledge, self.base), self.full_probe or self.probe
        return (self.knowledge, self.base), self.probe


@dataclass(frozen=True)
class Declaration:
    """One model module's declaration: its name, short title, notebook and place."""

    module: str
    title: str
    notebook: str
    place: Place
    headline: Headline | None = None


def declarations() -> list[Declaration]:
    """Return every model module's declaration, in notebook order; one without ``PLACE`` or ``HEADLINE`` is an error."""
    import kbench.models

    found = []
    for info in pkgutil.iter_modules(kbench.models.__path__):
        module = importlib.import_module(f"kbench.models.{info.name}")
        place = getattr(module, "PLACE", None)
        if not isinstance(place, Place):
            raise InputError(f"kbench.models.{info.name} declares no PLACE (a kbench.taxonomy.Place)")
        headline = getattr(module, "HEADLINE", None)
        if not isinstance(headline, Headline):
            raise InputError(f"kbench.models.{info.name} declares no HEADLINE (a kbench.taxonomy.Headline)")
        found.append(Declaration(info.name, place.name, module.NOTEBOOK, place, headline))
    return sorted(found, key=lambda d: d.notebook)


def taxonomy_svg(items: list[Declaration] | None = None) -> str:
    """Return the map as an SVG: a column per place, a box per paper (a stripe per kind of knowledge, how its
    knowledge gets in as the box's tooltip), and the legend. It holds no link: JupyterLab sets the ``href`` of
    every anchor it renders, which an SVG anchor refuses (a script error under the picture), so
    :func:`taxonomy_html` puts the links beside it."""
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
            out.append(f'<g><title>{e(item.place.how)}</title>'
                       f'<rect x="{x}" y="{y}" width="{column - 10}" height="{box_h}" rx="6" fill="#f8f9fa" '
                       f'stroke="#868e96"/>')
            for k, kind in enumerate(item.place.knowledge):
                out.append(f'<rect x="{x + 6 + 12 * k}" y="{y + 6}" width="8" height="{box_h - 12}" '
                           f'fill="{COLOURS[kind]}"><title>{e(kind)}</title></rect>')
            text_x = x + 10 + 12 * len(item.place.knowledge)
            out.append(f'<text x="{text_x}" y="{y + 20}" font-weight="bold">{e(item.title[:24])}</text>'
                       f'<text x="{text_x}" y="{y + 36}" fill="#555">{e(item.notebook)}</text></g>')
    legend_y = height - 20
    for k, kind in enumerate(KNOWLEDGE):
        x = 10 + k * 130
        out.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS[kind]}"/>'
                   f'<text x="{x + 18}" y="{legend_y}">{e(kind)}</text>')
    return "".join(out) + "</svg>"


def taxonomy_html(items: list[Declaration] | None = None, link_prefix: str = "") -> str:
    """Return the map (:func:`taxonomy_svg`) with a line of plain HTML links under it, one per box in the map's
    column order, each to ``link_prefix + notebook + '.ipynb'``."""
    items = declarations() if items is None else items
    e = html.escape
    ordered = [d for where in WHERE for d in items if d.place.where == where]
    links = " · ".join(f'<a href="{e(link_prefix + d.notebook)}.ipynb" title="{e(d.place.how)}">{e(d.title)}</a>'
                       for d in ordered)
    return f'<div>{taxonomy_svg(items)}<p style="font-size:12px">Open a notebook: {links}</p></div>'
