#!/usr/bin/env python3
"""The watchable demo of daemon-scheduler on the local stack (moto + cargo lambda watch + the
local event bus), and with --check an end-to-end test.

    .venv/bin/python scripts/local/demo.py            # narrated, paced for a human
    .venv/bin/python scripts/local/demo.py --check    # as a test: exit 1 on any failed expectation
    .venv/bin/python scripts/local/demo.py --chaos    # events duplicated, shuffled and delayed

Story: a cluster `demo` with 3 hosts; environment `log-shipper` is created and deployed (one task
per host); 2 hosts join (each gets its task); a task is stopped by hand (it is replaced); revision 2
is rolled out one host at a time (the status counts move); a bad revision 3 crashes at once, trips
the circuit breaker and rolls itself back to 2; the environments are listed. Optional --drain: a
host drains (its task is stopped, none replaces it).

Expectations (--check): exactly one RUNNING task of the environment on every ACTIVE host after
each step; the deployment reaches `completed`; at no poll of the event bus two live tasks of the
environment share a host. The closing line is `N passed, M failed`.

The first run compiles the six functions (minutes on a cold build; progress is printed); the
step timeouts (--timeout, default 60 s) start after that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventbus  # noqa: E402
import fleet  # noqa: E402
import stack as stackmod  # noqa: E402

CLUSTER = "demo"
ENV = "log-shipper"
GROUP = f"{eventbus.GROUP_PREFIX}{ENV}"

_COLOR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _c(code: str, s: str) -> str:
    return f"\033[{code}m{s}\033[0m" if _COLOR else s


BOLD, DIM, GREEN, RED, CYAN, YELLOW = (lambda s: _c("1", s)), (lambda s: _c("2", s)), (lambda s: _c("32", s)), \
    (lambda s: _c("31", s)), (lambda s: _c("36", s)), (lambda s: _c("33", s))

_out_lock = threading.Lock()


def say(msg: str = "") -> None:
    with _out_lock:
        print(msg, flush=True)


class Abort(Exception):
    pass


class Crasher(threading.Thread):
    """Plays a daemon that crashes at once: stops every live task of one task definition."""

    def __init__(self, ecs: Any, td: str, note: Callable[[str], None]):
        super().__init__(daemon=True)
        self.ecs, self.td, self.note = ecs, td, note
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            try:
                arns = self.ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
                tasks = self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
                for t in tasks:
                    if t["taskDefinitionArn"] == self.td:
                        self.ecs.stop_task(cluster=CLUSTER, task=t["taskArn"], reason="Essential container in task exited")
                        self.note(YELLOW(f"💥 task {eventbus.short_id(t['taskArn'])} of revision 3 crashed"))
            except Exception as e:  # the demo goes on; the next poll tries again
                self.note(DIM(f"crasher: {e}"))

    def stop(self) -> None:
        self.halt.set()
        self.join(2)


class Demo:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.passed = 0
        self.failed = 0
        self.failures: list[str] = []
        self.violations: list[str] = []
        self.stack: stackmod.Stack | None = None
        self.bus: eventbus.EventBus | None = None
        self.t0 = time.time()
        self.started_tasks: set[str] = set()

    # ------------------------------------------------------------------ output helpers
    def step(self, letter: str, title: str) -> None:
        if self.a.pace and letter != "a":
            time.sleep(self.a.pace)
        say()
        say(BOLD(CYAN(f"── {letter}. {title} " + "─" * max(0, 72 - len(title)))))

    def note(self, msg: str) -> None:
        say(f"   {msg}")

    def bus_log(self, msg: str) -> None:
        if not self.a.quiet_bus:
            say(DIM(f"   ⇢ {time.strftime('%H:%M:%S')} {msg}"))

    def stack_log(self, msg: str) -> None:
        say(DIM(f"   {msg}"))

    def expect(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
            say(GREEN(f"   ✔ {what}"))
        else:
            self.failed += 1
            self.failures.append(what)
            say(RED(f"   ✘ {what}"))
        return ok

    def show_call(self, method: str, path: str, status: int, body: Any, query: dict[str, Any] | None = None) -> None:
        q = ("?" + "&".join(f"{k}={v}" for k, v in query.items())) if query else ""
        colour = GREEN if status < 300 else RED
        say(f"   {BOLD(method)} {path}{q}  →  {colour(str(status))}")
        text = json.dumps(body, indent=2) if not isinstance(body, str) else body
        lines = (text or "").splitlines()
        limit = self.a.max_json_lines
        for ln in lines[:limit]:
            say(f"     {ln}")
        if len(lines) > limit:
            say(DIM(f"     … {len(lines) - limit} more lines"))

    def api(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
            show: bool = True) -> tuple[int, Any]:
        assert self.stack
        status, resp = self.stack.api(method, path, body, query, timeout=self.a.timeout * 5)
        if show:
            if body is not None:
                say(DIM(f"   request body: {json.dumps(body)}"))
            self.show_call(method, path, status, resp, query)
        return status, resp

    # ------------------------------------------------------------------ state
    def ground_truth(self) -> dict[str, Any]:
        """From moto: ACTIVE hosts and the environment's RUNNING tasks per host."""
        assert self.stack
        ecs = self.stack.client("ecs")
        active = ecs.list_container_instances(cluster=CLUSTER, status="ACTIVE")["containerInstanceArns"]
        arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        per_host: dict[str, list[str]] = {}
        for t in tasks:
            if t.get("group") == GROUP and t.get("lastStatus") == "RUNNING":
                per_host.setdefault(t["containerInstanceArn"], []).append(t["taskArn"])
        return {"active": active, "per_host": per_host}

    def live_tasks_by_host(self, view: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for t in view["tasks"].values():
            if t.get("group") == GROUP and t.get("lastStatus") != "STOPPED":
                out.setdefault(t.get("containerInstanceArn", "?"), []).append(t)
        return out

    def on_poll(self, view: dict[str, Any]) -> None:
        for t in view["tasks"]:
            if view["tasks"][t].get("group") == GROUP:
                self.started_tasks.add(t)
        for host, ts in self.live_tasks_by_host(view).items():
            if len(ts) > 1:
                msg = (f"poll {view['poll']}: {len(ts)} live tasks of {ENV} on host {eventbus.short_id(host)}: "
                       + ", ".join(f"{eventbus.short_id(t['taskArn'])} {t['lastStatus']}" for t in ts))
                if not self.violations or self.violations[-1].split(":", 1)[1] != msg.split(":", 1)[1]:
                    self.violations.append(msg)
                    say(RED(f"   ✘ DUPLICATE {msg}"))

    def settled(self, expected_hosts: int) -> tuple[bool, str]:
        """Every ACTIVE host runs exactly one task of the environment, as the bus reports it."""
        assert self.bus
        view = self.bus.view()
        active = [a for a, d in view["instances"].items() if d.get("status") == "ACTIVE"]
        live = self.live_tasks_by_host(view)
        running = sum(1 for h in active if [t["lastStatus"] for t in live.get(h, [])] == ["RUNNING"])
        pending = sum(1 for h in active for t in live.get(h, []) if t["lastStatus"] != "RUNNING")
        ok = len(active) == expected_hosts and running == expected_hosts
        return ok, f"{running}/{len(active)} ACTIVE hosts run one {ENV} task" + (f", {pending} pending" if pending else "")

    def wait_until(self, cond: Callable[[], tuple[bool, str]], what: str, timeout: float | None = None) -> bool:
        timeout = timeout or self.a.timeout
        start = time.time()
        last_note = 0.0
        state = ""
        while time.time() - start < timeout:
            ok, state = cond()
            if ok:
                self.note(f"{what}: {state} ({time.time() - start:.1f}s)")
                return True
            if time.time() - last_note > 5:
                if last_note:
                    self.note(YELLOW(f"… waiting for {what}: {state}"))
                last_note = time.time()
            time.sleep(0.3)
        self.note(RED(f"timed out after {timeout:.0f}s waiting for {what}: {state}"))
        return False

    def check_one_per_host(self, label: str) -> None:
        gt = self.ground_truth()
        bad = [f"{eventbus.short_id(h)}:{len(gt['per_host'].get(h, []))}" for h in gt["active"] if len(gt["per_host"].get(h, [])) != 1]
        stray = [eventbus.short_id(h) for h in gt["per_host"] if h not in gt["active"]]
        self.expect(not bad and not stray,
                    f"{label}: exactly one RUNNING {ENV} task on each of the {len(gt['active'])} ACTIVE hosts (moto)"
                    + (f" — wrong counts {bad}" if bad else "") + (f" — tasks on non-ACTIVE hosts {stray}" if stray else ""))

    def print_table(self) -> None:
        assert self.bus
        self.bus.wait_polls(1, 5)
        view = self.bus.view()
        instances = sorted(view["instances"].values(), key=lambda d: (d.get("registeredAt", ""), d["containerInstanceArn"]))
        live = self.live_tasks_by_host(view)
        header = f"   {'host':10} {'ec2 instance':21} {'status':9} {'agent':6} {'task':10} {'lastStatus':11} environment"
        say(BOLD(header))
        for d in instances:
            host = d["containerInstanceArn"]
            ts = live.get(host) or [None]
            for i, t in enumerate(ts):
                hcols = (f"{eventbus.short_id(host):10} {d.get('ec2InstanceId', '-'):21} {d.get('status', '-'):9} "
                         f"{'on' if d.get('agentConnected') else 'OFF':6}") if i == 0 else " " * 49
                if t is None:
                    say(f"   {hcols} {'-':10} {'-':11} -")
                else:
                    status = t["lastStatus"]
                    colored = GREEN(f"{status:11}") if status == "RUNNING" else YELLOW(f"{status:11}")
                    dup = RED("  ← DUPLICATE") if len(ts) > 1 else ""
                    say(f"   {hcols} {eventbus.short_id(t['taskArn']):10} {colored} {ENV}{dup}")
        stopped = [t for t in view["tasks"].values() if t.get("group") == GROUP and t.get("lastStatus") == "STOPPED"]
        if stopped:
            say(DIM(f"   ({len(stopped)} stopped task{'s' if len(stopped) != 1 else ''} of {ENV}: "
                    + ", ".join(f"{eventbus.short_id(t['taskArn'])} on {eventbus.short_id(t.get('containerInstanceArn'))}"
                                f" ({t.get('stoppedReason', '')[:40]})" for t in stopped[-4:]) + ")"))

    # ------------------------------------------------------------------ the story
    def run(self) -> int:
        a = self.a
        say(BOLD("daemon-scheduler — local demo") + DIM("  (moto + cargo lambda watch + local EventBridge/stream)"))
        say(DIM(f"   logs: {stackmod._rel(stackmod.LOG_DIR)}/moto.log, watch.log (the functions' own logs)"))
        try:
            self.stack = stackmod.Stack(reload=not a.check and a.reload, concurrency=a.concurrency, log=self.stack_log,
                                        rust_log=a.rust_log)
            self.stack.start()
            say()
            say(BOLD("Compiling and starting the six functions") + DIM(" (a cold build takes minutes; later runs seconds)"))
            self.stack.warm(timeout=a.build_timeout)
        except stackmod.StackError as e:
            say(RED(f"   the stack did not come up: {e}"))
            self.expect(False, "the local stack comes up and every function compiles and answers")
            return self.finish()

        self.bus = eventbus.EventBus(
            self.stack.moto_url, self.stack.watch_url, self.stack.table_name, template=self.stack.template_path,
            poll_interval=0.4, pending_seconds=a.pending, duplicate=a.chaos or a.duplicate,
            shuffle=a.chaos or a.shuffle, max_delay=a.max_delay if a.max_delay is not None else (0.8 if a.chaos else 0.0),
            reconcile_every=a.reconcile_every or None, log=self.bus_log, queue_urls=self.stack.queue_urls)
        self.bus.on_poll.append(self.on_poll)
        self.bus.start()
        try:
            self.story()
        except Abort as e:
            say(RED(f"   stopping the story: {e}"))
        if a.keep:
            say()
            say(BOLD("The stack stays up (Ctrl-C ends it):"))
            say(f"   curl {self.stack.api_url}/v1/environments")
            say(f"   moto: {self.stack.moto_url}   table: {self.stack.table_name}")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return self.finish()

    def story(self) -> None:
        a = self.a
        assert self.stack and self.bus
        ecs, ec2 = self.stack.client("ecs"), self.stack.client("ec2")

        # a. cluster, task definition, 3 hosts
        self.step("a", f"An ECS cluster `{CLUSTER}` with 3 hosts, and a task definition `{ENV}`")
        cluster_arn = fleet.ensure_cluster(ecs, CLUSTER)
        td_arn = fleet.register_task_definition(ecs, ENV)
        self.note(f"cluster {cluster_arn}")
        self.note(f"task definition {td_arn}")
        hosts = fleet.add_hosts(ec2, ecs, CLUSTER, 3)
        self.note(f"registered 3 container instances: {', '.join(eventbus.short_id(h) for h in hosts)}")
        self.wait_until(lambda: (len(self.bus.view()["instances"]) >= 3, f"{len(self.bus.view()['instances'])} hosts seen"),
                        "the event bus to see the hosts", 10)
        self.print_table()

        # b. the environment
        self.step("b", f"Create the environment `{ENV}` (Blox API: POST /v1/environments)")
        status, env = self.api("POST", "/v1/environments",
                               {"name": ENV, "instanceGroup": {"cluster": CLUSTER}, "taskDefinition": f"{ENV}:1"})
        if not self.expect(status == 200 and isinstance(env, dict), "POST /v1/environments answers 200 with the environment"):
            raise Abort("no environment")
        token = env.get("deploymentToken")

        # c. the deployment
        self.step("c", "Deploy it: one task on every host")
        query = {"deploymentToken": token} if token else None
        status, dep = self.api("POST", f"/v1/environments/{ENV}/deployments", query=query)
        dep_id = dep.get("id") if isinstance(dep, dict) else None
        if not self.expect(status == 200 and bool(dep_id), "POST .../deployments answers 200 with a deployment id"):
            raise Abort("no deployment")
        ok = self.wait_until(lambda: self.settled(3), "3 tasks RUNNING, one per host")
        self.print_table()
        self.check_one_per_host("after the deployment")
        final: dict[str, Any] = {}

        def completed() -> tuple[bool, str]:
            s, d = self.api("GET", f"/v1/environments/{ENV}/deployments/{dep_id}", show=False)
            final.update(status=s, body=d)
            st = d.get("status") if isinstance(d, dict) else None
            return st == "completed", f"status {st}"

        self.wait_until(completed, "the deployment to complete")
        self.show_call("GET", f"/v1/environments/{ENV}/deployments/{dep_id}", final.get("status", 0), final.get("body"))
        self.expect(isinstance(final.get("body"), dict) and final["body"].get("status") == "completed",
                    "the deployment reaches `completed`")
        if not ok:
            self.note(YELLOW("(continuing although the rollout did not settle)"))

        # d. two more hosts join
        self.step("d", "Two more hosts join the cluster")
        more = fleet.add_hosts(ec2, ecs, CLUSTER, 2)
        self.note(f"registered {', '.join(eventbus.short_id(h) for h in more)}")
        self.wait_until(lambda: self.settled(5), "5 tasks RUNNING, one per host")
        self.print_table()
        self.check_one_per_host("after 2 hosts joined")

        # e. a task is stopped by hand
        self.step("e", "Someone stops one of the tasks by hand (ecs.stop_task)")
        gt = self.ground_truth()
        victim_host = hosts[1]
        victims = gt["per_host"].get(victim_host) or next(iter(gt["per_host"].values()), [])
        if not victims:
            self.expect(False, "a task to stop exists")
            raise Abort("nothing to stop")
        victim = victims[0]
        victim_host = next(h for h, ts in gt["per_host"].items() if victim in ts)
        ecs.stop_task(cluster=CLUSTER, task=victim, reason="stopped by hand in the demo")
        self.note(f"stopped task {eventbus.short_id(victim)} on host {eventbus.short_id(victim_host)}")

        def replaced() -> tuple[bool, str]:
            live = self.live_tasks_by_host(self.bus.view()).get(victim_host, [])
            new = [t for t in live if t["taskArn"] != victim and t["lastStatus"] == "RUNNING"]
            ok5, state = self.settled(5)
            return bool(new) and ok5, (f"new task {eventbus.short_id(new[0]['taskArn'])} RUNNING" if new else "no new task yet") + f"; {state}"

        self.wait_until(replaced, f"host {eventbus.short_id(victim_host)} to run a new task")
        self.print_table()
        self.check_one_per_host("after the manual stop")
        new_tasks = self.ground_truth()["per_host"].get(victim_host, [])
        self.expect(bool(new_tasks) and victim not in new_tasks, f"host {eventbus.short_id(victim_host)} runs a replacement task")

        # optional: drain
        if a.drain:
            self.step("e2", "A host drains (update_container_instances_state DRAINING)")
            drained = hosts[2]
            ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[drained], status="DRAINING")

            def drained_empty() -> tuple[bool, str]:
                live = self.live_tasks_by_host(self.bus.view()).get(drained, [])
                ok4, state = self.settled(4)
                return not live and ok4, f"{len(live)} live task(s) on the draining host; {state}"

            self.wait_until(drained_empty, f"the task on {eventbus.short_id(drained)} to stop")
            self.print_table()
            self.check_one_per_host("after the drain")
            left = [t for t in self.ground_truth()["per_host"].get(drained, [])]
            self.expect(not left, "the draining host runs no task of the environment")

        # g. a new revision, rolled out host by host
        expected = len(self.ground_truth()["active"])
        self.step("g", "Ship revision 2 (PUT the environment), then roll it out one host at a time")
        td2 = fleet.register_task_definition(ecs, ENV)
        self.note(f"task definition {td2}")
        status, env = self.api("PUT", f"/v1/environments/{ENV}",
                               {"taskDefinition": f"{ENV}:2", "updateStrategy": {"maxUnavailable": 1, "minHealthySeconds": 2}})
        self.expect(status == 200 and isinstance(env, dict) and env.get("latestRevision") == 2,
                    "PUT creates revision 2 (maxUnavailable 1, minHealthySeconds 2); nothing running is touched yet")
        status, dep2 = self.api("POST", f"/v1/environments/{ENV}/deployments")
        dep2_id = dep2.get("id") if isinstance(dep2, dict) else None
        self.expect(status == 200 and isinstance(dep2, dict) and dep2.get("revision") == 2,
                    "POST .../deployments deploys the latest revision (2)")
        down_max = self.follow_rollout(dep2_id, td2, expected)
        self.print_table()
        self.check_one_per_host("after the rolling update")
        self.expect(self.all_on(td2), "every host runs revision 2")
        self.expect(down_max <= 1, f"never more than maxUnavailable=1 host without a RUNNING daemon (saw {down_max})")

        # h. a bad revision: its tasks crash at once; the breaker trips and it rolls itself back
        self.step("h", "Ship a bad revision 3 (its tasks crash at once): the breaker trips, it rolls back")
        td3 = fleet.register_task_definition(ecs, ENV)
        status, env = self.api("PUT", f"/v1/environments/{ENV}",
                               {"taskDefinition": f"{ENV}:3", "updateStrategy": {"failureThreshold": 1, "minHealthySeconds": 0}})
        self.expect(status == 200, "PUT creates revision 3 (failureThreshold 1: a second failing host trips it)")
        crasher = Crasher(ecs, td3, self.note)
        crasher.start()
        try:
            status, dep3 = self.api("POST", f"/v1/environments/{ENV}/deployments")
            dep3_id = dep3.get("id") if isinstance(dep3, dict) else None
            final: dict[str, Any] = {}

            def rolled_back() -> tuple[bool, str]:
                s3, d3 = self.api("GET", f"/v1/environments/{ENV}/deployments", show=False)
                items = d3.get("items", []) if isinstance(d3, dict) else []
                bad = next((i for i in items if i.get("id") == dep3_id), {})
                back = next((i for i in items if i.get("rollbackOf") == dep3_id), {})
                final.update(bad=bad, back=back)
                done = bad.get("status") == "failed" and back.get("status") == "completed" and self.all_on(td2)
                return done, (f"deployment of revision 3 {bad.get('status')}, rollback {back.get('status', 'not started')}")

            self.wait_until(rolled_back, "the breaker to trip and the rollback to finish", self.a.timeout * 3)
        finally:
            crasher.stop()
        bad, back = final.get("bad", {}), final.get("back", {})
        self.show_call("GET", f"/v1/environments/{ENV}/deployments/{dep3_id}", 200, bad)
        self.expect(bad.get("status") == "failed" and str(bad.get("haltedReason", "")).startswith("circuit breaker"),
                    "the deployment of revision 3 is failed by the circuit breaker")
        self.expect(back.get("status") == "completed" and back.get("revision") == 2,
                    "the automatic rollback to revision 2 completes")
        self.print_table()
        self.check_one_per_host("after the rollback")
        self.expect(self.all_on(td2), "every host runs revision 2 again")
        status, st = self.api("GET", f"/v1/environments/{ENV}/status")

        # i. list
        self.step("i", "List the environments (GET /v1/environments)")
        status, body = self.api("GET", "/v1/environments")
        items = body.get("items") if isinstance(body, dict) else None
        self.expect(status == 200 and isinstance(items, list) and any(i.get("name") == ENV for i in items),
                    f"GET /v1/environments lists {ENV}")

    def tds_by_host(self) -> dict[str, list[str]]:
        """From moto: the task definitions of the environment's live tasks, per ACTIVE host."""
        assert self.stack
        ecs = self.stack.client("ecs")
        arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        out: dict[str, list[str]] = {}
        for t in tasks:
            if t.get("group") == GROUP and t.get("lastStatus") == "RUNNING":
                out.setdefault(t["containerInstanceArn"], []).append(t["taskDefinitionArn"])
        return out

    def all_on(self, td: str) -> bool:
        gt = self.ground_truth()
        tds = self.tds_by_host()
        return all(tds.get(h) == [td] for h in gt["active"])

    def follow_rollout(self, dep_id: str | None, td: str, hosts: int) -> int:
        """Prints the status counts as they move until the deployment completes; returns the most
        hosts seen without a RUNNING daemon."""
        down_max, last = 0, None
        start = time.time()
        while time.time() - start < self.a.timeout * 3:
            _, st = self.api("GET", f"/v1/environments/{ENV}/status", show=False)
            gt = self.ground_truth()
            down_max = max(down_max, sum(1 for h in gt["active"] if not gt["per_host"].get(h)))
            c = st.get("counts", {}) if isinstance(st, dict) else {}
            line = (f"desired {c.get('desired')}  ready {c.get('ready')}  updated {c.get('updated')}  "
                    f"available {c.get('available')}  unavailable {c.get('unavailable')}")
            if line != last:
                self.note(f"status: {line}")
                last = line
            dep = (st.get("deployment") or {}) if isinstance(st, dict) else {}
            if dep.get("id") == dep_id and dep.get("status") == "completed" and self.all_on(td):
                self.note(f"deployment {dep_id} completed ({time.time() - start:.1f}s)")
                return down_max
            time.sleep(0.3)
        self.note(RED("timed out waiting for the rolling update"))
        return down_max

    def finish(self) -> int:
        a = self.a
        if self.bus:
            self.bus.stop()
        if self.stack is not None and self.bus is not None:
            self.expect(not self.violations,
                        f"never two live tasks of {ENV} on one host (checked at {self.bus.view()['poll']} polls)")
        say()
        say(BOLD("Summary"))
        if self.bus:
            view = self.bus.view()
            hosts = len(view["instances"])
            ours = [t for t in view["tasks"].values() if t.get("group") == GROUP]
            say(f"   {hosts} hosts, {len(ours)} tasks of {ENV} started in all "
                f"({sum(1 for t in ours if t['lastStatus'] == 'STOPPED')} stopped), in {time.time() - self.t0:.0f}s")
            for fn, s in sorted(self.bus.stats.items()):
                say(f"   {fn:16} {s['ok']} ok, {s['error']} function errors, {s['dropped']} given up")
            for e in list(self.bus.errors)[-5:]:
                say(YELLOW(f"   event bus: {e}"))
        for v in self.violations:
            say(RED(f"   duplicate: {v}"))
        for f in self.failures:
            say(RED(f"   failed: {f}"))
        say(f"   function logs: {stackmod._rel(stackmod.LOG_DIR)}/watch.log")
        if self.stack:
            self.stack.stop()
        line = f"{self.passed} passed, {self.failed} failed"
        say(BOLD(GREEN(line) if not self.failed else RED(line)))
        return 1 if (a.check and self.failed) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0].replace("\n", " "),
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--check", action="store_true", help="run as a test: no pauses, exit 1 on a failed expectation")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds each step may take (after compilation)")
    ap.add_argument("--build-timeout", type=float, default=1800.0, help="seconds compiling + starting a function may take")
    ap.add_argument("--pace", type=float, default=None, help="pause between steps (default 1.5 s, 0 with --check)")
    ap.add_argument("--pending", type=float, default=1.0, help="seconds a new task is reported PENDING before RUNNING")
    ap.add_argument("--reconcile-every", type=float, default=60.0, help="invoke the reconciler every S seconds (0: never)")
    ap.add_argument("--chaos", action="store_true", help="deliver events twice, shuffled, delayed up to 0.8 s")
    ap.add_argument("--duplicate", action="store_true", help="deliver every ECS event twice")
    ap.add_argument("--shuffle", action="store_true", help="shuffle the events of each poll")
    ap.add_argument("--max-delay", type=float, default=None, help="delay each ECS event by random 0..S seconds")
    ap.add_argument("--drain", action="store_true", help="add a step where a host drains")
    ap.add_argument("--concurrency", type=int, default=1, help="instances per function in cargo lambda watch")
    ap.add_argument("--no-reload", dest="reload", action="store_false", help="do not rebuild functions on code changes")
    ap.add_argument("--rust-log", default="info", help="RUST_LOG of the functions")
    ap.add_argument("--quiet-bus", action="store_true", help="do not print every event delivery")
    ap.add_argument("--keep", action="store_true", help="keep the stack up at the end until Ctrl-C")
    ap.add_argument("--max-json-lines", type=int, default=24, help="trim printed responses to this many lines")
    a = ap.parse_args(argv)
    if a.pace is None:
        a.pace = 0.0 if a.check else 1.5
    stackmod.install_signal_handlers()
    demo = Demo(a)
    try:
        return demo.run()
    except KeyboardInterrupt:
        say(RED("\ninterrupted"))
        demo.failed += 0 if not a.check else 1
        return demo.finish() or 130


if __name__ == "__main__":
    sys.exit(main())
