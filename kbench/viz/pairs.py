"""Views of the sentence-pair objectives: what StructBERT's collator shuffles, what each model puts back, and a
pair with its swap scored by each model (notebooks 17 and 18). Pure functions to self-contained HTML."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

import torch

from kbench.errors import InputError
from kbench.text.masking import IGNORE

MASKED, SHUFFLED, RIGHT, WRONG = "#d9d9d9", "#f7c873", "#b7e1b0", "#f4a6a6"
_CELL = "display:inline-block;text-align:center;padding:1px 4px;margin:0 1px;border-radius:3px;vertical-align:top;"


def token_cell(top: str, bottom: str = "", background: str = "", border: str = "") -> str:
    """One token as an inline box: ``top`` over ``bottom`` (a target, a number), on ``background``, with ``border``
    (the token views of notebooks 17-19)."""
    style = _CELL + (f"background:{background};" if background else "") + (f"border:{border};" if border else "")
    under = f"<br><span style='font-size:80%;color:#333'>{escape(bottom)}</span>" if bottom else ""
    return f"<span style='{style}'>{escape(top)}{under}</span>"


def shuffled_pair_html(tokenizer, batch: dict, row: int) -> str:
    """One row of a StructBERT batch: masked tokens grey, shuffled trigram tokens orange with the original
    token under each (the word objective's target)."""
    if "word_labels" not in batch:
        raise InputError("this batch has no word_labels: build it with StructBERT's WordStructureCollator")
    ids = batch["input_ids"][row].tolist()
    labels, words = batch["labels"][row].tolist(), batch["word_labels"][row].tolist()
    cells = []
    for index, token_id in enumerate(ids):
        if token_id == tokenizer.pad_token_id:
            break
        token = tokenizer.convert_ids_to_tokens(token_id)
        if words[index] != IGNORE:
            cells.append(token_cell(token, tokenizer.convert_ids_to_tokens(words[index]), SHUFFLED))
        elif labels[index] != IGNORE:
            cells.append(token_cell(token, tokenizer.convert_ids_to_tokens(labels[index]), MASKED))
        else:
            cells.append(token_cell(token))
    legend = (f"<div style='font-size:85%;color:#444;margin-top:4px'><span style='background:{MASKED};padding:0 5px'>"
              f"masked: MLM target below</span> <span style='background:{SHUFFLED};padding:0 5px'>shuffled trigram: "
              "the word objective's target below</span></div>")
    return f"<div style='line-height:2.2'>{''.join(cells)}</div>{legend}"


@torch.no_grad()
def restoration_html(models: dict, item: dict, tokenizer, labels: dict[str, str] | None = None) -> str:
    """A shuffled held-out sentence (from ``shuffled_sentences``) and, one row per model, its top prediction at
    each moved position: green where it is the token that was there, red where not."""
    from kbench.train import eval_mode

    labels = labels or {}
    shuffled, original, moved = item["shuffled"], item["ids"], set(item["positions"])
    tokens = tokenizer.convert_ids_to_tokens(shuffled.tolist())
    head = "".join(token_cell(t, tokenizer.convert_ids_to_tokens(int(original[i])) if i in moved else "",
                         SHUFFLED if i in moved else "") for i, t in enumerate(tokens))
    rows = [f"<tr><td style='padding-right:8px'>input (original under each moved token)</td><td>{head}</td></tr>"]
    for name, model in models.items():
        device = next(model.parameters()).device
        with eval_mode(model):
            logits = model(torch.as_tensor(shuffled[None], device=device))["logits"][0]
        predicted = logits.argmax(-1).cpu().numpy()
        cells = []
        for i, token in enumerate(tokens):
            if i in moved:
                guess = tokenizer.convert_ids_to_tokens(int(predicted[i]))
                cells.append(token_cell(guess, "", RIGHT if predicted[i] == original[i] else WRONG))
            else:
                cells.append(token_cell("·"))
        rows.append(f"<tr><td style='padding-right:8px'>{escape(labels.get(name, name))}</td>"
                    f"<td>{''.join(cells)}</td></tr>")
    return f"<table style='line-height:2.2'>{''.join(rows)}</table>"


def pair_probabilities_html(pair: tuple[str, str], probabilities: dict[str, dict[str, float]], caption: str = ""
                            ) -> str:
    """A pair and, one row per model, each of its classes with its probability as a bar (models may have
    different classes: NSP's two, PN's three); the most probable class of each row in dark blue."""
    if not probabilities:
        raise InputError("no model's probabilities to show")
    rows = []
    for name, values in probabilities.items():
        if not values:
            raise InputError(f"{name}: no class probabilities")
        best = max(values, key=values.get)
        cells = "".join(
            f"<td style='padding:2px 8px;white-space:nowrap'>{escape(c)} <div style='background:"
            f"{'#4c78a8' if c == best else '#9ecae9'};width:{max(1, int(80 * v))}px;height:10px;"
            f"display:inline-block'></div> {v:.2f}</td>" for c, v in values.items())
        rows.append(f"<tr><td style='padding-right:8px'>{escape(name)}</td>{cells}</tr>")
    title = f"<div><b>A</b>: {escape(pair[0])}<br><b>B</b>: {escape(pair[1])}</div>"
    cap = f"<caption style='text-align:left'>{escape(caption)}</caption>" if caption else ""
    return f"{title}<table>{cap}{''.join(rows)}</table>"
