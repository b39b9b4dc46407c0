#!/usr/bin/env python3
"""The watchable demo of daemon-scheduler on the local stack (moto + cargo lambda watch + the
local event bus), and with --check an end-to-end test.

    .venv/bin/python scripts/local/demo.py            # narrated, paced for a human
    .venv/bin/python scripts/local/demo.py --check    # as a test: exit 1 on any failed expectation
    .venv/bin/python scripts/local/demo.py --chaos    # events duplicated, shuffled and delayed
    .venv/bin/python scripts/local/demo.py --placement-only   # only the mixed-fleet chapter (j-p)
    .venv/bin/python scripts/local/demo.py --keep     # the stack stays up for daemonctl (step s)

Story: a cluster `demo` with 3 hosts; environment `log-shipper` is created and deployed (one task
per host); 2 hosts join (each gets its task); a task is stopped by hand (it is replaced); revision 2
is rolled out one host at a time (the status counts move); a bad revision 3 crashes at once, trips
the circuit breaker and rolls itself back to 2; the environments are listed. Optional --drain: a
host drains (its task is stopped, none replaces it).

Then placement, on a second cluster `mixed` (2x m5.large A, B and 1x t3.small C; gpu=true put on A
with ECS PutAttributes): `gpu-exporter` (memberOf `attribute:gpu == true`, dependsOn `log-router`,
its ZONE and INSTANCE_TYPE filled in per host) is deployed first and waits on A; `log-router` is
deployed everywhere and its RUNNING task on A releases the exporter there; a batch job (a plain
StartTask, not a daemon) leaves C 300 MiB; `metrics-agent`, sized by instance type (m5: 512 CPU /
1024 MiB, t3: 256 / 512), runs on A and B and is `unschedulable` on C ("needs 512 MiB memory, 300
free"); the job stops, C's next instance event starts it there; gpu moves from A to B
(DeleteAttributes, PutAttributes) and the exporter follows. What each host got is shown from
`GET .../status?hosts=true` (placement, reason, launch cpu/memory/overrides).

Then rollout controls, back on `demo` with log-shipper: revision 4 deployed as a canary (the
deployment's own updateStrategy {"canary": 1} in the POST body): 1 host replaced and baked, the
deployment `awaiting-promotion`, the other hosts still on revision 2; a host that joins meanwhile
gets revision 2 (what the environment deploys until the promotion, Nomad's rule); POST
…/promote rolls 4 onto every host, the joined one too. Then an alarm gate: a CloudWatch metric
alarm in moto (put_metric_alarm; the functions reach moto's CloudWatch through AWS_ENDPOINT_URL
like every other service), revision 5 gated by it (updateStrategy.alarms, minHealthySeconds 3,
autoRollback); once its first host runs revision 5 the alarm is set to ALARM (set_alarm_state): the
deployment halts, fails with `haltedReason` naming the alarm and rolls back to revision 4; the
alarm returns to OK. Last, step s prints daemonctl commands for this very stack (the endpoint,
dummy credentials, the real environment and deployment ids): with --keep they can be pasted.

Expectations (--check): exactly one RUNNING task of the environment on every ACTIVE host after
each step; the deployment reaches `completed`; at no poll of the event bus two live tasks of one
environment (any environment, either cluster) share a host. Placement: the exporter only on gpu
hosts (moto) and `notSelected` elsewhere, `waiting` for log-router before it runs; its overrides
carry the host's zone (status and the task moto recorded); the too-small host `unschedulable`
with its reason, not a failure (the deployment completes), then running once the room is back;
each host's size by its instance type (status launch and StartTask overrides); relabelling moves
the exporter and leaves log-router alone; on every host each exporter task was first seen after
log-router's task there was reported RUNNING. Canary: `awaiting-promotion` with exactly 1 host on
revision 4 and every other on 2 (moto), the joined host on 2, then `completed` with every host on
4. Alarm: the deployment of 5 `failed` with a haltedReason naming the alarm before every host got
5, its automatic rollback `completed`, every host on 4 again. The closing line is
`N passed, M failed`.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eventbus  # noqa: E402
import fleet  # noqa: E402
import stack as stackmod  # noqa: E402

CLUSTER = "demo"
ENV = "log-shipper"
GROUP = f"{eventbus.GROUP_PREFIX}{ENV}"

# the placement chapter: its own cluster, so the story above is untouched
FLEET = "mixed"
ROUTER, EXPORTER, AGENT = "log-router", "gpu-exporter", "metrics-agent"
FLEET_ENVS = (ROUTER, EXPORTER, AGENT)
GPU_ONLY = "attribute:gpu == true"
SIZING = [
    {"expression": "attribute:ecs.instance-type =~ m5\\..*", "cpu": "512", "memory": "1024"},
    {"expression": "attribute:ecs.instance-type =~ t3\\..*", "cpu": "256", "memory": "512"},
]
SIZES = {"m5.large": (512, 1024), "t3.small": (256, 512)}   # what SIZING gives each instance type
BATCH_FAMILY, BATCH_GROUP = "nightly-reindex", "batch:nightly-reindex"
LEFT_FREE = 300   # MiB the batch job leaves on host C: less than metrics-agent's 512 there

# the rollout-control chapters (q, r): log-shipper on `demo` again
GATE_ALARM = f"{ENV}-delivery-errors"   # a CloudWatch metric alarm in moto gating revision 5

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


@dataclass
class TaskSeen:
    """A daemon task as the bus reported it: the polls (and times) it was first seen, first
    RUNNING, and STOPPED."""
    arn: str
    env: str
    host: str
    cluster: str
    created_poll: int
    created_at: float
    running_poll: int | None = None
    running_at: float | None = None
    stopped_poll: int | None = None
    stopped_at: float | None = None
    stopped_reason: str = ""


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
        # every daemon task the bus reported, any cluster: arn -> TaskSeen (the bus thread writes)
        self.seen: dict[str, TaskSeen] = {}
        self.seen_lock = threading.Lock()
        self.fleet_names: dict[str, str] = {}   # host ARN -> A, B, C (the placement chapter)
        self.fleet_hosts: list[str] = []
        self.tds: dict[int, str] = {}           # log-shipper's revision -> its task definition ARN
        self.canary_id: str | None = None       # the canary deployment (step q)
        self.gated_id: str | None = None        # the deployment the alarm halted (step r)

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
            for arn, name in list(self.fleet_names.items()):  # the placement chapter's hosts by letter
                short = eventbus.short_id(arn)
                msg = msg.replace(f"host {short}", f"host {name} {short}")
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
        """Every poll of the bus: remember when each daemon task was first seen, first reported
        RUNNING and STOPPED; flag two live tasks of one environment on one host (any environment,
        any cluster)."""
        live: dict[tuple[str, str], list[dict[str, Any]]] = {}
        with self.seen_lock:
            for arn, t in view["tasks"].items():
                group = t.get("group") or ""
                if not group.startswith(eventbus.GROUP_PREFIX):
                    continue
                if group == GROUP:
                    self.started_tasks.add(arn)
                env = group.removeprefix(eventbus.GROUP_PREFIX)
                host = t.get("containerInstanceArn", "?")
                rec = self.seen.get(arn)
                if rec is None:
                    rec = self.seen[arn] = TaskSeen(arn, env, host, t.get("clusterArn", ""), view["poll"], view["at"])
                if t.get("lastStatus") == "RUNNING" and rec.running_poll is None:
                    rec.running_poll, rec.running_at = view["poll"], view["at"]
                if t.get("lastStatus") == "STOPPED" and rec.stopped_poll is None:
                    rec.stopped_poll, rec.stopped_at = view["poll"], view["at"]
                    rec.stopped_reason = t.get("stoppedReason") or ""
                if t.get("lastStatus") != "STOPPED":
                    live.setdefault((env, host), []).append(t)
        for (env, host), ts in live.items():
            if len(ts) > 1:
                msg = (f"poll {view['poll']}: {len(ts)} live tasks of {env} on host {self.host_name(host)}: "
                       + ", ".join(f"{eventbus.short_id(t['taskArn'])} {t['lastStatus']}" for t in ts))
                if not any(v.split(":", 1)[1] == msg.split(":", 1)[1] for v in self.violations[-8:]):
                    self.violations.append(msg)
                    say(RED(f"   ✘ DUPLICATE {msg}"))

    def host_name(self, arn: str | None) -> str:
        """A host of the placement chapter by its letter and id, any other by its id."""
        short = eventbus.short_id(arn)
        return f"{self.fleet_names[arn]} {short}" if arn in self.fleet_names else short

    @staticmethod
    def in_cluster(detail: dict[str, Any], cluster: str) -> bool:
        return (detail.get("clusterArn") or "").rsplit("/", 1)[-1] == cluster

    def settled(self, expected_hosts: int) -> tuple[bool, str]:
        """Every ACTIVE host runs exactly one task of the environment, as the bus reports it."""
        assert self.bus
        view = self.bus.view()
        active = [a for a, d in view["instances"].items() if d.get("status") == "ACTIVE" and self.in_cluster(d, CLUSTER)]
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
        ok = self.expect(not bad and not stray,
                         f"{label}: exactly one RUNNING {ENV} task on each of the {len(gt['active'])} ACTIVE hosts (moto)"
                         + (f" — wrong counts {bad}" if bad else "") + (f" — tasks on non-ACTIVE hosts {stray}" if stray else ""))
        if not ok:  # what the scheduler's records say of those hosts, to tell why
            _, st = self.api("GET", f"/v1/environments/{ENV}/status", query={"hosts": "true"}, show=False)
            for row in (st.get("hosts") or []) if isinstance(st, dict) else []:
                if any(eventbus.short_id(row.get("containerInstanceArn")) == b.split(":")[0] for b in bad):
                    self.note(YELLOW(f"status of {eventbus.short_id(row.get('containerInstanceArn'))}: "
                                     + json.dumps({k: row.get(k) for k in ("placement", "reason", "task", "launch",
                                                                          "lastFailure", "retryAtMs") if row.get(k)})))

    def print_table(self) -> None:
        assert self.bus
        self.bus.wait_polls(1, 5)
        view = self.bus.view()
        instances = sorted((d for d in view["instances"].values() if self.in_cluster(d, CLUSTER)),
                           key=lambda d: (d.get("registeredAt", ""), d["containerInstanceArn"]))
        live = self.live_tasks_by_host(view)
        header = f"   {'host':10} {'ec2 instance':21} {'status':9} {'agent':6} {'task':10} {'lastStatus':11} task definition"
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
                    td = (t.get("taskDefinitionArn") or ENV).rsplit("/", 1)[-1]
                    say(f"   {hcols} {eventbus.short_id(t['taskArn']):10} {colored} {td}{dup}")
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
        chapters = [self.placement_story] if a.placement_only else \
            [self.story, self.placement_story, self.canary_story, self.alarm_story]
        for chapter in chapters:
            try:
                chapter()
            except Abort as e:
                say(RED(f"   stopping this part of the story: {e}"))
        self.print_commands()
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
        self.tds[1] = td_arn
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
        td2 = self.tds[2] = fleet.register_task_definition(ecs, ENV)
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
        td3 = self.tds[3] = fleet.register_task_definition(ecs, ENV)
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

    # ------------------------------------------------------------------ the placement chapter
    def placement_story(self) -> None:
        """j–p: a mixed fleet on its own cluster — selection by attribute, dependsOn, per-host
        overrides, sizing by instance type, a host without room, relabelling."""
        assert self.stack and self.bus
        ecs, ec2 = self.stack.client("ecs"), self.stack.client("ec2")

        # j. the fleet
        self.step("j", f"A mixed fleet: cluster `{FLEET}` with 2× m5.large and 1× t3.small; gpu=true on host A")
        fleet.ensure_cluster(ecs, FLEET)
        a, b = fleet.add_hosts(ec2, ecs, FLEET, 2, instance_type="m5.large", zones=("us-east-1a", "us-east-1b"))
        c = fleet.add_hosts(ec2, ecs, FLEET, 1, instance_type="t3.small", zones=("us-east-1c",))[0]
        self.fleet_hosts = [a, b, c]
        self.fleet_names.update({a: "A", b: "B", c: "C"})
        for env in FLEET_ENVS:
            self.note(f"task definition {fleet.register_task_definition(ecs, env)}  (64 CPU units, 64 MiB)")
        fleet.set_attribute(ecs, FLEET, a, "gpu", "true")
        self.note("ecs.put_attributes(cluster=mixed, attributes=[{name: gpu, value: true, targetType: container-instance, "
                  f"targetId: {a.rsplit('/', 1)[-1]}}}])  → host A")
        self.wait_until(lambda: self.gpu_hosts_seen({a}), "the bus to see the 3 hosts, gpu=true on A", 15)
        self.print_fleet()

        # k. selection, order, per-host overrides
        self.step("k", f"`{ROUTER}` on every host; `{EXPORTER}` only where gpu=true, after {ROUTER}, told its zone")
        s1, _ = self.api("POST", "/v1/environments",
                         {"name": ROUTER, "instanceGroup": {"cluster": FLEET}, "taskDefinition": f"{ROUTER}:1"})
        s2, _ = self.api("POST", "/v1/environments", {
            "name": EXPORTER, "instanceGroup": {"cluster": FLEET}, "taskDefinition": f"{EXPORTER}:1",
            "placementConstraints": [{"type": "memberOf", "expression": GPU_ONLY}],
            "dependsOn": [ROUTER],
            "overrides": {"containerOverrides": [{"name": EXPORTER, "environment": [
                {"name": "ZONE", "value": "${host.availabilityZone}"},
                {"name": "INSTANCE_TYPE", "value": "${host.instanceType}"}]}]},
        })
        if not self.expect(s1 == 200 and s2 == 200,
                           f"{ROUTER} and {EXPORTER} are created (placementConstraints, dependsOn and overrides accepted)"):
            raise Abort("the placement environments were refused")
        self.note(BOLD(f"{EXPORTER} is deployed first: host A is selected, but {ROUTER} does not run there yet"))
        dep_x = self.deploy(EXPORTER)

        def a_waits() -> tuple[bool, str]:
            # the deployer writes host by host: wait for all three records
            rows = self.host_rows(self.status_of(EXPORTER))
            return rows.get(a, {}).get("placement") == "waiting" and all(h in rows for h in (b, c)), \
                ", ".join(f"host {self.fleet_names[h]}: {rows.get(h, {}).get('placement', 'no record yet')}" for h in (a, b, c))

        self.wait_until(a_waits, f"host A to wait for {ROUTER}, B and C to be decided")
        st = self.show_placement(EXPORTER)
        rows = self.host_rows(st)
        ra = rows.get(a, {})
        self.expect(ra.get("placement") == "waiting" and ROUTER in (ra.get("reason") or "") and ra.get("task") == "vacant",
                    f"{EXPORTER} waits on host A, nothing started: placement {ra.get('placement')!r}, reason {ra.get('reason')!r}")
        self.expect(all(rows.get(h, {}).get("placement") == "notSelected" and GPU_ONLY in (rows.get(h, {}).get("reason") or "")
                        for h in (b, c)),
                    f"hosts B and C are notSelected, reason 'not selected by {GPU_ONLY}'"
                    + "".join(f" — {self.host_name(h)}: {rows.get(h, {}).get('placement')} {rows.get(h, {}).get('reason')!r}"
                              for h in (b, c) if rows.get(h, {}).get("placement") != "notSelected"))
        counts = st.get("counts", {})
        self.expect(counts.get("waiting") == 1 and counts.get("desired") == 1,
                    f"status counts: desired 1, waiting 1 (got desired {counts.get('desired')}, waiting {counts.get('waiting')})")
        self.expect(not self.moto_hosts(EXPORTER), f"no {EXPORTER} task anywhere yet (moto)")

        self.note(BOLD(f"now {ROUTER}: its RUNNING task on host A releases {EXPORTER} there (no polling)"))
        dep_r = self.deploy(ROUTER)

        def released() -> tuple[bool, str]:
            routers = [h for h in self.fleet_hosts if len(self.bus_live(ROUTER, h, running=True)) == 1]
            x = self.bus_live(EXPORTER, a, running=True)
            return len(routers) == 3 and len(x) == 1, \
                f"{ROUTER} RUNNING on {len(routers)}/3 hosts; {EXPORTER} on A {'RUNNING' if x else 'not yet'}"

        self.wait_until(released, f"{ROUTER} on every host, then {EXPORTER} on host A")
        self.wait_deployment(ROUTER, dep_r)
        self.wait_deployment(EXPORTER, dep_x)
        self.print_fleet()
        st = self.show_placement(EXPORTER, raw=a)
        row = self.host_rows(st).get(a, {})
        zone = self.env_of(((row.get("launch") or {}).get("overrides")), "ZONE")
        self.expect(row.get("placement") == "runs" and zone == "us-east-1a",
                    f"status: {EXPORTER} runs on host A with ZONE={zone} filled in for it (us-east-1a)")
        self.expect(sorted(self.moto_hosts(ROUTER).values()) == [1, 1, 1], f"one {ROUTER} task on each of the 3 hosts (moto)")
        self.expect(self.moto_hosts(EXPORTER) == {a: 1},
                    f"hosts labelled gpu=true get the exporter and others do not: {EXPORTER} on "
                    + (", ".join(self.host_name(h) for h in self.moto_hosts(EXPORTER)) or "no host") + " (moto)")
        task = self.moto_tasks(EXPORTER).get(a, [{}])[0]
        env_sent = self.env_of(task.get("overrides"), "ZONE"), self.env_of(task.get("overrides"), "INSTANCE_TYPE")
        self.expect(env_sent == ("us-east-1a", "m5.large"),
                    f"StartTask sent host A's values: ZONE={env_sent[0]}, INSTANCE_TYPE={env_sent[1]} (moto's task overrides)")

        # l. a host without room
        self.step("l", "A batch job (not a daemon) takes most of host C's memory")
        free = fleet.remaining(ecs, FLEET, c)
        big = free["MEMORY"] - LEFT_FREE
        td_big = fleet.register_task_definition(ecs, BATCH_FAMILY, cpu=128, memory=big)
        job = ecs.start_task(cluster=FLEET, taskDefinition=td_big, containerInstances=[c], group=BATCH_GROUP,
                             startedBy="demo")["tasks"][0]["taskArn"]
        self.note(f"ecs.start_task {BATCH_FAMILY} ({big} MiB) on host C in group {BATCH_GROUP}: task {eventbus.short_id(job)}")
        self.wait_until(lambda: (self.bus_free(c)[1] == LEFT_FREE, f"host C: {self.bus_free(c)[1]} MiB free"),
                        f"host C's instance event to show {LEFT_FREE} MiB free", 15)
        self.print_fleet()

        # m. sizing by instance type; C has no room
        self.step("m", f"`{AGENT}` sized by instance type: m5 → 512 CPU / 1024 MiB, t3 → 256 CPU / 512 MiB")
        s3, _ = self.api("POST", "/v1/environments", {
            "name": AGENT, "instanceGroup": {"cluster": FLEET}, "taskDefinition": f"{AGENT}:1", "sizing": SIZING})
        self.expect(s3 == 200, f"{AGENT} is created with its sizing rules")
        dep_m = self.deploy(AGENT)

        def sized() -> tuple[bool, str]:
            on = [h for h in (a, b) if self.bus_live(AGENT, h, running=True)]
            rc = self.host_rows(self.status_of(AGENT)).get(c, {})
            return len(on) == 2 and rc.get("placement") == "unschedulable", \
                f"{AGENT} RUNNING on {len(on)}/2 m5 hosts; host C: {rc.get('placement', 'no record yet')}"

        self.wait_until(sized, f"{AGENT} on the m5 hosts, host C unschedulable")
        done = self.wait_deployment(AGENT, dep_m)
        self.print_fleet()
        st = self.show_placement(AGENT, raw=c)
        rows = self.host_rows(st)
        rc = rows.get(c, {})
        want = f"needs 512 MiB memory, {LEFT_FREE} free"
        self.expect(rc.get("placement") == "unschedulable" and rc.get("reason") == want and not rc.get("taskArn"),
                    f"a too-small host is unschedulable with its reason: host C {rc.get('placement')!r}, {rc.get('reason')!r}"
                    f" (expected {want!r})")
        counts = st.get("counts", {})
        self.expect(counts.get("unschedulable") == 1 and counts.get("desired") == 2,
                    f"status counts: desired 2, unschedulable 1 (got desired {counts.get('desired')}, "
                    f"unschedulable {counts.get('unschedulable')})")
        self.expect(done.get("status") == "completed" and not done.get("failedHosts") and not done.get("failures"),
                    f"the deployment completes; no room is not a failure (status {done.get('status')}, "
                    f"failedHosts {done.get('failedHosts')})")
        self.expect(c not in self.moto_hosts(AGENT), f"no {AGENT} task on host C (moto)")
        self.check_sizes([a, b])

        # n. room again
        self.step("n", f"The batch job ends: host C's next instance event brings {AGENT} there")
        ecs.stop_task(cluster=FLEET, task=job, reason="batch job done")
        self.note(f"ecs.stop_task {eventbus.short_id(job)} (the {BATCH_FAMILY} job) on host C")

        def c_runs() -> tuple[bool, str]:
            on = self.bus_live(AGENT, c, running=True)
            rc = self.host_rows(self.status_of(AGENT)).get(c, {})
            return bool(on) and rc.get("placement") == "runs" and rc.get("task") == "running", \
                f"host C: {self.bus_free(c)[1]} MiB free, {AGENT} {'RUNNING' if on else 'not started'}, status {rc.get('placement')}/{rc.get('task')}"

        self.wait_until(c_runs, f"{AGENT} to start on host C")
        self.print_fleet()
        st = self.show_placement(AGENT)
        counts = st.get("counts", {})
        self.expect(counts.get("unschedulable") == 0 and counts.get("desired") == 3 and counts.get("ready") == 3,
                    f"status counts: desired 3, ready 3, unschedulable 0 (got {counts.get('desired')}, "
                    f"{counts.get('ready')}, {counts.get('unschedulable')})")
        self.check_sizes([a, b, c], differ=True)

        # o. relabel
        self.step("o", f"Relabel: gpu=true moves from host A to host B; {EXPORTER} follows")
        routers_before = {h: [t["taskArn"] for t in ts] for h, ts in self.moto_tasks(ROUTER).items()}
        old = [t["taskArn"] for t in self.moto_tasks(EXPORTER).get(a, [])]
        fleet.remove_attribute(ecs, FLEET, a, "gpu")
        self.note("ecs.delete_attributes gpu on host A")
        fleet.set_attribute(ecs, FLEET, b, "gpu", "true")
        self.note("ecs.put_attributes gpu=true on host B")

        def moved() -> tuple[bool, str]:
            on_a = self.bus_live(EXPORTER, a)
            on_b = self.bus_live(EXPORTER, b, running=True)
            return not on_a and bool(on_b), f"{EXPORTER}: {len(on_a)} live on A, {len(on_b)} RUNNING on B"

        self.wait_until(moved, f"{EXPORTER} to leave A and start on B")
        self.print_fleet()
        st = self.show_placement(EXPORTER)
        rows = self.host_rows(st)
        self.expect(self.moto_hosts(EXPORTER) == {b: 1},
                    f"relabelling moves the daemon: {EXPORTER} now on "
                    + (", ".join(self.host_name(h) for h in self.moto_hosts(EXPORTER)) or "no host") + " (moto)")
        gone = ecs.describe_tasks(cluster=FLEET, tasks=old)["tasks"] if old else []
        self.expect(bool(gone) and all(t.get("lastStatus") == "STOPPED" for t in gone),
                    f"its task on host A was stopped: " + ", ".join(
                        f"{eventbus.short_id(t['taskArn'])} {t.get('lastStatus')} ({t.get('stoppedReason', '')})" for t in gone))
        rb = rows.get(b, {})
        zone = self.env_of((rb.get("launch") or {}).get("overrides"), "ZONE")
        self.expect(rows.get(a, {}).get("placement") == "notSelected" and rb.get("placement") == "runs" and zone == "us-east-1b",
                    f"status: A {rows.get(a, {}).get('placement')}, B {rb.get('placement')} with ZONE={zone}")
        after = {h: [t["taskArn"] for t in ts] for h, ts in self.moto_tasks(ROUTER).items()}
        self.expect(after == routers_before, f"{ROUTER}'s tasks were not touched by the relabelling")

        # p. order, and one task per environment per host
        self.step("p", f"On every host {EXPORTER} started only after {ROUTER} was RUNNING there; one task each")
        self.check_order()
        self.check_fleet_one_per_host()

    # ------------------------------------------------------------------ rollout controls (q, r)
    def get_deployment(self, dep_id: str | None) -> dict[str, Any]:
        _, d = self.api("GET", f"/v1/environments/{ENV}/deployments/{dep_id}", show=False)
        return d if isinstance(d, dict) else {}

    def show_deployment(self, d: dict[str, Any], label: str = "") -> None:
        """A deployment's fields that tell its story, on one or two lines."""
        us = d.get("updateStrategy") or {}
        strategy = ", ".join(f"{k} {json.dumps(us[k])}" for k in ("canary", "maxUnavailable", "minHealthySeconds", "alarms",
                                                                  "autoRollback") if us.get(k) not in (None, [], 0))
        status = d.get("status", "?")
        colour = GREEN if status == "completed" else (RED if status == "failed" else YELLOW)
        say(f"   {BOLD('deployment')} {d.get('id')}{f' ({label})' if label else ''}: {colour(status)}, revision "
            f"{d.get('revision')}, desired {d.get('desiredCount')} running {d.get('runningCount')} pending "
            f"{d.get('pendingCount')} failed {d.get('failedCount')}" + (f"; {strategy}" if strategy else ""))
        extra = [f"{k} {d[k]!r}" for k in ("haltedReason", "rollbackOf", "promotedAt") if d.get(k)]
        if extra:
            say(f"     {'; '.join(extra)}")

    def revisions_now(self) -> dict[str, int]:
        """From moto: how many ACTIVE hosts run which task definition of log-shipper (a host with
        other than exactly one task counts under '?')."""
        gt, tds = self.ground_truth(), self.tds_by_host()
        out: dict[str, int] = {}
        for h in gt["active"]:
            key = tds[h][0] if len(tds.get(h, [])) == 1 else "?"
            out[key] = out.get(key, 0) + 1
        return out

    def rev_label(self, counts: dict[str, int]) -> str:
        names = {td: f"revision {n}" for n, td in self.tds.items()}
        return ", ".join(f"{c} on {names.get(td, td)}" for td, c in sorted(counts.items(), key=lambda kv: names.get(kv[0], kv[0])))

    def canary_story(self) -> None:
        """q: a canary of revision 4 on 1 host, a host joining while it waits, then promote."""
        assert self.stack and self.bus
        ecs, ec2 = self.stack.client("ecs"), self.stack.client("ec2")
        td2 = self.tds.get(2)
        if not td2 or not self.all_on(td2):
            raise Abort(f"{ENV} is not settled on revision 2 (the first part of the story did not finish)")
        n = len(self.ground_truth()["active"])
        self.step("q", f"A canary: revision 4 on 1 host first, the other {n - 1} keep revision 2 until it is promoted")
        td4 = self.tds[4] = fleet.register_task_definition(ecs, ENV)
        body = {"taskDefinition": f"{ENV}:4",
                "updateStrategy": {"maxUnavailable": 2, "minHealthySeconds": 2, "failureThreshold": "20%"}}
        status, env = self.api("PUT", f"/v1/environments/{ENV}", body, show=False)
        say(DIM(f"   request body: {json.dumps(body)}"))
        say(f"   {BOLD('PUT')} /v1/environments/{ENV}  →  {(GREEN if status == 200 else RED)(str(status))}"
            + (f"  latestRevision {env.get('latestRevision')}, activeRevision {env.get('activeRevision')}"
               if isinstance(env, dict) else ""))
        self.expect(status == 200 and isinstance(env, dict) and env.get("latestRevision") == 4,
                    "PUT creates revision 4 (maxUnavailable 2, minHealthySeconds 2)")
        self.note(BOLD("deployed as a canary: the deployment's own updateStrategy, the revision's is left as it is"))
        status, dep = self.api("POST", f"/v1/environments/{ENV}/deployments", {"updateStrategy": {"canary": 1}}, show=False)
        say(DIM('   request body: {"updateStrategy": {"canary": 1}}'))
        say(f"   {BOLD('POST')} /v1/environments/{ENV}/deployments  →  {(GREEN if status == 200 else RED)(str(status))}")
        dep = dep if isinstance(dep, dict) else {}
        dep_id = self.canary_id = dep.get("id")
        if dep:
            self.show_deployment(dep)
        if not self.expect(status == 200 and dep.get("revision") == 4 and (dep.get("updateStrategy") or {}).get("canary") == 1,
                           "POST …/deployments {updateStrategy: {canary: 1}} starts a canary deployment of revision 4"):
            raise Abort("no canary deployment")

        final: dict[str, Any] = {}

        def awaiting() -> tuple[bool, str]:
            final.clear()
            final.update(self.get_deployment(dep_id))
            return final.get("status") == "awaiting-promotion", \
                f"status {final.get('status')}; hosts: {self.rev_label(self.revisions_now())}"

        self.wait_until(awaiting, "the canary host to be replaced and baked")
        self.print_table()
        self.show_deployment(final)
        counts = self.revisions_now()
        self.expect(final.get("status") == "awaiting-promotion",
                    f"the deployment waits for its promotion: status {final.get('status')!r}")
        self.expect(counts == {td4: 1, td2: n - 1},
                    f"exactly 1 host runs revision 4, the other {n - 1} keep revision 2 (moto: {self.rev_label(counts)})")

        # a host joins while the canary waits: it gets what the environment deploys, revision 2
        self.note(BOLD("a host joins while the canary waits: it gets the revision the environment still deploys (2)"))
        joined = fleet.add_hosts(ec2, ecs, CLUSTER, 1)[0]
        self.note(f"registered {eventbus.short_id(joined)}")
        self.wait_until(lambda: self.settled(n + 1), f"{n + 1} tasks RUNNING, one per host")
        tds = self.tds_by_host()
        self.expect(tds.get(joined) == [td2],
                    f"the joined host {eventbus.short_id(joined)} runs revision 2, not the canary's 4 (moto: "
                    f"{', '.join(t.rsplit('/', 1)[-1] for t in tds.get(joined, [])) or 'nothing'})")
        d = self.get_deployment(dep_id)
        counts = self.revisions_now()
        self.expect(d.get("status") == "awaiting-promotion" and counts == {td4: 1, td2: n},
                    f"still awaiting promotion with 1 host on revision 4 ({d.get('status')}; {self.rev_label(counts)})")
        status, hosts = self.api("GET", f"/v1/environments/{ENV}/deployments/{dep_id}/hosts", show=False)
        items = hosts.get("items", []) if isinstance(hosts, dict) else []
        say(f"   {BOLD('GET')} /v1/environments/{ENV}/deployments/{dep_id}/hosts  →  {(GREEN if status == 200 else RED)(str(status))}")
        for h in items:
            say(f"     host {eventbus.short_id(h.get('containerInstanceArn'))}: {h.get('hostStatus')}, task {h.get('task')}, "
                f"revision {h.get('revision')}: " + " → ".join(e.get("event", "?") for e in h.get("events") or []))
        self.expect(status == 200 and len(items) == 1 and items[0].get("revision") == 4,
                    f"the canary's host history names 1 host, on revision 4 (got {len(items)})")

        # promote
        self.note(BOLD("promote: revision 4 goes onto every other host, 2 at a time (maxUnavailable 2)"))
        status, body = self.api("POST", f"/v1/environments/{ENV}/deployments/{dep_id}/promote", show=False)
        say(f"   {BOLD('POST')} /v1/environments/{ENV}/deployments/{dep_id}/promote  →  {(GREEN if status == 200 else RED)(str(status))}")
        if isinstance(body, dict) and body.get("id"):
            self.show_deployment(body)
        self.expect(status == 200 and isinstance(body, dict) and bool(body.get("promotedAt")),
                    "POST …/promote answers 200 with promotedAt")
        down_max = self.follow_rollout(dep_id, td4, n + 1)
        self.print_table()
        d = self.get_deployment(dep_id)
        self.show_deployment(d)
        self.expect(d.get("status") == "completed", f"the promoted deployment completes (status {d.get('status')!r})")
        self.expect(self.all_on(td4), f"every host, the joined one too, runs revision 4 (moto: {self.rev_label(self.revisions_now())})")
        self.expect(down_max <= 2, f"never more than maxUnavailable=2 hosts without a RUNNING daemon (saw {down_max})")
        self.check_one_per_host("after the promotion")

    def alarm_story(self) -> None:
        """r: revision 5 gated by a CloudWatch alarm; the alarm fires mid-rollout: halt, roll back."""
        assert self.stack and self.bus
        ecs, cw = self.stack.client("ecs"), self.stack.client("cloudwatch")
        td4 = self.tds.get(4)
        if not td4 or not self.all_on(td4):
            raise Abort(f"{ENV} is not settled on revision 4 (the canary chapter did not finish)")
        n = len(self.ground_truth()["active"])
        self.step("r", f"An alarm gate: revision 5 rolls out watched by the CloudWatch alarm `{GATE_ALARM}`; it fires")
        cw.put_metric_alarm(AlarmName=GATE_ALARM, Namespace="LogShipper", MetricName="DeliveryErrors", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold",
                            AlarmDescription="log-shipper fails to deliver logs")
        cw.set_alarm_state(AlarmName=GATE_ALARM, StateValue="OK", StateReason="demo: deliveries fine")
        state = cw.describe_alarms(AlarmNames=[GATE_ALARM])["MetricAlarms"][0]["StateValue"]
        self.note(f"cloudwatch.put_metric_alarm {GATE_ALARM} (LogShipper/DeliveryErrors > 10 in 60 s), "
                  f"set_alarm_state OK → {state}  (moto; the functions' DescribeAlarms goes there too)")
        td5 = self.tds[5] = fleet.register_task_definition(ecs, ENV)
        strategy = {"alarms": [GATE_ALARM], "maxUnavailable": 1, "minHealthySeconds": 3, "autoRollback": True}
        status, env = self.api("PUT", f"/v1/environments/{ENV}", {"taskDefinition": f"{ENV}:5", "updateStrategy": strategy},
                               show=False)
        say(DIM(f"   request body: {json.dumps({'taskDefinition': f'{ENV}:5', 'updateStrategy': strategy})}"))
        say(f"   {BOLD('PUT')} /v1/environments/{ENV}  →  {(GREEN if status == 200 else RED)(str(status))}")
        got = (env.get("updateStrategy") or {}) if isinstance(env, dict) else {}
        if not self.expect(status == 200 and env.get("latestRevision") == 5 and got.get("alarms") == [GATE_ALARM],
                           f"PUT creates revision 5 gated by {GATE_ALARM} (maxUnavailable 1, minHealthySeconds 3, autoRollback)"):
            raise Abort("revision 5 was refused")
        status, dep = self.api("POST", f"/v1/environments/{ENV}/deployments", show=False)
        dep = dep if isinstance(dep, dict) else {}
        dep_id = self.gated_id = dep.get("id")
        say(f"   {BOLD('POST')} /v1/environments/{ENV}/deployments  →  {(GREEN if status == 200 else RED)(str(status))}")
        if dep:
            self.show_deployment(dep)
        if not self.expect(status == 200 and dep.get("revision") == 5, "POST …/deployments starts the deployment of revision 5"):
            raise Abort("no deployment of revision 5")
        self.note("the deployer reads the alarm at each step of the rollout (and every minute between steps)")

        def first_host() -> tuple[bool, str]:
            counts = self.revisions_now()
            return counts.get(td5, 0) >= 1, f"hosts: {self.rev_label(counts)}"

        self.wait_until(first_host, "the first host to run revision 5")
        cw.set_alarm_state(AlarmName=GATE_ALARM, StateValue="ALARM", StateReason="demo: 42 delivery errors in 60 s")
        self.note(YELLOW(f"🚨 cloudwatch.set_alarm_state {GATE_ALARM} → ALARM (\"42 delivery errors in 60 s\")"))

        final: dict[str, Any] = {}
        most = {"on5": 0}

        def rolled_back() -> tuple[bool, str]:
            _, body = self.api("GET", f"/v1/environments/{ENV}/deployments", show=False)
            items = body.get("items", []) if isinstance(body, dict) else []
            gated = next((i for i in items if i.get("id") == dep_id), {})
            back = next((i for i in items if i.get("rollbackOf") == dep_id), {})
            final.update(gated=gated, back=back)
            counts = self.revisions_now()
            most["on5"] = max(most["on5"], counts.get(td5, 0))
            done = gated.get("status") == "failed" and back.get("status") == "completed" and self.all_on(td4)
            return done, (f"deployment of revision 5 {gated.get('status')}, rollback {back.get('status', 'not started')}; "
                          f"hosts: {self.rev_label(counts)}")

        self.wait_until(rolled_back, "the alarm to halt the rollout and the rollback to finish", self.a.timeout * 2)
        gated, back = final.get("gated", {}), final.get("back", {})
        self.print_table()
        if gated:
            self.show_deployment(gated, "gated by the alarm")
        if back:
            self.show_deployment(back, "its automatic rollback")
        reason = str(gated.get("haltedReason") or "")
        self.expect(gated.get("status") == "failed" and GATE_ALARM in reason and "ALARM" in reason,
                    f"the deployment of revision 5 is halted by its alarm: status {gated.get('status')!r}, "
                    f"haltedReason {reason!r}")
        self.expect(0 < most["on5"] < n,
                    f"it halted mid-rollout: at most {most['on5']} of {n} hosts ever ran revision 5 at once")
        self.expect(back.get("status") == "completed" and back.get("revision") == 4,
                    f"the automatic rollback to revision 4 completes (rollbackOf {back.get('rollbackOf')}, "
                    f"status {back.get('status')!r})")
        self.expect(self.all_on(td4), f"every host runs revision 4 again (moto: {self.rev_label(self.revisions_now())})")
        self.check_one_per_host("after the alarm's rollback")
        cw.set_alarm_state(AlarmName=GATE_ALARM, StateValue="OK", StateReason="demo: deliveries fine again")
        self.note(f"cloudwatch.set_alarm_state {GATE_ALARM} → OK: revision 5 is still the latest, a new deployment of it "
                  "is gated by the alarm again")

    def print_commands(self) -> None:
        """s: daemonctl commands for this very stack, with this run's names and ids."""
        assert self.stack
        if self.stack.api_url is None:
            return
        self.step("s", "Try it with daemonctl against this stack" + ("" if self.a.keep else " (rerun with --keep to paste these)"))
        env = ENV if self.tds else ROUTER
        cmds = [
            ("cargo build -p daemonctl && export PATH=\"$PWD/target/debug:$PATH\"", ""),
            (f"export DAEMONCTL_ENDPOINT={self.stack.api_url}", "# or: $(jq -r .api .local/stack.json)"),
            (f"export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={stackmod.REGION}",
             "# dummy: daemonctl signs, the local gateway checks no signature"),
            ("daemonctl env list", ""),
            (f"daemonctl env status {env} --hosts", "# per host: placement, revision, size"),
            (f"daemonctl deployments list {env}", ""),
        ]
        if self.canary_id:
            cmds.append((f"daemonctl deployments hosts {env} {self.canary_id}", "# the canary: each host's transitions"))
        if self.gated_id:
            cmds.append((f"daemonctl deployments get {env} {self.gated_id}", "# halted by the alarm"))
        if self.tds:
            latest = max(self.tds)
            cmds += [
                (f"daemonctl deploy {env} --canary 1 --wait", f"# revision {latest} on 1 host; prints its id"),
                (f"daemonctl deployments promote {env} <that id>", "# then every host"),
            ]
        if self.gated_id:
            cmds.append((f".venv/bin/python -c \"import boto3; boto3.client('cloudwatch', endpoint_url='{self.stack.moto_url}')"
                         f".set_alarm_state(AlarmName='{GATE_ALARM}', StateValue='ALARM', StateReason='by hand')\"",
                         f"# halts a deployment of revision {max(self.tds)}"))
        for cmd, comment in cmds:
            say(f"   {cmd}" + (f"   {DIM(comment)}" if comment else ""))

    # ------------------------------------------------------------------ placement helpers
    def deploy(self, env: str) -> str | None:
        status, dep = self.api("POST", f"/v1/environments/{env}/deployments", show=False)
        dep_id = dep.get("id") if isinstance(dep, dict) else None
        self.expect(status == 200 and bool(dep_id), f"POST /v1/environments/{env}/deployments → {status}, deployment {dep_id}")
        return dep_id

    def wait_deployment(self, env: str, dep_id: str | None) -> dict[str, Any]:
        final: dict[str, Any] = {}

        def finished() -> tuple[bool, str]:
            _, d = self.api("GET", f"/v1/environments/{env}/deployments/{dep_id}", show=False)
            final.clear()
            final.update(d if isinstance(d, dict) else {})
            return final.get("status") in ("completed", "failed", "cancelled"), f"status {final.get('status')}"

        self.wait_until(finished, f"the deployment of {env} to finish")
        self.expect(final.get("status") == "completed", f"the deployment of {env} completes (status {final.get('status')})")
        return final

    def status_of(self, env: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/v1/environments/{env}/status", query={"hosts": "true"}, show=False)
        return body if status == 200 and isinstance(body, dict) else {}

    @staticmethod
    def host_rows(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {h.get("containerInstanceArn"): h for h in st.get("hosts") or []}

    @staticmethod
    def env_of(overrides: dict[str, Any] | None, name: str) -> str | None:
        for co in (overrides or {}).get("containerOverrides") or []:
            for kv in co.get("environment") or []:
                if kv.get("name") == name:
                    return kv.get("value")
        return None

    def fleet_instance(self, host: str) -> dict[str, Any]:
        assert self.bus
        return self.bus.view()["instances"].get(host, {})

    def attr(self, host: str, name: str) -> str | None:
        return next((x.get("value") for x in self.fleet_instance(host).get("attributes", []) if x.get("name") == name), None)

    def bus_free(self, host: str) -> tuple[int | None, int | None]:
        """(CPU units, MiB) the host has left, as its latest instance event says."""
        rs = {r.get("name"): r.get("integerValue") for r in self.fleet_instance(host).get("remainingResources", [])}
        return rs.get("CPU"), rs.get("MEMORY")

    def gpu_hosts_seen(self, expected: set[str]) -> tuple[bool, str]:
        assert self.bus
        hosts = [arn for arn, d in self.bus.view()["instances"].items() if self.in_cluster(d, FLEET)]
        gpu = {h for h in hosts if self.attr(h, "gpu") == "true"}
        return len(hosts) == 3 and gpu == expected, f"{len(hosts)} hosts, gpu=true on {sorted(self.host_name(h) for h in gpu)}"

    def bus_live(self, env: str, host: str, running: bool = False) -> list[dict[str, Any]]:
        """The environment's live tasks on the host, as the bus reported them."""
        assert self.bus
        group = f"{eventbus.GROUP_PREFIX}{env}"
        return [t for t in self.bus.view()["tasks"].values()
                if t.get("group") == group and t.get("containerInstanceArn") == host
                and (t.get("lastStatus") == "RUNNING" if running else t.get("lastStatus") != "STOPPED")]

    def moto_tasks(self, env: str) -> dict[str, list[dict[str, Any]]]:
        """From moto: the environment's RUNNING tasks on the fleet's cluster, per host."""
        assert self.stack
        ecs = self.stack.client("ecs")
        arns = ecs.list_tasks(cluster=FLEET, desiredStatus="RUNNING")["taskArns"]
        out: dict[str, list[dict[str, Any]]] = {}
        for t in ecs.describe_tasks(cluster=FLEET, tasks=arns)["tasks"] if arns else []:
            if t.get("group") == f"{eventbus.GROUP_PREFIX}{env}" and t.get("lastStatus") == "RUNNING":
                out.setdefault(t["containerInstanceArn"], []).append(t)
        return out

    def moto_hosts(self, env: str) -> dict[str, int]:
        return {h: len(ts) for h, ts in self.moto_tasks(env).items()}

    def check_sizes(self, hosts: list[str], differ: bool = False) -> None:
        """metrics-agent's size on each host: the status's launch and moto's task overrides agree
        with the sizing rule of the host's instance type."""
        rows = self.host_rows(self.status_of(AGENT))
        tasks = self.moto_tasks(AGENT)
        seen = []
        for h in hosts:
            itype = self.attr(h, "ecs.instance-type") or "?"
            cpu, mem = SIZES.get(itype, (None, None))
            launch = rows.get(h, {}).get("launch") or {}
            sent = (tasks.get(h) or [{}])[0].get("overrides") or {}
            got = (launch.get("cpu"), launch.get("memory"), sent.get("cpu"), sent.get("memory"))
            seen.append(f"{self.fleet_names.get(h)} {itype} {got[2]}/{got[3]}")
            self.expect(got == (cpu, mem, str(cpu), str(mem)),
                        f"host {self.host_name(h)} ({itype}) gets {cpu} CPU / {mem} MiB: status launch {got[0]}/{got[1]}, "
                        f"StartTask overrides {got[2]}/{got[3]} (moto)")
        if differ:
            self.expect(len({s.split(' ', 2)[2] for s in seen}) > 1,
                        f"the task size differs by instance type: {', '.join(seen)}")

    def check_order(self) -> None:
        """Each exporter task was first seen by the bus after a router task on its host had been
        reported RUNNING (and before that one stopped). moto runs a task the moment StartTask
        returns, so a reconciler run in between may legitimately have seen the router running
        before the bus reported it: that case is named, not failed."""
        assert self.bus
        with self.seen_lock:
            tasks = list(self.seen.values())
        reconciles = [d.at for d in list(self.bus.deliveries) if d.function == "reconciler"]
        exporters = sorted((t for t in tasks if t.env == EXPORTER), key=lambda t: t.created_poll)
        bad = []
        for x in exporters:
            routers = [r for r in tasks if r.env == ROUTER and r.host == x.host]
            before = [r for r in routers if r.running_poll is not None and r.running_poll < x.created_poll
                      and (r.stopped_poll is None or r.stopped_poll > x.created_poll)]
            if before:
                r = before[-1]
                self.note(f"host {self.host_name(x.host)}: {ROUTER} {eventbus.short_id(r.arn)} RUNNING at poll {r.running_poll} "
                          f"({time.strftime('%H:%M:%S', time.localtime(r.running_at or 0))}) → {EXPORTER} "
                          f"{eventbus.short_id(x.arn)} first seen at poll {x.created_poll} "
                          f"(+{(x.created_at - (r.running_at or 0)):.1f}s)")
                continue
            existed = [r for r in routers if r.created_poll < x.created_poll]
            if existed and any(existed[-1].created_at <= t <= x.created_at for t in reconciles):
                self.note(YELLOW(f"host {self.host_name(x.host)}: {EXPORTER} {eventbus.short_id(x.arn)} started before the bus "
                                 f"reported {ROUTER} RUNNING, after a reconciler run that saw it running in moto"))
                continue
            bad.append(f"{EXPORTER} {eventbus.short_id(x.arn)} on {self.host_name(x.host)} first seen at poll {x.created_poll}; "
                       f"{ROUTER} there: " + (", ".join(f"{eventbus.short_id(r.arn)} created poll {r.created_poll}, "
                                                         f"RUNNING poll {r.running_poll}" for r in routers) or "none"))
        self.expect(len(exporters) >= 2 and not bad,
                    f"B starts after A on each host: each of the {len(exporters)} {EXPORTER} tasks started after "
                    f"{ROUTER} was RUNNING on its host" + (f" — {'; '.join(bad)}" if bad else ""))

    def check_fleet_one_per_host(self) -> None:
        assert self.stack
        active = self.stack.client("ecs").list_container_instances(cluster=FLEET, status="ACTIVE")["containerInstanceArns"]
        gpu = [h for h in active if self.attr(h, "gpu") == "true"]
        for env, hosts in ((ROUTER, active), (AGENT, active), (EXPORTER, gpu)):
            got = self.moto_hosts(env)
            want = {h: 1 for h in hosts}
            self.expect(got == want,
                        f"exactly one RUNNING {env} task on each of its {len(hosts)} host(s) and none elsewhere (moto)"
                        + ("" if got == want else f" — got {[(self.host_name(h), n) for h, n in got.items()]}"))

    def print_fleet(self) -> None:
        """The fleet as the bus last reported it: type, zone, gpu, free resources, what runs."""
        assert self.bus
        self.bus.wait_polls(1, 5)
        view = self.bus.view()
        say(BOLD(f"   {'host':10} {'type':9} {'zone':11} {'gpu':5} {'free CPU/MiB':13} "
                 f"{ROUTER:11} {EXPORTER:13} {AGENT:14} other"))
        for h in self.fleet_hosts:
            cpu, mem = self.bus_free(h)
            cells = []
            for env, width in ((ROUTER, 11), (EXPORTER, 13), (AGENT, 14)):
                ts = self.bus_live(env, h)
                txt = ",".join(t["lastStatus"] for t in ts) or "-"
                cell = f"{txt:{width}}"
                cells.append(GREEN(cell) if txt == "RUNNING" else (YELLOW(cell) if ts else DIM(cell)))
            others = [t for t in view["tasks"].values() if t.get("containerInstanceArn") == h
                      and not (t.get("group") or "").startswith(eventbus.GROUP_PREFIX) and t.get("lastStatus") != "STOPPED"]
            say(f"   {self.host_name(h):10} {self.attr(h, 'ecs.instance-type') or '-':9} "
                f"{self.attr(h, 'ecs.availability-zone') or '-':11} {self.attr(h, 'gpu') or '-':5} "
                f"{f'{cpu}/{mem}':13} {' '.join(cells)} "
                + (", ".join(f"{t.get('group')} {t['lastStatus']}" for t in others) or "-"))

    def show_placement(self, env: str, raw: str | None = None) -> dict[str, Any]:
        """GET …/status?hosts=true, as a table (and one host's row as the API gives it)."""
        st = self.status_of(env)
        c = st.get("counts", {})
        say(f"   {BOLD('GET')} /v1/environments/{env}/status?hosts=true  →  {GREEN('200') if st else RED('error')}")
        say(f"     counts: " + "  ".join(f"{k} {c.get(k)}" for k in ("desired", "current", "ready", "available",
                                                                        "unschedulable", "waiting", "misscheduled")))
        rows = self.host_rows(st)
        for h in self.fleet_hosts:
            row = rows.get(h)
            if row is None:
                say(f"     {self.host_name(h):10} (no record)")
                continue
            launch = row.get("launch")
            got = ""
            if launch:
                envs = [f"{kv['name']}={kv['value']}" for co in (launch.get("overrides") or {}).get("containerOverrides") or []
                        for kv in co.get("environment") or []]
                got = f"rev {launch.get('revision')}: {launch.get('cpu')} CPU / {launch.get('memory')} MiB" \
                      + (f", {' '.join(envs)}" if envs else "")
            placement = row.get("placement", "?")
            colour = GREEN if placement == "runs" else (YELLOW if placement in ("waiting", "unschedulable") else DIM)
            say(f"     {self.host_name(h):10} {colour(f'{placement:13}')} {row.get('task', '?'):9} "
                + "  ".join(x for x in (got, row.get("reason") or "") if x))
        if raw and raw in rows:
            say(DIM(f"     host {self.host_name(raw)} as the API gives it:"))
            for ln in json.dumps(rows[raw], indent=2).splitlines()[: self.a.max_json_lines]:
                say(DIM(f"       {ln}"))
        return st

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
            with self.seen_lock:
                envs = sorted({t.env for t in self.seen.values()}, key=lambda e: (e != ENV, e))
            self.expect(not self.violations,
                        f"never two live tasks of one environment on one host ({', '.join(envs) or ENV}; "
                        f"checked at {self.bus.view()['poll']} polls)")
        say()
        say(BOLD("Summary"))
        if self.bus:
            view = self.bus.view()
            hosts = len(view["instances"])
            ours = [t for t in view["tasks"].values() if t.get("group") == GROUP]
            say(f"   {hosts} hosts, {len(ours)} tasks of {ENV} started in all "
                f"({sum(1 for t in ours if t['lastStatus'] == 'STOPPED')} stopped), in {time.time() - self.t0:.0f}s"
                if ours else f"   {hosts} hosts, in {time.time() - self.t0:.0f}s")
            with self.seen_lock:
                placed = [t for t in self.seen.values() if t.env in FLEET_ENVS]
            if placed:
                say(f"   cluster {FLEET}: " + ", ".join(
                    f"{sum(1 for t in placed if t.env == e)} tasks of {e}" for e in FLEET_ENVS)
                    + f" ({sum(1 for t in placed if t.stopped_poll is not None)} stopped)")
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
    ap.add_argument("--placement-only", action="store_true", help="run only the placement chapter (steps j–p)")
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
