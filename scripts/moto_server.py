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


def snapshot_each_table_once() -> None:
    """moto's TransactWriteItems deep-copies the whole table once per item of the transaction (its
    rollback copy; the last one wins). One copy per table per transaction is the same rollback,
    without 100 copies of a 1,000-host table per call (which took moto's memory past 20 GB here).
    Safe because this server runs one request at a time; what it drops is only the dashboard's
    list of DynamoDB model instances."""
    import copy

    from moto.core.model_instances import model_data
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items
    deepcopy = copy.deepcopy

    def transact_write_items(self, transact_items):  # type: ignore[no-untyped-def]
        snapshots: dict[int, object] = {}

        def once(obj, memo=None):  # type: ignore[no-untyped-def]
            if isinstance(obj, models.Table):
                if id(obj) not in snapshots:
                    snapshots[id(obj)] = deepcopy(obj)
                return snapshots[id(obj)]
            return deepcopy(obj, memo)

        copy.deepcopy = once
        try:
            return original(self, transact_items)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5000)
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    snapshot_each_table_once()
    container_instance_versions()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
