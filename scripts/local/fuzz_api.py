#!/usr/bin/env python3
"""schemathesis against the real API functions on the local stack, from docs/openapi.yaml.

    .venv/bin/python scripts/local/fuzz_api.py            # or: bash scripts/schemathesis.sh
    .venv/bin/python scripts/local/fuzz_api.py --max-examples 50 --seed 7

Brings the stack up (moto + cargo lambda watch + the local API gateway requiring a signature,
and the local event bus, so deployments really run on the hosts), starts the functions
(compiling them on a cold build), registers a cluster `demo` with three hosts (one labelled
`role=batch`, one t3.micro) and the task definitions `log-shipper` (revisions 1 and 2) and
`node-agent` in moto, and creates the environments `node-agent` (deployed) and `log-shipper`,
whose deployed revision 2 uses every placement field (constraints, sizing, overrides with
placeholders, dependsOn node-agent): its status shows a host running it, one not selected and
one unschedulable, so the document's examples name things that exist and the placement fields
of environments, revisions and statuses are checked against the schemas; that deployment's
hosts (`.../deployments/{id}/hosts`) show the running host's launch and the unschedulable one,
each with its history. Then it runs schemathesis with every phase (examples, coverage, fuzzing,
stateful: the document's links chain a create into get / deploy / cancel / hosts, and a list of
deployments into the newest one's hosts: the seeded deployment) and these checks:

  not_a_server_error            no 5xx, whatever the input
  status_code_conformance       every status is one the document lists for the operation
  content_type_conformance      the documented content type
  response_schema_conformance   every body matches its schema (additionalProperties: false)
  negative_data_rejection       input the schema forbids is refused with a 4xx

Counts come from the gateway (every request schemathesis made, and the 5xx among them); the
run fails (exit 1) on any schemathesis failure, any 5xx, fewer than --min-requests requests, or
an event function behind the API (deployer, instance-events, task-events) failing an invocation.
schemathesis' reports go to .local/schemathesis/ (junit.xml, events.ndjson); the gateway's request log is
.local/logs/gateway.log.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventbus  # noqa: E402
import fleet  # noqa: E402
import gateway as gatewaymod  # noqa: E402
import stack as stackmod  # noqa: E402

OPENAPI = stackmod.REPO / "docs" / "openapi.yaml"
REPORT_DIR = stackmod.LOCAL_DIR / "schemathesis"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection")
CLUSTER, FAMILY, ENV = "demo", "log-shipper", "log-shipper"
# An environment log-shipper's revision 2 depends on (its own task definition family).
DEPENDENCY = "node-agent"
# Revision 2 of log-shipper: every placement field, so the environment, its revisions and its
# status (with hosts) answer with them and schemathesis checks them against the schemas. On the
# three hosts of seed(): runs on the first m5.large, not selected on the one labelled role=batch,
# unschedulable on the t3.micro (its sizing rule asks for more memory than a host has).
PLACEMENT = {
    "taskDefinition": f"{FAMILY}:2",
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:role != batch"}],
    "sizing": [
        {"expression": "attribute:ecs.instance-type == t3.micro", "memory": "16 GB"},
        {"expression": "attribute:ecs.instance-type =~ m5.*", "cpu": "0.25 vCPU", "memory": 256},
    ],
    "overrides": {"containerOverrides": [{
        "name": FAMILY,
        "command": ["sh", "-c", "echo $${HOSTNAME} on ${host.instanceType}; while true; do sleep 3600; done"],
        "environment": [{"name": "NODE", "value": "${host.instanceId}"},
                        {"name": "ZONE", "value": "${attribute:ecs.availability-zone}"}],
    }]},
    "dependsOn": [DEPENDENCY],
}


def seed(stack: stackmod.Stack, wait: bool = True) -> None:
    """What the document's examples name: cluster `demo` with three hosts, task definitions
    `log-shipper` (revisions 1 and 2) and `node-agent`, the environment `node-agent` deployed,
    `log-shipper` with a second revision using every placement field (depending on `node-agent`)
    and a deployment of it, and `retired` (deleted by DeleteEnvironment's example). With `wait`,
    until both deployments have finished, so the first statuses schemathesis reads show hosts
    running, not selected and unschedulable, with what each host got."""
    ecs, ec2 = stack.client("ecs"), stack.client("ec2")
    fleet.ensure_cluster(ecs, CLUSTER)
    fleet.register_task_definition(ecs, FAMILY)
    fleet.register_task_definition(ecs, FAMILY)
    fleet.register_task_definition(ecs, DEPENDENCY)
    _, batch = fleet.add_hosts(ec2, ecs, CLUSTER, 2)
    fleet.add_hosts(ec2, ecs, CLUSTER, 1, instance_type="t3.micro")
    ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": "role", "value": "batch", "targetId": batch}])
    for method, path, body in [
        ("POST", "/v1/environments", {"name": DEPENDENCY, "instanceGroup": {"cluster": CLUSTER}, "taskDefinition": DEPENDENCY}),
        ("POST", f"/v1/environments/{DEPENDENCY}/deployments", None),
        ("POST", "/v1/environments", {"name": ENV, "instanceGroup": {"cluster": CLUSTER}, "taskDefinition": FAMILY}),
        # DeleteEnvironment's example, so deleting does not take the others' example away.
        ("POST", "/v1/environments", {"name": "retired", "instanceGroup": {"cluster": CLUSTER}, "taskDefinition": FAMILY}),
        ("PUT", f"/v1/environments/{ENV}", PLACEMENT),
        ("POST", f"/v1/environments/{ENV}/deployments", None),
    ]:
        status, answer = stack.api(method, path, body)
        if status != 200:
            raise stackmod.StackError(f"seeding: {method} {path} -> {status} {answer}")
    if wait:
        wait_deployed(stack, DEPENDENCY)
        placements = wait_deployed(stack, ENV)
        # Else the statuses schemathesis checks no longer hold what this seed is for.
        if sorted(placements) != ["notSelected", "runs", "unschedulable"]:
            raise stackmod.StackError(f"seeding: {ENV}'s hosts are {placements}; expected one running it, "
                                      "one not selected and one unschedulable")
        check_deployment_hosts(stack, ENV)


def check_deployment_hosts(stack: stackmod.Stack, name: str) -> None:
    """The newest deployment of `name` (the one ListDeployments' link hands the fuzzer) lists its
    hosts with their histories: the one it runs on launched and healthy, the unschedulable one
    with the reason; else ListDeploymentHosts would only ever be fuzzed on empty pages."""
    status, page = stack.api("GET", f"/v1/environments/{name}/deployments", query={"limit": "1"})
    dep = (page or {}).get("items", [{}])[0] if status == 200 else {}
    status, hosts = stack.api("GET", f"/v1/environments/{name}/deployments/{dep.get('id')}/hosts")
    events = sorted(tuple(e.get("event") for e in h.get("events", [])) for h in (hosts or {}).get("items", []))
    print(f"fuzz: seeded {name}'s deployment {dep.get('id')} hosts: {events}", flush=True)
    if status != 200 or events != [("claimed", "started", "running", "healthy"), ("unschedulable",)]:
        raise stackmod.StackError(f"seeding: the hosts of {name}'s deployment are {status} {hosts}; expected one "
                                  "claimed, started, running and healthy, and one unschedulable")


def wait_deployed(stack: stackmod.Stack, name: str, timeout: float = 120.0) -> list[str]:
    """Until the environment's deployment has finished; its hosts' placements."""
    deadline = time.time() + timeout
    while True:
        status, answer = stack.api("GET", f"/v1/environments/{name}/status", query={"hosts": "true"})
        dep = ((answer or {}).get("deployment") or {}) if status == 200 else {}
        if dep.get("status") in ("completed", "failed", "cancelled"):
            hosts = [h.get("placement") for h in answer.get("hosts", [])]
            print(f"fuzz: seeded {name}: deployment {dep['status']}, counts {answer.get('counts')}, hosts {hosts}", flush=True)
            return hosts
        if time.time() > deadline:
            raise stackmod.StackError(f"seeding: the deployment of {name} did not finish in {timeout:.0f}s: {status} {answer}")
        time.sleep(0.5)


def run_schemathesis(api_url: str, a: argparse.Namespace) -> int:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    exe = stackmod.VENV_BIN / "schemathesis"
    if not exe.exists():
        raise stackmod.StackError(f"{exe} not found: run scripts/bootstrap.sh")
    argv = [str(exe), "run", str(OPENAPI), "--url", api_url,
            "--header", f"Authorization: {gatewaymod.LOCAL_SIGV4}",
            "--checks", ",".join(CHECKS),
            "--phases", a.phases,
            "--max-examples", str(a.max_examples),
            "--seed", str(a.seed),
            "--workers", str(a.workers),
            "--request-timeout", "120",
            "--generation-database", "none",
            # The functions answer in milliseconds, but watch queues requests for one instance.
            "--suppress-health-check", "too_slow,filter_too_much",
            "--report", "junit,ndjson", "--report-junit-path", str(REPORT_DIR / "junit.xml"),
            "--report-ndjson-path", str(REPORT_DIR / "events.ndjson"),
            "--no-color"]
    print("fuzz: " + " ".join(argv[1:]), flush=True)
    # In the report directory: schemathesis keeps a .schemathesis/ folder in its working directory.
    return subprocess.run(argv, cwd=REPORT_DIR).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-examples", type=int, default=80, help="test cases per operation and phase (default 80)")
    ap.add_argument("--seed", type=int, default=20261201, help="schemathesis' random seed (default fixed: repeatable runs)")
    # One worker: watch runs one instance per function anyway, and hypothesis' ast.parse is not
    # thread-safe on Python 3.11 ("AST constructor recursion depth mismatch" with two).
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    ap.add_argument("--min-requests", type=int, default=1000, help="fail when schemathesis made fewer requests")
    ap.add_argument("--no-eventbus", action="store_true",
                    help="API functions only: deployments stay pending, no host appears in a status")
    a = ap.parse_args(argv)

    stackmod.install_signal_handlers()
    started = time.time()
    # No reload: a file saved meanwhile would restart the functions mid-run.
    # IAM auth as API Gateway has it: an unsigned request is a 403 (schemathesis tries those).
    stack = stackmod.Stack(rust_log="warn", reload=False, require_sigv4=True, log=lambda m: print(m, flush=True))
    bus: eventbus.EventBus | None = None
    try:
        stack.start()
        stack.warm(("environments-api", "deployments-api") if a.no_eventbus else stackmod.FUNCTIONS)
        if not a.no_eventbus:
            # Deployments then run (tasks start on the hosts), so statuses list hosts and
            # deployments complete, fail and refuse a cancel, as they do on AWS.
            bus = eventbus.EventBus(stack.moto_url, stack.watch_url, stack.table_name, template=stack.template_path,
                                    queue_urls=stack.queue_urls, log=lambda m: None).start()
        seed(stack, wait=not a.no_eventbus)
        assert stack.gateway is not None
        before, before_5xx = stack.gateway.requests(), stack.gateway.server_errors()
        fuzz_start = time.time()
        rc = run_schemathesis(stack.gateway.url, a)
        took = time.time() - fuzz_start
        requests = stack.gateway.requests() - before
        server_errors = stack.gateway.server_errors() - before_5xx
        counts = dict(sorted(stack.gateway.counts.items()))
        if bus:
            bus.wait_idle(30)
    except stackmod.StackError as e:
        print(f"fuzz: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if bus:
            bus.stop()
        stack.stop()

    failures = schemathesis_failures()
    bus_errors = {fn: st.get("error", 0) for fn, st in sorted(bus.stats.items())} if bus else {}
    print()
    print(f"fuzz: {requests} requests in {took:.0f}s (whole run {time.time() - started:.0f}s); "
          f"status codes {counts}; server errors (5xx): {server_errors}; "
          f"schemathesis failures: {failures if failures is not None else '?'} (exit {rc})")
    if bus:
        print(f"fuzz: event functions behind the API: invocations {dict(sorted((fn, sum(st.values())) for fn, st in bus.stats.items()))}, "
              f"failed {bus_errors}" + (f"; last errors: {list(bus.errors)[-3:]}" if bus.errors else ""))
    ok = rc == 0 and server_errors == 0 and requests >= a.min_requests and not any(bus_errors.values())
    if requests < a.min_requests:
        print(f"fuzz: FAILED: fewer than {a.min_requests} requests", file=sys.stderr)
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


def schemathesis_failures() -> int | None:
    """Failed test cases in the JUnit report."""
    junit = REPORT_DIR / "junit.xml"
    try:
        text = junit.read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r'<testsuites[^>]*\bfailures="(\d+)"', text) or re.search(r'<testsuite[^>]*\bfailures="(\d+)"', text)
    return int(m.group(1)) if m else None


if __name__ == "__main__":
    sys.exit(main())
