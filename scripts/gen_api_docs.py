#!/usr/bin/env python3
"""Render docs/openapi.yaml as the Markdown API reference docs/api.md.

    python scripts/gen_api_docs.py           # (re)write docs/api.md
    python scripts/gen_api_docs.py --check   # exit 1 when docs/api.md is not what it would write

Needs only PyYAML. The output is deterministic (document order), so the check is a plain compare.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "docs" / "openapi.yaml"
TARGET = REPO / "docs" / "api.md"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Renderer:
    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.schemas = doc.get("components", {}).get("schemas", {})

    # ---- references
    def deref(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            cur: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                cur = cur[part]
            node = cur
        return node

    @staticmethod
    def ref_name(node: Any) -> str | None:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/components/schemas/"):
            return node["$ref"].rsplit("/", 1)[1]
        return None

    @staticmethod
    def anchor(name: str) -> str:
        return "#" + name.lower()

    # ---- one schema as a short type expression
    def type_of(self, s: Any) -> str:
        name = self.ref_name(s)
        if name:
            return f"[{name}]({self.anchor(name)})"
        s = s or {}
        if "allOf" in s and len(s["allOf"]) == 1:
            return self.type_of(s["allOf"][0])
        for key in ("oneOf", "anyOf"):
            if key in s:
                return " \\| ".join(self.type_of(x) for x in s[key])
        if "const" in s:
            return f"`{_json(s['const'])}`"
        if "enum" in s:
            return " \\| ".join(f"`{v}`" for v in s["enum"])
        t = s.get("type", "any")
        if t == "object" and s.get("properties"):
            return "object {" + ", ".join(f"`{k}`" for k in s["properties"]) + "}"
        if isinstance(t, list):
            t = " \\| ".join(t)
        if t == "array":
            limits = []
            if "maxItems" in s:
                limits.append(f"at most {s['maxItems']}")
            if "minItems" in s:
                limits.append(f"at least {s['minItems']}")
            if s.get("uniqueItems"):
                limits.append("distinct")
            return f"array of {self.type_of(s.get('items'))}" + (f" ({', '.join(limits)})" if limits else "")
        bits = []
        if s.get("title"):
            bits.append(s["title"])
        if "minimum" in s and "maximum" in s:
            bits.append(f"{s['minimum']}–{s['maximum']}")
        elif "minimum" in s:
            bits.append(f"≥ {s['minimum']}")
        elif "maximum" in s:
            bits.append(f"≤ {s['maximum']}")
        if s.get("format"):
            bits.append(s["format"])
        if s.get("pattern"):
            bits.append(f"`{s['pattern']}`".replace("|", "\\|"))
        if "minLength" in s:
            bits.append(f"at least {s['minLength']} character{'s' if s['minLength'] != 1 else ''}")
        if "maxLength" in s:
            bits.append(f"at most {s['maxLength']} characters")
        if "default" in s:
            bits.append(f"default `{_json(s['default'])}`")
        return t + (f" ({', '.join(bits)})" if bits else "")

    # ---- fields of an object schema as a table
    def fields_table(self, s: Any) -> list[str]:
        rows = self.field_rows(self.deref(s), "")
        if not rows:
            return []
        return ["| field | type | required | description |", "|---|---|---|---|"] + rows

    def field_rows(self, s: dict[str, Any], prefix: str) -> list[str]:
        """One row per property; the properties of inline objects (and arrays of them) follow as
        `parent.child` / `parent[].child`."""
        rows = []
        required = set(s.get("required") or [])
        for name, p in (s.get("properties") or {}).items():
            p = p or {}
            desc = _one_line(p.get("description", ""))
            rows.append(f"| `{prefix}{name}` | {self.type_of(p)} | {'yes' if name in required else ''} | {desc} |")
            if not self.ref_name(p) and p.get("properties"):
                rows += self.field_rows(p, f"{prefix}{name}.")
            items = p.get("items") or {}
            if p.get("type") == "array" and not self.ref_name(items) and items.get("properties"):
                rows += self.field_rows(items, f"{prefix}{name}[].")
        return rows

    # ---- the document
    def render(self) -> str:
        info = self.doc["info"]
        out = [f"# {info['title']} reference (v{info['version']})", "",
               "<!-- Generated from docs/openapi.yaml by scripts/gen_api_docs.py; edit those, not this file. -->", ""]
        if info.get("summary"):
            out += [info["summary"], ""]
        out += [info.get("description", "").strip(), ""]
        out += ["## Servers", ""]
        for srv in self.doc.get("servers", []):
            out.append(f"- `{srv['url']}`: {_one_line(srv.get('description', ''))}")
        out += ["", "## Authentication", ""]
        for name, sch in self.doc.get("components", {}).get("securitySchemes", {}).items():
            out += [f"`{name}`: {_one_line(sch.get('description', ''))}", ""]

        ops = [(path, m, op, item) for path, item in self.doc["paths"].items() for m, op in item.items() if m in METHODS]
        out += ["## Operations", "", "| method | path | operation | summary |", "|---|---|---|---|"]
        for path, m, op, _ in ops:
            out.append(f"| {m.upper()} | `{path}` | [{op['operationId']}]({self.anchor(op['operationId'])}) | {op.get('summary', '')} |")
        out.append("")
        for path, m, op, item in ops:
            out += self.operation(path, m, op, item)
        out += ["## Schemas", ""]
        for name, s in self.schemas.items():
            out += [f"### {name}", ""]
            if s.get("description"):
                out += [_paragraphs(s["description"]), ""]
            table = self.fields_table(s)
            if table:
                out += table + [""]
            else:
                out += [f"Type: {self.type_of(s)}", ""]
            if s.get("examples"):
                out += ["Examples: " + ", ".join(f"`{_json(e)}`" for e in s["examples"]), ""]
        return "\n".join(out).rstrip() + "\n"

    def operation(self, path: str, method: str, op: dict[str, Any], item: dict[str, Any]) -> list[str]:
        out = [f"### {op['operationId']}", "", f"`{method.upper()} {path}` — {op.get('summary', '')}", ""]
        if op.get("description"):
            out += [op["description"].strip(), ""]
        params = [self.deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]
        if params:
            out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
            for p in params:
                out.append(f"| `{p['name']}` | {p['in']} | {self.type_of(p.get('schema'))} | "
                           f"{'yes' if p.get('required') else ''} | {_one_line(p.get('description', ''))} |")
            out.append("")
        body = op.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            out += [f"Request body ({'required' if body.get('required') else 'optional'}, `application/json`): "
                    f"{self.type_of(schema)}", ""]
            out += _examples(body["content"]["application/json"], "Example")
        out += ["| status | description | body |", "|---|---|---|"]
        answers = []
        for code, resp in op["responses"].items():
            resp = self.deref(resp)
            content = (resp.get("content") or {}).get("application/json")
            out.append(f"| {code} | {_one_line(resp.get('description', ''))} | "
                       f"{self.type_of(content['schema']) if content else ''} |")
            answers += _examples(content or {}, f"Example {code}")
        out.append("")
        return out + answers


def _examples(media: dict[str, Any], label: str) -> list[str]:
    """A media type's `example`, or each of its `examples` (with its summary), as JSON blocks."""
    if "example" in media:
        named = [(None, media["example"])]
    else:
        named = [(e.get("summary") or key, e.get("value")) for key, e in (media.get("examples") or {}).items()]
    out = []
    for summary, value in named:
        if len(named) > 1 or summary:
            out += [f"{label}{f' ({_one_line(summary)})' if summary else ''}:", ""]
        out += ["```json", _json(value, indent=True), "```", ""]
    return out


def _paragraphs(text: str) -> str:
    """Multi-paragraph text (YAML `|` blocks) with its paragraphs kept, each on one line."""
    return "\n\n".join(_one_line(p) for p in str(text).strip().split("\n\n"))


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _json(value: Any, indent: bool = False) -> str:
    import json

    return json.dumps(value, indent=2 if indent else None, ensure_ascii=False)


def render(source: Path = SOURCE) -> str:
    with open(source, encoding="utf-8") as f:
        return Renderer(yaml.safe_load(f)).render()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/api.md is stale")
    a = ap.parse_args(argv)
    text = render()
    if a.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "docs/api.md (committed)",
                                        "docs/api.md (from docs/openapi.yaml)", lineterm="", n=1)
            print("\n".join(list(diff)[:60]))
            print("docs/api.md is stale: run `python scripts/gen_api_docs.py`", file=sys.stderr)
            return 1
        print("docs/api.md is up to date")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
