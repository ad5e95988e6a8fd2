"""Reading Meta's JSON without trusting it: :func:`load_json` refuses what is not JSON, is
not UTF-8 or nests too deeply, and reads an integer too long for any count as infinity (a
value :func:`collectord.model.number` then leaves out), so one absurd value costs that
value and no walker of ours meets Python's recursion limit.
"""

from __future__ import annotations

import json
from typing import Any

#: The deepest nesting of lists and objects accepted in an answer (Meta's answers nest
#: fewer than ten levels); a deeper one is a ``bad_response``, so no walker of ours ever
#: meets Python's recursion limit.
MAX_DEPTH = 64
#: The longest JSON integer read as a number, in digits (a float holds up to 309).
MAX_INT_DIGITS = 400


def _parse_int(text: str) -> int | float:
    """A JSON integer; one too long to be a count (more than :data:`MAX_INT_DIGITS`
    digits) is infinity, which :func:`collectord.model.number` refuses, so one absurd value
    costs that value, not the answer (Python refuses to read very long integers)."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` (decoded JSON) nests lists and objects deeper than ``limit``;
    walked without recursion."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def load_json(raw: bytes | str) -> Any:
    """Decode a JSON answer of Meta's; raises ValueError for anything that is not JSON,
    is not UTF-8, or nests deeper than :data:`MAX_DEPTH`."""
    try:
        value = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    if isinstance(value, dict | list) and too_deep(value):
        raise ValueError("nested too deeply")
    return value
