"""Serve Lynkr's ASGI app under granian (or uvicorn) for the server comparison; the harness runs Daphne and uvicorn
through ``lynkr serve --server daphne|uvicorn`` itself and uses this script for granian, which ``lynkr serve`` does not
offer (the comparison is in bench/results/).

Does what ``lynkr serve`` does before it hands over to Daphne (Django set-up, providers from the environment, first-
start bootstrap, open-files limit, malloc arenas, frozen start-up heap), then runs the same
``lynkr_site.asgi:application`` in one process/worker:

    python bench/serve_asgi.py --server uvicorn|granian --host 127.0.0.1 --port 8081

uvicorn runs with uvloop and httptools, without access log and without the lifespan protocol (Channels'
ProtocolTypeRouter has no lifespan handler); granian with one ASGI worker on uvloop.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=("uvicorn", "granian"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lynkr_site.settings.base")
    from django.db import connections

    from lynkr_site.cli import _bootstrap, _setup
    from lynkr_site.serve import process_prepare

    _setup()
    _bootstrap()
    connections.close_all()
    process_prepare()
    print(f"lynkr: serving on http://{args.host}:{args.port}/ ({args.server})", flush=True)
    if args.server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "lynkr_site.asgi:application",
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            backlog=4096,
        )
        return 0
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        "lynkr_site.asgi:application",
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        log_access=False,
        backlog=4096,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
