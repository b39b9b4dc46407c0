"""The EventBridge event-pattern language (also used by Lambda event-source FilterCriteria), the
subset a template is likely to use:

- a pattern is an object; every key of it must match the event (keys of the event that the pattern
  does not name are ignored); nested objects match nested objects;
- a leaf is a list of matchers, and matches when any of them matches; when the event's value is a
  list, it matches when any element matches;
- matchers: literal strings / numbers / booleans / null (exact match),
  {"prefix": s} (or {"prefix": {"equals-ignore-case": s}}), {"suffix": s},
  {"equals-ignore-case": s}, {"wildcard": "a*b"}, {"exists": true|false},
  {"anything-but": v | [v, ...] | {"prefix": s} | {"suffix": s}}, {"numeric": [op, n, (op, n)]};
- "$or": [pattern, ...] at any object level.

Unknown matchers raise ValueError, so a template using more than this fails loudly, not silently.
"""

from __future__ import annotations

import re
from typing import Any

_MISSING = object()


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when `event` (a dict) matches the EventBridge `pattern`."""
    if not isinstance(pattern, dict):
        raise ValueError(f"a pattern must be an object, got {pattern!r}")
    if not isinstance(event, dict):
        return False
    for key, sub in pattern.items():
        if key == "$or":
            if not any(matches(p, event) for p in sub):
                return False
            continue
        value = event.get(key, _MISSING)
        if isinstance(sub, dict):
            if value is _MISSING or not matches(sub, value):
                return False
        elif isinstance(sub, list):
            if not _leaf(sub, value):
                return False
        else:
            raise ValueError(f"pattern value of {key!r} must be an object or a list, got {sub!r}")
    return True


def _leaf(matchers: list[Any], value: Any) -> bool:
    # `exists` is about the key itself, whatever the value.
    for m in matchers:
        if isinstance(m, dict) and "exists" in m:
            present = value is not _MISSING
            if bool(m["exists"]) == present:
                return True
    if value is _MISSING:
        return False
    values = value if isinstance(value, list) else [value]
    return any(_one(m, v) for m in matchers if not (isinstance(m, dict) and "exists" in m) for v in values)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _literal_eq(m: Any, v: Any) -> bool:
    if m is None or isinstance(m, bool) or isinstance(v, bool):
        return m is v if (m is None or isinstance(m, bool)) else False
    if _is_number(m):
        return _is_number(v) and float(m) == float(v)
    return isinstance(v, str) and m == v


def _one(m: Any, v: Any) -> bool:
    if not isinstance(m, dict):
        return _literal_eq(m, v)
    if len(m) != 1:
        raise ValueError(f"a content filter must have exactly one key, got {m!r}")
    (op, arg), = m.items()
    if op == "prefix":
        if isinstance(arg, dict):
            return isinstance(v, str) and v.lower().startswith(str(arg["equals-ignore-case"]).lower())
        return isinstance(v, str) and v.startswith(arg)
    if op == "suffix":
        if isinstance(arg, dict):
            return isinstance(v, str) and v.lower().endswith(str(arg["equals-ignore-case"]).lower())
        return isinstance(v, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == str(arg).lower()
    if op == "wildcard":
        regex = ".*".join(re.escape(part) for part in str(arg).split("*"))
        return isinstance(v, str) and re.fullmatch(regex, v, re.S) is not None
    if op == "anything-but":
        if isinstance(arg, dict):
            return not _one(arg, v)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_literal_eq(x, v) for x in excluded)
    if op == "numeric":
        if not _is_number(v):
            return False
        ops = list(arg)
        if len(ops) % 2:
            raise ValueError(f"numeric needs operator/value pairs, got {arg!r}")
        for i in range(0, len(ops), 2):
            o, n = ops[i], float(ops[i + 1])
            ok = {"=": v == n, "<": v < n, "<=": v <= n, ">": v > n, ">=": v >= n}.get(o)
            if ok is None:
                raise ValueError(f"unknown numeric operator {o!r}")
            if not ok:
                return False
        return True
    raise ValueError(f"unsupported pattern matcher {op!r}")


def matches_any(patterns: list[dict[str, Any]], event: Any) -> bool:
    """Lambda FilterCriteria: a record passes when any filter matches (no filters: everything passes)."""
    return not patterns or any(matches(p, event) for p in patterns)
