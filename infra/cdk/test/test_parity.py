"""The SAM template and the CDK construct's synthesized stack declare the same stack, for the
default configuration and for one that sets every template parameter (scenarios.json); and the
comparison itself notices a missing route, permission, rule pattern, trigger, queue policy or
output on either side (mutation checks on in-memory copies).

Needs the synthesized templates: scripts/check_cdk.sh synthesizes them into infra/cdk/cdk.out/<scenario>
(or set CDK_OUT) before running this file.
"""

from __future__ import annotations

import copy
import json
import sys
import unittest
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parity  # noqa: E402

_sam_cache: dict[str, dict[str, Any]] = {}


def sam_cfn(scenario: str) -> dict[str, Any]:
    if scenario not in _sam_cache:
        _sam_cache[scenario] = parity.load_sam(parity.SCENARIOS[scenario]["sam"])
    return copy.deepcopy(_sam_cache[scenario])


def cdk_cfn(scenario: str) -> dict[str, Any]:
    path = parity.default_cdk_template(scenario)
    if not path.exists():
        raise AssertionError(f"{path} missing: run scripts/check_cdk.sh, which synthesizes it first")
    return parity.load_cdk(path)


def problems(scenario: str, sam: dict[str, Any] | None = None, cdk: dict[str, Any] | None = None) -> list[str]:
    s, c = parity.models(scenario, cdk if cdk is not None else cdk_cfn(scenario),
                         sam if sam is not None else sam_cfn(scenario))
    return parity.compare(s, c)


def resources_of(t: dict[str, Any], rtype: str, path_part: str = "") -> list[tuple[str, dict[str, Any]]]:
    return [(lid, r) for lid, r in t["Resources"].items()
            if r["Type"] == rtype and path_part in (r.get("Metadata") or {}).get("aws:cdk:path", lid)]


class Parity(unittest.TestCase):
    def test_default_configuration_matches(self) -> None:
        self.assertEqual(problems("default"), [])

    def test_configured_configuration_matches(self) -> None:
        self.assertEqual(problems("configured"), [])

    def test_configured_scenario_sets_every_template_parameter(self) -> None:
        # A new template parameter must get a CDK prop (and a line in scenarios.json).
        self.assertEqual(parity.unexercised_parameters(sam_cfn("configured")), [])

    def test_cdk_nag_reported_nothing_unacknowledged(self) -> None:
        for scenario in ("default", "configured"):
            report = json.loads((parity.default_cdk_template(scenario).parent / "validation-report.json").read_text())
            violations = [v["ruleName"] for r in report["pluginReports"] for v in r.get("violations", [])]
            self.assertEqual(violations, [], scenario)

    def test_every_cdk_nag_acknowledgement_gives_a_reason(self) -> None:
        meta = json.loads((parity.default_cdk_template("default").parent / "DaemonScheduler.metadata.json").read_text())
        acks = {rule: reason for entries in meta.values() for e in entries
                if e.get("type") == "aws:cdk:acknowledged-rules" for rule, reason in e["data"].items()}
        self.assertTrue(acks)
        for rule, reason in acks.items():
            self.assertGreater(len(reason), 40, rule)


class ParityNoticesDifferences(unittest.TestCase):
    """Each mutation removes or changes one thing on one side; the comparison must report it."""

    def assertNoticed(self, mutate: Callable[[dict[str, Any]], None], expect: str, side: str = "cdk",
                      scenario: str = "default") -> None:
        sam, cdk = sam_cfn(scenario), cdk_cfn(scenario)
        mutate(cdk if side == "cdk" else sam)
        found = problems(scenario, sam, cdk)
        self.assertTrue(any(expect in p for p in found), f"expected a problem containing {expect!r}, got {found}")

    def test_missing_route(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            lid, _ = next((lid, r) for lid, r in resources_of(t, "AWS::ApiGatewayV2::Route")
                          if r["Properties"]["RouteKey"] == "POST /v1/environments/{name}/deployments/{id}/cancel")
            del t["Resources"][lid]
        self.assertNoticed(drop, "route only in SAM: POST /v1/environments/{name}/deployments/{id}/cancel")

    def test_route_to_another_function(self) -> None:
        def move(t: dict[str, Any]) -> None:
            body = t["Resources"]["HttpApi"]["Properties"]["Body"]
            op = body["paths"]["/v1/environments/{name}/status"]["get"]
            op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"] = \
                op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"].replace("EnvironmentsApiFunction", "DeploymentsApiFunction")
        self.assertNoticed(move, "route only in SAM: GET /v1/environments/{name}/status -> DeploymentsApiFunction", side="sam")

    def test_route_without_iam_auth(self) -> None:
        def open_route(t: dict[str, Any]) -> None:
            lid, _ = next((lid, r) for lid, r in resources_of(t, "AWS::ApiGatewayV2::Route")
                          if r["Properties"]["RouteKey"] == "GET /v1/ping")
            t["Resources"][lid]["Properties"]["AuthorizationType"] = "NONE"
        self.assertNoticed(open_route, "route only in CDK: GET /v1/ping -> EnvironmentsApiFunction (auth NONE")

    def test_missing_api_invoke_permission(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for lid, r in resources_of(t, "AWS::Lambda::Permission", "GET--v1--ping"):
                del t["Resources"][lid]
        self.assertNoticed(drop, "CDK: route GET /v1/ping -> EnvironmentsApiFunction has no lambda:InvokeFunction permission")

    def test_missing_action(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::IAM::Policy", "TaskEventsRole"):
                for s in r["Properties"]["PolicyDocument"]["Statement"]:
                    if s.get("Sid") == "StopTask":
                        s["Action"] = "ecs:StartTask"
        self.assertNoticed(drop, "TaskEventsFunction: CDK lacks Allow ecs:StopTask")

    def test_extra_action(self) -> None:
        def add(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::IAM::Policy", "DeploymentsApiRole"):
                r["Properties"]["PolicyDocument"]["Statement"].append(
                    {"Effect": "Allow", "Action": "dynamodb:DeleteItem", "Resource": "*"})
        self.assertNoticed(add, "DeploymentsApiFunction: CDK grants Allow dynamodb:DeleteItem on *")

    def test_condition_scoping(self) -> None:
        def widen(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::IAM::Policy", "ReconcilerRole"):
                for s in r["Properties"]["PolicyDocument"]["Statement"]:
                    if s.get("Sid") == "StartTask":
                        del s["Condition"]
        self.assertNoticed(widen, "ReconcilerFunction: CDK lacks Allow ecs:StartTask", scenario="configured")

    def test_missing_permission_in_template(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for s in t["Resources"]["DeployerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
                if s.get("Sid") == "TableStream":
                    s["Action"] = [a for a in s["Action"] if a != "dynamodb:GetRecords"]
        self.assertNoticed(drop, "DeployerFunction: CDK grants Allow dynamodb:GetRecords", side="sam")

    def test_rule_pattern(self) -> None:
        def narrow(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::Events::Rule", "TaskStateChange"):
                r["Properties"]["EventPattern"]["detail"]["lastStatus"] = ["STOPPED"]
        self.assertNoticed(narrow, "TaskEventsFunctionTaskStateChange.Properties.EventPattern.detail.lastStatus")

    def test_rule_retry_policy(self) -> None:
        def change(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::Events::Rule", "ContainerInstanceStateChange"):
                r["Properties"]["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] = 3
        self.assertNoticed(change, "\"MaximumRetryAttempts\": \"3\"")

    def test_missing_trigger(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for lid, _ in resources_of(t, "AWS::Lambda::EventSourceMapping", "Wakeups"):
                del t["Resources"][lid]
        self.assertNoticed(drop, "resource DeployerFunctionWakeups (AWS::Lambda::EventSourceMapping): only in SAM")

    def test_stream_filter(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::Lambda::EventSourceMapping", "TableStream"):
                r["Properties"]["FilterCriteria"]["Filters"].pop()
        self.assertNoticed(drop, "DeployerFunctionTableStream.Properties.FilterCriteria")

    def test_missing_rule_invoke_permission(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for lid, r in resources_of(t, "AWS::Lambda::Permission", "ReconcilerFunctionReconcile"):
                del t["Resources"][lid]
        self.assertNoticed(drop, "lambda permission only in SAM: events.amazonaws.com may invoke ReconcilerFunction")

    def test_missing_queue_policy_statement(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::SQS::QueuePolicy", "TaskEventsDeadLetterQueue"):
                r["Properties"]["PolicyDocument"]["Statement"] = [
                    s for s in r["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] != "Allow"]
        self.assertNoticed(drop, "queue policy statement only in SAM: ('${TaskEventsDeadLetterQueue.Arn}', 'Allow'")

    def test_missing_output(self) -> None:
        self.assertNoticed(lambda t: t["Outputs"].pop("ApiUrl"), "output ApiUrl: only in SAM")

    def test_new_template_resource(self) -> None:
        def add(t: dict[str, Any]) -> None:
            t["Resources"]["OpsTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {}}
        self.assertNoticed(add, "resource OpsTopic (AWS::SNS::Topic): only in SAM", side="sam")

    def test_table_property(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::DynamoDB::Table"):
                del r["Properties"]["DeletionProtectionEnabled"]
        self.assertNoticed(drop, "Table.Properties.DeletionProtectionEnabled: only in SAM")

    def test_dashboard_metric(self) -> None:
        def rename(t: dict[str, Any]) -> None:
            for _, r in resources_of(t, "AWS::CloudWatch::Dashboard"):
                parts = r["Properties"]["DashboardBody"]["Fn::Join"][1]
                r["Properties"]["DashboardBody"]["Fn::Join"][1] = [
                    p.replace("TasksStopped", "TasksHalted") if isinstance(p, str) else p for p in parts]
        self.assertNoticed(rename, "Dashboard.Properties.DashboardBody.widgets.Tasks stopped, by environment.properties.metrics.0")

    def test_dashboard_function(self) -> None:
        def drop(t: dict[str, Any]) -> None:
            body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
            body["Fn::Sub"] = body["Fn::Sub"].replace(
                '["AWS/Lambda", "Throttles", "FunctionName", "${ReconcilerFunction}", {"label": "reconciler"}]',
                '["AWS/Lambda", "Throttles", "FunctionName", "${DeployerFunction}", {"label": "reconciler"}]')
        self.assertNoticed(drop, "Dashboard.Properties.DashboardBody.widgets.Function throttles.properties.metrics.5", side="sam")

    def test_missing_dashboard_output(self) -> None:
        self.assertNoticed(lambda t: t["Outputs"].pop("DashboardUrl"), "output DashboardUrl: only in SAM")

    def test_new_template_parameter_is_noticed(self) -> None:
        sam = sam_cfn("configured")
        sam["Parameters"]["ReservedConcurrency"] = {"Type": "Number", "Default": 10}
        self.assertEqual(parity.unexercised_parameters(sam), ["ReservedConcurrency"])


if __name__ == "__main__":
    unittest.main()
