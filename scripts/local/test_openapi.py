"""docs/openapi.yaml against the product's contract, infra/template.yaml, and against itself:

- its operations are exactly the template's HttpApi routes (method + path), each way;
- it is a valid OpenAPI 3.1 document (openapi-spec-validator, which moto[server] brings);
- every operation names the error responses the functions and API Gateway really give;
- the placement limits, task sizes and placeholders it states are the code's, and the status
  views' fields are the structs' (shared/src);
- docs/api.md is what scripts/gen_api_docs.py renders from it today.

    .venv/bin/python -m unittest discover -s scripts/local -p 'test_*.py'
"""

from __future__ import annotations

import re
import subprocess
import sys
import unittest
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402

OPENAPI = cfn.REPO / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def load() -> dict:
    with open(OPENAPI, encoding="utf-8") as f:
        return yaml.safe_load(f)


def operations(doc: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def template_routes(template: dict) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in cfn.http_api_routes(template)}


class OpenApiMatchesTemplateTest(unittest.TestCase):
    doc = load()
    template = cfn.load_template()

    def test_operations_are_the_templates_http_api_routes(self):
        doc_ops, routes = operations(self.doc), template_routes(self.template)
        self.assertTrue(routes, "the template has HttpApi routes")
        self.assertEqual(sorted(routes - doc_ops), [], "routes of infra/template.yaml missing from docs/openapi.yaml")
        self.assertEqual(sorted(doc_ops - routes), [], "operations of docs/openapi.yaml that infra/template.yaml does not route")

    def test_the_comparison_fails_when_either_side_has_a_route_the_other_lacks(self):
        t = cfn.load_template()
        fn = t["Resources"]["EnvironmentsApiFunction"]["Properties"]["Events"]
        fn["Extra"] = {"Type": "HttpApi", "Properties": {"Method": "PATCH", "Path": "/v1/environments/{name}"}}
        self.assertEqual(template_routes(t) - operations(self.doc), {("PATCH", "/v1/environments/{name}")})
        del fn["Ping"]
        self.assertEqual(operations(self.doc) - template_routes(t), {("GET", "/v1/ping")})

    def test_path_parameters_are_declared_for_every_template_variable(self):
        for path, item in self.doc["paths"].items():
            wanted = set(cfn_vars(path))
            for m, op in item.items():
                if m not in METHODS:
                    continue
                params = [self.resolve(p) for p in item.get("parameters", []) + op.get("parameters", [])]
                declared = {p["name"] for p in params if p["in"] == "path"}
                self.assertEqual(declared, wanted, f"{m.upper()} {path}")

    def test_every_operation_has_an_id_and_the_error_responses(self):
        ids = []
        for path, item in self.doc["paths"].items():
            for m, op in item.items():
                if m not in METHODS:
                    continue
                ids.append(op["operationId"])
                codes = set(op["responses"])
                # IAM auth (API Gateway), InternalError and Throttled can answer any operation.
                self.assertLessEqual({"200", "403", "500", "503"}, codes, f"{m.upper()} {path}")
                if "{" in path:
                    self.assertIn("404", codes, f"{m.upper()} {path}: a path parameter can name nothing")
                if "requestBody" in op or any(self.resolve(p)["in"] == "query" for p in op.get("parameters", [])):
                    self.assertIn("400", codes, f"{m.upper()} {path}: input can be invalid")
        self.assertEqual(len(ids), len(set(ids)), "operationIds are unique")

    def test_error_codes_are_the_ones_the_code_returns(self):
        # shared/src/error.rs: Error::status_and_code
        src = (cfn.REPO / "shared" / "src" / "error.rs").read_text()
        in_code = set(re.findall(r'\(\d{3}, "([A-Za-z]+)"\)', src))
        self.assertTrue(in_code)
        self.assertEqual(set(self.doc["components"]["schemas"]["ErrorCode"]["enum"]), in_code)

    def test_valid_openapi_3_1(self):
        from openapi_spec_validator import validate

        self.assertTrue(self.doc["openapi"].startswith("3.1"))
        validate(self.doc)

    def test_sigv4_security_applies_to_every_operation(self):
        scheme = self.doc["components"]["securitySchemes"]["sigv4"]
        self.assertEqual((scheme["type"], scheme["in"], scheme["name"]), ("apiKey", "header", "Authorization"))
        self.assertEqual(scheme["x-amazon-apigateway-authtype"], "awsSigv4")
        self.assertEqual(self.doc["security"], [{"sigv4": []}])
        # The template's HttpApi asks for IAM auth on every route.
        api = next(r for r in self.template["Resources"].values() if r.get("Type") == "AWS::Serverless::HttpApi")
        self.assertEqual(api["Properties"]["Auth"]["DefaultAuthorizer"], "AWS_IAM")

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            cur = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                cur = cur[part]
            node = cur
        return node


def rust_consts(path: str) -> dict[str, int]:
    """`pub const NAME: type = 1_000;` (and `i32::MAX as i64`) of a Rust file."""
    out = {}
    for name, value in re.findall(r"pub const ([A-Z_]+): \w+ = ([^;]+);", (cfn.REPO / path).read_text()):
        value = value.strip()
        out[name] = 2**31 - 1 if value.startswith("i32::MAX") else int(value.replace("_", ""))
    return out


def rust_fields(path: str, struct: str) -> list[str]:
    """The fields of `pub struct NAME { ... }` as serde's camelCase names."""
    src = (cfn.REPO / path).read_text()
    body = re.search(r"pub struct " + struct + r" \{(.*?)\n\}", src, re.S)
    assert body, f"{struct} in {path}"
    names = re.findall(r"^\s*pub (\w+):", body.group(1), re.M)
    return [re.sub(r"_(\w)", lambda m: m.group(1).upper(), n) for n in names]


class OpenApiMatchesTheCodeTest(unittest.TestCase):
    doc = load()
    schemas = doc["components"]["schemas"]

    def branch(self, schema: dict, kind: str) -> dict:
        """The `type: kind` branch of a oneOf / anyOf (or the schema itself)."""
        for b in schema.get("oneOf", schema.get("anyOf", [schema])):
            while "$ref" in b:
                b = self.schemas[b["$ref"].rsplit("/", 1)[1]]
            if b.get("type") == kind:
                return b
            if "oneOf" in b or "anyOf" in b:
                try:
                    return self.branch(b, kind)
                except AssertionError:
                    pass
        raise AssertionError(f"no {kind} branch in {schema}")

    def test_placement_limits_are_the_codes(self):
        limits = rust_consts("shared/src/limits.rs")
        for request in ("CreateEnvironmentRequest", "UpdateEnvironmentRequest"):
            props = self.schemas[request]["properties"]
            for field, const in [("placementConstraints", "PLACEMENT_CONSTRAINTS_MAX"), ("sizing", "SIZING_RULES_MAX"),
                                 ("dependsOn", "DEPENDS_ON_MAX")]:
                self.assertEqual(self.branch(props[field], "array")["maxItems"], limits[const], f"{request}.{field}")
        # The other branch only helps generators to valid expressions (its pattern bounds its length).
        expression = [b["maxLength"] for b in self.schemas["QueryExpression"]["anyOf"] if "maxLength" in b]
        self.assertEqual(expression, [limits["EXPRESSION_MAX"]])
        self.assertIn(f"{limits['OVERRIDES_MAX']:,}", self.schemas["TaskOverrideInput"]["description"])

    def test_task_sizes_are_the_codes(self):
        c = rust_consts("shared/src/domain/overrides.rs")
        cpu = self.branch(self.schemas["CpuSizeInput"], "integer")
        memory = self.branch(self.schemas["MemorySizeInput"], "integer")
        self.assertEqual((cpu["minimum"], cpu["maximum"]), (c["TASK_CPU_MIN"], c["TASK_CPU_MAX"]))
        self.assertEqual((memory["minimum"], memory["maximum"]), (c["MEMORY_MIN"], c["SIZE_MAX"]))
        container = self.schemas["ContainerOverrideInput"]["properties"]
        for field, low in [("cpu", 0), ("memory", c["MEMORY_MIN"]), ("memoryReservation", c["MEMORY_MIN"])]:
            b = self.branch(container[field], "integer")
            self.assertEqual((b["minimum"], b["maximum"]), (low, c["SIZE_MAX"]), field)

    def test_every_placeholder_of_the_code_is_described(self):
        src = (cfn.REPO / "shared/src/domain/overrides.rs").read_text()
        block = re.search(r"const PLACEHOLDERS: &\[&str\] = &\[(.*?)\];", src, re.S)
        assert block
        placeholders = re.findall(r'"([^"]+)"', block.group(1))
        self.assertTrue(placeholders)
        described = self.schemas["OverrideString"]["description"]
        for p in placeholders:
            self.assertIn(f"`{p}`", described)

    def test_status_views_fields_are_the_structs(self):
        for schema, struct in [("Counts", "Counts"), ("HostView", "HostView"), ("LaunchView", "LaunchView"),
                               ("Status", "Status")]:
            self.assertEqual(list(self.schemas[schema]["properties"]), rust_fields("shared/src/services/status.rs", struct),
                             schema)
        # Fields always serialised are required (the others are skip_serializing_if).
        self.assertEqual(self.schemas["Counts"]["required"], rust_fields("shared/src/services/status.rs", "Counts"))

    def test_deployment_hosts_views_are_the_structs_and_the_history_bounds_the_codes(self):
        for schema, struct in [("DeploymentHost", "DeploymentHostView"), ("HostEvent", "HostEventView")]:
            self.assertEqual(list(self.schemas[schema]["properties"]),
                             rust_fields("shared/src/services/history.rs", struct), schema)
        src = (cfn.REPO / "shared/src/domain/history.rs").read_text()
        as_str = re.search(r"pub fn as_str\(self\).*?\n    \}", src, re.S)
        assert as_str
        self.assertEqual(re.findall(r'=> "(\w+)"', as_str.group(0)), self.schemas["HostEventName"]["enum"])
        c = rust_consts("shared/src/domain/history.rs")
        self.assertEqual(self.schemas["DeploymentHost"]["properties"]["events"]["maxItems"], c["KEPT"])
        self.assertEqual(self.schemas["HostEvent"]["properties"]["reason"]["maxLength"], c["REASON_MAX"])
        described = self.doc["paths"]["/v1/environments/{name}/deployments/{id}/hosts"]["get"]["description"]
        self.assertIn(f"last {c['KEPT']} transitions", described)
        self.assertIn(f"{c['REASON_MAX']} characters", described)

    def test_placement_enum_is_the_codes_labels(self):
        src = (cfn.REPO / "shared/src/domain/placement.rs").read_text()
        label = re.search(r"pub fn label\(&self\).*?\n    \}", src, re.S)
        assert label
        self.assertEqual(set(re.findall(r'=> "(\w+)"', label.group(0))),
                         set(self.schemas["HostView"]["properties"]["placement"]["enum"]))


def cfn_vars(path: str) -> list[str]:
    return re.findall(r"\{([^}+]+)\+?\}", path)


class ApiDocsUpToDateTest(unittest.TestCase):
    def test_docs_api_md_is_generated_from_the_openapi_document(self):
        r = subprocess.run([sys.executable, str(cfn.REPO / "scripts" / "gen_api_docs.py"), "--check"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
