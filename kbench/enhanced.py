"""What has been enhanced? Two encoders — a base and its knowledge-enhanced variant — read the same sentence.

After Hou, Fu, Zhou, Yuan, Hong, Zhang, Yang, Zhang, Song, Kong. *What Has Been
Enhanced in my Knowledge-Enhanced Language Model?* Findings of EMNLP 2022
(arXiv 2202.00964), whose question is which part of a model knowledge
integration changed. Three views answer it for one sentence and one pair of
models that share a tokenizer and a depth (a base and the same base after
continued pretraining, adapter training or fine-tuning):

- **states**: the cosine similarity of the two models' hidden state of every
  token at every layer (the embedding output first) — where in depth, and at
  which words, the enhanced model's representation moved;
- **attention**: for every layer and head, how far the attention distributions
  moved, as the total variation distance ``1/2 sum_j |a_ij - b_ij|`` averaged
  over the query tokens ``i`` (0: the same attention, 1: disjoint);
- **predictions**: for models with an MLM head, the top tokens each predicts at
  every ``[MASK]`` (:func:`kbench.pretrain.top_predictions`).

A change below the first changed layer is impossible (a layer reads only the
layers beneath it): the tests check that a perturbed top layer leaves every
lower row at similarity 1 and attention shift 0.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from kbench.errors import InputError
from kbench.train import eval_mode


@dataclass
class Enhancement:
    """The comparison of two encoders on one sentence (see the module docstring)."""

    sentence: str
    tokens: list[str]
    similarity: np.ndarray             # (layers + 1, tokens): cosine of the two states, embedding output first
    attention_shift: np.ndarray        # (layers, heads): total variation between attention rows, mean over queries
    predictions: dict[str, list[list[tuple[str, float]]]] = field(default_factory=dict)

    def changed_layers(self, tolerance: float = 1e-5) -> list[int]:
        """Return the layers (0 = embeddings) at which some token's state moved by more than ``tolerance``."""
        return [layer for layer, row in enumerate(self.similarity) if (1 - row).max() > tolerance]


@contextlib.contextmanager
def _eager(model: nn.Module):
    """Run ``model`` with eager attention (the only kind that returns its weights), then restore its own."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        model.set_attn_implementation(before)


@torch.no_grad()
def _read(model: nn.Module, batch: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    with eval_mode(model), _eager(model):
        out = model(**batch, output_hidden_states=True, output_attentions=True)
    return [h[0] for h in out.hidden_states], [a[0] for a in out.attentions]


def _differences(states_a, states_b, attention_a, attention_b) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-layer cosine of two models' token states and the total variation between their attention
    rows, mean over the queries (see the module docstring)."""
    similarity = np.stack([nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1).numpy()
                           for a, b in zip(states_a, states_b)])
    shift = np.stack([(0.5 * (a - b).abs().sum(-1)).mean(-1).numpy() for a, b in zip(attention_a, attention_b)])
    return similarity, shift


def compare_encoders(base: nn.Module, enhanced: nn.Module, tokenizer, sentence: str, lms: dict | None = None,
                     k: int = 5, max_length: int = 64) -> Enhancement:
    """Return how ``enhanced`` reads ``sentence`` differently from ``base`` (two ``BertModel`` s, one tokenizer).

    ``lms`` maps a name to an MLM model (``BertForMaskedLM``) whose top-``k``
    predictions at each ``[MASK]`` of the sentence are reported.
    """
    if not sentence.strip():
        raise InputError("give a sentence to compare the two models on")
    for name, model in (("base", base), ("enhanced", enhanced)):
        if model.config.vocab_size != len(tokenizer):
            raise InputError(f"the {name} model has a vocabulary of {model.config.vocab_size} tokens, the tokenizer "
                             f"{len(tokenizer)}: compare models that share their tokenizer")
    if base.config.hidden_size != enhanced.config.hidden_size:
        raise InputError(f"the models differ in width ({base.config.hidden_size} vs {enhanced.config.hidden_size}): "
                         "compare a base with its own variant")
    if base.config.num_hidden_layers != enhanced.config.num_hidden_layers:
        raise InputError(f"the models differ in depth ({base.config.num_hidden_layers} vs "
                         f"{enhanced.config.num_hidden_layers} layers): compare a base with its own variant")
    batch = dict(tokenizer(sentence, return_tensors="pt", truncation=True, max_length=max_length))
    batch.pop("token_type_ids", None)
    states_a, attention_a = _read(base, batch)
    states_b, attention_b = _read(enhanced, batch)
    similarity, shift = _differences(states_a, states_b, attention_a, attention_b)
    predictions = {}
    if lms:
        from kbench.pretrain import top_predictions

        if tokenizer.mask_token not in sentence:
            raise InputError(f"predictions are asked for: write {tokenizer.mask_token} where the models should predict")
        predictions = {name: top_predictions(lm, tokenizer, sentence, k) for name, lm in lms.items()}
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    return Enhancement(sentence, tokens, similarity, shift, predictions)


def _hooked_encoder(model: nn.Module):
    from kbench.encoders import HookedEncoder

    return next((m for m in model.modules() if isinstance(m, HookedEncoder)), None)


@torch.no_grad()
def read_own_input(model: nn.Module, encoder: nn.Module, text) -> tuple[torch.Tensor, list, list]:
    """Run a classifier on ``text`` through its own input path (``model.dataset`` then ``model.collate``: ERNIE's
    marks and entities, KnowBert's candidates) and return its input ids with the states and attention of its text
    ``encoder`` (a ``BertModel``): the embedding output and every layer's output (after any fusion module), and
    every layer's attention over the tokens."""
    batch = model.collate([model.dataset([text], [0])[0]])
    batch.pop("labels", None)
    states, attention, handles = [], [], []
    hooked = _hooked_encoder(model)
    if hooked is not None:   # the states a fusing encoder carries on with, not the bare layers' outputs
        def give_list(_module, args, kwargs):
            context = kwargs.get("context")
            if context is None:
                raise InputError("this model's hooked encoder is called without a context to read its states from")
            context["hidden_states"] = states
        handles.append(hooked.register_forward_pre_hook(give_list, with_kwargs=True))
    else:
        handles.append(encoder.embeddings.register_forward_hook(lambda _m, _a, out: states.append(out)))
        handles += [layer.register_forward_hook(lambda _m, _a, out: states.append(out[0] if isinstance(out, tuple)
                                                                                 else out))
                    for layer in encoder.encoder.layer]
    handles += [layer.attention.self.register_forward_hook(lambda _m, _a, out: attention.append(out[1]))
                for layer in encoder.encoder.layer]
    try:
        with eval_mode(model), _eager(encoder):
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    return batch["input_ids"][0], [s[0] for s in states], [a[0] for a in attention]


def compare_on_own_input(base: nn.Module, enhanced: nn.Module, text, encoders: tuple[nn.Module, nn.Module],
                         tokens_of, sentence: str = "") -> Enhancement:
    """Return how ``enhanced`` reads ``text`` differently from ``base``, each through its own input path
    (:func:`read_own_input`): two classifiers that read the same tokens (ERNIE and plain BERT on ERNIE's marked
    input; two seeds of one method), their text encoders ``encoders``, and ``tokens_of(ids)`` naming the tokens."""
    ids_a, states_a, attention_a = read_own_input(base, encoders[0], text)
    ids_b, states_b, attention_b = read_own_input(enhanced, encoders[1], text)
    if not torch.equal(ids_a, ids_b):
        raise InputError("the two models read different tokens for this text: compare models that share an input")
    if len(states_a) != len(states_b):
        raise InputError(f"the models differ in depth ({len(states_a) - 1} vs {len(states_b) - 1} layers)")
    similarity, shift = _differences(states_a, states_b, attention_a, attention_b)
    tokens = list(tokens_of(ids_a.tolist()))
    return Enhancement(sentence or " ".join(tokens), tokens, similarity, shift)
