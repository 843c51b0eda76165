"""Everything to measure on a CUDA GPU, in one command under 10 minutes (``--tiny``: the same on CPU)."""

from __future__ import annotations

import torch

from benchmarks.common import save

HELP = "on a GPU: backend correctness, SelfExtend/LM-Infinite vs SDPA on a 7B-shaped model, scoring throughput"


def add_arguments(p) -> None:
    p.add_argument("--tiny", action="store_true", help="a tiny model on CPU, short lengths: the same code, for the tests")
    p.add_argument("--lengths", type=int, nargs="+", default=None, help="prefill lengths (default 16384 32768; tiny: 300 600)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--decode-steps", type=int, default=16)
    p.add_argument("--score-tokens", type=int, default=None, help="tokens scored for the throughput (default 200k; tiny 4k)")


def run(args) -> None:
    from transformers import AutoTokenizer

    from benchmarks import gpu
    from entropy_retriever.models import cache_dir, embedded_model_path

    if args.tiny:
        device, dtype, shape = torch.device("cpu"), torch.float32, gpu.TINY
        lengths, score_tokens, batch_tokens = args.lengths or [300, 600], args.score_tokens or 4000, 4096
    else:
        if not torch.cuda.is_available():
            raise SystemExit("bench gpu needs a CUDA GPU (use --tiny for the CPU version)")
        device, dtype, shape = torch.device("cuda"), torch.bfloat16, gpu.LLAMA2_7B
        lengths, score_tokens, batch_tokens = args.lengths or [16384, 32768], args.score_tokens or 200_000, 65536
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (tiny model)"
    checks = gpu.correctness(device)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    model = gpu.build_model(shape, len(tokenizer), device, dtype)
    rows = gpu.speed(model, lengths, args.repeats, args.decode_steps)
    throughput = gpu.scoring_throughput(model, tokenizer, score_tokens, 512 if not args.tiny else 64, batch_tokens)
    choice = gpu.choose_backend(rows)
    text = gpu.table(name, checks, rows, throughput)
    if device.type == "cuda":  # backend="auto" on this GPU follows the measurement from now on
        gpu.save_choice(name, choice, cache_dir() / "attention-backend.json")
        text += f"\n\nbackend='auto' on {name} now uses {choice['backend']} (faster prefill in this run)."
    save("gpu", vars(args) | {"device": name, "dtype": str(dtype), "shape": shape},
         rows, text, {"checks": checks, "throughput": throughput, "choice": choice})
    if not all(c["ok"] for c in checks):
        raise SystemExit("a backend disagrees with the oracle: see the table")
