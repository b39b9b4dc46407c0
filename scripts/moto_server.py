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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5000)
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
