"""Sluice's launcher for moto's server mode.

moto serves requests on threads and its DynamoDB backend has no per-item locking, so two concurrent
conditional writes to one key can both pass their condition. Real DynamoDB applies each request
atomically, and the broker's invariants rest on that (a conditional PutItem decides who gets an
offset). This launcher runs moto's own WSGI application with every DynamoDB request serialized;
other services (SQS long polls, for instance) keep running on their own threads.

It also patches moto's SQS (5.2.5) where it is slow in proportion to the queue's length, and where a
long poll notices a message only up to a second after it became visible (docs/local-runtime.md, "moto's
SQS under load", has the numbers). Semantics stay moto's; SLUICE_MOTO_SQS=stock turns the patches off.
"""

import argparse
import math
import os
import signal
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from moto_streams import patch_dynamodb_streams
from moto_transactions import patch_transactions


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


def patch_sqs():
    """Speeds up moto's SQS without changing what it answers.

    - Its clock (unix_time via datetime, ~4 us a call) is read for every queued message on every send and
      receive: use time.time(), the same value.
    - SendMessage computed all queue attributes, counting every message three times, to read one setting:
      the counts are skipped while a message is sent (nothing in the send path reads them).
    - ReceiveMessage read the queue's retention through get_queue_attributes, nine passes over the queue
      per message received: read the attribute itself.
    - A waiting long poll re-checked the queue once a second, so a message whose delay or visibility
      timeout ran out was delivered up to 1 s late: wait until the next message becomes visible, or until
      one is added (checking only the added ones).
    """
    from moto.sqs import models

    models.unix_time = lambda dt=None: time.time() if dt is None else dt.timestamp()
    models.unix_time_millis = lambda dt=None: (time.time() if dt is None else dt.timestamp()) * 1000.0

    sending = threading.local()
    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        counted = getattr(models.Queue, name).fget
        setattr(
            models.Queue,
            name,
            property(lambda self, counted=counted: 0 if getattr(sending, "active", False) else counted(self)),
        )

    send_message = models.SQSBackend.send_message

    def send_without_counting(self, *args, **kwargs):
        sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            sending.active = False

    models.SQSBackend.send_message = send_without_counting

    def is_message_valid_based_on_retention_period(self, queue_name, message):
        queue = self.get_queue(queue_name)
        return int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time()

    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

    def next_visible_ms(messages, now_ms):
        """0 when one of these messages is visible now, else when the first becomes visible (inf: never)."""
        soonest = math.inf
        for m in messages:
            # moto: visible when now > visible_at, not delayed when now >= delayed_until
            if now_ms > m.visible_at and now_ms >= m.delayed_until:
                return 0
            soonest = min(soonest, max(m.visible_at + 1, m.delayed_until))
        return soonest

    def wait_for_messages(self, timeout):
        deadline = time.time() + timeout
        with self._messages_lock:
            seen = self._messages
            count = len(seen)
            now_ms = time.time() * 1000
            soonest = next_visible_ms(seen, now_ms)
            while soonest > now_ms:
                remaining = deadline - time.time()
                if remaining <= 0:
                    return
                notified = self._messages_lock.wait(min(remaining, (soonest - now_ms) / 1000))
                now_ms = time.time() * 1000
                if notified and self._messages is seen and len(seen) >= count:
                    # add_message appends and notifies: check only what was added
                    soonest = min(soonest, next_visible_ms(seen[count:], now_ms))
                else:
                    seen = self._messages
                    soonest = next_visible_ms(seen, now_ms)
                count = len(seen)

    models.Queue.wait_for_messages = wait_for_messages


def enable_state_machine_execution(port):
    """Step Functions executions run (moto's ASL interpreter) instead of only being recorded.

    The same switch as POST /moto-api/config {"stepfunctions": {"execute_state_machine": true}}, set before
    the first request so no client has to. The interpreter's service tasks (sqs:sendMessage.waitForTaskToken
    for the transaction check-back) call this server over HTTP on MOTO_PORT, which defaults to 5000: point
    it at our port.
    """
    from moto.core.config import default_user_config

    os.environ["MOTO_PORT"] = str(port)
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    if os.environ.get("SLUICE_MOTO_SFN", "patched") != "stock":
        reuse_task_clients()
        parse_definitions_once()


def reuse_task_clients():
    """One boto3 client per service and region for the interpreter's service tasks, instead of one per task.

    moto 5.2.5 builds a new boto3 client for every task it runs (asl/utils/boto_client.py): ~50-100 ms of
    CPU each, loading the service model, under the GIL. With 60 check-backs starting within 5 s, the
    state machines reached the producer 4.4 s (p50) after their start (bench/transactions.ts). boto3
    clients are thread-safe; the interpreter passes the same dummy credentials to all of them.
    """
    import boto3
    from moto.stepfunctions.parser.asl.utils import boto_client

    clients = {}
    lock = threading.Lock()

    class CachingBoto3:
        @staticmethod
        def client(**kwargs):
            key = (kwargs.get("service_name"), kwargs.get("region_name"), kwargs.get("endpoint_url"))
            with lock:
                if key not in clients:
                    clients[key] = boto3.client(**kwargs)
                return clients[key]

    boto_client.boto3 = CachingBoto3


def parse_definitions_once():
    """Each execution parsed its state machine's definition again (ANTLR in Python: 54 ms for the check-back
    machine, under the GIL): parse each definition once. The parsed program is a tree of declarations that
    executions only read (their state lives in each execution's Environment)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker

    parsed = {}
    lock = threading.Lock()

    def entrypoint(self):
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in parsed:
                parsed[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return parsed[definition]

    execution_worker.ExecutionWorker._get_evaluation_entrypoint = entrypoint


def patch_dynamodb_query():
    """A Query on a table's key reads that partition's items only (moto sorts the whole table for every Query).

    moto 5.2.5's Table.query starts from all_items(): every item of the table, sorted, then filtered by the
    hash key, so a Query costs O(n log n) in the table's size: with 2,500 other items in the log table a
    consume's Query took 121 ms instead of 27 (measured while profiling issue 11's consume figures). The same
    answer comes from the one partition. SLUICE_MOTO_QUERY=stock turns it off.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items[hash_key] if hash_key in self.items else {}
        only = list(partition.values())
        self.all_items = lambda: only  # DynamoDB requests are serialized (SerializedDynamoDB)
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    if os.environ.get("SLUICE_MOTO_SQS", "patched") != "stock":
        patch_sqs()
    if os.environ.get("SLUICE_MOTO_STREAMS", "patched") != "stock":
        patch_dynamodb_streams()
    if os.environ.get("SLUICE_MOTO_TRANSACTIONS", "patched") != "stock":
        patch_transactions()
    if os.environ.get("SLUICE_MOTO_QUERY", "patched") != "stock":
        patch_dynamodb_query()
    enable_state_machine_execution(args.port)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerializedDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
