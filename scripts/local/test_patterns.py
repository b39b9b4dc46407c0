"""Unit checks of the local event routing: the pattern matcher, and the template's own rules and
filters against sample events (events/*.json plus variants built here).

    .venv/bin/python -m unittest discover -s scripts/local -p 'test_*.py'
    TEMPLATE=/path/to/template.yaml ...   # check another template
"""

from __future__ import annotations

import copy
import json
import os
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402
import eventbus  # noqa: E402
import patterns  # noqa: E402

TEMPLATE = Path(os.environ.get("TEMPLATE", cfn.DEFAULT_TEMPLATE))
EVENTS = cfn.REPO / "events"


def sample(rel: str) -> dict:
    return json.loads((EVENTS / rel).read_text())


class MatcherTest(unittest.TestCase):
    def test_exact_and_nested(self):
        p = {"source": ["aws.ecs"], "detail": {"status": ["ACTIVE", "DRAINING"]}}
        self.assertTrue(patterns.matches(p, {"source": "aws.ecs", "detail": {"status": "DRAINING", "x": 1}}))
        self.assertFalse(patterns.matches(p, {"source": "aws.ecs", "detail": {"status": "INACTIVE"}}))
        self.assertFalse(patterns.matches(p, {"source": "aws.ecs"}))
        self.assertFalse(patterns.matches(p, {"source": "aws.ecs", "detail": "ACTIVE"}))

    def test_prefix_suffix_ignore_case(self):
        self.assertTrue(patterns.matches({"g": [{"prefix": "daemon-scheduler:"}]}, {"g": "daemon-scheduler:x"}))
        self.assertFalse(patterns.matches({"g": [{"prefix": "daemon-scheduler:"}]}, {"g": "service:x"}))
        self.assertFalse(patterns.matches({"g": [{"prefix": "daemon-scheduler:"}]}, {"g": None}))
        self.assertTrue(patterns.matches({"g": [{"suffix": ".png"}]}, {"g": "a.png"}))
        self.assertTrue(patterns.matches({"g": [{"equals-ignore-case": "AbC"}]}, {"g": "aBc"}))
        self.assertTrue(patterns.matches({"g": [{"prefix": {"equals-ignore-case": "AB"}}]}, {"g": "abc"}))
        self.assertTrue(patterns.matches({"g": [{"wildcard": "a*c"}]}, {"g": "abbbc"}))
        self.assertFalse(patterns.matches({"g": [{"wildcard": "a*c"}]}, {"g": "abd"}))

    def test_arrays_numbers_null_bool(self):
        self.assertTrue(patterns.matches({"r": ["b"]}, {"r": ["a", "b"]}))
        self.assertFalse(patterns.matches({"r": ["c"]}, {"r": ["a", "b"]}))
        self.assertTrue(patterns.matches({"n": [5]}, {"n": 5.0}))
        self.assertFalse(patterns.matches({"n": [5]}, {"n": "5"}))
        self.assertTrue(patterns.matches({"n": [None]}, {"n": None}))
        self.assertFalse(patterns.matches({"n": [None]}, {}))
        self.assertTrue(patterns.matches({"b": [True]}, {"b": True}))
        self.assertFalse(patterns.matches({"b": [True]}, {"b": 1}))
        self.assertTrue(patterns.matches({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5}))
        self.assertFalse(patterns.matches({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 6}))

    def test_exists_anything_but_or(self):
        self.assertTrue(patterns.matches({"a": [{"exists": False}]}, {"b": 1}))
        self.assertFalse(patterns.matches({"a": [{"exists": False}]}, {"a": 1}))
        self.assertTrue(patterns.matches({"a": [{"exists": True}]}, {"a": None}))
        self.assertTrue(patterns.matches({"s": [{"anything-but": ["STOPPED"]}]}, {"s": "RUNNING"}))
        self.assertFalse(patterns.matches({"s": [{"anything-but": "STOPPED"}]}, {"s": "STOPPED"}))
        self.assertFalse(patterns.matches({"s": [{"anything-but": {"prefix": "ST"}}]}, {"s": "STOPPED"}))
        p = {"$or": [{"a": ["1"]}, {"b": ["2"]}]}
        self.assertTrue(patterns.matches(p, {"b": "2"}))
        self.assertFalse(patterns.matches(p, {"a": "2"}))

    def test_unknown_matcher_fails_loudly(self):
        with self.assertRaises(ValueError):
            patterns.matches({"a": [{"cidr": "10.0.0.0/8"}]}, {"a": "10.0.0.1"})

    def test_filter_criteria_any(self):
        self.assertTrue(patterns.matches_any([], {"x": 1}))
        self.assertTrue(patterns.matches_any([{"x": [2]}, {"x": [1]}], {"x": 1}))
        self.assertFalse(patterns.matches_any([{"x": [2]}], {"x": 1}))


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not written yet")
class TemplateRulesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = cfn.load_template(TEMPLATE)
        cls.rules = cfn.eventbridge_rules(cls.template)
        cls.streams = cfn.stream_sources(cls.template)

    def routed(self, event):
        return sorted({r.function for r in self.rules if patterns.matches(r.pattern, event)})

    def test_every_function_has_its_trigger(self):
        self.assertEqual(sorted({r.function for r in self.rules}), ["instance-events", "task-events"])
        self.assertEqual([s.function for s in self.streams], ["deployer"])
        self.assertEqual([f for f, _ in cfn.scheduled_functions(self.template)], ["reconciler"])

    def test_instance_events(self):
        for f in ("instance-active", "instance-agent-disconnected", "instance-draining", "instance-deregistered"):
            p = EVENTS / "ecs" / f"{f}.json"
            if p.exists():
                self.assertEqual(self.routed(json.loads(p.read_text())), ["instance-events"], f)

    def test_our_task_events_and_only_ours(self):
        ev = sample("ecs/task-running.json")
        self.assertEqual(self.routed(ev), ["task-events"])
        for status in ("RUNNING", "STOPPED"):
            e = copy.deepcopy(ev)
            e["detail"]["lastStatus"] = status
            self.assertEqual(self.routed(e), ["task-events"], status)
        # the other transitions (PENDING, STOPPING, ...) invoke nothing: a launch is recorded by
        # its task's RUNNING event
        for status in ("PROVISIONING", "PENDING", "ACTIVATING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"):
            e = copy.deepcopy(ev)
            e["detail"]["lastStatus"] = status
            self.assertEqual(self.routed(e), [], status)
        other = copy.deepcopy(ev)
        other["detail"]["group"] = "service:web"
        self.assertEqual(self.routed(other), [])
        no_group = copy.deepcopy(ev)
        del no_group["detail"]["group"]
        self.assertEqual(self.routed(no_group), [])
        wrong_source = copy.deepcopy(ev)
        wrong_source["source"] = "my.app"
        self.assertEqual(self.routed(wrong_source), [])

    def test_scheduled_event_goes_nowhere_by_rule(self):
        self.assertEqual(self.routed(sample("schedule/reconcile.json")), [])

    def test_events_the_local_bus_builds_are_routed(self):
        ci = {"containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/abc",
              "status": "ACTIVE", "agentConnected": True}
        ev = eventbus.eventbridge_event(eventbus.INSTANCE_DETAIL_TYPE, "aws.ecs", [ci["containerInstanceArn"]], ci)
        self.assertEqual(self.routed(ev), ["instance-events"])
        task = {"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/demo/t", "group": "daemon-scheduler:log-shipper",
                "lastStatus": "RUNNING", "desiredStatus": "RUNNING"}
        ev = eventbus.eventbridge_event(eventbus.TASK_DETAIL_TYPE, "aws.ecs", [task["taskArn"]], task)
        self.assertEqual(self.routed(ev), ["task-events"])

    def stream_passes(self, record):
        return patterns.matches_any(self.streams[0].filters, record)

    def test_stream_filter(self):
        for rel in ("stream/deployment-created.json", "stream/environment-deleting.json"):
            for rec in sample(rel)["Records"]:
                self.assertTrue(self.stream_passes(rec), rel)
        rec = sample("stream/deployment-created.json")["Records"][0]
        modify = copy.deepcopy(rec)
        modify["eventName"] = "MODIFY"
        modify["dynamodb"]["OldImage"] = copy.deepcopy(rec["dynamodb"]["NewImage"])
        modify["dynamodb"]["NewImage"]["status"] = {"S": "completed"}
        self.assertTrue(self.stream_passes(modify), "deployment MODIFY")
        slot = copy.deepcopy(rec)
        slot["dynamodb"]["Keys"]["sk"] = {"S": "HOST#arn:aws:ecs:us-east-1:123456789012:container-instance/demo/abc"}
        slot["dynamodb"]["NewImage"] = {"pk": rec["dynamodb"]["Keys"]["pk"], "sk": slot["dynamodb"]["Keys"]["sk"], "rev": {"N": "3"}}
        self.assertFalse(self.stream_passes(slot), "slot write")
        env_active = copy.deepcopy(rec)
        env_active["dynamodb"]["Keys"]["sk"] = {"S": "ENV"}
        env_active["dynamodb"]["NewImage"] = {"pk": rec["dynamodb"]["Keys"]["pk"], "sk": {"S": "ENV"}, "status": {"S": "active"}}
        self.assertFalse(self.stream_passes(env_active), "environment stays active")

    def test_stream_records_the_local_bus_builds(self):
        from datetime import datetime, timezone

        boto_record = {  # what boto3 get_records returns from moto
            "eventID": "x", "eventName": "INSERT", "eventVersion": "1.0", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": datetime(2026, 11, 20, tzinfo=timezone.utc),
                         "Keys": {"pk": {"S": "ENV#a"}, "sk": {"S": "DEP#01J"}},
                         "NewImage": {"pk": {"S": "ENV#a"}, "sk": {"S": "DEP#01J"}, "status": {"S": "pending"}},
                         "SequenceNumber": "1100000000017454423009", "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        }
        rec = eventbus.lambda_stream_record(boto_record, "arn:stream")
        self.assertEqual(rec["eventVersion"], "1.1")
        self.assertEqual(rec["dynamodb"]["ApproximateCreationDateTime"], 1795132800)
        self.assertEqual(rec["eventSourceARN"], "arn:stream")
        self.assertTrue(self.stream_passes(rec))


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not written yet")
class TemplateTableTest(unittest.TestCase):
    def test_table_kwargs(self):
        t = cfn.load_template(TEMPLATE)
        kw = cfn.create_table_kwargs(t, "x")
        self.assertEqual(kw["KeySchema"], [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
        self.assertEqual({g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in kw["GlobalSecondaryIndexes"]},
                         {"by-cluster": ["gsi1pk", "gsi1sk"], "by-kind": ["gsi2pk", "gsi2sk"]})
        self.assertTrue(all(g["Projection"] == {"ProjectionType": "ALL"} for g in kw["GlobalSecondaryIndexes"]))
        self.assertEqual(kw["StreamSpecification"], {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        self.assertEqual(cfn.ttl_specification(t), {"Enabled": True, "AttributeName": "expiresAt"})


class CfnLoaderTest(unittest.TestCase):
    def test_short_tags_become_long_form(self):
        import yaml

        doc = yaml.load("a: !Ref X\nb: !GetAtt T.StreamArn\nc: !Sub '${A}-b'\nd: !If [C, !Ref Y, z]\ne: !Join ['', [a, b]]\n",
                        Loader=cfn.CfnLoader)
        self.assertEqual(doc["a"], {"Ref": "X"})
        self.assertEqual(doc["b"], {"Fn::GetAtt": ["T", "StreamArn"]})
        self.assertEqual(doc["c"], {"Fn::Sub": "${A}-b"})
        self.assertEqual(doc["d"], {"Fn::If": ["C", {"Ref": "Y"}, "z"]})
        self.assertEqual(doc["e"], {"Fn::Join": ["", ["a", "b"]]})

    def test_function_names(self):
        self.assertEqual(cfn.function_of_resource("EnvironmentsApiFunction", {}), "environments-api")
        self.assertEqual(cfn.function_of_resource("X", {"Metadata": {"BuildProperties": {"Binary": "deployer"}}}), "deployer")
        self.assertEqual(cfn.function_of_resource("X", {"Properties": {"CodeUri": "functions/task-events/"}}), "task-events")
        self.assertEqual(cfn.function_of_resource("DeploymentsApi", {}), "deployments-api")


if __name__ == "__main__":
    unittest.main()
