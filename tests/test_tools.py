"""Tool definitions are counted as the model reads them."""

from __future__ import annotations

import pytest

from context_manager import InputFormatError, TokenCounter, get_model_profile, render_tools
from context_manager.tools import validate_tools

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Look up the weather for a city.",
    "parameters": {
        "additionalProperties": False,
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "type": "object",
    },
}


def test_rendering_of_a_recorded_tool() -> None:
    assert render_tools([WEATHER]) == (
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Look up the weather for a city.\n"
        "type get_weather = (_: {\ncity: string,\n}) => any;\n\n"
        "} // namespace functions"
    )
    # Recorded gpt-realtime sessions bill this tool at 35-37 tokens; its compact JSON is 47.
    assert TokenCounter(get_model_profile("gpt-realtime")).tools([WEATHER]) == 36


def test_optional_enum_array_nested_and_descriptions() -> None:
    tool = {
        "name": "search",
        "parameters": {
            "type": "object",
            "properties": {
                "cabin": {
                    "type": "string",
                    "enum": ["economy", "business"],
                    "description": "Cabin class.",
                },
                "stops": {"type": "array", "items": {"type": "integer"}},
                "when": {
                    "type": "object",
                    "properties": {"date": {"type": "string"}},
                    "required": ["date"],
                },
                "flexible": {"type": ["boolean", "null"]},
            },
            "required": ["cabin"],
        },
    }
    assert render_tools([tool]) == (
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "type search = (_: {\n"
        "// Cabin class.\n"
        'cabin: "economy" | "business",\n'
        "stops?: number[],\n"
        "when?: {\n  date: string,\n},\n"
        "flexible?: boolean | null,\n"
        "}) => any;\n\n"
        "} // namespace functions"
    )


def test_a_tool_without_parameters_and_a_non_function_tool() -> None:
    text = render_tools(
        [{"type": "function", "name": "hang_up"}, {"type": "mcp", "server_label": "x"}]
    )
    assert "type hang_up = () => any;" in text
    assert text.endswith('{"type":"mcp","server_label":"x"}')


def test_validation_names_the_entry() -> None:
    assert validate_tools({"tools": [WEATHER]}) == [WEATHER]
    with pytest.raises(InputFormatError, match="tools must be a JSON array"):
        validate_tools({"name": "x"})
    with pytest.raises(InputFormatError, match=r"field 'tools\[1\].name': tool 1 has no name"):
        validate_tools([WEATHER, {"description": "?"}])
    with pytest.raises(InputFormatError, match="tool 0 must be an object, got str"):
        validate_tools(["get_weather"])
    with pytest.raises(InputFormatError, match=r"tools\[0\].parameters"):
        validate_tools([{"name": "x", "parameters": "city"}])
