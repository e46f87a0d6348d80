"""K-Adapter's adapters: knowledge plugged in *beside* a frozen encoder, one adapter per kind of knowledge.

Wang, Tang, Duan, Wei, Huang, Ji, Cao, Jiang, Zhou. *K-Adapter: Infusing
Knowledge into Pre-Trained Models with Adapters.* Findings of ACL 2021.
https://arxiv.org/abs/2002.01808 — code: https://github.com/microsoft/K-Adapter.

The mechanism (§3, Figure 2), read with the authors' ``Adapter`` and
``AdapterModel`` classes where the paper leaves a detail open:

- An **adapter layer** maps its input ``x`` to ``x + up(T(down(x)))``: a
  down-projection to the adapter's width, ``N`` transformer layers (``N = 2``),
  an up-projection back, and the skip connection. Only the two projections
  are re-initialised (normal, std 0.0002, zero biases — the code's
  ``adapter_initializer_range``, which its ``Adapter.init_weights`` gives
  ``down_project`` and ``up_project`` and nothing else), so a fresh adapter
  layer is nearly the identity; the inner transformer layers keep PyTorch's
  default init (Kaiming-uniform linear weights, LayerNorm 1 and 0), as the
  code's inner ``BertEncoder``, built inside a plain ``nn.Module`` that never
  calls BERT's initialiser, does.
- The layers **tap** the frozen base: layer ``k`` reads the base's hidden state
  at its tap plus the previous adapter layer's output (``hidden[tap_k] + out_{k-1}``,
  ``out_0 = 0``). The paper taps RoBERTa-large's states 0, 11 and 22 (the code
  ``[0, 11, 23]``), 0 being the embedding output: :func:`default_taps` spreads
  three taps over any depth the same way. The code can also add an earlier
  adapter layer's output every ``adapter_skip_layers`` layers; the paper does
  not describe it and the authors' run scripts turn it off
  (``--adapter_skip_layers 0``), so it is left out.
- The **output** is the base's last hidden state and the last adapter output,
  concatenated and projected back to the base's width (the code's
  ``com_dense``); with several adapters (factual + linguistic) their outputs are
  concatenated with the base's, as the paper's combination. The projection's
  init is ours: the code leaves ``com_dense`` (and downstream ``task_dense``)
  at PyTorch's default, a random map over the concatenation in which the
  adapters' outputs — mostly the base's tapped states, carried through the skip
  connections — weigh in beside the base's own features from the first step,
  trained or not. Here the base's part of the projection starts as the identity and
  the adapters' parts at zero: with any adapters, trained or not, the features
  start as the base's last state, and every variant starts from the base alone
  (tested); what an adapter adds is learned.
- The base is never changed: its parameters are frozen and the adapters read
  its states through :class:`~kbench.encoders.HookedEncoder`'s hidden states (no
  fork). An adapter is saved and loaded alone (:func:`save_adapter`,
  :func:`load_adapter`).

Deviation, stated: the code runs the adapter's transformer layers with an
all-ones attention mask (padding attended to); here they take the input's own
mask, so a padded batch gives each sentence the output it has alone (tested).
"""
from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import BertConfig
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.bert.modeling_bert import BertLayer

from kbench.encoders import HookedEncoder
from kbench.errors import InputError
from kbench.train import eval_mode

INIT_STD = 0.0002          # the code's adapter_initializer_range
LAYERS = 2                 # N transformer layers per adapter layer (§3.2)


def default_taps(depth: int) -> tuple[int, ...]:
    """Return three taps spread as the paper's 0, 11, 22 of 24: the embedding output, the middle, one before the end."""
    if depth < 1:
        raise InputError(f"a base of depth {depth} has no layers to tap")
    return tuple(sorted({0, round(depth * 11 / 24), max(1, depth - 2)}))


class AdapterLayer(nn.Module):
    """``x + up(T(down(x)))``: down-projection, ``layers`` BERT layers at the adapter's width, up-projection."""

    def __init__(self, hidden: int, width: int, layers: int = LAYERS, heads: int = 4, std: float = INIT_STD):
        super().__init__()
        if width % heads:
            raise InputError(f"the adapter width {width} must be a multiple of its {heads} attention heads")
        self.config = BertConfig(hidden_size=width, num_attention_heads=heads, intermediate_size=4 * width,
                                 num_hidden_layers=layers)
        self.config._attn_implementation = "eager"
        self.down = nn.Linear(hidden, width)
        self.layers = nn.ModuleList(BertLayer(self.config) for _ in range(layers))
        self.up = nn.Linear(width, hidden)
        for projection in (self.down, self.up):           # the projections: near zero (Adapter.init_weights)
            nn.init.normal_(projection.weight, std=std)
            nn.init.zeros_(projection.bias)

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        inner = self.down(states)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=inner, attention_mask=attention_mask)
        for layer in self.layers:
            inner = layer(inner, mask)
            inner = inner[0] if isinstance(inner, tuple) else inner
        return states + self.up(inner)


class Adapter(nn.Module):
    """One kind of knowledge: adapter layers at ``taps`` of a base of ``depth`` layers, each fed the previous one."""

    def __init__(self, hidden: int, depth: int, taps: Sequence[int] | None = None, width: int | None = None,
                 layers: int = LAYERS, heads: int = 4, name: str = "adapter"):
        super().__init__()
        taps = tuple(default_taps(depth) if taps is None else taps)
        if not taps:
            raise InputError("an adapter needs at least one tap")
        if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in taps):
            raise InputError(f"taps must be ints (states of the base), got {list(taps)!r}")
        taps = tuple(int(t) for t in taps)                # numpy ints too: the spec is written as JSON
        bad = [t for t in taps if not 0 <= t <= depth]
        if bad:
            raise InputError(f"tap {bad[0]!r} is beyond the base: a base of {depth} layers has states 0 "
                             f"(embeddings) to {depth}")
        if list(taps) != sorted(set(taps)):
            raise InputError(f"taps must rise strictly from the bottom of the base, got {list(taps)}")
        self.taps, self.depth, self.name = taps, depth, name
        self.spec = dict(hidden=hidden, depth=depth, taps=list(taps), width=width or hidden, layers=layers,
                         heads=heads, name=name)
        self.layers = nn.ModuleList(AdapterLayer(hidden, width or hidden, layers, heads) for _ in taps)

    def forward(self, hidden_states: Sequence[torch.Tensor], attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return the last adapter layer's output from the base's ``hidden_states`` (embedding output first)."""
        if len(hidden_states) != self.depth + 1:
            raise InputError(f"expected the {self.depth + 1} hidden states of a {self.depth}-layer base, "
                             f"got {len(hidden_states)}")
        last = torch.zeros_like(hidden_states[-1])
        for tap, layer in zip(self.taps, self.layers):
            last = layer(hidden_states[tap] + last, attention_mask)
        return last


class KAdapterEncoder(nn.Module):
    """A base (frozen unless ``train_base``) and its adapters: ``Linear([h_base; h_adapter_1; ...]) -> hidden``.

    ``train_base=True`` leaves the base's weights trainable and runs it with
    gradients (the authors' downstream scripts, ``--freeze_bert ""``); the
    caller passes a base it may change.
    """

    def __init__(self, base: HookedEncoder, adapters: Sequence[Adapter], *, train_base: bool = False):
        super().__init__()
        hidden, depth = base.bert.config.hidden_size, base.bert.config.num_hidden_layers
        for adapter in adapters:
            if adapter.depth != depth or adapter.spec["hidden"] != hidden:
                raise InputError(f"adapter {adapter.name!r} was built for a {adapter.depth}-layer base of width "
                                 f"{adapter.spec['hidden']}, this base has {depth} layers of width {hidden}")
        self.base, self.train_base = base, train_base
        if not train_base:
            for parameter in self.base.parameters():
                parameter.requires_grad_(False)
        self.adapters = nn.ModuleList(adapters)
        self.combine = nn.Linear(hidden * (1 + len(adapters)), hidden)
        with torch.no_grad():          # the base's part starts as the identity, the adapters' parts at zero
            self.combine.weight.zero_()
            self.combine.weight[:, :hidden] = torch.eye(hidden)
            self.combine.bias.zero_()

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.train_base:
            self.base.eval()           # frozen: no dropout in the base either, so its states are what it computes
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                hidden_states: Sequence[torch.Tensor] | None = None, **kw) -> torch.Tensor:
        """Return the combined features ``(B, L, hidden)``.

        ``hidden_states``: the frozen base's states for these inputs, computed
        once beforehand (:meth:`base_states`); the base is then not run again —
        a frozen base gives the same states every epoch, so the adapters can
        train on them at the cost of the adapters alone.
        """
        if hidden_states is None:
            context = {"hidden_states": []}
            with torch.set_grad_enabled(self.train_base and torch.is_grad_enabled()):
                self.base(input_ids, attention_mask=attention_mask, context=context, **kw)
            hidden_states = context["hidden_states"]
        states = list(hidden_states)
        depth = self.base.bert.config.num_hidden_layers
        if len(states) != depth + 1:
            raise InputError(f"expected the {depth + 1} hidden states of the {depth}-layer base, got {len(states)}")
        last = states[-1]
        return self.combine(torch.cat([last, *(a(states, attention_mask) for a in self.adapters)], dim=-1))


@torch.no_grad()
def base_states(base: HookedEncoder, rows: Sequence[torch.Tensor], batch_size: int = 64) -> list[torch.Tensor]:
    """Return, for each 1-D row of token ids, the frozen base's hidden states ``(depth + 1, len, hidden)``.

    Computed in padded batches in eval mode; each row keeps its own length.
    """
    out = []
    with eval_mode(base):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.long)
            for i, row in enumerate(chunk):
                ids[i, :len(row)], mask[i, :len(row)] = torch.as_tensor(row), 1
            context = {"hidden_states": []}
            base(ids, attention_mask=mask, context=context)
            stacked = torch.stack(context["hidden_states"], dim=1)
            out += [stacked[i, :, :len(row)].clone() for i, row in enumerate(chunk)]
    return out


def save_adapter(adapter: Adapter, directory: str | Path) -> Path:
    """Write ``adapter`` alone (its weights and its shape) to ``directory``; the base is not written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, str(directory / "adapter.safetensors"))
    (directory / "adapter.json").write_text(json.dumps(adapter.spec, indent=2))
    return directory


def load_adapter(directory: str | Path) -> Adapter:
    """Return the adapter :func:`save_adapter` wrote to ``directory``."""
    directory = Path(directory)
    if not (directory / "adapter.json").is_file() or not (directory / "adapter.safetensors").is_file():
        raise InputError(f"{directory} holds no saved adapter (adapter.json and adapter.safetensors)")
    adapter = Adapter(**json.loads((directory / "adapter.json").read_text()))
    try:
        adapter.load_state_dict(load_file(str(directory / "adapter.safetensors")))
    except RuntimeError as error:                   # weights of another shape or names than adapter.json says
        raise InputError(f"{directory}: adapter.safetensors does not fit the adapter adapter.json describes "
                         f"({str(error).splitlines()[0]})") from error
    return adapter
