#!/usr/bin/env python3
"""A local stand-in for the template's API Gateway HTTP API: one base URL at which `/v1/...` is
routed as API Gateway would route it, forwarded to the functions under `cargo lambda watch`.

    gw = Gateway(watch_url).start()       # routes read from infra/template.yaml (cfn.py)
    urllib.request.urlopen(f"{gw.url}/v1/ping")
    gw.stop()

    python scripts/local/gateway.py [--watch URL] [--port N]   # attach to a running watch
                                                               # (default: .local/stack.json)

What API Gateway does, and this does too:
  - Routes are `METHOD /path` from the template's `HttpApi` events. A request matches the route
    with its exact method before one with `ANY`; literal segments before `{var}`, `{var}` before a
    greedy `{proxy+}`; then the `$default` route if there is one. `{var}` matches one non-empty
    segment; a trailing slash is a different path. Nothing matches: 404 `{"message":"Not Found"}`
    (also for a known path with another method: HTTP APIs answer no 405).
  - The function gets a payload format 2.0 event with `routeKey` (`GET /v1/environments/{name}`),
    `pathParameters` (URL-decoded), `rawPath`, `rawQueryString`, `queryStringParameters` (decoded,
    repeated keys joined with commas), lower-case `headers` (repeats joined with commas),
    `cookies`, `requestContext` (stage `$default`, http.method/path/sourceIp/userAgent, requestId,
    time, timeEpoch, authorizer.iam for a SigV4-signed request), the body as text for textual
    content types and base64 (`isBase64Encoded`) otherwise.
  - The answer: a `{statusCode, headers, cookies, body, isBase64Encoded}` result as it says; any
    other JSON result is a 200 with that JSON as body. A function error or an unreadable result is
    500 `{"message":"Internal Server Error"}`; no answer in time is 503 `{"message":"Service
    Unavailable"}`; a body over 10 MiB is 413.

Why not watch's own `/lambda-url/<fn>/<path>`: cargo-lambda 1.9.2 builds that event itself with
`routeKey` `$default` and empty `pathParameters`, and the caller must name the function. This
gateway builds the event and sends it through watch's Invoke API
(`POST /2015-03-31/functions/<fn>/invocations`), so routeKey and pathParameters are AWS's.

What it does not do: check SigV4 signatures (IAM auth). With `require_sigv4` a request without an
`Authorization: AWS4-HMAC-SHA256 ...` header gets API Gateway's 403 `{"message":"Forbidden"}`;
the signature itself is not verified. There is no 30 s integration timeout by default (a
function's first call compiles it, minutes on a cold build); pass `integration_timeout=30` for it.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
ACCOUNT = "123456789012"
API_ID = "local"

# What local clients send when the gateway requires a signature (require_sigv4); never verified.
LOCAL_SIGV4 = ("AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20260101/us-east-1/execute-api/aws4_request, "
               "SignedHeaders=host;x-amz-date, Signature=0")

NOT_FOUND = (404, {"message": "Not Found"})
FORBIDDEN = (403, {"message": "Forbidden"})
TOO_LARGE = (413, {"message": "Request Entity Too Large"})
INTERNAL = (500, {"message": "Internal Server Error"})
UNAVAILABLE = (503, {"message": "Service Unavailable"})

# Bodies of these content types reach the function as text; any other as base64.
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)\b|application/[^;]*\+(json|xml)\b)")


# --------------------------------------------------------------------------------------------
# route matching
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    route: cfn.HttpRoute
    path_parameters: dict[str, str] = field(default_factory=dict)


class Router:
    """API Gateway HTTP API route selection over the template's routes."""

    def __init__(self, routes: list[cfn.HttpRoute]):
        self.routes = routes
        self._default = next((r for r in routes if r.path == "$default"), None)
        self._compiled = [(r, self._segments(r.path)) for r in routes if r.path != "$default"]

    @classmethod
    def from_template(cls, template: str | Path | dict[str, Any] | None = None) -> "Router":
        t = template if isinstance(template, dict) else cfn.load_template(template)
        return cls(cfn.http_api_routes(t))

    @staticmethod
    def _segments(path: str) -> list[tuple[str, str]]:
        """`/v1/environments/{name}` -> [("lit", "v1"), ("lit", "environments"), ("var", "name")]."""
        out = []
        for seg in path.split("/")[1:]:
            m = re.fullmatch(r"\{([A-Za-z0-9._-]+)(\+?)\}", seg)
            if m:
                out.append(("greedy" if m.group(2) else "var", m.group(1)))
            else:
                out.append(("lit", seg))
        return out

    @staticmethod
    def _bind(pattern: list[tuple[str, str]], raw_segments: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for i, (kind, value) in enumerate(pattern):
            if kind == "greedy":
                rest = raw_segments[i:]
                if not rest or not "".join(rest):
                    return None
                params[value] = urllib.parse.unquote("/".join(rest))
                return params
            if i >= len(raw_segments):
                return None
            seg = urllib.parse.unquote(raw_segments[i])
            if kind == "lit":
                if seg != value:
                    return None
            elif not seg:
                return None
            else:
                params[value] = seg
        return params if len(pattern) == len(raw_segments) else None

    def match(self, method: str, raw_path: str) -> Match | None:
        """The route a request goes to, with its path parameters; None is API Gateway's 404."""
        if not raw_path.startswith("/"):
            return None
        raw_segments = raw_path.split("/")[1:]
        method = method.upper()
        best: tuple[tuple[Any, ...], Match] | None = None
        for route, pattern in self._compiled:
            if route.method not in (method, "ANY"):
                continue
            params = self._bind(pattern, raw_segments)
            if params is None:
                continue
            rank = {"lit": 0, "var": 1, "greedy": 2}
            key = (any(k == "greedy" for k, _ in pattern), tuple(rank[k] for k, _ in pattern), route.method == "ANY")
            if best is None or key < best[0]:
                best = (key, Match(route, params))
        if best:
            return best[1]
        return Match(self._default) if self._default else None


# --------------------------------------------------------------------------------------------
# the event and the answer
# --------------------------------------------------------------------------------------------
def build_event(match: Match, method: str, raw_target: str, headers: list[tuple[str, str]], body: bytes,
                source_ip: str = "127.0.0.1", now: float | None = None) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for this request."""
    now = time.time() if now is None else now
    raw_path, _, raw_query = raw_target.partition("?")
    hdrs: dict[str, str] = {}
    cookies: list[str] = []
    for k, v in headers:
        k = k.lower()
        if k == "cookie":
            cookies += [c.strip() for c in v.split(";") if c.strip()]
            continue
        hdrs[k] = f"{hdrs[k]},{v}" if k in hdrs else v
    query: dict[str, str] = {}
    for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
    ctx: dict[str, Any] = {
        "accountId": ACCOUNT,
        "apiId": API_ID,
        "domainName": hdrs.get("host", "localhost"),
        "domainPrefix": hdrs.get("host", "localhost").split(".")[0].split(":")[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": hdrs.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route.route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    iam = sigv4_identity(hdrs.get("authorization"))
    if iam:
        ctx["authorizer"] = {"iam": iam}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": ctx,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if body:
        text = None
        if _TEXT_TYPES.match(hdrs.get("content-type", "").strip().lower()):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def sigv4_identity(authorization: str | None) -> dict[str, Any] | None:
    """requestContext.authorizer.iam of a SigV4-signed request (signature not verified)."""
    if not authorization or not authorization.startswith("AWS4-HMAC-SHA256 "):
        return None
    m = re.search(r"Credential=([^/,\s]+)/", authorization)
    if not m:
        return None
    return {
        "accessKey": m.group(1),
        "accountId": ACCOUNT,
        "callerId": m.group(1),
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{ACCOUNT}:user/local",
        "userId": m.group(1),
    }


def translate_result(payload: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A function's payload format 2.0 result as (status, headers, body)."""
    if isinstance(payload, dict) and "statusCode" in payload:
        status = int(payload["statusCode"])
        headers = [(k, str(v)) for k, v in (payload.get("headers") or {}).items()]
        for k, vs in (payload.get("multiValueHeaders") or {}).items():
            headers += [(k, str(v)) for v in vs]
        headers += [("set-cookie", c) for c in payload.get("cookies") or []]
        body = payload.get("body")
        if body is None:
            raw = b""
        elif payload.get("isBase64Encoded"):
            raw = base64.b64decode(body)
        else:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return status, headers, raw
    # Any other valid JSON: API Gateway assumes a 200 with it as the JSON body.
    return 200, [("content-type", "application/json")], json.dumps(payload).encode()


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------
class Gateway:
    def __init__(self, watch_url: str, template: str | Path | dict[str, Any] | None = None, port: int = 0,
                 host: str = "127.0.0.1", integration_timeout: float = 900.0, require_sigv4: bool = False,
                 log_path: str | Path | None = None):
        self.watch_url = watch_url.rstrip("/")
        self.router = Router.from_template(template)
        self.integration_timeout = integration_timeout
        self.require_sigv4 = require_sigv4
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        self._lock = threading.Lock()
        self.counts: dict[int, int] = {}
        gw = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # the gateway keeps its own log
                pass

            def _serve(self) -> None:
                gw.handle(self)

            def __getattr__(self, name: str) -> Any:
                # Every method (TRACE, CONNECT, made-up ones) is routed; no route is a 404, not
                # http.server's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server.server_address[0]}:{self.port}"

    def start(self) -> "Gateway":
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        if self._log:
            self._log.close()
            self._log = None

    def requests(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def server_errors(self) -> int:
        with self._lock:
            return sum(n for s, n in self.counts.items() if s >= 500)

    # ---- one request
    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        start = time.time()
        method, target = h.command, h.path
        length = int(h.headers.get("content-length") or 0)
        route = "-"
        if length > MAX_BODY:
            status, headers, body = self._json(*TOO_LARGE)
            h.close_connection = True
        else:
            raw_body = h.rfile.read(length) if length else b""
            match = self.router.match(method, target.split("?", 1)[0])
            if match is None:
                status, headers, body = self._json(*NOT_FOUND)
            elif self.require_sigv4 and sigv4_identity(h.headers.get("authorization")) is None:
                status, headers, body = self._json(*FORBIDDEN)
            else:
                route = f"{match.route.route_key} -> {match.route.function}"
                event = build_event(match, method, target, list(h.headers.items()), raw_body, h.client_address[0])
                status, headers, body = self._invoke(match.route.function, event)
                headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        # Counted before the answer goes out: a client that has its answer sees it counted.
        with self._lock:
            self.counts[status] = self.counts.get(status, 0) + 1
        h.send_response(status)
        sent = set()
        for k, v in headers:
            if k.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            h.send_header(k, v)
            sent.add(k.lower())
        if "content-type" not in sent and body:
            h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(body)
        with self._lock:
            if self._log:
                self._log.write(f"{time.strftime('%T')} {method} {target[:300]} [{route}] {status} "
                                f"{(time.time() - start) * 1000:.0f}ms\n")
                self._log.flush()

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        return status, [("content-type", "application/json")], json.dumps(body).encode()

    def _invoke(self, fn: str, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        url = f"{self.watch_url}/2015-03-31/functions/{fn}/invocations"
        req = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.integration_timeout) as r:
                status, fn_error, raw = r.status, "x-amz-function-error" in {k.lower() for k in r.headers}, r.read()
        except urllib.error.HTTPError as e:
            # watch answers a function error with HTTP 500 and {"errorType", "errorMessage"}.
            status, fn_error, raw = e.code, True, e.read()
        except (TimeoutError, OSError):
            return self._json(*UNAVAILABLE)
        if status != 200 or fn_error:
            return self._json(*INTERNAL)
        try:
            payload = json.loads(raw) if raw else None
            if isinstance(payload, dict) and "errorType" in payload and "errorMessage" in payload:
                return self._json(*INTERNAL)
            return translate_result(payload)
        except (ValueError, TypeError, KeyError):
            return self._json(*INTERNAL)


def main(argv: list[str] | None = None) -> int:
    import stack as stackmod

    state = stackmod.read_state(required=False)
    ap = argparse.ArgumentParser(description="Local API Gateway (HTTP API) in front of cargo lambda watch.")
    ap.add_argument("--watch", default=state.get("watch"), help="cargo lambda watch URL (default: from .local/stack.json)")
    ap.add_argument("--template", default=None, help="CloudFormation template (default infra/template.yaml)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--require-sigv4", action="store_true", help="403 for requests that are not SigV4-signed")
    ap.add_argument("--integration-timeout", type=float, default=900.0, help="seconds (API Gateway: 30)")
    a = ap.parse_args(argv)
    if not a.watch:
        ap.error("--watch is required (no running stack in .local/stack.json)")
    gw = Gateway(a.watch, a.template, a.port, require_sigv4=a.require_sigv4,
                 integration_timeout=a.integration_timeout).start()
    print(f"gateway: {gw.url} -> {a.watch} ({len(gw.router.routes)} routes); e.g. curl {gw.url}/v1/ping")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        gw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
