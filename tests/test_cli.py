from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entropy_retriever.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "entropy_retriever.cli", *args], capture_output=True, text=True)


def test_help_explains_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for word in ("ask", "select", "demo", "key context"):
        assert word in out.stdout
    ask = run("ask", "--help").stdout
    for option in ("--budget", "--top-k", "--metric", "--segment-tokens", "--model", "--json"):
        assert option in ask


def test_select_json_on_a_file(tmp_path, capsys, embedded):
    path = tmp_path / "notes.txt"
    path.write_text("The meeting moved to Thursday. " * 60 + "The boat is called Nimbus. " + "Filler text here. " * 80)
    assert main(["select", str(path), "What is the boat called?", "--top-k", "1", "--segment-tokens", "64", "--json", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "Nimbus" in data["text"]
    assert len(data["segments"]) > 5 and sum(s["selected"] for s in data["segments"]) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "/no/such/file.txt", "q?"], "no such file"),
        (["select", "/", "q?"], "directory"),
        (["ask", "FILE", "q?", "--metric", "nope"], "invalid choice"),
    ],
)
def test_errors_are_one_clear_line(args, message, tmp_path):
    args = [str(tmp_path / "x.txt") if a == "FILE" else a for a in args]
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_a_threshold_with_fused_signals_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from entropy_retriever import models
    from entropy_retriever.cli import main

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(models, "load_model", no_load)
    doc = tmp_path / "doc.txt"
    doc.write_text("Some text. More text.")
    assert main(["select", str(doc), "what?", "--threshold", "3"]) == 2
    assert "threshold compares certainty scores" in capsys.readouterr().err


@pytest.mark.parametrize("delay", [0.05, 0.4, 1.2, 3.0])  # the imports, then loading and scoring
def test_ctrl_c_at_any_moment_ends_with_one_line_and_status_130(delay, tiny_folder, tmp_path):
    import signal
    import time

    doc = tmp_path / "doc.txt"
    doc.write_text("A line of text to score. " * 2000, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "entropy_retriever", "select", str(doc), "What is it?",
                                "--model", str(tiny_folder), "--device", "cpu", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    if process.returncode == 0:  # finished before the signal came: nothing to check at this moment
        pytest.skip(f"the command finished within {delay} s")
    assert process.returncode == 130, err[-2000:]
    assert err.splitlines() == ["entropy-retriever: interrupted"], err[-2000:]


def test_closed_standard_input_is_one_clear_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "entropy_retriever", "select", "-", "q?", "--no-progress"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, close_fds=True,
                         preexec_fn=lambda: __import__("os").close(0))
    assert out.returncode == 2
    assert out.stderr.splitlines() == [out.stderr.strip()] and "standard input is closed" in out.stderr


def test_standard_input_errors_name_standard_input_not_the_spool_file():
    out = subprocess.run([sys.executable, "-m", "entropy_retriever", "select", "-", "q?", "--no-progress"],
                         input=b"text\x00more", capture_output=True)
    err = out.stderr.decode()
    assert out.returncode == 2 and "<stdin> looks like a binary file" in err
    assert "entropy-retriever-stdin-" not in err and "/tmp" not in err
