"""langchain-tests' standard unit suites for the chat model and the tool."""

from __future__ import annotations

import tempfile

from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests

from langchain_entropy_retriever import ChatEntropyRetriever, LongFileTool


class TestChatEntropyRetrieverUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self):
        return ChatEntropyRetriever

    @property
    def chat_model_params(self) -> dict:
        return {}


class TestLongFileToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self):
        return LongFileTool

    @property
    def tool_constructor_params(self) -> dict:
        return {"roots": [tempfile.gettempdir()]}

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"path": "report.txt", "question": "What was the revenue?"}
