"""Stand-in functions for testing the local plumbing without compiling Rust: a minimal Lambda
runtime client in Python, serving function names against `cargo lambda watch --only-lambda-apis`
(its runtime API is {watch}/.rt/<function>/2018-06-01/runtime/invocation/next; `next` answers
204 while nothing is queued, so this polls).

    stub = StubRuntime(watch_url, {"deployer": handler, ...}).start()
    ...
    stub.stop(); stub.received["deployer"]  # every event, in arrival order

A handler gets the event and returns the response payload, or raises to report a function error.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

import stack as stackmod

Handler = Callable[[Any], Any]


class StubRuntime:
    def __init__(self, watch_url: str, handlers: dict[str, Handler], poll: float = 0.02):
        self.rt = f"{watch_url}/.rt"
        self.handlers = handlers
        self.poll = poll
        self.received: dict[str, list[Any]] = {fn: [] for fn in handlers}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> "StubRuntime":
        for fn in self.handlers:
            t = threading.Thread(target=self._serve, args=(fn,), name=f"stub-{fn}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)

    def _serve(self, fn: str) -> None:
        while not self._stop.is_set():
            try:
                status, headers, raw = stackmod.http("GET", f"{self.rt}/{fn}/2018-06-01/runtime/invocation/next", timeout=5)
            except OSError:
                self._stop.wait(0.2)
                continue
            if status != 200:
                self._stop.wait(self.poll)
                continue
            rid = headers["lambda-runtime-aws-request-id"]
            event = json.loads(raw) if raw else None
            with self._lock:
                self.received[fn].append(event)
            try:
                payload = self.handlers[fn](event)
                stackmod.http("POST", f"{self.rt}/{fn}/2018-06-01/runtime/invocation/{rid}/response",
                              json.dumps(payload).encode(), timeout=5)
            except Exception as e:  # noqa: BLE001 - reported as the function's error
                body = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode()
                stackmod.http("POST", f"{self.rt}/{fn}/2018-06-01/runtime/invocation/{rid}/error", body,
                              {"lambda-runtime-function-error-type": type(e).__name__}, timeout=5)


def http_echo(event: Any) -> dict[str, Any]:
    """An API Gateway v2 handler answering with what it saw of the request."""
    ctx = event.get("requestContext", {}).get("http", {})
    body = {"rawPath": event.get("rawPath"), "method": ctx.get("method"), "path": ctx.get("path"),
            "rawQueryString": event.get("rawQueryString"), "body": event.get("body"),
            "routeKey": event.get("routeKey"), "pathParameters": event.get("pathParameters"),
            "queryStringParameters": event.get("queryStringParameters")}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body),
            "isBase64Encoded": False, "multiValueHeaders": {}, "cookies": []}


def wait_for(cond: Callable[[], bool], timeout: float = 20.0, every: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(every)
    return cond()
