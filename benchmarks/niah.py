"""Needle in a haystack (gkamradt/LLMTest_NeedleInAHaystack), single needle and three-needle pizza.

The haystack is Paul Graham's essays (``niah/PaulGrahamEssays`` in the evaluation data),
concatenated in name order until long enough, trimmed to the target length less a 200-token
buffer and the needles, each needle inserted at its depth and moved back to the previous
sentence end, as the original does. The original scores with an LLM judge; offline, the
score is the share of the answer's key phrases found in the output (case-insensitive).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SYSTEM = "You are a helpful AI bot that answers questions for a user. Keep your response short and direct"
SUFFIX = " Don't give information outside the document or repeat your findings"
BUFFER = 200  # final_context_length_buffer of the original
VARIANTS = ("single", "pizza")


@dataclass(frozen=True)
class Needles:
    needles: tuple[str, ...]
    question: str
    keywords: tuple[str, ...]


def load_needles(root: Path, variant: str) -> Needles:
    config = json.loads((root / "niah" / "needle_config.json").read_text(encoding="utf-8"))
    if variant == "single":
        single = config["single_needle"]
        return Needles((single["needle"],), single["retrieval_question"], ("sandwich", "dolores park"))
    if variant == "pizza":
        multi = config["multi_needle_default"]
        return Needles(tuple(multi["needles"]), multi["retrieval_question"], tuple(k.lower() for k in multi["answer_keywords"]))
    raise ValueError(f"unknown needle variant {variant!r}: choose from {', '.join(VARIANTS)}")


class Haystack:
    def __init__(self, root: Path, tokenizer) -> None:
        files = sorted((root / "niah" / "PaulGrahamEssays").glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"no essays under {root / 'niah' / 'PaulGrahamEssays'}")
        self.text = "".join(f.read_text(encoding="utf-8") for f in files)
        self.tokenizer = tokenizer
        self.offsets = tokenizer(self.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]

    def build(self, n_tokens: int, depth: float, needles: Needles) -> str:
        """The haystack of about ``n_tokens`` tokens with the needles placed from ``depth`` on."""
        needle_tokens = sum(len(self.tokenizer(n, add_special_tokens=False)["input_ids"]) for n in needles.needles)
        keep = n_tokens - BUFFER - needle_tokens
        text, offsets = self.text, self.offsets
        while len(offsets) < keep:  # repeat the essays, as the original does
            text = text + self.text
            offsets = offsets + [(a + len(text) - len(self.text), b + len(text) - len(self.text)) for a, b in self.offsets]
        context = text[: offsets[keep - 1][1]]
        k = len(needles.needles)
        for i, needle in enumerate(needles.needles):
            # the first at depth, the rest evenly spaced after it (the original's placement)
            d = depth + i * (1 - depth) / k
            cut = round(len(context) * d)
            if d >= 1:
                cut = len(context)
            elif cut > 0:
                cut = context.rfind(".", 0, cut) + 1  # back to the previous sentence end
            context = context[:cut] + needle + context[cut:]
        return context


def score(output: str, needles: Needles) -> float:
    found = output.lower()
    return sum(k in found for k in needles.keywords) / len(needles.keywords)


def heatmap(cells: dict[tuple[int, float], float], lengths: list[int], depths: list[float], title: str, path: Path) -> None:
    """The classic NIAH picture: context length on x, needle depth on y, score as colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    grid = [[cells.get((n, d), float("nan")) for n in lengths] for d in depths]
    cmap = LinearSegmentedColormap.from_list("niah", ["#F0496E", "#EBB839", "#0CD79F"])
    fig, ax = plt.subplots(figsize=(1.2 * len(lengths) + 2.6, 0.55 * len(depths) + 1.6))
    image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            ax.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(lengths)), [f"{n / 1000:g}k" for n in lengths])
    ax.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="score")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
