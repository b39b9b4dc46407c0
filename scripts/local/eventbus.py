#!/usr/bin/env python3
"""The local stand-in for EventBridge and for Lambda's DynamoDB-stream event source mapping.

moto's ECS emits no events, so this watches moto instead and emits what ECS would:

- ECS poller (every --poll s): every cluster's container instances (all statuses) and tasks
  (desiredStatus RUNNING and STOPPED) are described and diffed against the previous poll; every
  change becomes an "ECS Container Instance State Change" / "ECS Task State Change" event in the
  real shape (detail mirrors the describe output, camelCase, RFC 3339 times, `version` growing per
  resource: moto keeps no version, so this keeps one counter per ARN). What moto cannot do is
  filled in the way ECS does it:
    * a new task is first reported PENDING and --pending s later RUNNING (moto starts tasks RUNNING);
    * a task that moto reports STOPPED gets desiredStatus STOPPED, stopCode (UserInitiated after
      StopTask, EssentialContainerExited otherwise), stoppingAt/stoppedAt/executionStoppedAt;
    * a container instance that disappears (moto deletes deregistered instances) is reported
      INACTIVE with agentConnected false;
    * set_agent_connected(arn, False) fakes an agent disconnect (ECS has no API for it).
  Each event is routed like EventBridge: to every function whose rule pattern in
  infra/template.yaml matches, asynchronously (worker threads), with Lambda's asynchronous retries
  (2) on function errors. Chaos options: deliver every event twice, shuffle the events of one poll,
  delay each delivery by a random 0..--max-delay s (reorders events across polls).
- Stream poller: reads the table's DynamoDB stream from moto, converts the records to the Lambda
  event format, applies the event source's FilterCriteria from the template and delivers batches
  (<= BatchSize) to the function in order, retrying a failed batch MaximumRetryAttempts times
  (bisecting when BisectBatchOnFunctionError), then dropping it, as the event source mapping does.
- Scheduler: invokes the scheduled function (reconciler) with a Scheduled Event every N s.

Standalone: python scripts/local/eventbus.py [--moto URL --watch URL --table NAME]
(defaults come from .local/stack.json written by `stack.py up`); --dry-run prints the events
instead of delivering them.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402
import patterns  # noqa: E402
import stack as stackmod  # noqa: E402

REGION = stackmod.REGION
ACCOUNT = stackmod.ACCOUNT
GROUP_PREFIX = "daemon-scheduler:"
INSTANCE_DETAIL_TYPE = "ECS Container Instance State Change"
TASK_DETAIL_TYPE = "ECS Task State Change"


# --------------------------------------------------------------------------------------------
# formatting helpers
# --------------------------------------------------------------------------------------------
def iso_ms(t: float | datetime | None = None) -> str:
    if isinstance(t, datetime):
        dt = t.astimezone(timezone.utc)
    else:
        dt = datetime.fromtimestamp(time.time() if t is None else t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_s(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_id(arn: str | None, n: int = 8) -> str:
    return (arn or "-").rsplit("/", 1)[-1][:n]


def _chunks(xs: list[Any], n: int) -> list[list[Any]]:
    return [xs[i:i + n] for i in range(0, len(xs), n)]


def _clean_resources(rs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """ECS events list resources as {name, type, integerValue | stringSetValue} (moto adds zeros)."""
    out = []
    for r in rs or []:
        c: dict[str, Any] = {"name": r.get("name"), "type": r.get("type")}
        if r.get("type") == "STRINGSET":
            c["stringSetValue"] = list(r.get("stringSetValue") or [])
        else:
            for k in ("integerValue", "longValue", "doubleValue"):
                if r.get(k) or k == "integerValue":
                    c[k] = r.get(k, 0)
        out.append(c)
    return out


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def eventbridge_event(detail_type: str, source: str, resources: list[str], detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": iso_s(),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def summarize(fn: str, event: Any) -> str:
    """One short line describing an event."""
    if isinstance(event, dict) and event.get("detail-type") == INSTANCE_DETAIL_TYPE:
        d = event["detail"]
        return (f"host {short_id(d.get('containerInstanceArn'))} {d.get('status')} "
                f"agent={'on' if d.get('agentConnected') else 'OFF'} v{d.get('version')}")
    if isinstance(event, dict) and event.get("detail-type") == TASK_DETAIL_TYPE:
        d = event["detail"]
        env = (d.get("group") or "").removeprefix(GROUP_PREFIX) if (d.get("group") or "").startswith(GROUP_PREFIX) else d.get("group")
        return (f"task {short_id(d.get('taskArn'))} {d.get('lastStatus')} (desired {d.get('desiredStatus')}) "
                f"on host {short_id(d.get('containerInstanceArn'))} [{env}] v{d.get('version')}")
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        return "Scheduled Event"
    if isinstance(event, dict) and event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        return "wake-up: " + ", ".join(r.get("body", "")[:80] for r in event["Records"][:3])
    if isinstance(event, dict) and "Records" in event:
        recs = event["Records"]
        parts = []
        for r in recs[:4]:
            keys = r.get("dynamodb", {}).get("Keys", {})
            sk = keys.get("sk", {}).get("S", "?")
            status = (r.get("dynamodb", {}).get("NewImage") or {}).get("status", {}).get("S")
            parts.append(f"{r.get('eventName')} {keys.get('pk', {}).get('S', '?')} {sk[:14]}{'…' if len(sk) > 14 else ''}"
                         + (f" ({status})" if status else ""))
        more = f", +{len(recs) - 4}" if len(recs) > 4 else ""
        return f"{len(recs)} record{'s' if len(recs) != 1 else ''}: " + ", ".join(parts) + more
    return json.dumps(event)[:80]


# --------------------------------------------------------------------------------------------
# DynamoDB stream records -> Lambda event records
# --------------------------------------------------------------------------------------------
def lambda_stream_record(rec: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A boto3 get_records record as Lambda delivers it (eventVersion 1.1, epoch-seconds time)."""
    ddb = dict(rec.get("dynamodb") or {})
    t = ddb.get("ApproximateCreationDateTime")
    if isinstance(t, datetime):
        ddb["ApproximateCreationDateTime"] = int(t.timestamp())
    elif isinstance(t, (int, float)):
        ddb["ApproximateCreationDateTime"] = int(t)
    else:
        ddb["ApproximateCreationDateTime"] = int(time.time())
    out = {
        "eventID": rec.get("eventID") or uuid.uuid4().hex,
        "eventName": rec.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": rec.get("awsRegion") or REGION,
        "dynamodb": {k: ddb[k] for k in ("ApproximateCreationDateTime", "Keys", "NewImage", "OldImage",
                                         "SequenceNumber", "SizeBytes", "StreamViewType") if k in ddb},
        "eventSourceARN": stream_arn,
    }
    if rec.get("userIdentity"):
        out["userIdentity"] = rec["userIdentity"]
    return out


# --------------------------------------------------------------------------------------------
# what the poller remembers per resource
# --------------------------------------------------------------------------------------------
@dataclass
class Seen:
    version: int
    key: str                      # the detail without version/updatedAt, to detect changes
    detail: dict[str, Any]
    first_seen: float = field(default_factory=time.time)
    pending_until: float = 0.0    # tasks: report PENDING until then
    started_at: float | None = None
    stopped_at: float | None = None


@dataclass
class Delivery:
    at: float
    function: str
    event: Any
    status: int
    failed: bool
    attempt: int


class EventBus:
    def __init__(self, moto_url: str, watch_url: str | None, table_name: str | None,
                 template: str | Path | None = None, *, poll_interval: float = 0.4,
                 pending_seconds: float = 1.0, duplicate: bool = False, shuffle: bool = False,
                 max_delay: float = 0.0, reconcile_every: float | None = None,
                 stream_start: str | None = None, stream_poll: float = 0.3, dry_run: bool = False,
                 pin_tasks: bool = True, workers: int = 8, emit_initial: bool = True,
                 async_retries: int = 2, async_retry_delay: float = 1.0, stream_retry_delay: float = 0.5,
                 verbose: bool = False, print_events: bool = False, log: Callable[[str], None] | None = None,
                 invoke_timeout: float = 900.0, queue_urls: dict[str, str] | None = None):
        self.moto_url, self.watch_url, self.table_name = moto_url, watch_url, table_name
        tpl = cfn.load_template(template)
        self.rules = cfn.eventbridge_rules(tpl)
        self.stream_sources = cfn.stream_sources(tpl)
        self.sqs_sources = cfn.sqs_sources(tpl)
        self.queue_urls = queue_urls or {}
        scheduled = cfn.scheduled_functions(tpl)
        self.scheduled = scheduled[0] if scheduled else ("reconciler", "ReconcilerSchedule")
        self.poll_interval, self.pending_seconds = poll_interval, pending_seconds
        self.duplicate, self.shuffle, self.max_delay = duplicate, shuffle, max_delay
        self.reconcile_every = reconcile_every
        self.stream_start = stream_start
        self.stream_poll = stream_poll
        self.dry_run = dry_run or not watch_url
        self.pin_tasks = pin_tasks
        self.n_workers = workers
        self.emit_initial = emit_initial
        self.async_retries, self.async_retry_delay = async_retries, async_retry_delay
        self.stream_retry_delay = stream_retry_delay
        self.verbose, self.print_events = verbose, print_events
        self.invoke_timeout = invoke_timeout
        self._log = log or _default_log
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queue: "queue.Queue[tuple[str, Any, float] | None]" = queue.Queue()
        self._lock = threading.Condition()
        self._in_flight = 0
        self._stream_backlog = 0
        # poller state (poll thread only, except the views published under _lock)
        self.instances: dict[str, Seen] = {}
        self.tasks: dict[str, Seen] = {}
        self._agent_override: dict[str, bool] = {}
        self._polls = 0
        self._view: dict[str, Any] = {"instances": {}, "tasks": {}, "poll": 0, "at": 0.0}
        self.on_poll: list[Callable[[dict[str, Any]], None]] = []
        # statistics
        self.stats: dict[str, dict[str, int]] = {}
        self.deliveries: deque[Delivery] = deque(maxlen=20000)
        self.errors: deque[str] = deque(maxlen=200)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "EventBus":
        if self.pin_tasks:
            stackmod.http("POST", f"{self.moto_url}/moto-api/state-manager/set-transition",
                          json.dumps({"model_name": "ecs::task", "transition": stackmod.PINNED_TASKS}).encode())
        rules = ", ".join(f"{r.function}" for r in self.rules) or "none"
        streams = ", ".join(f"{s.function} ({len(s.filters)} filters)" for s in self.stream_sources) or "none"
        queues = ", ".join(f"{q.queue} -> {q.function}" for q in self.sqs_sources if q.queue in self.queue_urls)
        mode = "DRY RUN (printing, not delivering)" if self.dry_run else f"delivering to {self.watch_url}"
        chaos = [x for x, on in (("duplicates", self.duplicate), ("shuffle", self.shuffle),
                                 (f"delay<= {self.max_delay}s", self.max_delay > 0)) if on]
        self._log(f"eventbus: {mode}; EventBridge rules -> {rules}; stream -> {streams}"
                  + (f"; schedule -> {self.scheduled[0]} every {self.reconcile_every:g}s" if self.reconcile_every else "")
                  + (f"; SQS {queues}" if queues else "")
                  + (f"; chaos: {', '.join(chaos)}" if chaos else ""))
        for i in range(self.n_workers):
            self._spawn(self._worker, f"eventbus-worker-{i}")
        self._spawn(self._ecs_loop, "eventbus-ecs")
        if self.table_name and self.stream_sources:
            self._spawn(self._stream_loop, "eventbus-stream")
        if self.reconcile_every:
            self._spawn(self._schedule_loop, "eventbus-schedule")
        for src in self.sqs_sources:
            if src.queue in self.queue_urls:
                self._spawn(lambda src=src: self._sqs_loop(src), f"eventbus-sqs-{src.queue}")
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for _ in range(self.n_workers):
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()

    def __enter__(self) -> "EventBus":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------- public helpers
    def view(self) -> dict[str, Any]:
        """The latest poll as the functions learn it: {"instances": {arn: detail}, "tasks": {arn:
        detail}, "poll": n, "at": t}. Task lastStatus is the reported one (PENDING first)."""
        with self._lock:
            return self._view

    def set_agent_connected(self, container_instance_arn: str, connected: bool | None) -> None:
        """Fake an agent disconnect (False) / reconnect (True); None: back to what moto says."""
        with self._lock:
            if connected is None:
                self._agent_override.pop(container_instance_arn, None)
            else:
                self._agent_override[container_instance_arn] = connected

    def wait_polls(self, n: int = 2, timeout: float = 30.0) -> None:
        """Wait until n more ECS polls have completed."""
        with self._lock:
            target = self._view["poll"] + n
            self._lock.wait_for(lambda: self._view["poll"] >= target or self._stop.is_set(), timeout)

    def wait_idle(self, timeout: float = 60.0, settle_polls: int = 2) -> bool:
        """Wait until polls found nothing new and every delivery (ECS and stream) is done."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.wait_polls(settle_polls, max(0.1, deadline - time.time()))
            with self._lock:
                if self._in_flight == 0 and self._stream_backlog == 0 and self._queue.empty():
                    return True
            time.sleep(0.05)
        return False

    def emit(self, event: dict[str, Any]) -> list[str]:
        """Route one EventBridge event (e.g. built by a test) like the poller's own ones."""
        return self._route([event])

    # ---------------------------------------------------------------- ECS poller
    def _ecs_loop(self) -> None:
        ecs = stackmod.boto_client("ecs", self.moto_url)
        first = True
        while not self._stop.is_set():
            t0 = time.time()
            try:
                initial, first = first, False
                events = self._poll_ecs(ecs, initial=initial)
                if events and (self.emit_initial or not initial):
                    self._route(events)
            except Exception as e:  # noqa: BLE001 - moto restarting, reset in progress, ...
                self._error(f"ECS poll failed: {type(e).__name__}: {_first_line(e)}")
            self._stop.wait(max(0.0, self.poll_interval - (time.time() - t0)))

    def _paginate(self, ecs: Any, op: str, key: str, **kw: Any) -> list[str]:
        out: list[str] = []
        for page in ecs.get_paginator(op).paginate(**kw):
            out.extend(page.get(key, []))
        return out

    def _poll_ecs(self, ecs: Any, initial: bool) -> list[dict[str, Any]]:
        now = time.time()
        cis: dict[str, tuple[str, dict[str, Any]]] = {}
        tasks: dict[str, tuple[str, dict[str, Any]]] = {}
        for cluster in self._paginate(ecs, "list_clusters", "clusterArns"):
            ci_arns = self._paginate(ecs, "list_container_instances", "containerInstanceArns", cluster=cluster)
            for chunk in _chunks(ci_arns, 100):
                for ci in ecs.describe_container_instances(cluster=cluster, containerInstances=chunk)["containerInstances"]:
                    cis[ci["containerInstanceArn"]] = (cluster, ci)
            t_arns: list[str] = []
            for desired in ("RUNNING", "STOPPED"):
                t_arns += self._paginate(ecs, "list_tasks", "taskArns", cluster=cluster, desiredStatus=desired)
            for chunk in _chunks(list(dict.fromkeys(t_arns)), 100):
                for t in ecs.describe_tasks(cluster=cluster, tasks=chunk)["tasks"]:
                    tasks[t["taskArn"]] = (cluster, t)

        events: list[dict[str, Any]] = []
        with self._lock:
            overrides = dict(self._agent_override)
        # container instances
        for arn, (cluster, ci) in cis.items():
            detail = self._instance_detail(cluster, ci, overrides.get(arn))
            ev = self._changed(self.instances, arn, detail, ci.get("version"), now)
            if ev:
                events.append(eventbridge_event(INSTANCE_DETAIL_TYPE, "aws.ecs", [arn], ev))
        for arn, seen in self.instances.items():
            if arn not in cis and seen.detail.get("status") != "INACTIVE":
                detail = {k: v for k, v in seen.detail.items() if k not in ("version", "updatedAt")}
                detail.update(status="INACTIVE", agentConnected=False)
                ev = self._changed(self.instances, arn, detail, None, now)
                if ev:
                    events.append(eventbridge_event(INSTANCE_DETAIL_TYPE, "aws.ecs", [arn], ev))
        # tasks
        azs = {arn: next((a.get("value") for a in seen.detail.get("attributes", []) if a.get("name") == "ecs.availability-zone"), None)
               for arn, seen in self.instances.items()}
        for arn, (cluster, t) in tasks.items():
            seen = self.tasks.get(arn)
            if seen is None:
                seen = Seen(version=0, key="", detail={}, first_seen=now)
                if not initial and t.get("lastStatus") == "RUNNING" and self.pending_seconds > 0:
                    seen.pending_until = now + self.pending_seconds
                self.tasks[arn] = seen
            detail = self._task_detail(cluster, t, seen, now, azs.get(t.get("containerInstanceArn")))
            ev = self._changed(self.tasks, arn, detail, t.get("version"), now)
            if ev:
                events.append(eventbridge_event(TASK_DETAIL_TYPE, "aws.ecs", [arn], ev))

        view = {
            "instances": {a: s.detail for a, s in self.instances.items()},
            "tasks": {a: s.detail for a, s in self.tasks.items()},
        }
        with self._lock:
            self._polls += 1
            view["poll"], view["at"] = self._polls, now
            self._view = view
            self._lock.notify_all()
        for cb in list(self.on_poll):
            try:
                cb(view)
            except Exception as e:  # noqa: BLE001 - an observer's bug must not stop the bus
                self._error(f"on_poll callback failed: {e!r}")
        return events

    @staticmethod
    def _changed(store: dict[str, Seen], arn: str, detail: dict[str, Any], moto_version: Any, now: float) -> dict[str, Any] | None:
        """Record `detail` for `arn`; return the event detail (with version, updatedAt) if it changed."""
        key = json.dumps(detail, sort_keys=True, default=str)
        seen = store.get(arn)
        if seen is not None and seen.key == key:
            return None
        if seen is None or seen.version == 0:
            version = int(moto_version) if isinstance(moto_version, int) and moto_version > 0 else 1
        else:
            version = seen.version + 1
            if isinstance(moto_version, int) and moto_version > version:
                version = moto_version
        full = dict(detail, version=version, updatedAt=iso_ms(now))
        if seen is None:
            store[arn] = Seen(version=version, key=key, detail=full, first_seen=now)
        else:
            seen.version, seen.key, seen.detail = version, key, full
        return full

    def _instance_detail(self, cluster: str, ci: dict[str, Any], agent_override: bool | None) -> dict[str, Any]:
        agent = ci.get("agentConnected", True) if agent_override is None else agent_override
        return _drop_none({
            "agentConnected": agent,
            "attributes": [_drop_none({"name": a.get("name"), "value": a.get("value")}) for a in ci.get("attributes", [])],
            "clusterArn": cluster,
            "containerInstanceArn": ci["containerInstanceArn"],
            "ec2InstanceId": ci.get("ec2InstanceId"),
            "registeredResources": _clean_resources(ci.get("registeredResources")),
            "remainingResources": _clean_resources(ci.get("remainingResources")),
            "status": ci.get("status"),
            "versionInfo": ci.get("versionInfo"),
            "registeredAt": iso_ms(ci["registeredAt"]) if isinstance(ci.get("registeredAt"), datetime) else ci.get("registeredAt"),
        })

    def _task_detail(self, cluster: str, t: dict[str, Any], seen: Seen, now: float, az: str | None) -> dict[str, Any]:
        arn = t["taskArn"]
        moto_last = t.get("lastStatus") or "PENDING"
        desired = t.get("desiredStatus") or "RUNNING"
        last = moto_last
        if moto_last == "RUNNING" and now < seen.pending_until:
            last = "PENDING"
        stop_code = stopped_reason = None
        if last == "STOPPED":
            if desired == "STOPPED":
                stop_code = "UserInitiated"
                stopped_reason = t.get("stoppedReason") or "Task stopped by user"
            else:  # moto's own progression ended the task: to ECS, its essential container exited
                desired = "STOPPED"
                stop_code = "EssentialContainerExited"
                stopped_reason = t.get("stoppedReason") or "Essential container in task exited"
            if seen.stopped_at is None:
                seen.stopped_at = now
        if last not in ("PENDING", "PROVISIONING", "ACTIVATING") and seen.started_at is None and last != "STOPPED":
            seen.started_at = now
        task_id = arn.rsplit("/", 1)[-1]
        cluster_name = cluster.rsplit("/", 1)[-1]
        container_status = last if last in ("PENDING", "RUNNING", "STOPPED") else ("RUNNING" if last != "STOPPED" else "STOPPED")
        containers = []
        for c in t.get("containers", []):
            cid = str(c.get("containerArn", "")).rsplit("/", 1)[-1] or str(uuid.uuid4())
            containers.append(_drop_none({
                "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{cluster_name}/{task_id}/{cid}",
                "lastStatus": container_status,
                "name": c.get("name"),
                "image": c.get("image"),
                "taskArn": arn,
                "networkBindings": [],
                "networkInterfaces": [],
                "cpu": c.get("cpu"),
                "memory": c.get("memory"),
                "exitCode": (143 if stop_code == "UserInitiated" else 1) if last == "STOPPED" else None,
            }))
        overrides = t.get("overrides") or {}
        if not overrides.get("containerOverrides"):
            overrides = {"containerOverrides": [{"name": c.get("name")} for c in t.get("containers", [])]}
        stopped_iso = iso_ms(seen.stopped_at) if seen.stopped_at else None
        return _drop_none({
            "attachments": t.get("attachments") or [],
            "availabilityZone": az,
            "clusterArn": cluster,
            "containerInstanceArn": t.get("containerInstanceArn"),
            "containers": containers,
            "createdAt": iso_ms(seen.first_seen),
            "desiredStatus": desired,
            "group": t.get("group") or None,
            "lastStatus": last,
            "launchType": t.get("launchType") or "EC2",
            "overrides": overrides,
            "startedAt": iso_ms(seen.started_at) if seen.started_at else None,
            "startedBy": t.get("startedBy") or None,
            "stopCode": stop_code,
            "stoppedReason": stopped_reason,
            "stoppingAt": stopped_iso,
            "executionStoppedAt": stopped_iso,
            "stoppedAt": stopped_iso,
            "taskArn": arn,
            "taskDefinitionArn": t.get("taskDefinitionArn"),
        })

    # ---------------------------------------------------------------- EventBridge routing + delivery
    def _route(self, events: list[dict[str, Any]]) -> list[str]:
        if self.shuffle:
            events = list(events)
            random.shuffle(events)
        targets: list[str] = []
        for ev in events:
            fns = [r.function for r in self.rules if patterns.matches(r.pattern, ev)]
            if not fns:
                if self.verbose or self.dry_run:
                    self._log(f"{'(no rule)':16} {summarize('', ev)}")
                if self.print_events:
                    self._log(json.dumps(ev, indent=2))
                continue
            for fn in dict.fromkeys(fns):
                targets.append(fn)
                for _ in range(2 if self.duplicate else 1):
                    self._enqueue(fn, ev)
        return targets

    def _enqueue(self, fn: str, event: Any, delay: float | None = None) -> None:
        if delay is None:
            delay = random.uniform(0, self.max_delay) if self.max_delay > 0 else 0.0
        with self._lock:
            self._in_flight += 1
        self._queue.put((fn, event, time.time() + delay))

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, event, not_before = item
            try:
                wait = not_before - time.time()
                if wait > 0 and self._stop.wait(wait):
                    continue
                if self._stop.is_set():
                    continue
                self._deliver_async(fn, event)
            except Exception as e:  # noqa: BLE001
                self._error(f"delivery to {fn} crashed: {e!r}")
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._lock.notify_all()

    def _deliver_async(self, fn: str, event: Any) -> None:
        """Lambda asynchronous invocation: a function error is retried twice (after 1 and 2 min in
        AWS; after async_retry_delay * 1, * 2 here)."""
        for attempt in range(self.async_retries + 1):
            if self._stop.is_set():
                return
            status, failed = self._invoke(fn, event, attempt)
            if not failed:
                return
            if attempt < self.async_retries:
                self._stop.wait(self.async_retry_delay * (attempt + 1))
        self._count(fn, "dropped")
        self._log(f"{fn:16} gave up after {self.async_retries + 1} attempts: {summarize(fn, event)}")

    def _invoke(self, fn: str, event: Any, attempt: int = 0) -> tuple[int, bool]:
        label = f"{fn:16} {summarize(fn, event)}" + (f"  (retry {attempt})" if attempt else "")
        if self.dry_run:
            self._log(f"{label}  [dry run]")
            if self.print_events:
                self._log(json.dumps(event, indent=2))
            self._record(fn, event, 0, False, attempt)
            return 0, False
        t0 = time.time()
        try:
            status, failed, payload = stackmod.invoke_function(self.watch_url, fn, event, self.invoke_timeout)
        except OSError as e:
            status, failed, payload = 0, True, f"{type(e).__name__}: {e}"
        ms = (time.time() - t0) * 1000
        why = ""
        if failed:
            if isinstance(payload, dict):
                why = f" {payload.get('errorType', '')}: {str(payload.get('errorMessage', payload))[:160]}"
            else:
                why = f" {str(payload)[:160]}"
        self._log(f"{label}  -> {status or 'no answer'}{' ERROR' + why if failed else ''} ({ms:.0f} ms)")
        self._record(fn, event, status, failed, attempt)
        return status, failed

    def _record(self, fn: str, event: Any, status: int, failed: bool, attempt: int) -> None:
        with self._lock:
            self.deliveries.append(Delivery(time.time(), fn, event, status, failed, attempt))
        self._count(fn, "error" if failed else "ok")

    def _count(self, fn: str, what: str) -> None:
        with self._lock:
            s = self.stats.setdefault(fn, {"ok": 0, "error": 0, "dropped": 0})
            s[what] += 1

    # ---------------------------------------------------------------- DynamoDB stream
    def _stream_loop(self) -> None:
        ddb = stackmod.boto_client("dynamodb", self.moto_url)
        streams = stackmod.boto_client("dynamodbstreams", self.moto_url)
        stream_arn: str | None = None
        iterators: dict[str, str | None] = {}
        last_seq: dict[str, str] = {}
        next_check = 0.0
        first_attach = True
        while not self._stop.is_set():
            try:
                if time.time() >= next_check:
                    next_check = time.time() + 2.0
                    try:
                        latest = ddb.describe_table(TableName=self.table_name)["Table"].get("LatestStreamArn")
                    except ddb.exceptions.ResourceNotFoundException:
                        latest = None
                    if latest != stream_arn:
                        if stream_arn:
                            self._log(f"eventbus: table {self.table_name} changed stream; following {short_id(latest, 26) if latest else 'nothing'}")
                        stream_arn, iterators, last_seq = latest, {}, {}
                    if stream_arn:
                        start = (self.stream_start or self.stream_sources[0].starting_position) if first_attach else "TRIM_HORIZON"
                        shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"].get("Shards", [])
                        for sh in shards:
                            if sh["ShardId"] not in iterators:
                                iterators[sh["ShardId"]] = streams.get_shard_iterator(
                                    StreamArn=stream_arn, ShardId=sh["ShardId"],
                                    ShardIteratorType=start if start in ("TRIM_HORIZON", "LATEST") else "TRIM_HORIZON",
                                )["ShardIterator"]
                        first_attach = False
                records: list[dict[str, Any]] = []
                for shard, it in list(iterators.items()):
                    if not it:
                        continue
                    # moto quirk: a cancelled TransactWriteItems restores a deep copy of its tables,
                    # so an open iterator keeps reading a stale copy of the shard and sees nothing
                    # new. Re-acquire the iterator each poll, after the last record we delivered.
                    if shard in last_seq and stream_arn:
                        it = streams.get_shard_iterator(
                            StreamArn=stream_arn, ShardId=shard,
                            ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last_seq[shard],
                        )["ShardIterator"]
                    r = streams.get_records(ShardIterator=it, Limit=1000)
                    iterators[shard] = r.get("NextShardIterator")
                    got = r.get("Records", [])
                    if got:
                        last_seq[shard] = got[-1]["dynamodb"]["SequenceNumber"]
                    records.extend(lambda_stream_record(x, stream_arn or "") for x in got)
                if records:
                    with self._lock:
                        self._stream_backlog += 1
                    try:
                        for src in self.stream_sources:
                            passed = [x for x in records if patterns.matches_any(src.filters, x)]
                            if self.verbose and len(passed) < len(records):
                                self._log(f"{src.function:16} filtered out {len(records) - len(passed)} of {len(records)} stream records")
                            for batch in _chunks(passed, max(1, src.batch_size)):
                                limit = src.max_retries if src.max_retries >= 0 else 1000
                                self._deliver_stream(src, batch, limit)
                    finally:
                        with self._lock:
                            self._stream_backlog -= 1
                            self._lock.notify_all()
            except Exception as e:  # noqa: BLE001 - table re-created, moto reset, ...
                self._error(f"stream poll failed (re-reading the stream): {type(e).__name__}: {_first_line(e)}")
                stream_arn, iterators, next_check = None, {}, 0.0
                last_seq = {}
                self._stop.wait(1.0)
            self._stop.wait(self.stream_poll)

    def _deliver_stream(self, src: cfn.StreamSource, batch: list[dict[str, Any]], retries_left: int) -> int:
        """Deliver one batch in order; on a function error retry it (bisecting if configured) until
        the retries are used up, then drop it. Returns the retries left."""
        attempt = 0
        while not self._stop.is_set():
            _, failed = self._invoke(src.function, {"Records": batch}, attempt)
            if not failed:
                return retries_left
            if retries_left <= 0:
                self._count(src.function, "dropped")
                self._log(f"{src.function:16} DROPPED {len(batch)} stream records after {attempt + 1} attempts "
                          f"(MaximumRetryAttempts {src.max_retries})")
                return 0
            retries_left -= 1
            attempt += 1
            self._stop.wait(min(5.0, self.stream_retry_delay * attempt))
            if src.bisect and len(batch) > 1:
                mid = len(batch) // 2
                left = self._deliver_stream(src, batch[:mid], retries_left)
                self._deliver_stream(src, batch[mid:], retries_left)
                return left
        return retries_left

    # ---------------------------------------------------------------- SQS event sources
    def _sqs_loop(self, src: "cfn.SqsSource") -> None:
        """Lambda's SQS poller: a batch of visible messages to the function; deleted when it
        succeeds, visible again a few seconds later when it fails (moto honours DelaySeconds)."""
        sqs = stackmod.boto_client("sqs", self.moto_url)
        url = self.queue_urls[src.queue]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"
        while not self._stop.wait(self.poll_interval):
            try:
                msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(src.batch_size, 10),
                                           VisibilityTimeout=5, AttributeNames=["All"]).get("Messages", [])
                if not msgs:
                    continue
                event = {"Records": [{
                    "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "attributes": m.get("Attributes", {}), "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
                    "eventSourceARN": arn, "awsRegion": REGION,
                } for m in msgs]}
                _, failed = self._invoke(src.function, event)
                if not failed and not self.dry_run:
                    sqs.delete_message_batch(QueueUrl=url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            except Exception as e:  # noqa: BLE001
                self._error(f"sqs {src.queue}: {e!r}")

    # ---------------------------------------------------------------- schedule
    def _schedule_loop(self) -> None:
        fn, rule = self.scheduled
        while not self._stop.wait(self.reconcile_every or 60):
            ev = eventbridge_event("Scheduled Event", "aws.events",
                                   [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/local-{rule}"], {})
            self._enqueue(fn, ev, delay=0.0)

    # ---------------------------------------------------------------- logging
    def _error(self, msg: str) -> None:
        with self._lock:
            if self.errors and self.errors[-1] == msg:
                return
            self.errors.append(msg)
        self._log(f"eventbus: {msg}")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


_print_lock = threading.Lock()


def _default_log(msg: str) -> None:
    with _print_lock:
        print(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]}  {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    state = stackmod.read_state(required=False)
    ap = argparse.ArgumentParser(description="Local EventBridge + DynamoDB-stream event source for moto and cargo lambda watch.")
    ap.add_argument("--moto", default=state.get("moto"), help="moto URL (default: from .local/stack.json)")
    ap.add_argument("--watch", default=state.get("watch"), help="cargo lambda watch URL (default: from .local/stack.json)")
    ap.add_argument("--table", default=state.get("table"), help="table name (default: from .local/stack.json)")
    ap.add_argument("--template", default=state.get("template"), help="template (default infra/template.yaml)")
    ap.add_argument("--dry-run", action="store_true", help="print the events instead of delivering them")
    ap.add_argument("--print-events", action="store_true", help="print every event as JSON")
    ap.add_argument("--duplicate", action="store_true", help="deliver every EventBridge event twice")
    ap.add_argument("--shuffle", action="store_true", help="shuffle the events of one poll")
    ap.add_argument("--max-delay", type=float, default=0.0, help="delay each delivery by random 0..S seconds")
    ap.add_argument("--reconcile-every", type=float, default=0.0, help="invoke the reconciler every S seconds (0: never)")
    ap.add_argument("--poll", type=float, default=0.4, help="ECS poll interval (s)")
    ap.add_argument("--pending", type=float, default=1.0, help="report new tasks PENDING for S seconds (0: never)")
    ap.add_argument("--stream-start", choices=("TRIM_HORIZON", "LATEST"), default=None,
                    help="where to start reading the stream (default: the template's StartingPosition)")
    ap.add_argument("--no-initial", action="store_true", help="do not emit events for what exists at start")
    ap.add_argument("--no-pin", action="store_true", help="leave moto's task progression alone")
    ap.add_argument("-v", "--verbose", action="store_true", help="also log events no rule matches and filtered records")
    a = ap.parse_args(argv)
    if not a.moto:
        ap.error("--moto is required (no .local/stack.json)")
    if not a.watch and not a.dry_run:
        ap.error("--watch is required unless --dry-run")
    stackmod.install_signal_handlers()
    bus = EventBus(a.moto, None if a.dry_run else a.watch, a.table, a.template, poll_interval=a.poll,
                   pending_seconds=a.pending, duplicate=a.duplicate, shuffle=a.shuffle, max_delay=a.max_delay,
                   reconcile_every=a.reconcile_every or None, stream_start=a.stream_start, dry_run=a.dry_run,
                   pin_tasks=not a.no_pin, emit_initial=not a.no_initial, verbose=a.verbose,
                   print_events=a.print_events)
    bus.start()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        bus.stop()
        print(f"eventbus: deliveries {json.dumps(bus.stats)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
