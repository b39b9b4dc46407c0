"""Parity of infra/template.yaml (SAM, the product's contract) and the stack the CDK construct
synthesizes (infra/cdk, `cdk synth`).

Both sides are brought to plain CloudFormation: the SAM template through the SAM translator (the
same transform CloudFormation runs; offline), the CDK side as synthesized. Intrinsics are then
evaluated for one configuration (template parameter values <-> the example app's context, see
scenarios.json) into canonical strings: `${AWS::Region}` stays symbolic, a resource is named by its
template logical id (CDK: its construct id under the DaemonScheduler construct, which the
construct keeps equal to the template's logical id), `Ref`/`GetAtt` become `${Name}` /
`${Name.Attr}`.

What is compared (fail-closed: a resource type or property that no rule below covers is compared
as it is, so anything new on either side shows up):
- every resource by canonical name and type, all of its properties (a few named exceptions:
  Lambda Code/Role/Description/Tags, descriptions, the SAM API's OpenAPI Body, physical names);
- the HTTP API's routes: route key -> function, authorization, integration type and payload format;
- Lambda resource policies: EventBridge sources exactly; API Gateway ones as "every route of the
  function is invokable, and every permission is for a route of that function";
- IAM per function: every (action, resource, condition) of the template's inline statements, and
  what SAM grants through AWS managed policies (logging, X-Ray, stream / queue polling) as actions
  that the CDK role must hold (scoped however it likes) and may not exceed;
- queue policies as (queue, effect, principal, actions, condition) statements; the CDK side may
  add TLS-only Deny statements (cdk-nag SQS4) where the template has none;
- the dashboard's body as JSON: widgets by title, each metric row in order, the alarms as a set;
- outputs by name and value.

Run: python infra/cdk/test/parity.py [--scenario default] [--cdk-template PATH]
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
SAM_TEMPLATE = REPO / "infra" / "template.yaml"
CDK_DIR = REPO / "infra" / "cdk"
SCENARIOS = json.loads((Path(__file__).with_name("scenarios.json")).read_text())

NOVALUE = object()

# What SAM attaches as AWS managed policies: (the actions they hold, the actions a role needs for
# the feature to work). The CDK construct grants the needed ones itself, scoped to the resource.
MANAGED_POLICIES: dict[str, tuple[set[str], set[str]]] = {
    "service-role/AWSLambdaBasicExecutionRole": (
        {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
        {"logs:CreateLogStream", "logs:PutLogEvents"},
    ),
    "AWSXrayWriteOnlyAccess": (
        {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
         "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"},
        {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
    ),
    "service-role/AWSLambdaDynamoDBExecutionRole": (
        {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
         "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
        {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"},
    ),
    "service-role/AWSLambdaSQSQueueExecutionRole": (
        {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
         "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
        {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    ),
}

# Properties that say nothing about behaviour, or that the two tools spell differently by design.
IGNORED_PROPERTIES = {
    "AWS::Lambda::Function": {"Code", "Role", "Description", "Tags", "FunctionName"},
    "AWS::CloudWatch::Alarm": {"AlarmDescription", "AlarmName"},
    "AWS::ApiGatewayV2::Api": {"Body", "Name", "ProtocolType", "Tags"},  # routes compared on their own
    "AWS::ApiGatewayV2::Stage": {"Tags"},
    "AWS::Events::Rule": {"Name", "Description"},
    "AWS::IAM::Role": {"Policies", "ManagedPolicyArns", "Tags", "RoleName"},  # compared per function
}
# Resource types compared by their own rules below, not one by one.
SPECIAL_TYPES = {"AWS::IAM::Policy", "AWS::Lambda::Permission", "AWS::SQS::QueuePolicy",
                 "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Integration"}
SKIPPED_TYPES = {"AWS::CDK::Metadata"}
# CloudFormation defaults one side spells out and the other leaves out.
DEFAULTS = {
    "AWS::Events::Rule": {"State": "ENABLED"},
}


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def load_sam(parameters: dict[str, str], path: Path = SAM_TEMPLATE) -> dict[str, Any]:
    """The SAM template after the SAM transform (plain CloudFormation)."""
    sys.path.insert(0, str(REPO / "scripts" / "local"))
    import cfn  # noqa: E402  (the repository's CloudFormation-tag YAML loader)
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The translator warns at exit that its (unused) metrics were never published.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    template = cfn.load_template(path)
    for r in template["Resources"].values():
        if r.get("Type") == "AWS::Serverless::Function":
            r.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"  # code is not compared

    class NoManagedPolicies:  # the template names no managed policy; SAM adds its own by ARN
        def load(self) -> dict[str, str]:
            return {}

    try:
        out = transform(template, dict(parameters), NoManagedPolicies())
    except InvalidDocumentException as e:
        raise SystemExit(f"SAM transform failed: {[str(c) for c in e.causes]}") from e
    return json.loads(json.dumps(out, default=str))


def load_cdk(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------------
# Evaluation of intrinsics into canonical values
# ------------------------------------------------------------------------------------------------
class Evaluator:
    def __init__(self, template: dict[str, Any], names: dict[str, str], parameters: dict[str, Any]):
        self.names = names
        self.params: dict[str, Any] = {}
        for name, p in (template.get("Parameters") or {}).items():
            raw = parameters.get(name, p.get("Default"))
            if raw is None:
                continue
            if p.get("Type") == "CommaDelimitedList" or str(p.get("Type", "")).startswith("List<"):
                self.params[name] = raw if isinstance(raw, list) else str(raw).split(",")
            else:
                self.params[name] = str(raw)
        self._conditions_src = template.get("Conditions") or {}
        self.conditions: dict[str, bool] = {}
        for c in self._conditions_src:
            self.condition(c)

    def name(self, logical_id: str) -> str:
        return self.names.get(logical_id, logical_id)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.cond_value(self._conditions_src[name]))
        return self.conditions[name]

    def cond_value(self, v: Any) -> Any:
        if isinstance(v, dict) and len(v) == 1:
            (k, a), = v.items()
            if k == "Fn::Equals":
                return self.value(a[0]) == self.value(a[1])
            if k == "Fn::Not":
                return not self.cond_value(a[0])
            if k == "Fn::And":
                return all(self.cond_value(x) for x in a)
            if k == "Fn::Or":
                return any(self.cond_value(x) for x in a)
            if k == "Condition":
                return self.condition(a)
        return self.value(v)

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref.startswith("!"):
                return "${" + ref[1:] + "}"
            if ref in variables:
                return scalar(self.value(variables[ref]))
            if ref in self.params:
                return scalar(self.params[ref])
            if ref.startswith("AWS::"):
                return "${" + ref + "}"
            if "." in ref:
                lid, attr = ref.split(".", 1)
                return "${" + self.name(lid) + "." + attr + "}"
            return "${" + self.name(ref) + "}"
        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def value(self, v: Any) -> Any:
        if isinstance(v, dict):
            if len(v) == 1:
                (k, a), = v.items()
                if k == "Ref":
                    if a == "AWS::NoValue":
                        return NOVALUE
                    if a in self.params:
                        return self.params[a]
                    if a.startswith("AWS::"):
                        return "${" + a + "}"
                    return "${" + self.name(a) + "}"
                if k == "Fn::GetAtt":
                    lid, attr = (a if isinstance(a, list) else a.split(".", 1))
                    return "${" + self.name(lid) + "." + self.value(attr) + "}"
                if k == "Fn::Sub":
                    text, variables = (a, {}) if isinstance(a, str) else (a[0], a[1])
                    return self.sub(text, variables)
                if k == "Fn::Join":
                    parts = self.value(a[1])
                    return self.value(a[0]).join(scalar(p) for p in parts)
                if k == "Fn::If":
                    return self.value(a[1] if self.condition(a[0]) else a[2])
                if k == "Fn::Select":
                    return self.value(a[1])[int(self.value(a[0]))]
                if k == "Fn::Split":
                    return self.value(a[1]).split(self.value(a[0]))
            out = {}
            for key, x in v.items():
                x = self.value(x)
                if x is not NOVALUE:
                    out[key] = x
            return out
        if isinstance(v, list):
            return [x for x in (self.value(x) for x in v) if x is not NOVALUE]
        return scalar(v)


def scalar(v: Any) -> Any:
    """Numbers and booleans as CloudFormation passes them on: strings ("128", "true")."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(int(v)) if float(v).is_integer() else str(v)
    return v


def listify(v: Any) -> list[Any]:
    if isinstance(v, list):
        out: list[Any] = []
        for x in v:
            out.extend(listify(x))
        return out
    return [v]


def canon(v: Any) -> str:
    """A stable string for a value: lists of one are the item; other lists are sorted sets."""
    def norm(x: Any) -> Any:
        if isinstance(x, list):
            items = [norm(i) for i in x]
            if len(items) == 1:
                return items[0]
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
        if isinstance(x, dict):
            return {k: norm(i) for k, i in x.items()}
        return x
    return json.dumps(norm(v), sort_keys=True)


# ------------------------------------------------------------------------------------------------
# A side's model
# ------------------------------------------------------------------------------------------------
def cdk_names(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> construct path under the DaemonScheduler construct, concatenated as SAM names
    generated resources (Scheduler/TaskEventsFunction/EventInvokeConfig -> TaskEventsFunctionEventInvokeConfig)."""
    names = {}
    for lid, r in template["Resources"].items():
        path = (r.get("Metadata") or {}).get("aws:cdk:path")
        if not path:
            continue
        parts = path.split("/")[2:]
        if parts and parts[-1] == "Resource":
            parts = parts[:-1]
        names[lid] = "".join(parts) if parts else lid
    return names


def json_or_value(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def dashboard_form(body: Any) -> Any:
    """A dashboard body whose differences read well: widgets by title (untitled ones by type and
    place), each metric row one JSON string (a row's order is its meaning: namespace, name,
    dimension, value)."""
    if not isinstance(body, dict):
        return body
    out = {k: v for k, v in body.items() if k != "widgets"}
    widgets: dict[str, Any] = {}
    for i, w in enumerate(body.get("widgets", [])):
        w = copy.deepcopy(w)
        props = w.get("properties") or {}
        if isinstance(props.get("metrics"), list):
            props["metrics"] = {str(n): json.dumps(row, sort_keys=True) for n, row in enumerate(props["metrics"])}
        widgets[props.get("title") or f"{w.get('type')} widget {i}"] = w
    out["widgets"] = widgets
    return out


def normalize_properties(rtype: str, props: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(props)
    for k in IGNORED_PROPERTIES.get(rtype, ()):
        props.pop(k, None)
    for k, d in DEFAULTS.get(rtype, {}).items():
        props.setdefault(k, d)
    if rtype == "AWS::Events::Rule":
        for t in props.get("Targets", []):
            t.pop("Id", None)
        if "EventPattern" in props:
            props["EventPattern"] = json_or_value(props["EventPattern"])
    if rtype == "AWS::Lambda::EventSourceMapping" and "FilterCriteria" in props:
        props["FilterCriteria"] = sorted(
            (canon(json_or_value(f.get("Pattern"))) for f in props["FilterCriteria"].get("Filters", [])))
    if rtype == "AWS::DynamoDB::Table":
        props["AttributeDefinitions"] = sorted(props.get("AttributeDefinitions", []), key=lambda a: a["AttributeName"])
        props["GlobalSecondaryIndexes"] = sorted(props.get("GlobalSecondaryIndexes", []), key=lambda g: g["IndexName"])
    if rtype == "AWS::CloudWatch::Dashboard" and "DashboardBody" in props:
        props["DashboardBody"] = dashboard_form(json_or_value(props["DashboardBody"]))
    if rtype == "AWS::SQS::Queue" and "RedrivePolicy" in props:
        props["RedrivePolicy"] = json_or_value(props["RedrivePolicy"])
    return props


def statement_triples(statements: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(effect, action, resource, condition) of every action x resource of the statements."""
    out = set()
    for s in statements:
        for a in listify(s.get("Action", [])):
            for r in listify(s.get("Resource", [])):
                out.add((s.get("Effect", "Allow"), a, r, canon(s.get("Condition", {}))))
    return out


def route_matches(pattern_method: str, pattern_path: str, method: str, path: str) -> bool:
    as_glob = lambda p: re.sub(r"\{[^}]+\}", "*", p)  # noqa: E731
    return (pattern_method in ("*", method)) and fnmatch.fnmatchcase(as_glob(path), as_glob(pattern_path))


class Model:
    """Everything the comparison looks at, of one side."""

    def __init__(self, template: dict[str, Any], names: dict[str, str], parameters: dict[str, Any]):
        ev = Evaluator(template, names, parameters)
        self.ev = ev
        raw = template["Resources"]
        self.types: dict[str, str] = {}
        self.resources: dict[str, dict[str, Any]] = {}  # canonical name -> comparable form
        self.routes: set[tuple[str, ...]] = set()
        self.function_of_role: dict[str, str] = {}
        self.inline: dict[str, set[tuple[str, str, str, str]]] = {}
        self.managed: dict[str, list[str]] = {}
        self.permissions: list[tuple[str, str, str]] = []  # (function, principal, source)
        self.queue_statements: set[tuple[str, ...]] = set()
        self.outputs: dict[str, str] = {}

        resolved = {lid: ev.value(r) for lid, r in raw.items()}
        for lid, r in resolved.items():
            rtype = r["Type"]
            if rtype in SKIPPED_TYPES or "Condition" in raw[lid] and not ev.condition(raw[lid]["Condition"]):
                continue
            name = ev.name(lid)
            self.types[name] = rtype
            props = r.get("Properties") or {}
            if rtype in SPECIAL_TYPES:
                continue
            entry: dict[str, Any] = {"Type": rtype, "Properties": normalize_properties(rtype, props)}
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                if rtype in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup"):
                    entry[policy] = r.get(policy, "Delete")
            self.resources[name] = entry

        functions = {ev.name(lid): r for lid, r in resolved.items() if r["Type"] == "AWS::Lambda::Function"}
        for fname, r in functions.items():
            role = r["Properties"]["Role"]  # "${XRole.Arn}"
            self.function_of_role[role.removeprefix("${").removesuffix(".Arn}")] = fname
            self.inline[fname] = set()
            self.managed[fname] = []

        # IAM: role inline policies, managed policies, and separate AWS::IAM::Policy resources.
        for lid, r in resolved.items():
            props = r.get("Properties") or {}
            if r["Type"] == "AWS::IAM::Role":
                fname = self.function_of_role.get(ev.name(lid))
                if fname is None:
                    continue
                for p in props.get("Policies", []):
                    self.inline[fname] |= statement_triples(listify(p["PolicyDocument"]["Statement"]))
                for arn in props.get("ManagedPolicyArns", []):
                    self.managed[fname].append(re.sub(r"^arn:[^:]+:iam::aws:policy/", "", arn))
            elif r["Type"] == "AWS::IAM::Policy":
                for role in listify(props.get("Roles", [])):
                    fname = self.function_of_role.get(role.removeprefix("${").removesuffix("}"))
                    if fname is not None:
                        self.inline[fname] |= statement_triples(listify(props["PolicyDocument"]["Statement"]))

        # Routes.
        integrations = {ev.name(lid): r["Properties"] for lid, r in resolved.items()
                        if r["Type"] == "AWS::ApiGatewayV2::Integration"}
        fn_of_uri = lambda uri: re.search(r"\$\{([^}.]+)\.Arn\}", uri).group(1)  # noqa: E731
        for lid, r in resolved.items():
            props = r.get("Properties") or {}
            if r["Type"] == "AWS::ApiGatewayV2::Api" and "Body" in props:  # SAM: an OpenAPI body
                for p, methods in props["Body"].get("paths", {}).items():
                    for m, op in methods.items():
                        integ = op["x-amazon-apigateway-integration"]
                        auth = "AWS_IAM" if any("AWS_IAM" in s for s in op.get("security", [])) else "NONE"
                        method = "ANY" if m == "x-amazon-apigateway-any-method" else m.upper()
                        self.routes.add((ev.name(lid), f"{method} {p}", fn_of_uri(integ["uri"]), auth,
                                         integ["type"].upper(), integ.get("payloadFormatVersion", "1.0")))
            elif r["Type"] == "AWS::ApiGatewayV2::Route":
                integ = integrations[props["Target"].removeprefix("integrations/${").removesuffix("}")]
                self.routes.add((props["ApiId"].strip("${}"), props["RouteKey"], fn_of_uri(integ["IntegrationUri"]),
                                 props.get("AuthorizationType", "NONE"), integ["IntegrationType"].upper(),
                                 integ.get("PayloadFormatVersion", "1.0")))

        # Lambda resource policies.
        for lid, r in resolved.items():
            if r["Type"] == "AWS::Lambda::Permission":
                p = r["Properties"]
                fname = p["FunctionName"].removeprefix("${").removesuffix("}").removesuffix(".Arn")
                self.permissions.append((fname, p["Principal"], p.get("SourceArn", "")))

        # Queue policies, one statement per queue.
        for lid, r in resolved.items():
            if r["Type"] == "AWS::SQS::QueuePolicy":
                for s in listify(r["Properties"]["PolicyDocument"]["Statement"]):
                    for res in listify(s["Resource"]):
                        principal = s.get("Principal")
                        if principal == "*" or principal == {"AWS": "*"}:
                            principal = "*"
                        self.queue_statements.add((res, s["Effect"], canon(principal),
                                                   canon(sorted(listify(s["Action"]))), canon(s.get("Condition", {}))))

        for name, o in (template.get("Outputs") or {}).items():
            if "Condition" in o and not ev.condition(o["Condition"]):
                continue
            self.outputs[name] = canon(ev.value(o["Value"]))


# ------------------------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------------------------
def diff_values(path: str, a: Any, b: Any, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{path}.{k}: only in SAM: {json.dumps(a[k], sort_keys=True)[:300]}")
            elif k not in a:
                out.append(f"{path}.{k}: only in CDK: {json.dumps(b[k], sort_keys=True)[:300]}")
            else:
                diff_values(f"{path}.{k}", a[k], b[k], out)
    elif canon(a) != canon(b):
        out.append(f"{path}: SAM {canon(a)[:400]} != CDK {canon(b)[:400]}")


def api_permission_problems(side: str, m: Model) -> list[str]:
    """Every route of a function is invokable by API Gateway, and every API Gateway permission is
    for a route of its function."""
    problems = []
    perms = []
    for fname, principal, source in m.permissions:
        if principal != "apigateway.amazonaws.com":
            continue
        match = re.match(r"^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                         r"\$\{([^}]+)\}/([^/]+)/([^/]+)(/.*)?$", source)
        if not match:
            problems.append(f"{side}: API Gateway permission of {fname} with an unexpected source {source}")
            continue
        perms.append((fname, match.group(1), match.group(3), match.group(4) or "/*"))
    for api, key, fname, *_ in m.routes:
        method, path = key.split(" ", 1)
        if not any(f == fname and a == api and route_matches(pm, pp, method, path) for f, a, pm, pp in perms):
            problems.append(f"{side}: route {key} -> {fname} has no lambda:InvokeFunction permission for API Gateway")
    for f, a, pm, pp in perms:
        if not any(fname == f and api == a and route_matches(pm, pp, *key.split(" ", 1))
                   for api, key, fname, *_ in m.routes):
            problems.append(f"{side}: API Gateway may invoke {f} on {pm} {pp}, which is no route of it")
    return problems


def compare(sam: Model, cdk: Model) -> list[str]:
    problems: list[str] = []

    # Resources, by name and type.
    for name in sorted(set(sam.types) | set(cdk.types)):
        st, ct = sam.types.get(name), cdk.types.get(name)
        if st is None or ct is None:
            kind = st or ct
            if kind in SPECIAL_TYPES:
                continue  # generated per route / rule / queue by each tool: compared below
            problems.append(f"resource {name} ({kind}): only in {'SAM' if ct is None else 'CDK'}")
        elif st != ct:
            problems.append(f"resource {name}: type {st} in SAM, {ct} in CDK")
        elif name in sam.resources:
            diff_values(name, sam.resources[name], cdk.resources[name], problems)

    # Routes.
    for r in sorted(sam.routes - cdk.routes):
        problems.append(f"route only in SAM: {r[1]} -> {r[2]} (auth {r[3]}, {r[4]} {r[5]})")
    for r in sorted(cdk.routes - sam.routes):
        problems.append(f"route only in CDK: {r[1]} -> {r[2]} (auth {r[3]}, {r[4]} {r[5]})")

    # Lambda resource policies.
    other = lambda m: sorted((f, p, s) for f, p, s in m.permissions if p != "apigateway.amazonaws.com")  # noqa: E731
    for p in sorted(set(other(sam)) - set(other(cdk))):
        problems.append(f"lambda permission only in SAM: {p[1]} may invoke {p[0]} from {p[2]}")
    for p in sorted(set(other(cdk)) - set(other(sam))):
        problems.append(f"lambda permission only in CDK: {p[1]} may invoke {p[0]} from {p[2]}")
    problems += api_permission_problems("SAM", sam) + api_permission_problems("CDK", cdk)

    # IAM, per function.
    for fname in sorted(set(sam.inline) | set(cdk.inline)):
        if fname not in sam.inline or fname not in cdk.inline:
            continue  # the function itself is reported above
        s_inline, c_all = sam.inline[fname], cdk.inline[fname]
        unknown = [p for p in sam.managed[fname] if p not in MANAGED_POLICIES]
        for p in unknown:
            problems.append(f"{fname}: SAM attaches managed policy {p}, which parity.py does not know")
        held = set().union(*(MANAGED_POLICIES[p][0] for p in sam.managed[fname] if p in MANAGED_POLICIES))
        needed = set().union(*(MANAGED_POLICIES[p][1] for p in sam.managed[fname] if p in MANAGED_POLICIES))
        for t in sorted(s_inline - c_all):
            problems.append(f"{fname}: CDK lacks {t[0]} {t[1]} on {t[2]} (condition {t[3]})")
        for t in sorted(c_all - s_inline):
            if t[0] == "Allow" and t[1] in held:
                continue  # what SAM grants through a managed policy, scoped by CDK
            problems.append(f"{fname}: CDK grants {t[0]} {t[1]} on {t[2]} (condition {t[3]}), the template does not")
        granted = {t[1] for t in c_all if t[0] == "Allow"}
        for a in sorted(needed - granted):
            problems.append(f"{fname}: CDK lacks {a} (SAM grants it through a managed policy)")
        if cdk.managed[fname]:
            problems.append(f"{fname}: CDK role has managed policies {cdk.managed[fname]}")

    # Queue policies: CDK may add TLS-only Deny statements.
    tls_only = (canon("*"), canon(["sqs:*"]), canon({"Bool": {"aws:SecureTransport": "false"}}))
    for s in sorted(sam.queue_statements - cdk.queue_statements):
        problems.append(f"queue policy statement only in SAM: {s}")
    for s in sorted(cdk.queue_statements - sam.queue_statements):
        if s[1] == "Deny" and (s[2], s[3], s[4]) == tls_only:
            continue
        problems.append(f"queue policy statement only in CDK: {s}")

    # Outputs.
    for name in sorted(set(sam.outputs) | set(cdk.outputs)):
        if name not in cdk.outputs:
            problems.append(f"output {name}: only in SAM")
        elif name not in sam.outputs:
            problems.append(f"output {name}: only in CDK")
        elif sam.outputs[name] != cdk.outputs[name]:
            problems.append(f"output {name}: SAM {sam.outputs[name]} != CDK {cdk.outputs[name]}")
    return problems


def models(scenario: str, cdk_template: dict[str, Any], sam_template: dict[str, Any] | None = None) -> tuple[Model, Model]:
    params = SCENARIOS[scenario]["sam"]
    sam_cfn = sam_template if sam_template is not None else load_sam(params)
    sam = Model(sam_cfn, {}, params)
    cdk = Model(cdk_template, cdk_names(cdk_template), {})
    return sam, cdk


def unexercised_parameters(sam_cfn: dict[str, Any]) -> list[str]:
    """Template parameters the 'configured' scenario leaves at their default."""
    configured = SCENARIOS["configured"]["sam"]
    return sorted(p for p in (sam_cfn.get("Parameters") or {}) if p not in configured)


def default_cdk_template(scenario: str) -> Path:
    out = Path(os.environ.get("CDK_OUT", CDK_DIR / "cdk.out"))
    return out / scenario / "DaemonScheduler.template.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="default", choices=sorted(k for k in SCENARIOS if not k.startswith("_")))
    ap.add_argument("--cdk-template", type=Path)
    args = ap.parse_args(argv)
    path = args.cdk_template or default_cdk_template(args.scenario)
    sam, cdk = models(args.scenario, load_cdk(path))
    problems = compare(sam, cdk)
    for p in problems:
        print(p)
    print(f"parity ({args.scenario}): {len(problems)} difference(s) between infra/template.yaml and {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
