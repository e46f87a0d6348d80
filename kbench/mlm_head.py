"""An English encoder with a trained MLM head: MiniLM's head fitted once, the encoder frozen.

The papers that continue pretraining a pretrained masked LM (BioBERT, Don't Stop
Pretraining; WKLM, KEPLER and K-Adapter where they start from one) assume the
model arrives with its MLM head. The one pretrained English encoder available
offline, all-MiniLM-L6-v2, ships without one: a fresh head would make the first
steps of every "continued" pretraining mostly head training, and a comparison of
regimes would measure who fitted the head fastest. :func:`warm_mlm_head` fits the
head (BERT's transform, LayerNorm and output bias; the decoder stays tied to the
frozen word embeddings, as in BERT) with BERT's 15% masking on WordNet 3.0's noun
glosses and examples, the encoder frozen, and saves the whole masked LM as a
checkpoint directory any notebook takes as ``base_model`` — so the encoder is
bit-identical to MiniLM and only the head is new.

Before it is used it is measured (:func:`head_report`): masked-token accuracy and
loss on held-out glosses for the fresh head, the fitted head and the unigram prior
(always the most frequent training token; its loss is the unigram entropy), all on
the same masked positions. The report goes into the checkpoint's ``kbench.json``.
The result is cached under ``<data dir>/mlm_heads/`` by its settings, and is the
same on every run of the same settings on a CPU (seeded masks, order and init).
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from kbench.errors import InputError

VERSION = 1          # bump when the recipe changes: the cache key includes it


@dataclass(frozen=True)
class HeadReport:
    """Held-out masked-token accuracy and mean loss of the fresh head, the fitted head and the unigram prior."""

    positions: int
    fresh_accuracy: float
    fresh_loss: float
    fitted_accuracy: float
    fitted_loss: float
    prior_accuracy: float
    prior_loss: float


def gloss_texts(limit: int | None = None, seed: int = 0, source: str | None = None) -> list[str]:
    """Return WordNet 3.0's noun definitions and examples, de-duplicated, in a seeded order (``limit``: the first)."""
    from kbench.data.wordnet_domains import read_glosses

    seen, texts = set(), []
    for gloss in read_glosses(source):
        for text in gloss.texts:
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit else texts


def _masked_batches(model, texts: list[str], batch_size: int, seed: int, max_length: int):
    """Masked batches of ``texts`` drawn once with ``seed``: the same positions for every head scored on them."""
    from kbench.pretrain import MaskingCollator, build_corpus

    corpus = build_corpus(texts, model.tokenizer, ("word",), max_length=max_length, source="held-out glosses")
    collate = MaskingCollator(model.collate.vocab, model.tokenizer.pad_token_id, "token", seed, model.collate.rate)
    data = corpus.dataset()
    return [collate([data[i] for i in range(start, min(start + batch_size, len(data)))])
            for start in range(0, len(data), batch_size)]


@torch.no_grad()
def score_head(model, batches) -> tuple[float, float, int]:
    """Return ``(accuracy, mean loss, positions)`` of ``model``'s MLM head on the masked positions of ``batches``."""
    from kbench.train import eval_mode

    correct, loss, count = 0, 0.0, 0
    with eval_mode(model):
        for batch in batches:
            out = model(**batch)
            labels = batch["labels"][batch["labels"] != -100]
            correct += int((out["logits"].argmax(-1) == labels).sum())
            loss += float(torch.nn.functional.cross_entropy(out["logits"], labels, reduction="sum"))
            count += len(labels)
    if not count:
        raise InputError("no masked position to score the head on: give more held-out text")
    return correct / count, loss / count, count


def _prior(batches, train_batches, vocab_size: int) -> tuple[float, float]:
    """The unigram prior's accuracy and loss on ``batches``, its counts taken from ``train_batches``' masked tokens."""
    counts = torch.ones(vocab_size)                       # add-one: no held-out token has probability zero
    for batch in train_batches:
        labels = batch["labels"][batch["labels"] != -100]
        counts += torch.bincount(labels, minlength=vocab_size).float()
    log_prior = (counts / counts.sum()).log()
    top = int(counts.argmax())
    labels = torch.cat([b["labels"][b["labels"] != -100] for b in batches])
    return float((labels == top).float().mean()), float(-log_prior[labels].mean())


def cache_dir(base_model: str, steps: int, texts: int, seed: int, layers: int | None, data_dir: str | None) -> Path:
    """Return where the head of these settings is cached: ``<data dir>/mlm_heads/<settings>``."""
    from kbench.data.manifest import default_data_dir

    root = Path(data_dir) if data_dir else default_data_dir()
    name = f"{Path(base_model).name or 'embedded'}-l{layers or 'all'}-n{steps}-t{texts}-s{seed}-v{VERSION}"
    return root / "mlm_heads" / name


def warm_mlm_head(base_model: str = "embedded", steps: int = 300, texts: int = 20000, held_out: int = 400,
                  batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0, layers: int | None = None,
                  max_length: int = 64, out: str | Path | None = None, data_dir: str | None = None,
                  progress: bool = True) -> tuple[Path, HeadReport]:
    """Fit ``base_model``'s MLM head on WordNet glosses with the encoder frozen; return ``(checkpoint, report)``.

    A cached checkpoint of the same settings is returned as it is (its report read back). ``texts`` glosses
    train the head, ``held_out`` others (never trained on) score it; ``layers`` keeps the first layers only.
    """
    from kbench.pretrain import continue_pretraining, mlm_model
    from kbench.record import write_json_atomic
    from kbench.train import TrainConfig

    if steps < 1 or texts < batch_size or held_out < 1:
        raise InputError(f"need steps ≥ 1, texts ≥ one batch ({batch_size}) and held_out ≥ 1; got steps={steps}, "
                         f"texts={texts}, held_out={held_out}")
    target = Path(out) if out else cache_dir(base_model, steps, texts, seed, layers, data_dir)
    about = target / "kbench.json"
    if about.is_file() and "head_report" in json.loads(about.read_text()):
        return target, HeadReport(**json.loads(about.read_text())["head_report"])
    pool = gloss_texts(texts + held_out, seed)
    if len(pool) < texts + held_out:
        raise InputError(f"WordNet has {len(pool)} gloss texts, fewer than {texts} + {held_out}")
    train_texts, test_texts = pool[:texts], pool[texts:]
    fresh = mlm_model(base_model, "token", seed=seed, layers=layers)      # the head continue_pretraining starts from
    held = _masked_batches(fresh, test_texts, batch_size, seed + 1, max_length)
    fresh_accuracy, fresh_loss, positions = score_head(fresh, held)
    config = TrainConfig(batch_size=batch_size, learning_rate=learning_rate, max_steps=steps, seed=seed,
                         progress=progress, device="cpu" if not torch.cuda.is_available() else "auto")
    continue_pretraining(base_model, train_texts, config, target, max_length=max_length, freeze_encoder=True,
                         layers=layers, about={"recipe": "MLM head fitted, encoder frozen", "held_out": held_out,
                                              "seed": seed, "layers": layers})
    fitted = mlm_model(str(target), "token", seed=seed)
    saved = fitted.bert.state_dict()
    if any(not torch.equal(v, saved[k]) for k, v in fresh.bert.state_dict().items()):
        raise InputError("the encoder moved while the head was fitted: a parameter was left trainable")
    fitted_accuracy, fitted_loss, _ = score_head(fitted, held)
    prior_accuracy, prior_loss = _prior(held, _masked_batches(fresh, train_texts[:2000], batch_size, seed, max_length),
                                        len(fresh.tokenizer))
    report = HeadReport(positions, fresh_accuracy, fresh_loss, fitted_accuracy, fitted_loss, prior_accuracy,
                        prior_loss)
    write_json_atomic(about, {**json.loads(about.read_text()), "head_report": asdict(report)})
    return target, report
