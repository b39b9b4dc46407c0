#!/usr/bin/env python3
"""End-to-end check of the built `daemonctl` against the local stack (moto + cargo lambda watch +
the local API gateway + the event bus): ping, environment create/get/list, a deployment waited
for to completion (its progress lines), status with hosts and --watch (ended by Ctrl-C), a canary
(deploy --canary --wait, deployments pause, promote while paused, resume, hosts), placement (a
constraint, a per-host placeholder, a dependency), an API error, and a DLQ replay through watch's
Invoke API.

    cargo build -p daemonctl
    .venv/bin/python scripts/local/daemonctl_e2e.py [--daemonctl target/debug/daemonctl]

The gateway runs with require_sigv4, so an unsigned request is refused (403) and every daemonctl
call that passes was signed. Static dummy credentials are all daemonctl gets. The closing line is
`N passed, M failed`; the exit code is 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventbus  # noqa: E402
import fleet  # noqa: E402
import stack as stackmod  # noqa: E402

CLUSTER = "cli"
ENV = "cli-shipper"
HOSTS = 2
PLACED = "cli-zonal"  # placed on ZONE's host only (fleet.add_hosts spreads hosts over zones)
ZONE = "us-east-1a"


class Check:
    def __init__(self, exe: Path, timeout: float):
        self.exe, self.timeout = exe, timeout
        self.passed = self.failed = 0
        self.env: dict[str, str] = {}

    def expect(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"   ok    {what}", flush=True)
        else:
            self.failed += 1
            print(f"   FAIL  {what}" + (f"\n{detail}" if detail else ""), flush=True)
        return ok

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "DAEMONCTL_"))}
        env.update(self.env)
        env.update(extra_env or {})
        print(f"   $ daemonctl {' '.join(args)}", flush=True)
        p = subprocess.run([str(self.exe), *args], env=env, capture_output=True, text=True, timeout=self.timeout)
        for line in (p.stdout + p.stderr).splitlines():
            print(f"     {line}")
        return p

    def watch(self, *args: str, seconds: float = 3.0) -> subprocess.CompletedProcess[str]:
        """`daemonctl ARGS` (a --watch) for a few seconds, then Ctrl-C (SIGINT) as a person would."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "DAEMONCTL_"))}
        env.update(self.env)
        print(f"   $ daemonctl {' '.join(args)}   (Ctrl-C after {seconds:.0f}s)", flush=True)
        proc = subprocess.Popen([str(self.exe), *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=self.timeout)
        for line in (out + err).splitlines():
            print(f"     {line}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def detail(p: subprocess.CompletedProcess[str]) -> str:
    return f"     exit {p.returncode}\n     stdout: {p.stdout!r}\n     stderr: {p.stderr!r}"


def deployment(c: Check, dep_id: str) -> dict[str, Any]:
    p = c.run("-o", "json", "deployments", "get", ENV, dep_id)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def revisions(c: Check) -> list[Any]:
    """The revision each host of ENV got (env status --hosts), sorted."""
    p = c.run("-o", "json", "env", "status", ENV, "--hosts")
    st = json.loads(p.stdout) if p.returncode == 0 else {}
    return sorted((h.get("launch") or {}).get("revision") or 0 for h in st.get("hosts", []))


def canary(c: Check, ecs: Any) -> None:
    """Revision 2 of ENV as a canary on 1 of the HOSTS hosts (deploy --canary --wait returns once it
    baked), paused, promoted while paused (nothing moves), resumed: every host on 2."""
    print("\n== a canary: deploy --canary 1 --wait, pause, promote, resume", flush=True)
    fleet.register_task_definition(ecs, ENV)
    p = c.run("env", "update", ENV, "--task-definition", f"{ENV}:2", "--min-healthy-seconds", "1")
    c.expect(p.returncode == 0, "env update --task-definition: revision 2", detail(p))
    p = c.run("deploy", ENV, "--canary", "1", "--wait", "--interval", "1", "--wait-timeout", "120")
    out = p.stdout + p.stderr
    c.expect(p.returncode == 0 and "awaiting" in out and "deployments promote" in out,
             "deploy --canary 1 --wait returns once the canary baked and says how to promote it", detail(p))
    p = c.run("-o", "json", "deployments", "list", ENV)
    items = json.loads(p.stdout).get("items", []) if p.returncode == 0 else []
    dep_id = items[0]["id"] if items else ""
    d = deployment(c, dep_id)
    c.expect(d.get("status") == "awaiting-promotion" and d.get("updateStrategy", {}).get("canary") == 1
             and revisions(c) == [1, 2], "the canary awaits promotion: 1 host on revision 2, 1 on revision 1",
             json.dumps(d)[:400])
    p = c.run("deployments", "pause", ENV, dep_id)
    c.expect(p.returncode == 0 and deployment(c, dep_id).get("status") == "paused", "deployments pause", detail(p))
    p = c.run("deployments", "promote", ENV, dep_id)
    c.expect(p.returncode == 0, "deployments promote (while paused)", detail(p))
    time.sleep(3)
    d = deployment(c, dep_id)
    c.expect(d.get("status") == "paused" and d.get("promotedAt") and revisions(c) == [1, 2],
             "promoted but paused: no new host touched (still 1 host on revision 2)", json.dumps(d)[:400])
    p = c.run("deployments", "resume", ENV, dep_id)
    c.expect(p.returncode == 0, "deployments resume", detail(p))
    deadline = time.time() + 90
    while time.time() < deadline and d.get("status") != "completed":
        time.sleep(1)
        d = deployment(c, dep_id)
    c.expect(d.get("status") == "completed" and revisions(c) == [2] * HOSTS,
             f"resumed, the promoted canary completes: every host on revision 2", json.dumps(d)[:400])
    p = c.run("deployments", "hosts", ENV, dep_id)
    c.expect(p.returncode == 0 and "healthy" in p.stdout, "deployments hosts: each host's transitions", detail(p))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemonctl", default=str(stackmod.REPO / "target" / "debug" / "daemonctl"))
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds for one daemonctl run")
    ap.add_argument("--build-timeout", type=float, default=1800.0)
    a = ap.parse_args(argv)
    exe = Path(a.daemonctl)
    if not exe.exists():
        print(f"{exe} not found: cargo build -p daemonctl", file=sys.stderr)
        return 1
    c = Check(exe, a.timeout)
    stack = stackmod.Stack(reload=False, require_sigv4=True)
    bus = None
    try:
        stack.start()
        stack.warm(timeout=a.build_timeout)
        c.env = {
            "DAEMONCTL_ENDPOINT": stack.api_url or "",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": stackmod.REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent/daemonctl-e2e", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/daemonctl-e2e",
        }
        ecs, ec2 = stack.client("ecs"), stack.client("ec2")
        fleet.ensure_cluster(ecs, CLUSTER)
        fleet.register_task_definition(ecs, ENV)
        fleet.add_hosts(ec2, ecs, CLUSTER, HOSTS)
        bus = eventbus.EventBus(stack.moto_url, stack.watch_url, stack.table_name, template=stack.template_path,
                                poll_interval=0.4, log=lambda m: None, queue_urls=stack.queue_urls).start()

        print("\n== the API, signed", flush=True)
        status, _, _ = stackmod.http("GET", f"{stack.api_url}/v1/ping")
        c.expect(status == 403, "the gateway refuses an unsigned request (403)", f"     got {status}")
        p = c.run("ping")
        c.expect(p.returncode == 0 and p.stdout == "ok\n", "ping", detail(p))

        p = c.run("env", "create", ENV, "--cluster", CLUSTER, "--task-definition", f"{ENV}:1",
                  "--max-unavailable", "1", "--min-healthy-seconds", "0")
        c.expect(p.returncode == 0 and "Name:" in p.stdout and ENV in p.stdout, "env create", detail(p))
        p = c.run("-o", "json", "env", "get", ENV)
        env: dict[str, Any] = json.loads(p.stdout) if p.returncode == 0 else {}
        c.expect(env.get("name") == ENV and env.get("updateStrategy", {}).get("maxUnavailable") == 1,
                 "env get -o json: the API's JSON", detail(p))
        p = c.run("env", "list", "--all")
        c.expect(p.returncode == 0 and p.stdout.startswith("NAME") and f"\n{ENV} " in p.stdout, "env list --all", detail(p))

        print("\n== a deployment, waited for", flush=True)
        p = c.run("deploy", ENV, "--token", env.get("deploymentToken", ""), "--wait", "--interval", "1",
                  "--wait-timeout", "120")
        c.expect(p.returncode == 0 and "completed" in p.stdout, "deploy --wait ends completed (exit 0)", detail(p))
        done = f"| completed: updated {HOSTS}/{HOSTS}, available {HOSTS}, failed 0, unschedulable 0"
        c.expect(done in p.stderr, "deploy --wait: progress lines with the phase and the hosts' counts", detail(p))
        p = c.watch("env", "status", ENV, "--watch", "--interval", "1")
        c.expect(p.returncode == 0 and p.stdout.startswith("[   0s] completed: ")
                 and f"completed: updated {HOSTS}/{HOSTS}, available {HOSTS}" in p.stdout
                 and len(p.stdout.splitlines()) == 1,
                 "env status --watch: one line while nothing changes, ends on Ctrl-C (exit 0)", detail(p))
        p = c.run("-o", "json", "env", "status", ENV, "--hosts")
        st: dict[str, Any] = json.loads(p.stdout) if p.returncode == 0 else {}
        counts = st.get("counts", {})
        c.expect(counts.get("desired") == HOSTS and counts.get("ready") == HOSTS and len(st.get("hosts", [])) == HOSTS,
                 f"env status --hosts: {HOSTS} desired, {HOSTS} ready, {HOSTS} hosts listed", detail(p))
        p = c.run("env", "status", ENV, "--hosts")
        c.expect(p.returncode == 0 and "CONTAINER INSTANCE" in p.stdout, "env status --hosts (table)", detail(p))
        p = c.run("deployments", "list", ENV)
        c.expect(p.returncode == 0 and "completed" in p.stdout, "deployments list", detail(p))
        p = c.run("-o", "json", "deployments", "list", ENV)
        deps = json.loads(p.stdout).get("items", []) if p.returncode == 0 else []
        dep_id = deps[0]["id"] if deps else ""
        canary(c, ecs)
        print("\n== placement: one zone, a per-host placeholder, a dependency", flush=True)
        fleet.register_task_definition(ecs, PLACED)
        p = c.run("env", "create", PLACED, "--cluster", CLUSTER, "--task-definition", f"{PLACED}:1",
                  "--min-healthy-seconds", "0", "--placement-constraint", f"attribute:ecs.availability-zone == {ZONE}",
                  "--env", f"{PLACED}:AZ=${{host.availabilityZone}}", "--depends-on", ENV)
        c.expect(p.returncode == 0 and f"Placement:         attribute:ecs.availability-zone == {ZONE}\n" in p.stdout,
                 "env create --placement-constraint --env --depends-on", detail(p))
        p = c.run("-o", "json", "env", "get", PLACED)
        placed: dict[str, Any] = json.loads(p.stdout) if p.returncode == 0 else {}
        c.expect(placed.get("placementConstraints") == [{"type": "memberOf",
                                                         "expression": f"attribute:ecs.availability-zone == {ZONE}"}]
                 and placed.get("overrides") == {"containerOverrides": [
                     {"name": PLACED, "environment": [{"name": "AZ", "value": "${host.availabilityZone}"}]}]}
                 and placed.get("dependsOn") == [ENV],
                 "env get -o json: placementConstraints, overrides and dependsOn read back", detail(p))
        p = c.run("deploy", PLACED, "--wait", "--interval", "1", "--wait-timeout", "120")
        c.expect(p.returncode == 0 and "completed" in p.stdout, "deploy --wait of the placed daemon", detail(p))
        p = c.run("-o", "json", "env", "status", PLACED, "--hosts")
        st = json.loads(p.stdout) if p.returncode == 0 else {}
        hosts = st.get("hosts", [])
        runs = [h for h in hosts if h.get("placement") == "runs"]
        left_out = [h for h in hosts if h.get("placement") == "notSelected"]
        filled = [e for h in runs for co in ((h.get("launch") or {}).get("overrides") or {}).get("containerOverrides", [])
                  for e in co.get("environment", [])]
        c.expect(st.get("counts", {}).get("desired") == 1 and len(runs) == 1 and len(left_out) == HOSTS - 1
                 and filled == [{"name": "AZ", "value": ZONE}],
                 f"status --hosts: runs on the {ZONE} host with AZ={ZONE}, not selected elsewhere", detail(p))
        p = c.run("env", "status", PLACED, "--hosts")
        c.expect(p.returncode == 0 and f"AZ={ZONE}" in p.stdout and "notSelected" in p.stdout
                 and "not selected by" in p.stdout, "env status --hosts (table): placement, reason, overrides", detail(p))

        p = c.run("env", "get", "no-such-env")
        c.expect(p.returncode == 1 and "NotFound (HTTP 404)" in p.stderr and p.stdout == "",
                 "an API error: stderr, exit 1", detail(p))

        print("\n== DLQ replay through watch's Invoke API", flush=True)
        sqs = stack.client("sqs")
        url = sqs.create_queue(QueueName="cli-replay-dlq")["QueueUrl"]
        scheduled = json.loads((stackmod.REPO / "events" / "schedule" / "reconcile.json").read_text())
        record = {"version": "1.0", "timestamp": "2026-12-01T00:00:00.000Z",
                  "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:reconciler",
                                     "condition": "RetriesExhausted", "approximateInvokeCount": 3},
                  "requestPayload": scheduled, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
                  "responsePayload": {"errorMessage": "throttled"}}
        for body in (scheduled, record):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
        aws = {"AWS_ENDPOINT_URL_SQS": stack.moto_url, "AWS_ENDPOINT_URL_LAMBDA": stack.watch_url}
        p = c.run("dlq", "replay", "--queue", url, "--function", "reconciler", "--dry-run", extra_env=aws)
        c.expect(p.returncode == 0 and "dry run: 2 would be replayed" in p.stdout, "dlq replay --dry-run", detail(p))
        p = c.run("dlq", "replay", "--queue", url, "--function", "reconciler", extra_env=aws)
        left = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                   ["Attributes"]["ApproximateNumberOfMessages"])
        c.expect(p.returncode == 0 and "replayed 2, failed 0" in p.stdout and left == 0,
                 "dlq replay: both shapes invoked, then deleted", detail(p) + f"\n     left in queue: {left}")
        # A wake-up of the deployer (its queue's DLQ holds bare bodies): replayed as an SQS event.
        wake = sqs.create_queue(QueueName="cli-wakeups-dlq")["QueueUrl"]
        sqs.send_message(QueueUrl=wake, MessageBody=json.dumps({"environment": ENV, "deploymentId": dep_id}))
        p = c.run("dlq", "replay", "--queue", wake, "--function", "deployer", "--as-sqs-event", extra_env=aws)
        c.expect(p.returncode == 0 and "replayed 1, failed 0" in p.stdout, "dlq replay --as-sqs-event: the deployer takes a wake-up",
                 detail(p))
        # A function error (watch answers HTTP 500): the message stays.
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"not": "an ECS event"}))
        p = c.run("dlq", "replay", "--queue", url, "--function", "instance-events", extra_env=aws)
        left = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                   ["Attributes"]["ApproximateNumberOfMessages"])
        c.expect(p.returncode == 3 and "replayed 0, failed 1" in p.stdout and left == 1,
                 "dlq replay: a failing invocation keeps its message (exit 3)", detail(p) + f"\n     left in queue: {left}")
    except stackmod.StackError as e:
        c.expect(False, f"the local stack comes up: {e}")
    finally:
        if bus is not None:
            bus.stop()
        stack.stop()
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    started = time.time()
    rc = main()
    print(f"({time.time() - started:.0f}s)")
    sys.exit(rc)
