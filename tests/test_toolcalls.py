"""Tool-call prompting and parsing for chat templates without tool support (the core's toolcalls module)."""

from __future__ import annotations

from entropy_retriever.toolcalls import parse_tool_calls, prepare_messages, template_knows_tools

WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_parse_tagged_bare_and_malformed_calls():
    text, calls = parse_tool_calls('Let me check.\n<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>', {"weather"})
    assert text == "Let me check." and [(c.name, c.arguments) for c in calls] == [("weather", {"city": "Oslo"})]
    text, calls = parse_tool_calls('{"name": "weather", "arguments": "{\\"city\\": \\"Rome\\"}"}', {"weather"})
    assert text == "" and calls[0].arguments == {"city": "Rome"}
    text, calls = parse_tool_calls('<tool_call>{"name": "weather", "arguments": {"city": </tool_call>', {"weather"})
    assert calls == [] and "tool_call" in text  # malformed: left as text, not guessed
    text, calls = parse_tool_calls('<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', {"weather"})
    assert calls == []  # an unknown tool is not a call
    assert parse_tool_calls("It is sunny.", {"weather"}) == ("It is sunny.", [])


def test_prepare_messages_for_a_template_without_tools(embedded):
    tok = embedded.tokenizer
    assert not template_knows_tools(tok)  # SmolLM2-135M-Instruct's template knows role and content only
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}, "id": "c1"}]},
        {"role": "tool", "content": "12 C, rain", "name": "weather", "tool_call_id": "c1"},
    ]
    out, tools = prepare_messages(messages, [WEATHER], tok)
    assert tools is None and out[0]["role"] == "system" and '"name": "weather"' in out[0]["content"]
    assert '<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>' in out[2]["content"]
    assert out[3] == {"role": "user", "content": "Result of tool weather:\n12 C, rain"}
    rendered = tok.apply_chat_template(out, tokenize=False, add_generation_prompt=True)
    assert rendered.rstrip().endswith("assistant") and "12 C, rain" in rendered
