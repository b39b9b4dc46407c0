"""Read what the local stack needs from infra/template.yaml, so local and AWS cannot drift:

- the DynamoDB `Table` resource's Properties, mapped to boto3 `create_table` / `update_time_to_live`;
- every function's EventBridge rule patterns (SAM `EventBridgeRule` events, or plain
  `AWS::Events::Rule` resources targeting a function);
- the deployer's DynamoDB event source (FilterCriteria, BatchSize, MaximumRetryAttempts, ...);
- the scheduled function (SAM `Schedule` / `ScheduleV2` events);
- the HTTP API's routes (SAM `HttpApi` events), for the local gateway and the OpenAPI check;
- the CloudWatch dashboard, rendered with the local stack's names (`dashboard`, `dashboard_url`).

The YAML loader tolerates CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...): each becomes the
long form as a plain dict ({"Ref": ...}, {"Fn::GetAtt": [...]}, ...). Nothing here evaluates them,
except the dashboard's `!Sub`s (`sub`), with values the caller gives.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO / "infra" / "template.yaml"

# The functions of the Cargo workspace (crate = binary = function name under cargo lambda watch).
FUNCTIONS = (
    "environments-api",
    "deployments-api",
    "instance-events",
    "task-events",
    "deployer",
    "reconciler",
)


# --------------------------------------------------------------------------------------------
# YAML with CloudFormation tags
# --------------------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Tag value` into `{"Fn::Tag": value}` (`!Ref x` into `{"Ref": x}`)."""


def _construct_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else DEFAULT_TEMPLATE
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise ValueError(f"{path}: not a CloudFormation template (no Resources)")
    return doc


def _resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template.get("Resources") or {}


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def table_resource(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The `Table` resource (or else the only AWS::DynamoDB::Table): (logical id, Properties)."""
    res = _resources(template)
    if res.get("Table", {}).get("Type") == "AWS::DynamoDB::Table":
        return "Table", res["Table"].get("Properties") or {}
    tables = [(k, v) for k, v in res.items() if v.get("Type") == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise ValueError(f"expected one AWS::DynamoDB::Table in the template, found {len(tables)}")
    return tables[0][0], tables[0][1].get("Properties") or {}


def _literal(value: Any, what: str) -> Any:
    if isinstance(value, dict) and any(k == "Ref" or k.startswith("Fn::") for k in value):
        raise ValueError(f"{what} must be a literal in the template to build the local table, got {value}")
    return value


def _key_schema(ks: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in _literal(ks, "KeySchema")]


def _projection(p: dict[str, Any] | None) -> dict[str, Any]:
    p = p or {"ProjectionType": "ALL"}
    out: dict[str, Any] = {"ProjectionType": p.get("ProjectionType", "ALL")}
    if p.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = list(p["NonKeyAttributes"])
    return out


def create_table_kwargs(template: dict[str, Any], table_name: str) -> dict[str, Any]:
    """boto3 `dynamodb.create_table(**kwargs)` equivalent of the template's table."""
    _, props = table_resource(template)
    billing = props.get("BillingMode", "PROVISIONED")
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
            for a in _literal(props["AttributeDefinitions"], "AttributeDefinitions")
        ],
        "KeySchema": _key_schema(props["KeySchema"]),
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        pt = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": int(pt["ReadCapacityUnits"]),
            "WriteCapacityUnits": int(pt["WriteCapacityUnits"]),
        }
    gsis = []
    for g in props.get("GlobalSecondaryIndexes") or []:
        gsi: dict[str, Any] = {
            "IndexName": g["IndexName"],
            "KeySchema": _key_schema(g["KeySchema"]),
            "Projection": _projection(g.get("Projection")),
        }
        if billing == "PROVISIONED":
            pt = g.get("ProvisionedThroughput") or kwargs["ProvisionedThroughput"]
            gsi["ProvisionedThroughput"] = {
                "ReadCapacityUnits": int(pt["ReadCapacityUnits"]),
                "WriteCapacityUnits": int(pt["WriteCapacityUnits"]),
            }
        gsis.append(gsi)
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    lsis = [
        {"IndexName": i["IndexName"], "KeySchema": _key_schema(i["KeySchema"]), "Projection": _projection(i.get("Projection"))}
        for i in props.get("LocalSecondaryIndexes") or []
    ]
    if lsis:
        kwargs["LocalSecondaryIndexes"] = lsis
    stream = props.get("StreamSpecification")
    if stream:
        # CloudFormation has no StreamEnabled: a StreamSpecification with a view type enables it.
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": _literal(stream["StreamViewType"], "StreamViewType")}
    return kwargs


def ttl_specification(template: dict[str, Any]) -> dict[str, Any] | None:
    """boto3 `update_time_to_live(TimeToLiveSpecification=...)` of the table, if TTL is enabled."""
    _, props = table_resource(template)
    ttl = props.get("TimeToLiveSpecification")
    if not ttl or str(ttl.get("Enabled", False)).lower() != "true":
        return None
    return {"Enabled": True, "AttributeName": ttl["AttributeName"]}


def template_table_name(template: dict[str, Any]) -> str | None:
    _, props = table_resource(template)
    name = props.get("TableName")
    return name if isinstance(name, str) else None


# --------------------------------------------------------------------------------------------
# Functions and their triggers
# --------------------------------------------------------------------------------------------
def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def function_of_resource(logical_id: str, resource: dict[str, Any]) -> str | None:
    """Which workspace function a Lambda resource is: its BuildProperties.Binary, CodeUri,
    FunctionName or, failing those, its logical id (EnvironmentsApiFunction -> environments-api)."""
    props = resource.get("Properties") or {}
    meta = resource.get("Metadata") or {}
    candidates: list[str] = []
    binary = (meta.get("BuildProperties") or {}).get("Binary")
    if isinstance(binary, str):
        candidates.append(binary)
    for key in ("CodeUri", "FunctionName"):
        v = props.get(key)
        if isinstance(v, dict) and isinstance(v.get("Fn::Sub"), str):
            v = v["Fn::Sub"]
        if isinstance(v, str):
            candidates.append(v.rstrip("/").split("/")[-1])
    candidates.append(_kebab(logical_id))
    for c in candidates:
        if c in FUNCTIONS:
            return c
    for c in candidates:
        for f in sorted(FUNCTIONS, key=len, reverse=True):
            if f in c:
                return f
    return None


def _lambda_functions(template: dict[str, Any]) -> dict[str, str]:
    """logical id -> function name, for every function resource of the template."""
    out = {}
    for lid, r in _resources(template).items():
        if r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            fn = function_of_resource(lid, r)
            if fn:
                out[lid] = fn
    return out


def _ref_target(value: Any) -> str | None:
    """Logical id named by {"Ref": X} / {"Fn::GetAtt": [X, "Arn"]} / "X"."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            ga = value["Fn::GetAtt"]
            return str(ga[0] if isinstance(ga, list) else ga.split(".")[0])
    if isinstance(value, str):
        return value
    return None


def _pattern(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class Rule:
    function: str
    pattern: dict[str, Any]
    name: str


def eventbridge_rules(template: dict[str, Any]) -> list[Rule]:
    """Every (function, EventBridge pattern) of the template."""
    fns = _lambda_functions(template)
    rules: list[Rule] = []
    for lid, r in _resources(template).items():
        if lid in fns and r.get("Type") == "AWS::Serverless::Function":
            for ename, ev in ((r.get("Properties") or {}).get("Events") or {}).items():
                if ev.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                    rules.append(Rule(fns[lid], _pattern(ev["Properties"]["Pattern"]), f"{lid}{ename}"))
        elif r.get("Type") == "AWS::Events::Rule":
            props = r.get("Properties") or {}
            if "EventPattern" not in props:
                continue
            for t in props.get("Targets") or []:
                target = _ref_target(t.get("Arn"))
                if target in fns:
                    rules.append(Rule(fns[target], _pattern(props["EventPattern"]), lid))
    return rules


@dataclass
class StreamSource:
    function: str
    filters: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 100
    max_retries: int = -1  # Lambda's default: retry until the record expires
    bisect: bool = False
    starting_position: str = "TRIM_HORIZON"
    batching_window: float = 0.0


def stream_sources(template: dict[str, Any]) -> list[StreamSource]:
    """Every DynamoDB-stream event source (SAM `DynamoDB` events or AWS::Lambda::EventSourceMapping)."""
    fns = _lambda_functions(template)
    out: list[StreamSource] = []

    def build(fn: str, p: dict[str, Any]) -> StreamSource:
        filters = [_pattern(f["Pattern"]) for f in ((p.get("FilterCriteria") or {}).get("Filters") or [])]
        return StreamSource(
            function=fn,
            filters=filters,
            batch_size=int(p.get("BatchSize", 100)),
            max_retries=int(p.get("MaximumRetryAttempts", -1)),
            bisect=str(p.get("BisectBatchOnFunctionError", False)).lower() == "true",
            starting_position=str(p.get("StartingPosition", "TRIM_HORIZON")),
            batching_window=float(p.get("MaximumBatchingWindowInSeconds", 0) or 0),
        )

    for lid, r in _resources(template).items():
        if lid in fns and r.get("Type") == "AWS::Serverless::Function":
            for ev in ((r.get("Properties") or {}).get("Events") or {}).values():
                if ev.get("Type") == "DynamoDB":
                    out.append(build(fns[lid], ev.get("Properties") or {}))
        elif r.get("Type") == "AWS::Lambda::EventSourceMapping":
            p = r.get("Properties") or {}
            target = _ref_target(p.get("FunctionName"))
            if target in fns:
                out.append(build(fns[target], p))
    return out


@dataclass
class SqsSource:
    function: str
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int = 10


def queues(template: dict[str, Any]) -> list[str]:
    """Logical ids of the template's SQS queues."""
    return [lid for lid, r in _resources(template).items() if r.get("Type") == "AWS::SQS::Queue"]


def queue_properties(template: dict[str, Any], lid: str) -> dict[str, Any]:
    """A queue's Properties (FifoQueue, ContentBasedDeduplication, VisibilityTimeout,
    RedrivePolicy ...) as written in the template."""
    return dict((_resources(template).get(lid) or {}).get("Properties") or {})


def sqs_sources(template: dict[str, Any]) -> list[SqsSource]:
    """Every SQS event source (SAM `SQS` events whose Queue is a !GetAtt <queue>.Arn)."""
    fns = _lambda_functions(template)
    out: list[SqsSource] = []
    for lid, r in _resources(template).items():
        if lid in fns and r.get("Type") == "AWS::Serverless::Function":
            for ev in ((r.get("Properties") or {}).get("Events") or {}).values():
                if ev.get("Type") == "SQS":
                    p = ev.get("Properties") or {}
                    queue = _ref_target(p.get("Queue"))
                    if queue:
                        out.append(SqsSource(fns[lid], queue, int(p.get("BatchSize", 10))))
    return out


def queue_variables(template: dict[str, Any]) -> dict[str, str]:
    """Environment variables of the functions that name a queue (`!Ref <queue>`, its URL):
    variable -> queue logical id."""
    qs = set(queues(template))
    out: dict[str, str] = {}
    for r in _resources(template).values():
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        env = (((r.get("Properties") or {}).get("Environment") or {}).get("Variables")) or {}
        for name, value in env.items():
            target = _ref_target(value)
            if target in qs:
                out[name] = target
    return out


@dataclass
class HttpRoute:
    """One route of an HTTP API (API Gateway v2): `METHOD /path/{var}` -> function."""

    function: str
    method: str  # GET, POST, ... or ANY
    path: str  # /v1/environments/{name}; "$default" for the catch-all route
    name: str  # <function resource><event name>, e.g. EnvironmentsApiFunctionPing
    api: str | None = None  # logical id of the AWS::Serverless::HttpApi (None: SAM's implicit API)

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey: `GET /v1/ping`, or `$default`."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


def http_api_routes(template: dict[str, Any]) -> list[HttpRoute]:
    """Every SAM `HttpApi` event of the template's functions, in template order. SAM's defaults
    apply: no Method is ANY, no Path (with no Method) is the `$default` route."""
    fns = _lambda_functions(template)
    out: list[HttpRoute] = []
    for lid, r in _resources(template).items():
        if lid not in fns or r.get("Type") != "AWS::Serverless::Function":
            continue
        for ename, ev in ((r.get("Properties") or {}).get("Events") or {}).items():
            if ev.get("Type") != "HttpApi":
                continue
            p = ev.get("Properties") or {}
            method = _literal(p.get("Method", "ANY"), f"{lid}.{ename}.Method")
            path = _literal(p.get("Path", "$default"), f"{lid}.{ename}.Path")
            method = "ANY" if str(method).lower() in ("any", "x-amazon-apigateway-any-method") else str(method).upper()
            out.append(HttpRoute(fns[lid], method, str(path), f"{lid}{ename}", _ref_target(p.get("ApiId"))))
    return out


def scheduled_functions(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(function, rule logical name) of every scheduled trigger."""
    fns = _lambda_functions(template)
    out = []
    for lid, r in _resources(template).items():
        if lid in fns and r.get("Type") == "AWS::Serverless::Function":
            for ename, ev in ((r.get("Properties") or {}).get("Events") or {}).items():
                if ev.get("Type") in ("Schedule", "ScheduleV2"):
                    out.append((fns[lid], f"{lid}{ename}"))
        elif r.get("Type") == "AWS::Events::Rule" and "ScheduleExpression" in (r.get("Properties") or {}):
            for t in r["Properties"].get("Targets") or []:
                target = _ref_target(t.get("Arn"))
                if target in fns:
                    out.append((fns[target], lid))
    return out



# --------------------------------------------------------------------------------------------
# The dashboard
# --------------------------------------------------------------------------------------------
def sub(text: str, values: dict[str, str]) -> str:
    """`Fn::Sub` of `text`: `${Name}`, `${Name.Attribute}` and `${AWS::Param}` from `values`,
    `${!literal}` as `${literal}`. A name `values` lacks is an error, so nothing stays unrendered."""
    def repl(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith("!"):
            return "${" + ref[1:] + "}"
        if ref not in values:
            raise KeyError(f"${{{ref}}}: no local value")
        return values[ref]
    return re.sub(r"\$\{([^}]+)\}", repl, text)


def _sub_text(value: Any, what: str) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
        if isinstance(value, list):  # [text, variables]: the template uses none
            if len(value) > 1 and value[1]:
                raise ValueError(f"{what}: Fn::Sub variables are not supported here")
            value = value[0]
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a string or !Sub, got {value!r}")
    return value


def dashboard(template: dict[str, Any], values: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The template's AWS::CloudWatch::Dashboard as CloudFormation would create it, with `values`
    for what the stack would resolve (see `sub`): (its name, its body)."""
    found = [(lid, r) for lid, r in _resources(template).items() if r.get("Type") == "AWS::CloudWatch::Dashboard"]
    if len(found) != 1:
        raise ValueError(f"expected one AWS::CloudWatch::Dashboard in the template, found {len(found)}")
    lid, r = found[0]
    props = r.get("Properties") or {}
    name = sub(_sub_text(props.get("DashboardName", lid), f"{lid}.DashboardName"), values)
    body = json.loads(sub(_sub_text(props["DashboardBody"], f"{lid}.DashboardBody"), values))
    return name, body


def dashboard_url(template: dict[str, Any], values: dict[str, str]) -> str:
    """The template's `DashboardUrl` output with `values` (its `${Dashboard}`: the dashboard's name)."""
    name, _ = dashboard(template, values)
    lid = next(lid for lid, r in _resources(template).items() if r.get("Type") == "AWS::CloudWatch::Dashboard")
    return sub(_sub_text(template["Outputs"]["DashboardUrl"]["Value"], "Outputs.DashboardUrl"), {**values, lid: name})

if __name__ == "__main__":  # a quick look at what the local stack reads from the template
    import argparse
    import pprint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    a = ap.parse_args()
    t = load_template(a.template)
    print("create_table:")
    pprint.pprint(create_table_kwargs(t, "daemon-scheduler"))
    print("ttl:", ttl_specification(t))
    print("EventBridge rules:")
    for rule in eventbridge_rules(t):
        print(f"  {rule.function:18} {json.dumps(rule.pattern)}")
    print("stream sources:")
    for s in stream_sources(t):
        print(f"  {s.function:18} batch={s.batch_size} retries={s.max_retries} bisect={s.bisect} start={s.starting_position}")
        for f in s.filters:
            print(f"  {'':18} filter {json.dumps(f)}")
    print("scheduled:", scheduled_functions(t))
    print("HTTP API routes:")
    for route in http_api_routes(t):
        print(f"  {route.route_key:55} -> {route.function}")
