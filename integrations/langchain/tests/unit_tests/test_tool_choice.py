"""``bind_tools(..., tool_choice=...)``: what is offered, and what the prompt asks for."""

from __future__ import annotations

import pytest

from entropy_retriever import InputError
from langchain_entropy_retriever.chat_models import _chosen_tools

WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}
CLOCK = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}}


def test_tool_choice_offers_and_asks_as_documented():
    tools = [WEATHER, CLOCK]
    assert _chosen_tools(tools, None) == (tools, "") and _chosen_tools(tools, "auto") == (tools, "")
    assert _chosen_tools(tools, "none") == (None, "")
    assert _chosen_tools(tools, "any") == (tools, "Answer with a call to one of the tools.")
    assert _chosen_tools(tools, "required")[1] == "Answer with a call to one of the tools."
    assert _chosen_tools(tools, "clock") == ([CLOCK], "Answer with a call to the tool clock.")
    assert _chosen_tools(tools, {"type": "function", "function": {"name": "weather"}})[0] == [WEATHER]
    with pytest.raises(InputError, match="names no bound tool; the tools are weather, clock"):
        _chosen_tools(tools, "calendar")


def test_the_prompt_carries_the_choice(tiny, tokenizer):
    from langchain_core.messages import HumanMessage

    from entropy_retriever import LongContextLM
    from langchain_entropy_retriever import ChatEntropyRetriever

    chat = ChatEntropyRetriever(lm=LongContextLM(tiny, tokenizer), max_tokens=4)
    asked = [HumanMessage("What time is it?")]
    ids, names = chat._prompt(asked, {"tools": [WEATHER, CLOCK], "tool_choice": "clock"})
    text = tokenizer.decode(ids)
    assert names == {"clock"} and "Answer with a call to the tool clock." in text and '"weather"' not in text
    ids, names = chat._prompt(asked, {"tools": [WEATHER, CLOCK], "tool_choice": "none"})
    assert names is None and '"clock"' not in tokenizer.decode(ids)
