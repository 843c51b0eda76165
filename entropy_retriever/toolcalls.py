"""Tool calling through a model's chat template, for any local chat model.

A template that knows tools (it mentions ``tools`` and ``tool_calls``: Qwen2.5, Llama-3.1,
Hermes-style models) renders them itself. For one that does not (SmolLM2-135M-Instruct's
template only knows role and content), :func:`prepare_messages` writes the tool schemas into
the system message and asks for calls as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
renders earlier assistant tool calls in that same form, and turns tool results into
messages the template can show. :func:`parse_tool_calls` reads calls back from the output,
in that form or as a bare JSON object with ``name`` and ``arguments``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolCall", "template_knows_tools", "prepare_messages", "parse_tool_calls"]

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)

TOOLS_PREAMBLE = (
    "You can call these tools. To call one, reply with only\n"
    '<tool_call>{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}</tool_call>\n'
    "Tools:\n{tools}"
)


@dataclass
class ToolCall:
    name: str
    arguments: dict
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:12])


def template_knows_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders tools and assistant tool calls itself."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = " ".join(template.values())
    return "tools" in template and "tool_calls" in template


def _call_text(name: str, arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "</tool_call>"


def prepare_messages(messages: list[dict], tools: list[dict] | None, tokenizer) -> tuple[list[dict], list[dict] | None]:
    """Messages (and tools) ready for ``apply_chat_template``.

    ``messages`` are dicts with ``role``, ``content`` and, for assistant turns, an optional
    ``tool_calls`` list of ``{"name", "arguments", "id"}``; tool results have role ``tool``
    and a ``name``. ``tools`` are OpenAI-format function schemas.
    """
    if template_knows_tools(tokenizer):
        out = []
        for m in messages:
            if m.get("tool_calls"):
                m = dict(m, tool_calls=[
                    {"type": "function", "id": c.get("id"), "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in m["tool_calls"]
                ])
            out.append(m)
        return out, tools or None
    out = []
    for m in messages:
        role, content = m["role"], m.get("content") or ""
        if role == "assistant" and m.get("tool_calls"):
            calls = "\n".join(_call_text(c["name"], c["arguments"]) for c in m["tool_calls"])
            out.append({"role": "assistant", "content": (content + "\n" + calls).strip()})
        elif role == "tool":
            # a template without a tool role shows the result as a user turn the model can read
            label = f"Result of tool {m['name']}" if m.get("name") else "Tool result"
            out.append({"role": "user", "content": f"{label}:\n{content}"})
        else:
            out.append({"role": role, "content": content})
    if tools:
        listing = "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
        preamble = TOOLS_PREAMBLE.format(tools=listing)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + preamble}
        else:
            out.insert(0, {"role": "system", "content": preamble})
    return out, None


def parse_tool_calls(text: str, tool_names: set[str] | None = None) -> tuple[str, list[ToolCall]]:
    """Split model output into its plain text and the tool calls it makes.

    A call whose JSON is malformed, or names a tool not in ``tool_names``, is left in the
    text rather than guessed at.
    """
    calls: list[ToolCall] = []
    kept: list[str] = []
    last = 0
    for match in _CALL.finditer(text):
        call = _read_call(match.group(1), tool_names)
        if call is None:
            continue
        kept.append(text[last:match.start()])
        last = match.end()
        calls.append(call)
    kept.append(text[last:])
    remaining = "".join(kept).strip()
    if not calls and remaining.startswith("{"):
        call = _read_call(remaining, tool_names)
        if call is not None:
            return "", [call]
    return remaining, calls


def _read_call(body: str, tool_names: set[str] | None) -> ToolCall | None:
    try:
        data, _ = json.JSONDecoder().raw_decode(body.strip())
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    if tool_names is not None and data["name"] not in tool_names:
        return None
    return ToolCall(data["name"], arguments)
