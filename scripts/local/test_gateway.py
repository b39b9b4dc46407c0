"""Unit tests of the local API gateway (gateway.py): route selection over the template's HttpApi
routes and API Gateway's precedence rules, the payload format 2.0 event, the translation of
results, and forwarding through a stand-in of watch's Invoke API (no moto, no Rust build).

    .venv/bin/python -m unittest discover -s scripts/local -p 'test_*.py'
"""

from __future__ import annotations

import base64
import http.server
import json
import sys
import threading
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402
import gateway  # noqa: E402


def route(method: str, path: str, fn: str = "f") -> cfn.HttpRoute:
    return cfn.HttpRoute(fn, method, path, f"{method}{path}")


class TemplateRoutesTest(unittest.TestCase):
    router = gateway.Router.from_template()

    def match(self, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        m = self.router.match(method, path)
        return (m.route.function, m.route.route_key, m.path_parameters) if m else None

    def test_every_route_of_the_template_goes_to_its_function(self):
        cases = {
            ("GET", "/v1/ping"): ("environments-api", "GET /v1/ping", {}),
            ("POST", "/v1/environments"): ("environments-api", "POST /v1/environments", {}),
            ("GET", "/v1/environments"): ("environments-api", "GET /v1/environments", {}),
            ("GET", "/v1/environments/web"): ("environments-api", "GET /v1/environments/{name}", {"name": "web"}),
            ("PUT", "/v1/environments/web"): ("environments-api", "PUT /v1/environments/{name}", {"name": "web"}),
            ("DELETE", "/v1/environments/web"): ("environments-api", "DELETE /v1/environments/{name}", {"name": "web"}),
            ("GET", "/v1/environments/web/revisions"):
                ("environments-api", "GET /v1/environments/{name}/revisions", {"name": "web"}),
            ("GET", "/v1/environments/web/revisions/2"):
                ("environments-api", "GET /v1/environments/{name}/revisions/{number}", {"name": "web", "number": "2"}),
            ("GET", "/v1/environments/web/status"):
                ("environments-api", "GET /v1/environments/{name}/status", {"name": "web"}),
            ("POST", "/v1/environments/web/deployments"):
                ("deployments-api", "POST /v1/environments/{name}/deployments", {"name": "web"}),
            ("GET", "/v1/environments/web/deployments"):
                ("deployments-api", "GET /v1/environments/{name}/deployments", {"name": "web"}),
            ("GET", "/v1/environments/web/deployments/01J"):
                ("deployments-api", "GET /v1/environments/{name}/deployments/{id}", {"name": "web", "id": "01J"}),
            ("GET", "/v1/environments/web/deployments/01J/hosts"):
                ("deployments-api", "GET /v1/environments/{name}/deployments/{id}/hosts", {"name": "web", "id": "01J"}),
            ("POST", "/v1/environments/web/deployments/01J/cancel"):
                ("deployments-api", "POST /v1/environments/{name}/deployments/{id}/cancel", {"name": "web", "id": "01J"}),
            ("POST", "/v1/environments/web/deployments/01J/promote"):
                ("deployments-api", "POST /v1/environments/{name}/deployments/{id}/promote", {"name": "web", "id": "01J"}),
            ("POST", "/v1/environments/web/deployments/01J/pause"):
                ("deployments-api", "POST /v1/environments/{name}/deployments/{id}/pause", {"name": "web", "id": "01J"}),
            ("POST", "/v1/environments/web/deployments/01J/resume"):
                ("deployments-api", "POST /v1/environments/{name}/deployments/{id}/resume", {"name": "web", "id": "01J"}),
        }
        self.assertEqual(len(cases), len(self.router.routes), "a case per route of the template")
        for (method, path), want in cases.items():
            self.assertEqual(self.match(method, path), want, f"{method} {path}")

    def test_what_api_gateway_would_not_route_is_a_404(self):
        for method, path in [
            ("GET", "/v1/nope"),
            ("PATCH", "/v1/environments/web"),  # known path, other method: no 405 in HTTP APIs
            ("POST", "/v1/ping"),
            ("GET", "/v1/ping/"),  # a trailing slash is another path
            ("GET", "/v1/environments//status"),  # {name} needs a non-empty segment
            ("GET", "/v1/environments/web/deployments/01J/cancel"),
            ("GET", "/v1"),
            ("GET", "/"),
            ("GET", "v1/ping"),
        ]:
            self.assertIsNone(self.router.match(method, path), f"{method} {path}")

    def test_path_parameters_are_url_decoded_and_one_segment_each(self):
        self.assertEqual(self.match("GET", "/v1/environments/a%20b")[2], {"name": "a b"})
        self.assertEqual(self.match("GET", "/v1/environments/a%2Fb/status")[2], {"name": "a/b"})
        self.assertIsNone(self.router.match("GET", "/v1/environments/a/b"))
        # Method names are case-insensitive on the way in.
        self.assertEqual(self.match("get", "/v1/ping")[1], "GET /v1/ping")


class PrecedenceTest(unittest.TestCase):
    """API Gateway's order: exact method before ANY, literal before {var} before {proxy+}, then $default."""

    router = gateway.Router([
        route("GET", "/pets/dog/1", "literal"),
        route("GET", "/pets/dog/{id}", "var"),
        route("GET", "/pets/{proxy+}", "greedy"),
        route("ANY", "/pets/dog/{id}", "any"),
        route("ANY", "/{proxy+}", "root-greedy"),
        route("ANY", "$default", "default"),
    ])

    def fn(self, method: str, path: str) -> str:
        m = self.router.match(method, path)
        return m.route.function if m else "-"

    def test_most_specific_route_wins(self):
        self.assertEqual(self.fn("GET", "/pets/dog/1"), "literal")
        self.assertEqual(self.fn("GET", "/pets/dog/2"), "var")
        self.assertEqual(self.fn("GET", "/pets/cat/1"), "greedy")
        self.assertEqual(self.fn("POST", "/pets/dog/2"), "any")
        self.assertEqual(self.fn("POST", "/pets/cat/1"), "root-greedy")
        self.assertEqual(self.fn("GET", "/"), "default")
        m = self.router.match("GET", "/pets/a/b%20c")
        self.assertEqual(m.path_parameters, {"proxy": "a/b c"})
        self.assertEqual(self.router.match("GET", "/").route.route_key, "$default")

    def test_sam_defaults_read_from_a_template(self):
        t = {"Resources": {"EnvironmentsApiFunction": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
            "Any": {"Type": "HttpApi", "Properties": {"Path": "/x/{p+}"}},
            "Default": {"Type": "HttpApi"},
            "Rule": {"Type": "EventBridgeRule", "Properties": {"Pattern": {}}},
        }}}}}
        routes = cfn.http_api_routes(t)
        self.assertEqual([(r.function, r.route_key) for r in routes],
                         [("environments-api", "ANY /x/{p+}"), ("environments-api", "$default")])


class EventTest(unittest.TestCase):
    m = gateway.Match(route("POST", "/v1/environments/{name}/deployments"), {"name": "web"})

    def test_payload_format_2(self):
        ev = gateway.build_event(self.m, "POST", "/v1/environments/web/deployments?a=1&a=2&b=x%20y&c=",
                                 [("Host", "127.0.0.1:9"), ("Content-Type", "application/json"), ("X-A", "1"),
                                  ("x-a", "2"), ("Cookie", "k=v; j=w"), ("User-Agent", "ua")],
                                 b'{"revision": 2}', now=1_700_000_000.5)
        self.assertEqual(ev["version"], "2.0")
        self.assertEqual(ev["routeKey"], "POST /v1/environments/{name}/deployments")
        self.assertEqual(ev["requestContext"]["routeKey"], ev["routeKey"])
        self.assertEqual(ev["rawPath"], "/v1/environments/web/deployments")
        self.assertEqual(ev["rawQueryString"], "a=1&a=2&b=x%20y&c=")
        self.assertEqual(ev["queryStringParameters"], {"a": "1,2", "b": "x y", "c": ""})
        self.assertEqual(ev["pathParameters"], {"name": "web"})
        self.assertEqual(ev["headers"]["x-a"], "1,2")
        self.assertNotIn("cookie", ev["headers"])
        self.assertEqual(ev["cookies"], ["k=v", "j=w"])
        self.assertEqual((ev["body"], ev["isBase64Encoded"]), ('{"revision": 2}', False))
        ctx = ev["requestContext"]
        self.assertEqual((ctx["stage"], ctx["http"]["method"], ctx["http"]["path"], ctx["http"]["userAgent"]),
                         ("$default", "POST", "/v1/environments/web/deployments", "ua"))
        self.assertEqual(ctx["timeEpoch"], 1_700_000_000_500)
        self.assertNotIn("authorizer", ctx)

    def test_optional_parts_are_left_out_and_binary_bodies_are_base64(self):
        ev = gateway.build_event(gateway.Match(route("GET", "/v1/ping")), "GET", "/v1/ping", [], b"")
        for k in ("queryStringParameters", "pathParameters", "body", "cookies"):
            self.assertNotIn(k, ev)
        for ctype, body in [("application/octet-stream", b"\x00\x01"), ("application/json", b"\xff\xfe"), (None, b"{}")]:
            hdrs = [("content-type", ctype)] if ctype else []
            ev = gateway.build_event(self.m, "POST", "/x", hdrs, body)
            self.assertEqual((base64.b64decode(ev["body"]), ev["isBase64Encoded"]), (body, True), ctype)

    def test_a_sigv4_signed_request_carries_the_iam_identity(self):
        auth = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=abc")
        ev = gateway.build_event(self.m, "POST", "/x", [("Authorization", auth)], b"")
        self.assertEqual(ev["requestContext"]["authorizer"]["iam"]["accessKey"], "AKIDEXAMPLE")
        self.assertIsNone(gateway.sigv4_identity("Basic dTpw"))

    def test_results(self):
        self.assertEqual(gateway.translate_result({"statusCode": 201, "headers": {"content-type": "text/plain"},
                                                   "cookies": ["a=b"], "body": "hi"}),
                         (201, [("content-type", "text/plain"), ("set-cookie", "a=b")], b"hi"))
        self.assertEqual(gateway.translate_result({"statusCode": 200, "body": base64.b64encode(b"\x00").decode(),
                                                   "isBase64Encoded": True})[2], b"\x00")
        self.assertEqual(gateway.translate_result({"hello": 1}), (200, [("content-type", "application/json")], b'{"hello": 1}'))


class FakeWatch:
    """Watch's Invoke API: POST /2015-03-31/functions/<fn>/invocations, answered by `reply`."""

    def __init__(self, reply):
        self.events: list[tuple[str, dict]] = []
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                fn = self.path.split("/")[3]
                event = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.events.append((fn, event))
                status, payload = reply(fn, event)
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class ForwardingTest(unittest.TestCase):
    def setUp(self):
        def reply(fn, event):
            if event["rawPath"].endswith("/boom"):
                return 500, {"errorType": "Panic", "errorMessage": "boom"}
            return 200, {"statusCode": 404 if event["pathParameters"]["name"] == "gone" else 200,
                         "headers": {"content-type": "application/json"},
                         "body": json.dumps({"fn": fn, "routeKey": event["routeKey"]})}

        self.watch = FakeWatch(reply)
        self.gw = gateway.Gateway(self.watch.url).start()

    def tearDown(self):
        self.gw.stop()
        self.watch.stop()

    def test_a_request_reaches_the_routed_function_and_its_answer_comes_back(self):
        status, headers, raw = call("GET", f"{self.gw.url}/v1/environments/web/deployments/01J")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(raw), {"fn": "deployments-api", "routeKey": "GET /v1/environments/{name}/deployments/{id}"})
        self.assertIn("apigw-requestid", {k.lower() for k in headers})
        status, _, raw = call("GET", f"{self.gw.url}/v1/environments/gone")
        self.assertEqual((status, json.loads(raw)["fn"]), (404, "environments-api"))
        self.assertEqual([fn for fn, _ in self.watch.events], ["deployments-api", "environments-api"])

    def test_gateway_errors_have_api_gateways_bodies(self):
        status, headers, raw = call("DELETE", f"{self.gw.url}/v1/ping")
        self.assertEqual((status, json.loads(raw)), (404, {"message": "Not Found"}))
        self.assertEqual(headers.get("content-type"), "application/json")
        for method in ("TRACE", "CONNECT", "FOO"):
            status, _, raw = call(method, f"{self.gw.url}/v1/environments/web")
            self.assertEqual((status, json.loads(raw)), (404, {"message": "Not Found"}), method)
        status, _, raw = call("GET", f"{self.gw.url}/v1/environments/boom")
        self.assertEqual((status, json.loads(raw)), (500, {"message": "Internal Server Error"}))
        self.assertEqual(len(self.watch.events), 1, "the unmatched route reached no function")
        self.assertEqual((self.gw.requests(), self.gw.server_errors()), (5, 1))

    def test_require_sigv4_refuses_unsigned_requests(self):
        gw = gateway.Gateway(self.watch.url, require_sigv4=True).start()
        try:
            status, _, raw = call("GET", f"{gw.url}/v1/environments/web")
            self.assertEqual((status, json.loads(raw)), (403, {"message": "Forbidden"}))
            signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/execute-api/aws4_request, "
                                       "SignedHeaders=host, Signature=x"}
            self.assertEqual(call("GET", f"{gw.url}/v1/environments/web", headers=signed)[0], 200)
            self.assertEqual(self.watch.events[-1][1]["requestContext"]["authorizer"]["iam"]["accessKey"], "AK")
        finally:
            gw.stop()


if __name__ == "__main__":
    unittest.main()
