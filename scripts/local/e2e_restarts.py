#!/usr/bin/env python3
"""End to end, with the real function binaries: a daemon that crashes three times in a row is
restarted three times, each within its backoff (0 s, 1 s, 2 s) + 5 s — by task-events at once
for the first crash, then by the deployer when the wake-up task-events put on the wake-up queue
(delayed by the backoff) arrives. The reconcile schedule is set far beyond the test, so no
restart can come from the reconciler.

    .venv/bin/python scripts/local/e2e_restarts.py

Brings up its own stack (moto, cargo lambda watch, the local gateway, the event bus with the
template's rules and queues). The closing line is `N passed, M failed`; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventbus  # noqa: E402
import fleet  # noqa: E402
import stack as stackmod  # noqa: E402

CLUSTER = "crashy"
ENV = "crash-loop"
BACKOFFS = [0.0, 1.0, 2.0]  # planner::restart_delay_ms for the 1st, 2nd, 3rd failure in a row
SLACK = 5.0


def live_tasks(ecs, host: str) -> list[dict]:
    arns = ecs.list_tasks(cluster=CLUSTER, containerInstance=host, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
            if t.get("group") == f"daemon-scheduler:{ENV}" and t.get("lastStatus") != "STOPPED"]


def wait_for(pred, timeout: float, every: float = 0.1):
    end = time.time() + timeout
    while time.time() < end:
        got = pred()
        if got:
            return got
        time.sleep(every)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-timeout", type=float, default=1800.0)
    a = ap.parse_args(argv)
    passed = failed = 0

    def expect(ok: bool, what: str) -> None:
        nonlocal passed, failed
        passed, failed = passed + ok, failed + (not ok)
        print(f"   {'ok  ' if ok else 'FAIL'}  {what}", flush=True)

    stack = stackmod.Stack(reload=False)
    bus = None
    try:
        stack.start()
        stack.warm(timeout=a.build_timeout)
        ecs, ec2 = stack.client("ecs"), stack.client("ec2")
        fleet.ensure_cluster(ecs, CLUSTER)
        fleet.register_task_definition(ecs, ENV)
        host = fleet.add_hosts(ec2, ecs, CLUSTER, 1)[0]
        # No reconcile during the test: every restart must come from an event or a wake-up.
        bus = eventbus.EventBus(stack.moto_url, stack.watch_url, stack.table_name, template=stack.template_path,
                                poll_interval=0.2, log=lambda m: None, queue_urls=stack.queue_urls,
                                reconcile_every=3600.0).start()
        status, body = stack.api("POST", "/v1/environments", {
            "name": ENV, "instanceGroup": {"cluster": CLUSTER}, "taskDefinition": f"{ENV}:1",
            "updateStrategy": {"minHealthySeconds": 0}})
        expect(status == 200, f"environment created ({status})")
        status, body = stack.api("POST", f"/v1/environments/{ENV}/deployments")
        expect(status == 200, f"deployment created ({status})")
        first = wait_for(lambda: [t for t in live_tasks(ecs, host) if t.get("lastStatus") == "RUNNING"], 120)
        expect(bool(first), "the daemon runs on the host")
        if not first:
            return 1
        task = first[0]["taskArn"]
        for n, backoff in enumerate(BACKOFFS, start=1):
            # Let the bus report it RUNNING (the launch is recorded) before it crashes.
            time.sleep(1.0)
            ecs.stop_task(cluster=CLUSTER, task=task, reason="Essential container in task exited")
            crashed = time.time()
            new = wait_for(lambda: [t for t in live_tasks(ecs, host) if t["taskArn"] != task],
                           backoff + SLACK + 5.0)
            took = time.time() - crashed
            expect(bool(new) and backoff <= took + 0.05 and took <= backoff + SLACK,
                   f"crash {n}: restarted after {took:.1f} s (backoff {backoff:.0f} s, at most {backoff + SLACK:.0f} s)")
            if not new:
                break
            task = new[0]["taskArn"]
            wait_for(lambda: any(t["taskArn"] == task and t.get("lastStatus") == "RUNNING"
                                 for t in live_tasks(ecs, host)), 30)
        def host_row() -> dict:
            status, st = stack.api("GET", f"/v1/environments/{ENV}/status", query={"hosts": "true"})
            return (st.get("hosts") or [{}])[0] if status == 200 else {}
        # The restarted task's RUNNING event records it (the bus reports it within a second or two).
        h = wait_for(lambda: (lambda r: r if r.get("task") == "running" else None)(host_row()), 15) or host_row()
        expect(h.get("task") == "running", f"status: the host runs its daemon again ({h.get('task')})")
    except stackmod.StackError as e:
        expect(False, f"the local stack comes up: {e}")
    finally:
        if bus is not None:
            bus.stop()
        stack.stop()
    print(f"\n{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
