"""Integration checks of the local plumbing, with stand-in Python functions instead of the Rust
ones (no compilation): moto + `cargo lambda watch --only-lambda-apis` + stub_runtime.

    .venv/bin/python -m unittest discover -s scripts/local -p 'test_*.py'

Covers: HTTP path handling of watch (`/lambda-url/<fn>/v1/...` arrives as `/v1/...`), routing of
ECS events by the template's rules, the PENDING -> RUNNING -> STOPPED sequence and per-resource
versions, the stream filter, in-order batches and retries of failed batches, duplicate delivery.
"""

from __future__ import annotations

import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventbus  # noqa: E402
import fleet  # noqa: E402
import stack as stackmod  # noqa: E402
from stub_runtime import StubRuntime, http_echo, wait_for  # noqa: E402

HAVE_TOOLS = (stackmod.VENV_BIN / "moto_server").exists() and (stackmod.VENV_BIN / "cargo-lambda").exists()


@unittest.skipUnless(HAVE_TOOLS, "run scripts/bootstrap.sh first")
class EventBusIntegrationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stackmod.Stack(only_lambda_apis=True, log=lambda m: None).start()
        cls.fail_deployer = 0
        cls.lock = threading.Lock()

        def deployer(event):
            with cls.lock:
                if cls.fail_deployer > 0:
                    cls.fail_deployer -= 1
                    raise RuntimeError("injected failure")
            return {"batchItemFailures": []}

        cls.stub = StubRuntime(cls.stack.watch_url, {
            "environments-api": http_echo,
            "deployments-api": http_echo,
            "instance-events": lambda e: None,
            "task-events": lambda e: None,
            "deployer": deployer,
            "reconciler": lambda e: None,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stub.stop()
        cls.stack.stop()

    def setUp(self):
        self.stack.reset()
        for v in self.stub.received.values():
            v.clear()
        self.bus = None

    def tearDown(self):
        if self.bus:
            self.bus.stop()

    def start_bus(self, **kw):
        self.bus = eventbus.EventBus(self.stack.moto_url, self.stack.watch_url, self.stack.table_name,
                                     log=lambda m: None, async_retry_delay=0.1, stream_retry_delay=0.05, **kw).start()
        return self.bus

    def test_http_paths_reach_the_function_without_the_lambda_url_prefix(self):
        status, body = self.stack.api("GET", "/v1/ping", query={"cluster": "demo"})
        self.assertEqual(status, 200)
        self.assertEqual(body["rawPath"], "/v1/ping")
        self.assertEqual(body["path"], "/v1/ping")
        self.assertEqual(body["rawQueryString"], "cluster=demo")
        status, body = self.stack.api("POST", "/v1/environments/log-shipper/deployments", query={"deploymentToken": "t"})
        self.assertEqual(status, 200)
        self.assertEqual(body["method"], "POST")
        self.assertEqual(body["rawPath"], "/v1/environments/log-shipper/deployments")
        self.assertEqual(len(self.stub.received["deployments-api"]), 1)
        self.assertEqual(len(self.stub.received["environments-api"]), 1)
        status, body = self.stack.api("POST", "/v1/environments", {"name": "x"})
        self.assertEqual(body["body"], '{"name": "x"}')

    def test_the_gateway_routes_as_api_gateway_does(self):
        self.assertTrue(self.stack.api_url)
        status, body = self.stack.api("GET", "/v1/environments/web/deployments/01ABC", query={"x": "1"})
        self.assertEqual(status, 200)
        self.assertEqual(body["routeKey"], "GET /v1/environments/{name}/deployments/{id}")
        self.assertEqual(body["pathParameters"], {"name": "web", "id": "01ABC"})
        self.assertEqual(body["queryStringParameters"], {"x": "1"})
        self.assertEqual(len(self.stub.received["deployments-api"]), 1)
        # No route: API Gateway's own 404, the functions never see it.
        for method, path in [("GET", "/v1/nope"), ("PATCH", "/v1/environments/web"), ("GET", "/v1/ping/")]:
            self.assertEqual(self.stack.api(method, path), (404, {"message": "Not Found"}), (method, path))
        self.assertEqual(len(self.stub.received["environments-api"]), 0)
        # Straight to a function through watch's lambda-url: routeKey $default, no pathParameters.
        status, body = stackmod.http_api(self.stack.watch_url, "GET", "/v1/environments/web")
        self.assertEqual((status, body["routeKey"], body["pathParameters"]), (200, "$default", None))

    def test_ecs_events_are_routed_versioned_and_in_the_real_shape(self):
        self.start_bus(pending_seconds=0.5)
        ecs, ec2 = self.stack.client("ecs"), self.stack.client("ec2")
        fleet.ensure_cluster(ecs, "demo")
        fleet.register_task_definition(ecs, "log-shipper")
        hosts = fleet.add_hosts(ec2, ecs, "demo", 2)
        ours = ecs.start_task(cluster="demo", taskDefinition="log-shipper:1", containerInstances=hosts,
                              startedBy="01JDEPLOY0000000000000000A", group="daemon-scheduler:log-shipper")["tasks"]
        ecs.start_task(cluster="demo", taskDefinition="log-shipper:1", containerInstances=[hosts[0]],
                       startedBy="someone", group="service:web")
        self.assertTrue(wait_for(lambda: sum(1 for e in self.stub.received["task-events"]
                                             if e["detail"]["lastStatus"] == "RUNNING") >= 2))
        ecs.stop_task(cluster="demo", task=ours[0]["taskArn"], reason="by hand")
        self.assertTrue(wait_for(lambda: any(e["detail"]["lastStatus"] == "STOPPED" for e in self.stub.received["task-events"])))
        self.assertTrue(self.bus.wait_idle(20))

        task_events = self.stub.received["task-events"]
        self.assertTrue(all(e["detail"]["group"] == "daemon-scheduler:log-shipper" for e in task_events))
        seq = [(e["detail"]["lastStatus"], e["detail"]["version"]) for e in task_events if e["detail"]["taskArn"] == ours[0]["taskArn"]]
        # PENDING (version 1) is emitted but not routed: the rule takes RUNNING and STOPPED only
        self.assertEqual(seq, [("RUNNING", 2), ("STOPPED", 3)])
        stopped = task_events[-1]
        self.assertEqual(stopped["detail-type"], "ECS Task State Change")
        self.assertEqual(stopped["source"], "aws.ecs")
        self.assertEqual(stopped["resources"], [ours[0]["taskArn"]])
        d = stopped["detail"]
        self.assertEqual((d["desiredStatus"], d["stopCode"], d["stoppedReason"]), ("STOPPED", "UserInitiated", "by hand"))
        self.assertEqual(d["startedBy"], "01JDEPLOY0000000000000000A")
        self.assertEqual(d["containerInstanceArn"], hosts[0])
        for k in ("createdAt", "startedAt", "stoppedAt", "updatedAt"):
            self.assertRegex(d[k], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", k)

        inst = self.stub.received["instance-events"]
        self.assertEqual({e["detail"]["containerInstanceArn"] for e in inst}, set(hosts))
        for h in hosts:
            versions = [e["detail"]["version"] for e in inst if e["detail"]["containerInstanceArn"] == h]
            self.assertEqual(versions, sorted(versions))
            self.assertEqual(len(set(versions)), len(versions))
        first = inst[0]["detail"]
        self.assertEqual((first["status"], first["agentConnected"]), ("ACTIVE", True))
        self.assertEqual({r["name"] for r in first["registeredResources"]}, {"CPU", "MEMORY", "PORTS", "PORTS_UDP"})

        # drain, agent flap, deregister
        n = len(inst)
        ecs.update_container_instances_state(cluster="demo", containerInstances=[hosts[1]], status="DRAINING")
        self.bus.set_agent_connected(hosts[0], False)
        self.assertTrue(wait_for(lambda: len(self.stub.received["instance-events"]) >= n + 2))
        ecs.deregister_container_instance(cluster="demo", containerInstance=hosts[1], force=True)
        self.assertTrue(wait_for(lambda: any(e["detail"]["status"] == "INACTIVE" for e in self.stub.received["instance-events"])))
        self.bus.wait_idle(10)
        last = {e["detail"]["containerInstanceArn"]: e["detail"] for e in self.stub.received["instance-events"]}
        self.assertEqual((last[hosts[0]]["status"], last[hosts[0]]["agentConnected"]), ("ACTIVE", False))
        self.assertEqual((last[hosts[1]]["status"], last[hosts[1]]["agentConnected"]), ("INACTIVE", False))

    def test_stream_batches_are_filtered_in_order_and_retried(self):
        type(self).fail_deployer = 2
        bus = self.start_bus()
        ddb = self.stack.client("dynamodb")
        t = self.stack.table_name
        for i in range(3):
            ddb.put_item(TableName=t, Item={"pk": {"S": "ENV#a"}, "sk": {"S": f"DEP#{i}"}, "status": {"S": "pending"}})
            ddb.put_item(TableName=t, Item={"pk": {"S": "ENV#a"}, "sk": {"S": f"HOST#h{i}"}, "rev": {"N": "1"}})
        ddb.update_item(TableName=t, Key={"pk": {"S": "ENV#a"}, "sk": {"S": "DEP#0"}},
                        UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":s": {"S": "completed"}})
        self.assertTrue(wait_for(lambda: bus.stats.get("deployer", {}).get("ok", 0) >= 1, 20))
        self.assertTrue(bus.wait_idle(20))
        got = self.stub.received["deployer"]
        delivered_ok = [d for d in bus.deliveries if d.function == "deployer" and not d.failed]
        seen = [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for d in delivered_ok for r in d.event["Records"]]
        self.assertEqual(seen, [("INSERT", "DEP#0"), ("INSERT", "DEP#1"), ("INSERT", "DEP#2"), ("MODIFY", "DEP#0")])
        self.assertGreaterEqual(len(got), 3, "two failed attempts, then success")
        self.assertEqual(bus.stats["deployer"]["error"], 2)
        rec = delivered_ok[-1].event["Records"][-1]
        self.assertEqual(rec["eventVersion"], "1.1")
        self.assertEqual(rec["eventSource"], "aws:dynamodb")
        self.assertIsInstance(rec["dynamodb"]["ApproximateCreationDateTime"], int)
        self.assertEqual(rec["dynamodb"]["OldImage"]["status"], {"S": "pending"})
        self.assertTrue(rec["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/"))

    def test_duplicate_delivery(self):
        self.start_bus(duplicate=True, pending_seconds=0)
        ecs, ec2 = self.stack.client("ecs"), self.stack.client("ec2")
        fleet.ensure_cluster(ecs, "demo")
        fleet.register_task_definition(ecs, "log-shipper")
        hosts = fleet.add_hosts(ec2, ecs, "demo", 1)
        ecs.start_task(cluster="demo", taskDefinition="log-shipper:1", containerInstances=hosts,
                       startedBy="x", group="daemon-scheduler:log-shipper")
        self.assertTrue(wait_for(lambda: len(self.stub.received["task-events"]) >= 2))
        self.bus.wait_idle(10)
        ids = [e["id"] for e in self.stub.received["task-events"]]
        self.assertEqual(len(ids), 2)
        self.assertEqual(ids[0], ids[1], "the same event, twice")

    def test_scheduled_reconcile(self):
        self.start_bus(reconcile_every=0.3)
        self.assertTrue(wait_for(lambda: len(self.stub.received["reconciler"]) >= 2, 10))
        ev = self.stub.received["reconciler"][0]
        self.assertEqual((ev["detail-type"], ev["source"], ev["detail"]), ("Scheduled Event", "aws.events", {}))


if __name__ == "__main__":
    unittest.main()
