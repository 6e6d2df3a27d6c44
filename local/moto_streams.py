"""Fixes to moto's DynamoDB Streams (5.2.5) that the local Streams poller (local/streamPoller.ts) relies on.

moto_server.py applies them at start. What each fixes, as measured against moto 5.2.5:

- A failed TransactWriteItems restores every table it touched from a deep copy taken before it ran,
  stream shard included. Shard iterators issued before the rollback keep pointing at the discarded shard
  object: GetRecords through them returned the rolled-back writes as stream records (phantoms, whose
  sequence numbers real writes get later) and then never another record. An iterator now reads the
  table's current shard, by table name, on every GetRecords.
- Every GetShardIterator and GetRecords stored a new iterator in a dict, forever: memory grew with every
  poll (a poller at 10 polls a second adds ~36,000 iterators an hour). AWS expires a shard iterator
  15 minutes after it is issued; so do these now, and expired ones are dropped once a minute.
- GetRecords with an unknown or expired iterator answered 500 (a KeyError); it now answers
  ExpiredIteratorException (400), as DynamoDB Streams does.

What moto answers otherwise is unchanged (one shard per table, never closed; records never trimmed).
"""

import time

# DynamoDB Streams: "A shard iterator expires 15 minutes after it is returned to the requester."
ITERATOR_LIFETIME_SECONDS = 15 * 60
PRUNE_EVERY_SECONDS = 60


def patch_dynamodb_streams():
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodbstreams import models

    init = models.ShardIterator.__init__

    def init_with_issue_time(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.issued_at = time.monotonic()

    models.ShardIterator.__init__ = init_with_issue_time

    get = models.ShardIterator.get

    def get_from_current_shard(self, limit=1000):
        table = self.streams_backend.dynamodb.tables.get(self.stream_shard.table.name)
        shard = getattr(table, "stream_shard", None)
        if shard is not None and shard is not self.stream_shard and shard.id == self.stream_shard.id:
            self.stream_shard = shard
        return get(self, limit)

    models.ShardIterator.get = get_from_current_shard

    def get_records(self, iterator_arn, limit):
        now = time.monotonic()
        if now - getattr(self, "sluice_pruned_at", 0.0) >= PRUNE_EVERY_SECONDS:
            self.sluice_pruned_at = now
            expired = [arn for arn, it in self.shard_iterators.items() if now - it.issued_at > ITERATOR_LIFETIME_SECONDS]
            for arn in expired:
                del self.shard_iterators[arn]
        iterator = self.shard_iterators.get(iterator_arn)
        if iterator is None or now - iterator.issued_at > ITERATOR_LIFETIME_SECONDS:
            raise JsonRESTError(
                "ExpiredIteratorException",
                "Iterator expired. The iterator was created over 15 minutes ago or is unknown.",
            )
        return iterator.get(limit)

    models.DynamoDBStreamsBackend.get_records = get_records
