"""Sluice's launcher for moto's server mode.

moto serves requests on threads and its DynamoDB backend has no per-item locking, so two concurrent
conditional writes to one key can both pass their condition. Real DynamoDB applies each request
atomically, and the broker's invariants rest on that (a conditional PutItem decides who gets an
offset). This launcher runs moto's own WSGI application with every DynamoDB request serialized;
other services (SQS long polls, for instance) keep running on their own threads.
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerializedDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_") or target.startswith("DynamoDBStreams_"):
            with self.lock:
                # Drain the response inside the lock, so the whole request happens atomically.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerializedDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
