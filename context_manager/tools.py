"""How tool definitions are counted: rendered as the model reads them, then tokenized.

The server does not bill a tool as its JSON. Function definitions reach the model as a
TypeScript-like namespace (the rendering OpenAI's chat models are known to use), which is
shorter than the JSON schema: on the recorded gpt-realtime sessions the ``get_weather``
tool costs 35-37 tokens, its rendering below 36, its compact JSON 47. So a tool is counted
as `render_tools` writes it::

    # Tools

    ## functions

    namespace functions {

    // Look up the weather for a city.
    type get_weather = (_: {
    city: string,
    }) => any;

    } // namespace functions

The rendering follows JSON Schema: ``required`` decides ``name`` vs ``name?``, ``enum`` gives
a union of literals, arrays give ``T[]``, nested objects are written inline, and a property's
``description`` becomes a ``//`` comment above it. Anything the renderer does not understand
is written as ``any`` rather than rejected.

>>> render_tools([])
''
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputFormatError

__all__ = ["render_tools", "validate_tools"]

_SCALARS = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "null": "null",
}


def _type_of(schema: Any, depth: int) -> str:
    """The TypeScript type of a JSON schema fragment."""
    if not isinstance(schema, Mapping):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"]) or "never"
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return " | ".join(_type_of(s, depth) for s in schema[key]) or "any"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_type_of({**schema, "type": k}, depth) for k in kind) or "any"
    if kind == "array":
        inner = _type_of(schema.get("items"), depth)
        return f"({inner})[]" if " | " in inner else f"{inner}[]"
    if kind == "object" or "properties" in schema:
        return _object_body(schema, depth + 1)
    return _SCALARS.get(kind, "any") if isinstance(kind, str) else "any"


def _object_body(schema: Mapping[str, Any], depth: int) -> str:
    # The top level (depth 0) is written flush left, as the model sees it; nested objects indent.
    indent = "  " * depth
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return "object"
    required = schema.get("required")
    required_set = set(required) if isinstance(required, list) else set()
    lines = ["{"]
    for name, prop in properties.items():
        if isinstance(prop, Mapping) and isinstance(prop.get("description"), str):
            lines.append(f"{indent}// {prop['description']}")
        optional = "" if name in required_set else "?"
        lines.append(f"{indent}{name}{optional}: {_type_of(prop, depth)},")
    lines.append("  " * max(depth - 1, 0) + "}")
    return "\n".join(lines)


def _render_function(tool: Mapping[str, Any]) -> str:
    lines: list[str] = []
    if isinstance(tool.get("description"), str) and tool["description"]:
        lines.extend(f"// {line}" for line in tool["description"].splitlines())
    params = tool.get("parameters")
    if isinstance(params, Mapping) and params.get("properties"):
        lines.append(f"type {tool['name']} = (_: {_object_body(params, 0)}) => any;")
    else:
        lines.append(f"type {tool['name']} = () => any;")
    return "\n".join(lines)


def validate_tools(tools: object, *, source: str | None = None) -> list[dict[str, Any]]:
    """Check a tool list (the session's ``tools``): each entry an object with a ``name``.

    Accepts the list itself or a session object holding it under ``"tools"``.

    Raises:
        InputFormatError: naming the entry and field at fault.
    """
    if isinstance(tools, Mapping) and "tools" in tools:
        tools = tools["tools"]
    if not isinstance(tools, list):
        raise InputFormatError(
            f"tools must be a JSON array of tool definitions, got {type(tools).__name__}",
            source=source,
        )
    for n, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InputFormatError(
                f"tool {n} must be an object, got {type(tool).__name__}", source=source
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InputFormatError(f"tool {n} has no name", source=source, field=f"tools[{n}].name")
        params = tool.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InputFormatError(
                f"parameters must be an object, got {type(params).__name__}",
                source=source,
                field=f"tools[{n}].parameters",
            )
    return list(tools)


def render_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """The text the model reads for `tools`, which is what they are counted as.

    Function tools (``type`` ``"function"`` or absent) go in the ``functions`` namespace;
    other tool types (MCP servers and the like) are counted as their compact JSON.
    """
    if not tools:
        return ""
    functions = [t for t in tools if t.get("type", "function") == "function"]
    others = [t for t in tools if t.get("type", "function") != "function"]
    parts = []
    if functions:
        body = "\n\n".join(_render_function(t) for t in functions)
        parts.append(
            "# Tools\n\n## functions\n\nnamespace functions {\n\n"
            f"{body}\n\n}} // namespace functions"
        )
    parts.extend(json.dumps(t, separators=(",", ":"), ensure_ascii=False) for t in others)
    return "\n\n".join(parts)
