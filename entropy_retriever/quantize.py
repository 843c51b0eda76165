"""int8 scoring on CPU: a copy of the model whose Linear layers run dynamic int8 matrix products.

Dynamic quantization stores each Linear layer's weights as int8 with one scale per tensor, and
quantizes each batch of activations on the fly; the matrix products run in fbgemm's int8
kernels and accumulate in int32. Embeddings, norms and attention stay in float32. On a 2-core
AVX2 CPU this scores 2.2x to 2.4x as many tokens per second as float32 (``benchmarks
scoring-speed``), which float32 cannot reach: it already runs near the CPU's float32 peak.

Why torch's own ``quantize_dynamic`` and not torchao's ``quantize_``: measured side by side on
the embedded model (4 x 512 tokens, one process, another job running beside it), torchao 0.18's
``Int8DynamicActivationInt8WeightConfig`` ran at 20 tokens/s in eager mode on this CPU, against
590 for ``quantize_dynamic`` and 430 for float32. torch marks ``quantize_dynamic`` as moving to
torchao; the one call here is the place to change when torchao's eager CPU path catches up.

Only the scoring model is quantized: a reader answers with the model in its own dtype.
"""

from __future__ import annotations

import copy
import threading
import warnings
import weakref

import torch
from torch import nn

from .errors import InputError

__all__ = ["INT8", "is_int8", "quantize_int8", "quantized_weights"]

INT8 = "int8"

_COPIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # float model -> its int8 copy
_GUARD = threading.Lock()


def _dynamic_linear():
    return torch.ao.nn.quantized.dynamic.Linear


def is_int8(model: nn.Module) -> bool:
    """Whether ``model`` has dynamic int8 Linear layers (made by :func:`quantize_int8`)."""
    kind = _dynamic_linear()
    return any(isinstance(m, kind) for m in model.modules())


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (float32, on CPU) with every ``nn.Linear`` as dynamic int8; the model
    itself is unchanged. Made once per model object and shared: later calls return the same copy."""
    if is_int8(model):
        return model
    try:
        parameter = next(model.parameters())
    except StopIteration:
        raise InputError("the model has no parameters, so there is nothing to quantize") from None
    if parameter.device.type != "cpu":
        raise InputError(
            f"int8 scoring runs on CPU (its kernels are fbgemm's), but the model is on {parameter.device.type}: "
            "on a GPU or NPU score in bfloat16 or float16 (dtype='auto' chooses), or move the model to CPU"
        )
    if parameter.dtype != torch.float32:
        raise InputError(f"int8 quantizes a float32 model, but this one is {parameter.dtype}: load it with dtype='float32'")
    with _GUARD:
        found = _COPIES.get(model)
        if found is not None:
            return found
        with warnings.catch_warnings():  # torch's notice that this API moves to torchao (see the module's doc)
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
        quantized.eval()
        _COPIES[model] = quantized
        return quantized


def quantized_weights(model: nn.Module):
    """``(name, tensor)`` for what a dynamic int8 layer holds outside ``parameters()``: its int8
    weights, their scales and zero points, and its bias; for hashing a model's identity."""
    kind = _dynamic_linear()
    for name, module in model.named_modules():
        if not isinstance(module, kind):
            continue
        weight = module.weight()
        yield f"{name}.weight.int8", weight.int_repr()
        if weight.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            yield f"{name}.weight.scale", torch.tensor([weight.q_scale(), float(weight.q_zero_point())], dtype=torch.float64)
        else:
            yield f"{name}.weight.scale", weight.q_per_channel_scales().to(torch.float64)
            yield f"{name}.weight.zero", weight.q_per_channel_zero_points().to(torch.float64)
        bias = module.bias()
        if bias is not None:
            yield f"{name}.bias", bias
