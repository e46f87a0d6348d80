"""The review world: generated product reviews whose sentiment words have a hidden polarity (SKEP, notebook 19).

A review talks about one or two aspects of a product ("the battery", "the staff") with sentiment words whose
polarity only the world knows (:data:`POSITIVE`, :data:`NEGATIVE`); neutral adjectives ("black", "metal") sit in
the same places, so that a word's slot never gives its polarity away. Words are drawn by a Zipf law inside each
polarity: the three seeds are frequent (the handful a miner starts from), most others are rare — the long tail
SKEP's sentiment masking is meant to reach. Clauses of one opinion may hold two sentiment words of the same
polarity ("the screen is superb , really good"), which is where co-occurrence with a seed reveals a rare word;
two clauses are joined by ", and" when they agree and ", but" when they do not, so a review mixes opposite opinions
on two aspects about a third of the time.

Two labelled tasks come from the same generator with a chosen set of sentiment words (:func:`sentence_task`,
:func:`aspect_task`): few-label fine-tuning on the frequent words, tests on the rare ones, whose polarity a model
can only have learnt from the unlabelled reviews it was pretrained on.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from kbench.errors import InputError

POSITIVE_SEEDS = ("good", "great", "excellent")
NEGATIVE_SEEDS = ("bad", "poor", "terrible")
POSITIVE = POSITIVE_SEEDS + (
    "nice", "perfect", "wonderful", "superb", "lovely", "fantastic", "brilliant", "solid", "sturdy", "flawless",
    "reliable", "crisp", "comfortable", "gorgeous", "stellar", "pleasant", "smooth", "elegant", "impressive",
    "outstanding", "delightful")
NEGATIVE = NEGATIVE_SEEDS + (
    "awful", "horrible", "dreadful", "lousy", "flimsy", "faulty", "noisy", "sluggish", "dim", "blurry", "cramped",
    "filthy", "rude", "broken", "useless", "shoddy", "clunky", "mediocre", "disappointing", "unreliable", "weak")
NEUTRAL = ("new", "black", "white", "silver", "small", "large", "standard", "square", "metal", "plastic", "round",
           "older")
PRODUCTS = {"phone": ("battery", "screen", "camera", "speaker", "case"),
            "laptop": ("keyboard", "fan", "trackpad", "charger", "hinge"),
            "hotel": ("room", "staff", "breakfast", "pool", "bed"),
            "restaurant": ("food", "service", "waiter", "dessert", "menu")}
NOUNS = tuple(PRODUCTS) + tuple(a for aspects in PRODUCTS.values() for a in aspects)
CLOSINGS = {1: ("i would buy it again .", "i recommend it ."), 0: ("i sent it back .", "never again .")}
POLARITY_NAMES = ("negative", "positive")
ZIPF = 1.0


def lexicon() -> dict[str, int]:
    """The hidden truth: every sentiment word and its polarity (1 positive, 0 negative)."""
    return {**{w: 1 for w in POSITIVE}, **{w: 0 for w in NEGATIVE}}


def zipf_weights(count: int, exponent: float = ZIPF) -> list[float]:
    """Weights of ranks 1..count under a Zipf law (the first word of each list is the most frequent)."""
    return [1.0 / (rank ** exponent) for rank in range(1, count + 1)]


@dataclass(frozen=True)
class Review:
    """One review: its text, the product, each aspect's polarity, and the true (aspect, sentiment word) pairs."""

    text: str
    product: str
    opinions: tuple[tuple[str, int], ...]            # (aspect, polarity), in order
    pairs: tuple[tuple[str, str], ...]               # (aspect, sentiment word) as written

    @property
    def polarity(self) -> int | None:
        """The review's polarity when its opinions agree, else None."""
        values = {p for _, p in self.opinions}
        return values.pop() if len(values) == 1 else None


@dataclass(frozen=True)
class AspectExample:
    """An (aspect, review) pair and the polarity of the opinion on that aspect."""

    aspect: str
    text: str
    label: int
    word: str                                         # the sentiment word that carries the label


class _Writer:
    """Draws words and clauses for one world (one random generator)."""

    def __init__(self, rng: random.Random, positive: Sequence[str], negative: Sequence[str]):
        if not positive or not negative:
            raise InputError("a review world needs at least one positive and one negative word")
        self.rng, self.words = rng, {1: list(positive), 0: list(negative)}
        self.weights = {p: zipf_weights(len(ws)) for p, ws in self.words.items()}

    def word(self, polarity: int, avoid: str = "") -> str:
        words = self.words[polarity]
        for _ in range(8):
            word = self.rng.choices(words, self.weights[polarity])[0]
            if word != avoid or len(words) == 1:
                return word
        return word

    def clause(self, aspect: str, polarity: int | None, second_word: float) -> tuple[str, str | None]:
        """One clause about ``aspect``: its text and the sentiment word next to the aspect (None when neutral)."""
        rng = self.rng
        if polarity is None:
            return rng.choice(("the {a} is {n}", "the {a} looks {n}", "it has a {n} {a}")).format(
                a=aspect, n=rng.choice(NEUTRAL)), None
        word = self.word(polarity)
        text = rng.choice(("the {a} is {w}", "the {a} was {w}", "a {w} {a}", "the {n} {a} is {w}",
                           "i found the {a} {w}")).format(a=aspect, w=word, n=rng.choice(NEUTRAL))
        if rng.random() < second_word:
            text += rng.choice((" and {w}", " , really {w}", " , so {w}")).format(w=self.word(polarity, avoid=word))
        return text, word


def make_reviews(count: int, seed: int = 0, positive: Sequence[str] = POSITIVE, negative: Sequence[str] = NEGATIVE,
                 mixed: float = 0.35, neutral: float = 0.15, second_word: float = 0.5) -> list[Review]:
    """``count`` reviews of two clauses: opposite opinions (``mixed``), an opinion and a neutral remark
    (``neutral``), or two agreeing opinions (the rest, half of them with a closing verdict)."""
    if count < 1:
        raise InputError(f"make at least one review, got {count}")
    rng = random.Random(seed)
    writer = _Writer(rng, positive, negative)
    reviews = []
    for _ in range(count):
        product = rng.choice(list(PRODUCTS))
        first, second = rng.sample(PRODUCTS[product], 2)
        polarity = rng.randrange(2)
        kind = rng.random()
        other = (1 - polarity) if kind < mixed else (None if kind < mixed + neutral else polarity)
        (one, w1), (two, w2) = writer.clause(first, polarity, second_word), writer.clause(second, other, second_word)
        joint = " , but " if other is not None and other != polarity else " , and "     # a clause's last word 4+
        #                                                 tokens from the next aspect: nearest-noun pairs stay true
        text = one + joint + two + " ."
        if other == polarity and rng.random() < 0.5:
            text += " " + rng.choice(CLOSINGS[polarity])
        opinions = ((first, polarity),) + (((second, other),) if other is not None else ())
        pairs = ((first, w1),) + (((second, w2),) if w2 else ())
        reviews.append(Review(text, product, opinions, pairs))
    return reviews


def sentence_task(count: int, words: Sequence[str], seed: int = 0) -> list[tuple[str, int]]:
    """(review, polarity) pairs: one opinion in ``words`` (each of its own polarity) beside a neutral remark, so
    the review's polarity is exactly one sentiment word's."""
    truth = lexicon()
    unknown = [w for w in words if w not in truth]
    if unknown or not words:
        raise InputError(f"sentence_task needs sentiment words of the lexicon, got {unknown or 'none'}")
    rng = random.Random(seed)
    out = []
    for index in range(count):
        word = rng.choice(list(words))
        product = rng.choice(list(PRODUCTS))
        aspect, other = rng.sample(PRODUCTS[product], 2)
        writer = _Writer(rng, [word], [word])
        opinion, _ = writer.clause(aspect, truth[word], 0.0)
        remark, _ = writer.clause(other, None, 0.0)
        parts = [opinion, remark] if index % 2 else [remark, opinion]
        out.append((" , and ".join(parts) + " .", truth[word]))
    return out


def aspect_task(count: int, words: Sequence[str], seed: int = 0, mixed: float = 0.5) -> list[AspectExample]:
    """Reviews of two opinions ("the battery is superb but the screen is dull ."), opposite in a share ``mixed`` of
    them and agreeing in the rest, each asked about both aspects: the two examples of a review share every word
    and differ only in the aspect asked (and, when mixed, the label)."""
    truth = lexicon()
    by_polarity = {p: [w for w in words if truth.get(w) == p] for p in (0, 1)}
    if any(w not in truth for w in words) or not all(by_polarity.values()):
        raise InputError("aspect_task needs words of the lexicon, of both polarities")
    rng = random.Random(seed)
    out = []
    for _ in range((count + 1) // 2):
        product = rng.choice(list(PRODUCTS))
        first, second = rng.sample(PRODUCTS[product], 2)
        polarity = rng.randrange(2)
        other = 1 - polarity if rng.random() < mixed else polarity
        w1, w2 = rng.choice(by_polarity[polarity]), rng.choice(by_polarity[other])
        text = f"the {first} is {w1} , {'but' if other != polarity else 'and'} the {second} is {w2} ."
        out += [AspectExample(first, text, polarity, w1), AspectExample(second, text, other, w2)]
    return out[:count]


def frequent_and_rare(frequent: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``frequent`` most frequent words of each polarity (the few-label fine-tuning's) and the rest (the
    tests'), each list from the Zipf head or tail."""
    if not 1 <= frequent < min(len(POSITIVE), len(NEGATIVE)):
        raise InputError(f"frequent must be between 1 and {min(len(POSITIVE), len(NEGATIVE)) - 1}, got {frequent}")
    return POSITIVE[:frequent] + NEGATIVE[:frequent], POSITIVE[frequent:] + NEGATIVE[frequent:]
