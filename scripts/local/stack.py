#!/usr/bin/env python3
"""The local stack on loopback: moto (DynamoDB + Streams + ECS + EC2 + SQS + CloudWatch) and
`cargo lambda watch` serving the six functions of the workspace.

As a module:

    with Stack() as s:            # moto up, table created from infra/template.yaml, watch up,
                                  # the local API gateway in front of it (s.api_url)
        s.warm()                  # compile + start every function (minutes on a cold build)
        status, body = s.api("POST", "/v1/environments", {...})   # through the gateway
        s.invoke("reconciler", {...})

As a CLI (python scripts/local/stack.py --help):

    up      bring the stack up and keep it until Ctrl-C (--eventbus adds the event bus);
            writes .local/stack.json ({"moto", "watch", "api", ...}) so `api`, `invoke`, `reset`,
            eventbus.py and other clients can attach; `api` is the gateway's base URL:
            GET {api}/v1/ping. Also writes .local/dashboard.json: the template's dashboard body
            with the local names, and prints the console URL it would have once deployed
    api     METHOD PATH [JSON]      one HTTP API call against the running stack
    invoke  FUNCTION EVENT.json     one Invoke API call against the running stack
    reset   POST /moto-api/reset, then re-create the table and re-pin the task lifecycle

How requests reach the functions (checked with cargo-lambda 1.9.2):
  - The API: {api_url}/v1/... is the local API gateway (gateway.py): routes of the template's
    HttpApi events, API Gateway's 404 {"message":"Not Found"} for anything else, and a payload
    format 2.0 event with AWS's routeKey and pathParameters, sent through the Invoke API below.
  - Invoke API: POST {watch}/2015-03-31/functions/<fn>/invocations, body = the event. A function
    error comes back as HTTP 500 with the {"errorType", "errorMessage"} body (no
    X-Amz-Function-Error header, unlike AWS); both forms are treated as function errors here.
  - HTTP straight to a function: {watch}/lambda-url/<fn>/<path>: watch strips `/lambda-url/<fn>`, so
    `/lambda-url/environments-api/v1/ping?x=1` reaches the function as an API Gateway v2 payload
    with rawPath `/v1/ping`, requestContext.http.path `/v1/ping`, rawQueryString `x=1` (but
    routeKey `$default` and no pathParameters whatever the route: hence the gateway).
  - A function is compiled and started on its first invocation (`cargo run --bin <fn>`); until
    then the request waits. `warm()` does that one function at a time, with progress.
  - Environment: --env-file .local/watch.env (TABLE_NAME, AWS_ENDPOINT_URL, ...) reaches every
    function process. AWS_ENDPOINT_URL points every SDK client at moto: DynamoDB, ECS, SQS and
    CloudWatch (the alarm gates' DescribeAlarms; create and fire alarms with the `cloudwatch`
    client: put_metric_alarm, set_alarm_state).
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402
import gateway as gatewaymod  # noqa: E402

REPO = cfn.REPO
VENV_BIN = REPO / ".venv" / "bin"
LOCAL_DIR = REPO / ".local"
LOG_DIR = LOCAL_DIR / "logs"
STATE_FILE = LOCAL_DIR / "stack.json"
DASHBOARD_FILE = LOCAL_DIR / "dashboard.json"

FUNCTIONS = cfn.FUNCTIONS
REGION = "us-east-1"
ACCOUNT = "123456789012"
DEFAULT_TABLE = "daemon-scheduler"

# Task lifecycle in moto 5.2.5 (checked): StartTask creates tasks with lastStatus RUNNING right away
# (moto's PROVISIONING/PENDING/ACTIVATING transitions are commented out), and the default
# progression ("manual", times 1) moves a task one step per DescribeTasks that names it:
# RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED, with desiredStatus still
# RUNNING. Every poll of the event bus (and every DescribeTasks of the functions) would therefore
# kill every task within four calls. We pin the lifecycle instead: a task stays RUNNING until
# StopTask, which sets lastStatus and desiredStatus STOPPED at once. The PENDING -> RUNNING step a
# real task goes through is produced by the event bus (a PENDING event first, RUNNING a moment
# later), see eventbus.py. The set-transition survives /moto-api/reset; we set it again anyway.
PINNED_TASKS = {"progression": "manual", "times": 1_000_000_000}
DEFAULT_TASKS = {"progression": "manual", "times": 1}


class StackError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; HTTP errors are answers too: (status, headers, body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, e.read()


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


_ROUTER: gatewaymod.Router | None = None


def function_for_path(path: str, method: str = "GET") -> str:
    """The function API Gateway routes a request to (infra/template.yaml's HttpApi events);
    environments-api for a request no route matches (it answers its own 404)."""
    global _ROUTER
    if _ROUTER is None:
        _ROUTER = gatewaymod.Router.from_template()
    match = _ROUTER.match(method, path.split("?")[0])
    return match.route.function if match else "environments-api"


def http_api(watch_url: str, method: str, path: str, body: Any = None,
             query: dict[str, Any] | None = None, timeout: float = 900.0,
             api_url: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Call the REST API: through the local gateway at `api_url` when there is one, else
    straight to the function the template routes it to ({watch}/lambda-url/<fn>/...).
    (status, parsed JSON or text)."""
    if api_url:
        url = f"{api_url}{path}"
    else:
        url = f"{watch_url}/lambda-url/{function_for_path(path, method)}{path}"
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    data = None
    headers = {"accept": "application/json", **(headers or {})}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["content-type"] = "application/json"
    status, _, raw = http(method, url, data, headers, timeout)
    return status, _json_or_text(raw)


def invoke_function(watch_url: str, fn: str, event: Any, timeout: float = 900.0) -> tuple[int, bool, Any]:
    """Invoke API call: (HTTP status, function_error, payload)."""
    status, headers, raw = http("POST", f"{watch_url}/2015-03-31/functions/{fn}/invocations",
                                json.dumps(event).encode(), {"content-type": "application/json"}, timeout)
    payload = _json_or_text(raw)
    failed = (status != 200 or "x-amz-function-error" in headers
              or (isinstance(payload, dict) and "errorType" in payload and "errorMessage" in payload))
    return status, failed, payload


# --------------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------------
def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _proc_children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _proc_children(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


class Child:
    """A process we started, in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name, self.argv, self.log_path = name, argv, log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "ab")
        self._log.write(f"\n==== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent)
        _CHILDREN.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 6.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever of its tree is left: the group
        and every descendant (watchexec starts the functions in process groups of their own)."""
        if self in _CHILDREN:
            _CHILDREN.remove(self)
        tree = set(descendants(self.pid)) if self.running() else set()
        groups = {self.pid}
        for p in tree:
            try:
                groups.add(os.getpgid(p))
            except OSError:
                pass
        for g in groups:
            try:
                os.killpg(g, signal.SIGTERM)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.time() + 2
        while time.time() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.1)
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
        for p in tree:
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


_CHILDREN: list[Child] = []


def _stop_all_children() -> None:
    for c in list(reversed(_CHILDREN)):
        try:
            c.stop()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"stack: stopping {c.name}: {e}", file=sys.stderr)


atexit.register(_stop_all_children)


def install_signal_handlers() -> None:
    """SIGTERM / SIGHUP end the program like Ctrl-C does, so `finally` blocks and atexit run."""
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


# --------------------------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------------------------
class Stack:
    def __init__(self, template: str | Path | None = None, table_name: str | None = None,
                 moto_port: int | None = None, watch_port: int | None = None, watch: bool = True,
                 only_lambda_apis: bool = False, reload: bool = True, concurrency: int = 1,
                 rust_log: str = "info", log: Any = print, gateway: bool = True, api_port: int | None = None,
                 require_sigv4: bool = False):
        self.template_path = Path(template) if template else cfn.DEFAULT_TEMPLATE
        self.template = cfn.load_template(self.template_path)
        self.table_name = table_name or cfn.template_table_name(self.template) or DEFAULT_TABLE
        self.moto_port = moto_port or free_port()
        self.watch_port = watch_port or free_port()
        self.with_watch = watch
        self.only_lambda_apis = only_lambda_apis
        self.reload = reload
        self.concurrency = concurrency
        self.rust_log = rust_log
        self.log = log
        self.with_gateway = gateway
        self.api_port = api_port or 0
        self.require_sigv4 = require_sigv4
        self.moto: Child | None = None
        self.watch: Child | None = None
        self.gateway: gatewaymod.Gateway | None = None
        self.stream_arn: str | None = None
        self.queue_urls: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._warm: set[str] = set()

    # ---- urls / clients
    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def watch_url(self) -> str:
        return f"http://127.0.0.1:{self.watch_port}"

    @property
    def api_url(self) -> str | None:
        """Base URL of the local API gateway: `GET {api_url}/v1/ping`."""
        return self.gateway.url if self.gateway else None

    def function_env(self) -> dict[str, str]:
        """What every function sees (besides what cargo lambda watch sets itself)."""
        return {
            "TABLE_NAME": self.table_name,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUST_LOG": self.rust_log,
            # e.g. WAKEUP_QUEUE_URL (the template gives it to task-events; here every function has it)
            **{var: self.queue_urls[q] for var, q in cfn.queue_variables(self.template).items() if q in self.queue_urls},
        }

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto_client(service, self.moto_url)
        return self._clients[service]

    # ---- lifecycle
    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> "Stack":
        try:
            self.start_moto()
            self.create_table()
            self.create_queues()
            self.write_dashboard()
            if self.with_watch:
                self.start_watch()
                if self.with_gateway:
                    self.start_gateway()
            self.write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for child in (self.watch, self.moto):
            if child is not None:
                self.log(f"stack: stopping {child.name} (pid {child.pid})")
                child.stop()
        self.watch = self.moto = None
        try:
            if STATE_FILE.exists() and json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
                STATE_FILE.unlink()
        except (OSError, ValueError):
            pass

    def write_state(self) -> None:
        LOCAL_DIR.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps({
            "pid": os.getpid(), "moto": self.moto_url,
            "watch": self.watch_url if self.watch else None,
            "api": self.api_url,
            "table": self.table_name, "template": str(self.template_path),
        }, indent=2) + "\n")

    # ---- moto
    def start_moto(self, timeout: float = 30.0) -> None:
        exe = VENV_BIN / "python"
        if not (VENV_BIN / "moto_server").exists():
            raise StackError(f"moto is not installed in {VENV_BIN}: run scripts/bootstrap.sh")
        # One request at a time: see scripts/moto_server.py (moto's threaded server loses writes).
        server = Path(__file__).resolve().parent.parent / "moto_server.py"
        self.log(f"stack: starting moto on {self.moto_url} (log {LOG_DIR / 'moto.log'})")
        self.moto = Child("moto", [str(exe), str(server), "-H", "127.0.0.1", "-p", str(self.moto_port)], LOG_DIR / "moto.log")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.moto.running():
                raise StackError(f"moto exited with {self.moto.proc.returncode}; see {self.moto.log_path}")
            try:
                http("GET", f"{self.moto_url}/moto-api/", timeout=1)
                self.set_task_progression("pinned")
                return
            except OSError:
                time.sleep(0.2)
        raise StackError(f"moto did not answer on {self.moto_url} within {timeout:.0f}s")

    def set_task_progression(self, mode: str) -> None:
        """'pinned' (tasks stay RUNNING until StopTask) or 'default' (moto's one step per DescribeTasks)."""
        transition = PINNED_TASKS if mode == "pinned" else DEFAULT_TASKS
        status, _, raw = http("POST", f"{self.moto_url}/moto-api/state-manager/set-transition",
                              json.dumps({"model_name": "ecs::task", "transition": transition}).encode())
        if status >= 300:
            raise StackError(f"set-transition failed: {status} {raw[:200]!r}")

    def reset(self) -> None:
        """Clear every moto backend, then re-create the table and re-pin the task lifecycle."""
        http("POST", f"{self.moto_url}/moto-api/reset")
        self.set_task_progression("pinned")
        self.create_table()
        self.create_queues()

    def create_table(self) -> None:
        ddb = self.client("dynamodb")
        kwargs = cfn.create_table_kwargs(self.template, self.table_name)
        try:
            ddb.delete_table(TableName=self.table_name)
        except ddb.exceptions.ResourceNotFoundException:
            pass
        desc = ddb.create_table(**kwargs)["TableDescription"]
        ttl = cfn.ttl_specification(self.template)
        if ttl:
            ddb.update_time_to_live(TableName=self.table_name, TimeToLiveSpecification=ttl)
        self.stream_arn = desc.get("LatestStreamArn")
        gsis = ", ".join(g["IndexName"] for g in kwargs.get("GlobalSecondaryIndexes", []))
        self.log(f"stack: table {self.table_name} created from {_rel(self.template_path)} "
                 f"(GSIs {gsis or '-'}; stream {kwargs.get('StreamSpecification', {}).get('StreamViewType', 'off')}; "
                 f"TTL {ttl['AttributeName'] if ttl else 'off'})")

    def create_queues(self) -> None:
        """The template's SQS queues, in moto; their URLs go to the functions' variables."""
        sqs = self.client("sqs")
        self.queue_urls = {}
        redrives: dict[str, tuple[str, int]] = {}
        for lid in cfn.queues(self.template):
            props = cfn.queue_properties(self.template, lid)
            name = f"{self.table_name}-{lid}"
            attrs: dict[str, str] = {}
            if props.get("FifoQueue"):
                # FIFO as in the template (one message in flight per group, deduplication).
                name += ".fifo"
                attrs["FifoQueue"] = "true"
                if props.get("ContentBasedDeduplication"):
                    attrs["ContentBasedDeduplication"] = "true"
            self.queue_urls[lid] = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            redrive = props.get("RedrivePolicy") or {}
            dlq = cfn._ref_target(redrive.get("deadLetterTargetArn"))
            if dlq:
                redrives[lid] = (dlq, int(redrive.get("maxReceiveCount", 1)))
        # Dead-letter queues as in the template, once every queue exists.
        for lid, (dlq, count) in redrives.items():
            arn = sqs.get_queue_attributes(QueueUrl=self.queue_urls[dlq],
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sqs.set_queue_attributes(QueueUrl=self.queue_urls[lid], Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count})})
        if self.queue_urls:
            self.log(f"stack: queues {', '.join(self.queue_urls)} created from {_rel(self.template_path)}")

    # ---- the dashboard
    def write_dashboard(self) -> str:
        """The template's dashboard body as this stack would deploy it (functions, queues and
        region as here; alarm ARNs and the API id made up), written to .local/dashboard.json;
        returns the console URL it would have (the template's DashboardUrl output)."""
        queue_names = {lid: url.rstrip("/").rsplit("/", 1)[-1] for lid, url in self.queue_urls.items()}
        values = dashboard_values(self.template, self.table_name, queue_names)
        name, body = cfn.dashboard(self.template, values)
        url = cfn.dashboard_url(self.template, values)
        LOCAL_DIR.mkdir(parents=True, exist_ok=True)
        DASHBOARD_FILE.write_text(json.dumps(body, indent=2) + "\n")
        self.log(f"stack: dashboard {name} ({len(body['widgets'])} widgets) written to {_rel(DASHBOARD_FILE)}; "
                 f"deployed, it would be {url}")
        return url

    # ---- cargo lambda watch
    def start_watch(self, timeout: float = 60.0) -> None:
        exe = VENV_BIN / "cargo-lambda"
        if not exe.exists():
            raise StackError(f"{exe} not found: run scripts/bootstrap.sh")
        LOCAL_DIR.mkdir(parents=True, exist_ok=True)
        env_file = LOCAL_DIR / "watch.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in self.function_env().items()))
        argv = [str(exe), "lambda", "watch", "-A", "127.0.0.1", "-P", str(self.watch_port),
                "--env-file", str(env_file)]
        if self.only_lambda_apis:
            argv.append("--only-lambda-apis")
        if not self.reload:
            argv.append("--ignore-changes")
        if self.concurrency != 1:
            argv += ["--concurrency", str(self.concurrency)]
        env = dict(os.environ)
        env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"  # cargo-lambda finds zig (and itself) there
        env.setdefault("CARGO_TERM_COLOR", "never")
        self.log(f"stack: starting cargo lambda watch on {self.watch_url} (log {LOG_DIR / 'watch.log'})")
        self.watch = Child("cargo-lambda watch", argv, LOG_DIR / "watch.log", env=env, cwd=REPO)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.watch.running():
                raise StackError(f"cargo lambda watch exited with {self.watch.proc.returncode}; "
                                 f"see {self.watch.log_path}:\n{self.watch_log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.watch_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise StackError(f"cargo lambda watch did not listen on {self.watch_url} within {timeout:.0f}s")

    def start_gateway(self) -> None:
        """The template's HTTP API routes in front of watch (gateway.py)."""
        self.gateway = gatewaymod.Gateway(self.watch_url, self.template, port=self.api_port,
                                          require_sigv4=self.require_sigv4, log_path=LOG_DIR / "gateway.log").start()
        self.log(f"stack: API gateway on {self.gateway.url} ({len(self.gateway.router.routes)} routes of "
                 f"{_rel(self.template_path)}; log {LOG_DIR / 'gateway.log'})")

    def watch_log_tail(self, lines: int = 40, since: int = 0) -> str:
        try:
            with open(LOG_DIR / "watch.log", "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _watch_log_size(self) -> int:
        try:
            return (LOG_DIR / "watch.log").stat().st_size
        except OSError:
            return 0

    def warm(self, functions: tuple[str, ...] | list[str] = FUNCTIONS, timeout: float = 1800.0,
             progress_every: float = 15.0) -> None:
        """Compile and start each function (its first invocation does that), one at a time.

        The first one builds the whole dependency tree: minutes on a cold target/ with 2 cores.
        Raises StackError at once when the build fails (watch keeps waiting for a fix otherwise)."""
        if self.watch is None:
            raise StackError("watch is not running")
        for fn in functions:
            if fn in self._warm:
                continue
            since = self._watch_log_size()
            result: dict[str, Any] = {}

            def call(fn: str = fn) -> None:
                try:
                    result["answer"] = self._warm_call(fn, timeout)
                except Exception as e:  # noqa: BLE001 - reported below
                    result["error"] = e

            t = threading.Thread(target=call, daemon=True)
            start = time.time()
            t.start()
            self.log(f"stack: starting {fn} (compiles on first use) ...")
            next_note = start + progress_every
            while t.is_alive():
                t.join(0.5)
                new = self.watch_log_tail(400, since)
                if "error: could not compile" in new or "error[E" in new:
                    raise StackError(f"{fn} does not compile; watch log ({LOG_DIR / 'watch.log'}):\n"
                                     + self.watch_log_tail(60, since))
                restarts = sum(1 for ln in new.splitlines() if ln.strip().startswith("Running `") and ln.strip().rstrip("`").endswith(f"/{fn}"))
                if restarts >= 3:
                    raise StackError(f"{fn} keeps exiting without serving (watch restarted it {restarts} times): "
                                     f"is its main() the Lambda runtime yet? Log tail:\n" + self.watch_log_tail(20, since))
                if "panicked at" in new:
                    raise StackError(f"{fn} panicked; watch log ({LOG_DIR / 'watch.log'}):\n"
                                     + self.watch_log_tail(40, since))
                if not self.watch.running():
                    raise StackError(f"cargo lambda watch died; log tail:\n{self.watch_log_tail(40)}")
                if time.time() > start + timeout:
                    raise StackError(f"{fn} did not answer within {timeout:.0f}s; log tail:\n{self.watch_log_tail(40)}")
                if time.time() >= next_note:
                    last = [ln.strip() for ln in new.splitlines() if ln.strip().startswith(("Compiling", "Building", "Finished", "Running"))]
                    self.log(f"stack:   ... {fn}: {time.time() - start:.0f}s" + (f" ({last[-1][:90]})" if last else ""))
                    next_note += progress_every
            if "error" in result:
                raise StackError(f"warming {fn} failed: {result['error']}")
            self._warm.add(fn)
            self.log(f"stack: {fn} is up ({time.time() - start:.1f}s; warm-up answer: {result['answer']})")

    def _warm_call(self, fn: str, timeout: float) -> str:
        # Payloads chosen to have no effect: a ping, a read of a missing environment, an empty
        # stream batch, and for the event functions a payload they cannot deserialize (any answer,
        # even an error, proves the function is compiled and running).
        if fn == "environments-api":
            status, _ = self.api("GET", "/v1/ping", timeout=timeout)
            return f"GET /v1/ping -> {status}"
        if fn == "deployments-api":
            status, _ = self.api("GET", "/v1/environments/zz-warm-up/deployments", timeout=timeout)
            return f"GET /v1/environments/zz-warm-up/deployments -> {status}"
        event: Any = {"Records": []} if fn == "deployer" else "warm-up"
        status, failed, _ = invoke_function(self.watch_url, fn, event, timeout)
        return f"invoke -> {status}{' (function error, as expected for the warm-up payload)' if failed and event == 'warm-up' else ''}"

    # ---- calling functions
    def api(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
            timeout: float = 900.0) -> tuple[int, Any]:
        auth = {"authorization": gatewaymod.LOCAL_SIGV4} if self.require_sigv4 else None
        return http_api(self.watch_url, method, path, body, query, timeout, api_url=self.api_url, headers=auth)

    def invoke(self, fn: str, event: Any, timeout: float = 900.0) -> tuple[int, bool, Any]:
        return invoke_function(self.watch_url, fn, event, timeout)


def boto_client(service: str, moto_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=moto_url, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60))


def dashboard_values(template: dict[str, Any], table_name: str,
                     queue_names: dict[str, str] | None = None) -> dict[str, str]:
    """What the template's ${...} resolve to for the local stack (cfn.sub): the stack is named as
    its table, functions by their workspace names (as cargo lambda watch serves them), queues by
    `queue_names` (logical id -> name; default <table>-<logical id>); alarm ARNs and the HTTP
    API's id are made up (moto has neither)."""
    values = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
              "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": table_name}
    for lid, r in (template.get("Resources") or {}).items():
        rtype = r.get("Type")
        if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            values[lid] = cfn.function_of_resource(lid, r) or lid
        elif rtype == "AWS::SQS::Queue":
            values[f"{lid}.QueueName"] = (queue_names or {}).get(lid, f"{table_name}-{lid}")
        elif rtype == "AWS::CloudWatch::Alarm":
            values[f"{lid}.Arn"] = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{table_name}-{lid}"
        elif rtype in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            values[lid] = "local"
    return values


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def read_state(required: bool = True) -> dict[str, Any]:
    """The running stack's URLs from .local/stack.json ({} / exit when there is none)."""
    try:
        st = json.loads(STATE_FILE.read_text())
        if _alive(int(st["pid"])):
            return st
    except (OSError, ValueError, KeyError):
        pass
    if required:
        raise SystemExit(f"no running stack ({_rel(STATE_FILE)} missing or stale): start one with `stack.py up`")
    return {}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The local stack: moto + cargo lambda watch on loopback.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="bring the stack up and keep it until Ctrl-C")
    up.add_argument("--template", default=None, help="CloudFormation template (default infra/template.yaml)")
    up.add_argument("--table", default=None, help=f"table name (default: the template's TableName or {DEFAULT_TABLE})")
    up.add_argument("--moto-port", type=int, default=None)
    up.add_argument("--watch-port", type=int, default=None)
    up.add_argument("--api-port", type=int, default=None, help="port of the local API gateway (default: any free one)")
    up.add_argument("--require-sigv4", action="store_true",
                    help="the gateway refuses unsigned requests with 403, as IAM auth does (signatures are not verified)")
    up.add_argument("--no-watch", action="store_true", help="moto and the table only")
    up.add_argument("--only-lambda-apis", action="store_true", help="watch serves the Lambda APIs but starts no function")
    up.add_argument("--no-reload", action="store_true", help="do not rebuild functions when the code changes")
    up.add_argument("--concurrency", type=int, default=1, help="instances per function (default 1)")
    up.add_argument("--warm", action="store_true", help="compile and start every function now")
    up.add_argument("--eventbus", action="store_true", help="run the event bus too (ECS + stream + schedule)")
    up.add_argument("--reconcile-every", type=float, default=60.0, help="with --eventbus: reconciler period, 0 = never")
    api = sub.add_parser("api", help="one REST call: api METHOD PATH [JSON] [-q k=v ...]")
    api.add_argument("method")
    api.add_argument("path")
    api.add_argument("body", nargs="?")
    api.add_argument("-q", "--query", action="append", default=[], help="query parameter k=v")
    inv = sub.add_parser("invoke", help="one Invoke API call: invoke FUNCTION EVENT.json (- for stdin)")
    inv.add_argument("function", choices=FUNCTIONS)
    inv.add_argument("event")
    sub.add_parser("reset", help="reset moto, re-create the table, re-pin the task lifecycle")
    a = ap.parse_args(argv)

    if a.cmd == "api":
        st = read_state()
        query = dict(q.split("=", 1) for q in a.query)
        # The placeholder signature passes a gateway that requires one (up --require-sigv4).
        status, body = http_api(st["watch"], a.method.upper(), a.path, json.loads(a.body) if a.body else None, query or None,
                                api_url=st.get("api"), headers={"authorization": gatewaymod.LOCAL_SIGV4})
        print(status)
        print(json.dumps(body, indent=2) if not isinstance(body, str) else body)
        return 0 if status < 400 else 1
    if a.cmd == "invoke":
        st = read_state()
        event = json.load(sys.stdin if a.event == "-" else open(a.event, encoding="utf-8"))
        status, failed, payload = invoke_function(st["watch"], a.function, event)
        print(status, "function error" if failed else "ok")
        print(json.dumps(payload, indent=2) if not isinstance(payload, str) else payload)
        return 1 if failed else 0
    if a.cmd == "reset":
        st = read_state()
        s = Stack(template=st.get("template"), table_name=st["table"], moto_port=int(st["moto"].rsplit(":", 1)[1]), watch=False)
        s.reset()
        return 0

    install_signal_handlers()
    stack = Stack(template=a.template, table_name=a.table, moto_port=a.moto_port, watch_port=a.watch_port,
                  watch=not a.no_watch, only_lambda_apis=a.only_lambda_apis, reload=not a.no_reload,
                  concurrency=a.concurrency, api_port=a.api_port, require_sigv4=a.require_sigv4)
    bus = None
    try:
        stack.start()
        if a.warm and stack.watch and not a.only_lambda_apis:
            stack.warm()
        if a.eventbus:
            import eventbus

            bus = eventbus.EventBus(stack.moto_url, stack.watch_url if stack.watch else None, stack.table_name,
                                    template=stack.template_path, dry_run=stack.watch is None,
                                    reconcile_every=a.reconcile_every or None, queue_urls=stack.queue_urls)
            bus.start()
        print()
        print("stack is up. For the functions' view, or to run tests against it:")
        for k, v in stack.function_env().items():
            print(f"  export {k}={v}")
        if stack.api_url:
            print(f"  api:    {stack.api_url}   e.g. curl {stack.api_url}/v1/ping   (the template's HttpApi routes)")
        if stack.watch:
            print(f"  watch:  {stack.watch_url}   e.g. curl {stack.watch_url}/lambda-url/environments-api/v1/ping")
            print(f"  invoke: curl -d @events/schedule/reconcile.json {stack.watch_url}/2015-03-31/functions/reconciler/invocations")
        print(f"  dashboard: {_rel(DASHBOARD_FILE)}   (the template's, with these names; "
              f"aws cloudwatch put-dashboard --dashboard-body file://{_rel(DASHBOARD_FILE)} ...)")
        print(f"  state:  {_rel(STATE_FILE)}   logs: {_rel(LOG_DIR)}/   Ctrl-C stops everything")
        while True:
            time.sleep(1)
            for c in (stack.moto, stack.watch):
                if c is not None and not c.running():
                    raise StackError(f"{c.name} exited ({c.proc.returncode}); see {c.log_path}")
    except KeyboardInterrupt:
        print("\nstack: shutting down")
    except StackError as e:
        print(f"stack: {e}", file=sys.stderr)
        return 1
    finally:
        if bus:
            bus.stop()
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
