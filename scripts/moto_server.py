"""moto's server, serving one request at a time.

moto rolls a cancelled TransactWriteItems back by restoring a deep copy of the tables taken when the
transaction began. On moto's own (threaded) server that restore also reverts every write other
requests committed meanwhile, and swaps the stream shard out from under open iterators. AWS never
does either, and the scheduler cancels transactions by design (a lost compare-and-swap race). One
request at a time keeps each transaction atomic with respect to the others, as on AWS. Without
threads werkzeug speaks HTTP/1.0, so every connection closes after its response and no client can
hold the single worker.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import signal
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def snapshot_touched_items() -> None:
    """moto's TransactWriteItems deep-copies the whole table once per item of the transaction (its
    rollback copy; the last one wins). A table's deep copy costs as much as the table: 100 copies
    of a 1,000-host table per call took moto's memory past 20 GB, and even one copy of a small
    table whose items carry histories takes half a second in Python, so every transaction slowed
    down as the table grew (the chaos test, tests/moto_chaos.rs, ran out of time). The rollback
    only needs what the transaction could change: a copy of each item it names (a transaction
    writes an item at most once) and the length of the table's stream. When moto cancels the
    transaction, those items are put back as they were (or removed if they did not exist) and
    the stream records it added are dropped; the table object itself stays, so open stream
    iterators keep their shard. Safe because this server runs one request at a time."""
    import copy

    from moto.core.model_instances import model_data
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = models.DynamoDBBackend.transact_write_items
    deepcopy = copy.deepcopy

    def no_table_copy(obj, memo=None):  # type: ignore[no-untyped-def]
        # moto's own rollback copy: replaced by the items saved below.
        return obj if isinstance(obj, models.Table) else deepcopy(obj, memo)

    def touched(self, transact_items):  # type: ignore[no-untyped-def]
        """(table, hash key, range key, a copy of the item or None) of each item named, and
        (shard, length) of each stream: what a rollback restores."""
        items, streams = [], {}
        for entry in transact_items:
            try:
                op = next(iter(entry.values()))
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                attrs = op["Item"] if "Item" in op else op["Key"]
                hash_key = DynamoType(attrs[table.hash_key_attr])
                range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
                item = table.get_item(hash_key, range_key)
            except Exception:  # noqa: BLE001 an invalid request: moto refuses it before writing
                continue
            items.append((table, hash_key, range_key, deepcopy(item)))
            if table.stream_shard is not None:
                streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        return items, list(streams.values())

    def restore(items, streams):  # type: ignore[no-untyped-def]
        for table, hash_key, range_key, item in reversed(items):
            if range_key is not None:
                if item is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        for shard, length in streams:
            del shard.items[length:]

    def transact_write_items(self, transact_items):  # type: ignore[no-untyped-def]
        items, streams = touched(self, transact_items)
        copy.deepcopy = no_table_copy
        try:
            return original(self, transact_items)
        except Exception:
            # moto cancelled it (its own rollback restored the same table objects): undo its
            # writes to the items it named.
            restore(items, streams)
            raise
        finally:
            copy.deepcopy = deepcopy
            # Every model instance moto creates, copies included, is kept in a list for its
            # dashboard (moto.core.model_instances): the rollback copies would never be freed.
            for model in model_data["dynamodb"].values():
                model.instances_tracked = []  # type: ignore[attr-defined]

    models.DynamoDBBackend.transact_write_items = transact_write_items


def container_instance_versions() -> None:
    """ECS numbers each container instance's changes (`version`, in DescribeContainerInstances
    and in its events); moto reports none (0). Here a host's version goes up by one each time a
    describe finds it changed (status, agent, attributes, free resources, tasks) since the last
    one: what the scheduler compares with the version its records got from the events."""
    import json

    from moto.ecs import models

    original = models.EC2ContainerServiceBackend.describe_container_instances

    def fingerprint(ci):  # type: ignore[no-untyped-def]
        return json.dumps([ci.status, ci.agent_connected, ci.attributes, ci.remaining_resources,
                           ci.running_tasks_count, ci.pending_tasks_count], sort_keys=True, default=str)

    def describe_container_instances(self, cluster_str, ids):  # type: ignore[no-untyped-def]
        found, failures = original(self, cluster_str, ids)
        for ci in found:
            now = fingerprint(ci)
            if getattr(ci, "_fingerprint", None) != now:
                ci._fingerprint = now
                ci.version = getattr(ci, "version", 0) + 1
        return found, failures

    models.EC2ContainerServiceBackend.describe_container_instances = describe_container_instances


def agent_switch(app):  # type: ignore[no-untyped-def]
    """ECS's agents disconnect and come back by themselves; moto's is always connected. A test
    harness sets it: POST /_harness/agent {"cluster": NAME, "containerInstance": ARN, "connected":
    BOOL} (tests/moto_chaos.rs). Describe calls then report it, at a new version."""
    import json

    from moto.ecs.models import ecs_backends

    def wrapped(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") != "/_harness/agent":
            return app(environ, start_response)
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        backend = ecs_backends["123456789012"]["us-east-1"]
        instances = backend.container_instances[body["cluster"]]
        instances[body["containerInstance"].split("/")[-1]].agent_connected = bool(body["connected"])
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    return wrapped


def smithy_rpc_v2_cbor(app):  # type: ignore[no-untyped-def]
    """The AWS SDK for Rust speaks CloudWatch in Smithy RPC v2 CBOR (POST
    /service/GraniteServiceVersion20100801/operation/<Op>, `smithy-protocol: rpc-v2-cbor`); moto
    5.2.5 serves CloudWatch in the query protocol only (404 on that path). Such a request is
    translated with botocore's own serializers and parsers of the service model: its CBOR input
    decoded by the operation's input shape and sent to moto as a query request, moto's XML answer
    parsed by the output shape and encoded as CBOR; an error as `{"__type", "message"}` with
    moto's status."""
    import io
    import re
    import urllib.parse

    import botocore.session
    from botocore.parsers import QueryParser, RpcV2CBORParser
    from botocore.serialize import QuerySerializer, RpcV2CBORSerializer

    route = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
    session = botocore.session.get_session()
    services = {"GraniteServiceVersion20100801": "cloudwatch"}

    def cbor_text_map(fields: dict) -> bytes:
        out = bytearray([0xA0 + len(fields)])
        for k, v in fields.items():
            for s in (k, v):
                b = s.encode()
                out += bytes([0x78, len(b)]) if len(b) < 256 else bytes([0x79]) + len(b).to_bytes(2, "big")
                out += b
        return bytes(out)

    def wrapped(environ, start_response):  # type: ignore[no-untyped-def]
        m = route.match(environ.get("PATH_INFO", ""))
        if not m or m.group(1) not in services:
            return app(environ, start_response)
        op = session.get_service_model(services[m.group(1)]).operation_model(m.group(2))
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        params = {}
        if op.input_shape is not None and body:
            params = RpcV2CBORParser().parse({"body": body, "headers": {}, "status_code": 200}, op.input_shape)
            params.pop("ResponseMetadata", None)
        query = urllib.parse.urlencode(QuerySerializer().serialize_to_request(params, op)["body"]).encode()
        inner = dict(environ, PATH_INFO="/", QUERY_STRING="", CONTENT_LENGTH=str(len(query)),
                     CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8")
        inner["wsgi.input"] = io.BytesIO(query)
        got: dict = {}

        def capture(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            got["status"] = status
            return lambda _data: None

        xml = b"".join(app(inner, capture))
        code = int(got["status"].split()[0])
        reply = {"body": xml, "headers": {}, "status_code": code}
        if code < 300:
            out = bytearray()
            if op.output_shape is not None:
                parsed = QueryParser().parse(reply, op.output_shape)
                parsed.pop("ResponseMetadata", None)
                RpcV2CBORSerializer()._serialize_data_item(out, parsed, op.output_shape)
            else:
                out += b"\xa0"
            answer = bytes(out)
        else:
            error = QueryParser().parse(reply, None).get("Error", {})
            answer = cbor_text_map({"__type": error.get("Code", "InternalFailure"),
                                    "message": error.get("Message", "")})
        start_response(got["status"], [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                                       ("Content-Length", str(len(answer)))])
        return [answer]

    return wrapped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5000)
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    snapshot_touched_items()
    container_instance_versions()
    app = smithy_rpc_v2_cbor(agent_switch(DomainDispatcherApplication(create_backend_app)))
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
