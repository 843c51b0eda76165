"""The landmark-attention passkey task (epfml/landmark-attention, as LongLoRA and SelfExtend use it),
for demos, tests and the benchmarks.

A task description, then filler ("The grass is green. ...") with one information line
hidden at a chosen depth, then the final question. Lengths are in tokens of a given
tokenizer; depth is the fraction of the filler that comes before the information line.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

TASK = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
    "I will quiz you about the important information there."
)
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
INFORMATION = "The pass key is {key}. Remember it. {key} is the pass key."
FINAL_QUESTION = "What is the pass key? The pass key is"
QUESTION = "What is the pass key?"


@dataclass(frozen=True)
class PasskeySample:
    context: str  # task description, filler and the information line
    question: str  # the landmark final question
    key: str
    depth: float
    n_tokens: int  # of context + "\n" + question, in the tokenizer given

    @property
    def prompt(self) -> str:
        """The whole landmark prompt, as a bare model reads it."""
        return f"{self.context}\n{self.question}"


def make_passkey(tokenizer, n_tokens: int, depth: float, seed: int) -> PasskeySample:
    """A landmark passkey prompt of about ``n_tokens`` tokens with the key at ``depth``."""
    rng = random.Random(seed)
    key = str(rng.randint(1, 50000))
    filler_tokens = len(tokenizer(GARBAGE + " ", add_special_tokens=False)["input_ids"])
    overhead = len(tokenizer(f"{TASK}\n{INFORMATION.format(key=key)}\n{FINAL_QUESTION}")["input_ids"])
    repeats = max(1, (n_tokens - overhead) // filler_tokens)
    before = round(repeats * depth)
    garbage = [GARBAGE] * repeats
    context = "\n".join(
        [TASK, " ".join(garbage[:before]), INFORMATION.format(key=key), " ".join(garbage[before:])]
    )
    total = len(tokenizer(f"{context}\n{FINAL_QUESTION}")["input_ids"])
    return PasskeySample(context, FINAL_QUESTION, key, depth, total)


def passkey_correct(output: str, key: str) -> bool:
    """Landmark's rule: the first integer in the output is the key."""
    found = re.search(r"\d+", output)
    return found is not None and found.group(0) == key


def spread_depths(trials: int) -> list[float]:
    """``trials`` depths spread evenly over (0, 1)."""
    return [(i + 0.5) / trials for i in range(trials)]
