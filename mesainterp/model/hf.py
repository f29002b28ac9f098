"""HuggingFace models as `TransformerBridge`s, offline.

`wrap_hf_model` wraps a `transformers` causal LM already in memory; `load_hf_dir`
loads one saved with `save_pretrained` (config.json + safetensors) and wraps it.
Neither touches the network: both go through TransformerLens's public
`TransformerBridge.boot_transformers(..., hf_model=module)`, which reuses the
module's own config. That route only reaches the hub for a tokenizer, so one is
always handed over: the directory's own, the caller's, or a placeholder whose
tokens are `<0>`, `<1>`, ... (the toolkit feeds token ids, never text).

The bridge replaces the module's submodules in place; wrap a module once.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError
from mesainterp.model.placement import model_device, model_dtype

__all__ = [
    "HF_PICKLE_SUFFIXES",
    "hf_random_twin",
    "load_hf_dir",
    "placeholder_tokenizer",
    "wrap_hf_model",
]

# Weight files that are Python pickles under another name; never loaded.
HF_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# The analyses assume a decoder-only LM with an unembedding: these are its class names.
_CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def placeholder_tokenizer(vocab_size: int, *, bos_id: int = 0, eos_id: int = 0) -> Any:
    """A word-level tokenizer over `<0>` .. `<vocab_size-1>`, built in memory.

    Its special tokens are ids inside the vocabulary, so the bridge adds no tokens.
    `add_bos_token` and `name_or_path` are set because TransformerLens otherwise
    re-fetches the tokenizer by name to switch BOS on.
    """
    if vocab_size <= 0:
        raise MesaInterpError(
            f"placeholder tokenizer: vocab_size must be positive, got {vocab_size}"
        )
    vocab = {f"<{i}>": i for i in range(vocab_size)}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token=f"<{eos_id}>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=f"<{bos_id}>",
        eos_token=f"<{eos_id}>",
        pad_token=f"<{eos_id}>",
        unk_token=f"<{eos_id}>",
        add_bos_token=True,
        name_or_path="mesainterp-placeholder",
    )


def _special_id(config: Any, name: str) -> int:
    value = getattr(config, name, None)
    if isinstance(value, list):
        value = value[0] if value else None
    vocab = int(config.vocab_size)
    return int(value) if isinstance(value, int) and 0 <= value < vocab else 0


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _already_wrapped(module: torch.nn.Module) -> bool:
    """Whether a bridge has already replaced this module's submodules with its components."""
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    return any(isinstance(sub, GeneralizedComponent) for sub in module.modules())


def wrap_hf_model(
    module: torch.nn.Module,
    *,
    tokenizer: Any = None,
    model_name: str | None = None,
) -> TransformerBridge:
    """A `TransformerBridge` around an in-memory HuggingFace causal LM, in eval mode.

    module:     a `transformers.PreTrainedModel` of an architecture TransformerLens
                supports (GPT-2, GPT-NeoX, Llama, Mistral, Qwen2, Gemma, ...).
    tokenizer:  optional; default a placeholder over the model's vocabulary. A tokenizer
                built in memory (`PreTrainedTokenizerFast(tokenizer_object=...)`) works too.

    Save the module (`save_pretrained`) before wrapping it: the bridge rewires it in place.
    model_name: recorded on the bridge's config (default `hf/<ArchitectureName>`).

    >>> import transformers
    >>> config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=11, n_positions=8)
    >>> model = mesainterp.wrap_hf_model(transformers.GPT2LMHeadModel(config))
    >>> model.cfg.model_name, mesainterp.model_shape(model).source
    ('hf/GPT2LMHeadModel', 'hf')
    >>> model(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 11])
    """
    if not isinstance(module, transformers.PreTrainedModel):
        raise MesaInterpError(
            f"wrap_hf_model: expected a transformers PreTrainedModel, got {type(module).__name__}"
        )
    kind = type(module).__name__
    if not kind.endswith(_CAUSAL_LM_SUFFIXES):
        raise MesaInterpError(
            f"wrap_hf_model: {kind} is not a causal language model "
            "(expected a *ForCausalLM or *LMHeadModel class)"
        )
    if _already_wrapped(module):
        raise MesaInterpError(
            f"wrap_hf_model: this {type(module).__name__} is already wrapped "
            "(the bridge rewires it in place); reuse that bridge"
        )
    config = module.config
    if tokenizer is None:
        tokenizer = placeholder_tokenizer(
            int(config.vocab_size),
            bos_id=_special_id(config, "bos_token_id"),
            eos_id=_special_id(config, "eos_token_id"),
        )
    # A name with a slash is never one of TransformerLens's deprecated aliases.
    name = model_name or f"hf/{type(module).__name__}"
    with tempfile.TemporaryDirectory() as scratch:
        # TransformerLens re-reads a tokenizer from its `name_or_path` to switch BOS on;
        # one built in memory has none, so it is given a local copy to re-read.
        if "name_or_path" not in getattr(tokenizer, "init_kwargs", {"name_or_path": ""}):
            tokenizer.save_pretrained(scratch)
            tokenizer = transformers.AutoTokenizer.from_pretrained(scratch, local_files_only=True)
        try:
            bridge = TransformerBridge.boot_transformers(  # type: ignore[attr-defined]
                name,
                hf_model=module,
                tokenizer=tokenizer,
                device=model_device(module),
                dtype=model_dtype(module),
            )
        except (ValueError, NotImplementedError, AttributeError, KeyError, TypeError) as err:
            raise MesaInterpError(
                f"wrap_hf_model: TransformerLens cannot wrap {kind}: {_first_line(err)}"
            ) from err
    bridge.eval()
    return bridge


def _weight_files(path: Path) -> tuple[list[Path], list[Path]]:
    safetensors = sorted(path.glob("*.safetensors"))
    pickles = sorted(p for p in path.iterdir() if p.suffix in HF_PICKLE_SUFFIXES)
    return safetensors, pickles


def load_hf_dir(
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> TransformerBridge:
    """Load a `save_pretrained` directory (config.json + *.safetensors) and wrap it.

    Local files only. Weights must be safetensors: a directory whose weights are
    pickles (pytorch_model.bin, *.pt, ...) is refused by name; where both are present
    only the safetensors are read. A tokenizer saved alongside is used, else a
    placeholder. Remote code is never run.

    >>> import tempfile, pathlib, transformers
    >>> path = pathlib.Path(tempfile.mkdtemp())
    >>> transformers.GPT2LMHeadModel(transformers.GPT2Config(
    ...     n_layer=1, n_embd=16, n_head=2, vocab_size=11, n_positions=8)).save_pretrained(path)
    >>> sorted(p.name for p in path.iterdir())
    ['config.json', 'generation_config.json', 'model.safetensors']
    >>> model = mesainterp.load_hf_dir(path)
    >>> mesainterp.model_shape(model).architecture, model(torch.tensor([[1, 2]])).shape
    ('GPT2LMHeadModel', torch.Size([1, 2, 11]))
    """
    where = Path(path)
    if not where.is_dir():
        raise MesaInterpError(f"{where}: not a directory (expected a save_pretrained folder)")
    if not (where / "config.json").is_file():
        raise MesaInterpError(f"{where}: no config.json (expected a save_pretrained folder)")
    safetensors, pickles = _weight_files(where)
    if not safetensors:
        if pickles:
            names = ", ".join(p.name for p in pickles)
            raise MesaInterpError(
                f"{where}: weights are Python pickles ({names}), which mesainterp never loads "
                "(they can run code); save them as safetensors "
                "(model.save_pretrained(path, safe_serialization=True))"
            )
        raise MesaInterpError(f"{where}: no *.safetensors weights")
    from mesainterp.safe_read import looks_like_pickle

    for file in safetensors:
        with open(file, "rb") as handle:
            if looks_like_pickle(handle.read(4)):
                raise MesaInterpError(f"{file}: is a pickle named .safetensors; refusing to load")
    try:
        config = transformers.AutoConfig.from_pretrained(
            where, local_files_only=True, trust_remote_code=False
        )
        module: Any = transformers.AutoModelForCausalLM.from_pretrained(
            where,
            config=config,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            dtype=dtype or torch.float32,
            # Eager attention exposes the pattern to hooks (TransformerLens forces it too).
            attn_implementation="eager",
        )
    except (OSError, ValueError, KeyError) as err:
        raise MesaInterpError(
            f"{where}: cannot load as a HuggingFace causal LM: {_first_line(err)}"
        ) from err
    if device is not None:
        module = module.to(device)
    module.eval()
    tokenizer = None
    if any((where / name).is_file() for name in _TOKENIZER_FILES):
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, local_files_only=True)
    return wrap_hf_model(module, tokenizer=tokenizer, model_name=str(where))


def hf_random_twin(model: TransformerBridge, *, seed: int) -> TransformerBridge:
    """A wrapped HuggingFace model's architecture rebuilt from its config with the
    architecture's own initialisation under `seed`, wrapped the same way."""
    inner = model.original_model
    if not isinstance(inner, transformers.PreTrainedModel):
        raise MesaInterpError(
            f"hf_random_twin: the bridge wraps {type(inner).__name__}, not a transformers model"
        )
    config = copy.deepcopy(inner.config)
    # Fork the RNG so building the twin leaves the caller's random stream untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        built: Any = type(inner)(config)
    module = built.to(device=model_device(inner), dtype=model_dtype(inner)).eval()
    name = getattr(model.cfg, "model_name", None)
    return wrap_hf_model(
        module,
        tokenizer=model.tokenizer,
        model_name=f"{name}-random-init-{seed}" if name else None,
    )
