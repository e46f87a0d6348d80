"""The overview's head-to-head: the methods that apply to one task, retrained on one base under equal inputs.

The linking world's typing task (:func:`kbench.data.make_linking_world`: the
continent a mentioned person was born on, reached only through the KG) names each
person by an ambiguous family name. How a method reaches the person's entry in the
KG is part of its input, and the papers hand it over differently: ERNIE takes the
entity a linker chose (TAGME in the paper), KnowBert its candidates with their
priors and learns to choose, K-BERT looks the words up in the KG by name. Ranked on
those inputs, the methods are ranked on who was handed the right entity. So every
method here is given the *same* link (``link``):

- ``gold``: the gold entity — ERNIE's entity, KnowBert's only candidate, and the
  KG's name for the person written into K-BERT's sentence (an upper bound: no
  linker is always right);
- ``prior``: one shared linker's output — the alias table's most probable
  candidate (right on about one test mention in ten here), handed to each method
  the same three ways;
- ``candidates``: each method's own input as its paper has it — KnowBert's
  candidates with priors (its trained linker chooses), K-BERT the words alone.

Plain BERT reads ERNIE's marked input with no aggregator and no entity: the same
network and tokens as ERNIE, whatever the link. Every variant trains from the same
pretrained layers, seed, splits and budget, with one TransE table of the world's KG.
"""
from __future__ import annotations

import functools
from dataclasses import replace

from kbench.errors import InputError
from kbench.experiment import Variant
from kbench.text.links import Candidate, LinkedMention

#: How a method is handed the person's entity (see the module docstring).
LINKS = ("gold", "prior", "candidates")

#: The variants retrained on one base: plain BERT, and each method under the gold and the shared linker's link,
#: with each method's own input as its paper has it (KnowBert's linker over candidates, K-BERT the words alone). BERT-MK's graph vectors and K-Adapter's adapters
#: need a training of their own first and are not here.
HEAD_TO_HEAD = (Variant("bert", "BERT (no knowledge)", {"method": "bert"}),
                Variant("ernie", "ERNIE, gold link", {"method": "ernie", "link": "gold"}),
                Variant("knowbert_gold", "KnowBert, gold link", {"method": "knowbert", "link": "gold"}),
                Variant("kbert_gold", "K-BERT, gold link", {"method": "kbert", "link": "gold"}),
                Variant("ernie_prior", "ERNIE, prior's link", {"method": "ernie", "link": "prior"}),
                Variant("knowbert_prior", "KnowBert, prior's link", {"method": "knowbert", "link": "prior"}),
                Variant("kbert_prior", "K-BERT, prior's link", {"method": "kbert", "link": "prior"}),
                Variant("knowbert", "KnowBert, own linker", {"method": "knowbert", "link": "candidates"}),
                Variant("kbert", "K-BERT, the words alone", {"method": "kbert", "link": "candidates"}))


def relink(mention: LinkedMention, link: str) -> LinkedMention:
    """Return ``mention`` handed over as ``link`` says: the gold or the prior's entity as its only candidate
    (``chosen`` set to it), or unchanged (``candidates``)."""
    if link == "candidates":
        return mention
    if link == "gold":
        entity = mention.chosen
    elif link == "prior":
        entity = mention.candidates[0].entity if mention.candidates else None
    else:
        raise InputError(f"unknown link {link!r}: use {', '.join(LINKS)}")
    candidates = [] if entity is None else [Candidate(entity, 1.0)]
    return replace(mention, candidates=candidates, chosen=entity)


def linked_text(text: tuple, link: str) -> tuple:
    """Return a ``(words, mentions)`` text with every mention relinked (:func:`relink`)."""
    words, mentions = text
    return words, [relink(m, link) for m in mentions]


def named_words(text: tuple) -> list[str]:
    """Return the words with each linked mention's span replaced by its chosen entity's KG name — how K-BERT,
    which finds entities by name, is handed a link. A mention with no chosen entity keeps its words."""
    words, mentions = text
    out = list(words)
    for mention in sorted(mentions, key=lambda m: m.start, reverse=True):
        if mention.chosen is not None:
            out[mention.start:mention.end] = [mention.chosen]
    return out


@functools.cache
def _handed(cls: type, link: str | None, by_name: bool) -> type:
    """Return a subclass of ``cls`` whose ``dataset`` relinks each text first (K-BERT: and names the entity)."""

    def dataset(self, texts, labels=None):
        texts = [linked_text(t, link) if link else t for t in texts]
        if by_name:
            texts = [named_words(t) if link else list(t[0]) if isinstance(t, tuple) else t for t in texts]
        return cls.dataset(self, texts, labels)

    suffix = f"{'Named' if by_name else 'Linked'}{(link or 'words').title()}"
    return type(f"{cls.__name__}{suffix}", (cls,), {"dataset": dataset, "__doc__": cls.__doc__})


def head_to_head_model(num_labels: int, entity_embeddings, entity_to_id: dict, kg, base_model: str, method: str,
                       link: str | None = None, seed: int = 0, **options):
    """Return one method's classifier over ``base_model``: ``bert`` (ERNIE's network with no aggregator: plain BERT
    on the same marked input), ``ernie``, ``knowbert`` (both fusing ``entity_embeddings``), or ``kbert`` (``kg``),
    reading texts handed over as ``link`` says (:data:`LINKS`; None: each as given, K-BERT the words alone)."""
    from kbench.models.ernie_thu import ErnieClassifier
    from kbench.models.kbert import KBertClassifier
    from kbench.models.knowbert import KnowBertClassifier

    if link is not None and link not in LINKS:
        raise InputError(f"unknown link {link!r}: use {', '.join(LINKS)}")
    link = None if link == "candidates" else link
    if method in ("bert", "ernie"):
        return _handed(ErnieClassifier, link, False)(num_labels, entity_embeddings, entity_to_id, base_model,
                                                     k_layers=0 if method == "bert" else None, seed=seed, **options)
    if method == "knowbert":
        return _handed(KnowBertClassifier, link, False)(num_labels, entity_embeddings, entity_to_id, base_model,
                                                        seed=seed, **options)
    if method == "kbert":
        return _handed(KBertClassifier, link, True)(num_labels, kg, base_model, max_entities=2, joiner=" ",
                                                    seed=seed, **options)
    raise InputError(f"unknown method {method!r}: use bert, kbert, knowbert or ernie")


def entity_vectors(s):
    """Return one TransE table of ``s.kg`` (unit rows, as BERT-MK's comparison scales them) and the trained model."""
    import torch

    from kbench.kg.embeddings import train_embeddings

    transe = train_embeddings(s.kg, "TransE", dim=s.entity_dim, epochs=s.transe_epochs, seed=s.seed,
                              batch_size=4096, progress=False)
    return torch.nn.functional.normalize(transe.entity_embeddings.detach().float(), dim=-1), transe


def head_to_head(s, only=None, seed: int | None = None, vectors=None) -> tuple[dict, object]:
    """Retrain :data:`HEAD_TO_HEAD` on one setup (:func:`kbench.profiles.overview.setup`); return the results by
    name (:func:`kbench.experiment.compare_variants`) and the TransE model whose vectors were fused.

    ``seed`` trains with another seed on the same world and vectors (a same-method, other-seed pair: how much two
    runs differ anyway); ``vectors`` reuses a table from :func:`entity_vectors`."""
    from kbench.experiment import compare_variants

    vectors, transe = vectors or entity_vectors(s)
    only = only or getattr(s, "variants", None) or None
    config = s.config if seed is None else replace(s.config, seed=seed)
    make = functools.partial(head_to_head_model, len(s.labels), vectors, transe.entity_to_id, s.kg, s.base_model,
                             **s.options)
    return compare_variants(lambda seed, **variant: make(seed=seed, **variant), HEAD_TO_HEAD, *s.splits,
                            config=config, only=only), transe


#: The rows and columns of :func:`equal_inputs_frame`: the method, and the link its variants were handed.
METHODS = {"bert": "BERT (no knowledge)", "ernie": "ERNIE", "knowbert": "KnowBert", "kbert": "K-BERT"}
COLUMNS = {"gold": "gold link (upper bound)", "prior": "prior's link (one shared linker)",
           "candidates": "own input (as published)"}


def equal_inputs_frame(scores: dict[str, float], spread: dict[str, list[float]] | None = None,
                       metric: str = "test_accuracy"):
    """Return the head-to-head as a table: a row per method, a column per link, each cell this run's score of that
    variant (``scores`` by variant name) and, where ``spread`` (recorded values by metric name) has it, the
    recorded seeds' [min, max]. Plain BERT reads no link: its score stands in every column."""
    import pandas as pd

    spread = spread or {}
    by_name = {v.name: v for v in HEAD_TO_HEAD}
    cells: dict[str, dict[str, str]] = {label: {} for label in METHODS.values()}
    for name, score in scores.items():
        if name not in by_name:
            raise InputError(f"unknown head-to-head variant {name!r}: use {', '.join(by_name)}")
        options = by_name[name].options
        runs = spread.get(f"{name}_{metric}", [])
        text = f"{score:.3f}" + (f" [{min(runs):.3f}, {max(runs):.3f}]" if runs else "")
        links = COLUMNS if options["method"] == "bert" else (options.get("link") or "candidates",)
        for link in links:
            cells[METHODS[options["method"]]][COLUMNS[link]] = text
    used = [c for c in COLUMNS.values() if any(c in row for label, row in cells.items() if label != METHODS["bert"])]
    return pd.DataFrame([{"method": label, **{c: row.get(c, "—") for c in used}}
                         for label, row in cells.items() if row])


def text_encoder(model):
    """Return the ``BertModel`` that reads the words in a head-to-head model (ERNIE's and KnowBert's sit inside
    their hooked encoders; K-BERT's is its ``bert``): the layers :func:`kbench.enhanced.compare_encoders` reads."""
    for path in (("ernie", "encoder", "bert"), ("encoder", "bert"), ("bert",)):
        found = model
        for attribute in path:
            found = getattr(found, attribute, None)
        if found is not None and hasattr(found, "config"):
            return found
    raise InputError(f"{type(model).__name__} has no text encoder this overview knows")
