"""WordNet 3.0 as kbench's real English KG: synsets, relations, lemma candidates with priors, example sentences.

KnowBert's WordNet setting (Peters et al. 2019, §4.1; allenai/kb ``kb/wordnet.py``)
links words to synsets, with candidates from the lemma through morphy and the
prior ``p(e|m)`` from WordNet's sense counts, add-one smoothed; SenseBERT
(Levine et al. 2020) predicts a synset's lexicographer file (its *supersense*).
The files come from Debian's ``wordnet-base`` and ``wordnet-sense-index``
(``/usr/share/wordnet``; the Makefile and CI install them) and are read with
NLTK, which wants them copied into ``<dir>/corpora/wordnet`` (it refuses links
and outside paths) together with the ``lexnames`` file Debian leaves out.
"""
from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kbench.errors import DataError, InputError
from kbench.kg.graph import KnowledgeGraph
from kbench.text.links import AliasTable, Candidate

SOURCE = Path("/usr/share/wordnet")
WORDNET_ENV = "KBENCH_WORDNET_SOURCE"
FILES = ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "index.verb", "index.adj", "index.adv",
         "noun.exc", "verb.exc", "adj.exc", "adv.exc", "index.sense", "cntlist.rev")
#: WordNet's 45 lexicographer files (lexnames(5WN)): number, name, syntactic category. SenseBERT's supersenses.
LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
            "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
            "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
            "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
            "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
            "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
            "adj.ppl").split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
#: Relations taken as triples: NLTK's synset method name -> predicate.
RELATIONS = {"hypernyms": "hypernym", "instance_hypernyms": "instance_hypernym", "member_holonyms": "member_holonym",
             "part_holonyms": "part_holonym", "substance_holonyms": "substance_holonym",
             "member_meronyms": "member_meronym", "part_meronyms": "part_meronym",
             "substance_meronyms": "substance_meronym", "entailments": "entailment", "causes": "cause",
             "similar_tos": "similar_to", "attributes": "attribute", "verb_groups": "verb_group",
             "also_sees": "also_see"}
POS = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


def prepare_wordnet(data_dir: str | Path | None = None, source: str | Path | None = None) -> Path:
    """Copy WordNet's files into ``<data_dir>/nltk/corpora/wordnet`` with a ``lexnames`` file; return ``<data_dir>/nltk``."""
    from kbench.data.manifest import default_data_dir

    source = Path(source or os.environ.get(WORDNET_ENV) or SOURCE)
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise DataError(f"WordNet 3.0 is not in {source} (missing {', '.join(missing[:3])}): install Debian's "
                        "wordnet-base and wordnet-sense-index (`apt-get install wordnet-base wordnet-sense-index`; "
                        f"`make setup` does), or point {WORDNET_ENV} at a folder with the same files")
    root = Path(data_dir) if data_dir else default_data_dir()
    target = root / "nltk" / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        destination = target / name
        if not destination.is_file() or destination.stat().st_size != (source / name).stat().st_size:
            shutil.copyfile(source / name, destination)
    lexnames = "".join(f"{index:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for index, name in enumerate(LEXNAMES))
    if not (target / "lexnames").is_file() or (target / "lexnames").read_text() != lexnames:
        (target / "lexnames").write_text(lexnames)
    return root / "nltk"


@lru_cache(maxsize=4)
def load_wordnet(data_dir: str | None = None, source: str | None = None):
    """Return NLTK's reader over WordNet 3.0 (prepared by :func:`prepare_wordnet`)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = prepare_wordnet(data_dir, source)
    if str(root) not in nltk.data.path:   # NLTK reads corpora only under its data path
        nltk.data.path.insert(0, str(root))
    with warnings.catch_warnings():   # "multilingual functions are not available": no OMW here, none used
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(nltk.data.find("corpora/wordnet"), None)


def relation_triples(synset, relations: Sequence[str] = tuple(RELATIONS)) -> list[tuple[str, str, str]]:
    """Return one synset's ``relations`` as ``(synset, predicate, other synset)`` triples."""
    return [(synset.name(), RELATIONS[method], other.name()) for method in relations
            for other in getattr(synset, method)()]


def wordnet_kg(wordnet, pos: str | None = None, relations: Sequence[str] = tuple(RELATIONS),
               limit: int | None = None) -> KnowledgeGraph:
    """Return WordNet as triples between synsets (``dog.n.01 hypernym canine.n.02``).

    ``pos`` keeps one part of speech (``n``, ``v``, ``a``, ``r``); ``limit``
    the first synsets in WordNet's order (for small runs).
    """
    unknown = [name for name in relations if name not in RELATIONS]
    if unknown:
        raise InputError(f"unknown WordNet relation {unknown[0]!r}: use {', '.join(RELATIONS)}")
    if pos is not None and pos not in POS:
        raise InputError(f"unknown part of speech {pos!r}: use n, v, a or r")
    triples = []
    for index, synset in enumerate(wordnet.all_synsets(pos)):
        if limit is not None and index >= limit:
            break
        triples += relation_triples(synset, relations)
    return KnowledgeGraph.from_triples(triples, name="WordNet")


@lru_cache(maxsize=8)
def _exceptions(wordnet, part: str) -> dict[str, tuple[str, ...]]:
    """Return WordNet's irregular forms of one part of speech (``<pos>.exc``: ``geese goose``)."""
    table: dict[str, tuple[str, ...]] = {}
    with wordnet.open(f"{POS[part]}.exc") as lines:
        for line in lines:
            inflected, *bases = line.split()
            if bases:
                table[inflected] = tuple(bases)
    return table


def base_forms(wordnet, word: str, part: str) -> list[str]:
    """Return every WordNet lemma ``word`` may be a form of, as ``part`` (``banks`` -> ``banks``, ``bank``).

    WordNet's morphology (morphy(7WN)): an irregular form (``<pos>.exc``: ``axes``
    -> ``ax``, ``axis``) is looked up; any other word is itself and what WordNet's
    suffix rules make of it (NLTK's public ``MORPHOLOGICAL_SUBSTITUTIONS``). Kept are
    the forms WordNet has a lemma for, in that order. NLTK's public ``morphy()``
    returns only the first of them, and its ``_morphy`` (every one) is private; this
    gives the same list through public calls only (tested on every word of
    WordNet's example sentences).
    """
    if part not in POS:
        raise InputError(f"unknown part of speech {part!r}: use n, v, a or r")
    word = word.lower().replace(" ", "_")
    part = "a" if part == "s" else part
    irregular = _exceptions(wordnet, part).get(word)
    if irregular is not None:
        forms = [word, *irregular]
    else:
        forms = [word] + [word[:len(word) - len(old)] + new
                          for old, new in wordnet.MORPHOLOGICAL_SUBSTITUTIONS[part] if word.endswith(old)]
    return [form for form in dict.fromkeys(forms) if wordnet.lemmas(form, part)]


def lemma_candidates(wordnet, word: str, pos: str | None = None, top_k: int = 30,
                     smoothing: float = 1.0) -> list[Candidate]:
    """Return the synsets ``word`` may mean (morphy's base forms: ``banks`` -> ``banks``, ``bank``), with priors.

    The prior of a synset is its lemma's sense count (``cntlist.rev``, from
    SemCor) plus ``smoothing``, normalised over the word's first ``top_k``
    synsets by count: the KnowBert authors' ``load_candidate_maps``.
    A word WordNet does not know raises ``InputError``.
    """
    if not isinstance(word, str) or not word.strip():
        raise InputError(f"a word must be a non-empty string, not {word!r}")
    counts: dict[str, float] = {}
    for part in ([pos] if pos else ["n", "v", "a", "r"]):
        for base in base_forms(wordnet, word, part):
            for lemma in wordnet.lemmas(base, part):
                name = lemma.synset().name()
                counts[name] = counts.get(name, 0.0) + lemma.count()
    if not counts:
        raise InputError(f"WordNet does not know {word!r} (no lemma for it through morphy)")
    return AliasTable({word: counts}, top_k=top_k, smoothing=smoothing).candidates(word)


def supersense(wordnet, synset: str) -> str:
    """Return a synset's lexicographer file (``noun.animal``): SenseBERT's supersense."""
    try:
        return wordnet.synset(synset).lexname()
    except Exception as error:  # NLTK raises WordNetError or ValueError for a bad name
        raise InputError(f"no synset {synset!r} in WordNet") from error


@dataclass(frozen=True)
class SenseExample:
    """One of WordNet's own example sentences, with the word of its synset found in it."""

    words: list[str]
    start: int           # the sense-labelled word's span in ``words``, end exclusive
    end: int
    lemma: str
    synset: str
    supersense: str


WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")    # a word, or one punctuation mark


def find_lemma(words: Sequence[str], lemmas: Sequence[list[str]], inflects) -> tuple[int, int, list[str]] | None:
    """Return ``(start, end, lemma)`` of the first of ``lemmas`` (lowercased word lists) found in ``words``, or None.

    A multi-word lemma matches its words exactly; a one-word lemma also a word
    ``inflects(word, lemma)`` says is one of its forms (``ran`` -> ``run``).
    """
    lowered = [w.lower() for w in words]
    for lemma in lemmas:
        for start in range(len(words) - len(lemma) + 1):
            window = lowered[start:start + len(lemma)]
            if window == lemma or (len(lemma) == 1 and inflects(window[0], lemma[0])):
                return start, start + len(lemma), lemma
    return None


def sense_examples(wordnet, pos: str | None = None, limit: int | None = None) -> Iterator[SenseExample]:
    """Yield WordNet's example sentences whose synset's lemma occurs in them (directly or inflected).

    The occurrence is found by morphy (``ran`` -> ``run``): the sense-labelled
    text KnowBert's linker and SenseBERT's supersense task train and test on here.
    """
    found = 0
    for synset in wordnet.all_synsets(pos):
        part = synset.pos() if synset.pos() != "s" else "a"
        lemmas = [lemma.name().lower().split("_") for lemma in synset.lemmas()]
        for text in synset.examples():
            words = WORD.findall(text)
            match = find_lemma(words, lemmas, lambda word, lemma: wordnet.morphy(word, part) == lemma)
            if match is None:
                continue
            yield SenseExample(words, match[0], match[1], "_".join(match[2]), synset.name(), synset.lexname())
            found += 1
            if limit is not None and found >= limit:
                return


def neighbourhood_kg(wordnet, synsets: Sequence[str], relations: Sequence[str] = tuple(RELATIONS)) -> KnowledgeGraph:
    """Return the triples of ``synsets`` and their direct neighbours: a WordNet piece small enough to embed.

    Each synset also gets ``(synset, "lemma", word)`` triples for its lemmas, so
    that every synset asked for is in the graph (and its embedding table).
    """
    triples = []
    for name in dict.fromkeys(synsets):
        synset = wordnet.synset(name)
        triples += [(synset.name(), "lemma", lemma.name().lower()) for lemma in synset.lemmas()]
        triples += relation_triples(synset, relations)
    return KnowledgeGraph.from_triples(triples, name="WordNet neighbourhood")
