"""Item-level rollback for moto's TransactWriteItems (moto 5.2.5).

moto keeps a transaction's rollback copy by deep-copying every table the transaction touches, once per
action: a delayed-message landing of 99 actions (a segment, 49 de-duplication records, 49 pending-record
deletes) copied the Delays table 49 times, ~10 s per transaction with 10,000 messages pending (1.2 s at
1,000), so 10,000 messages due in one second never landed within the landing function's 30 s timeout
(measured by bench/delay.ts). This keeps a copy of only the items the transaction touches (and the length
of each touched table's stream) and puts them back on a rollback: the same all-or-nothing result and the
same answers (conditions, cancellation reasons, ALL_OLD items), at a cost proportional to the
transaction. A rollback cuts the stream shard's records back to where they were, so no stream record of a
cancelled transaction is ever readable (DynamoDB requests are serialized by local/moto_server.py).
SLUICE_MOTO_TRANSACTIONS=stock turns it off.
"""


import copy
import json
import sys

import moto  # noqa: E402
from moto.dynamodb.comparisons import get_filter_expression  # noqa: E402
from moto.dynamodb.exceptions import (  # noqa: E402
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402

PATCHED_VERSION = "5.2.5"
_MISSING = object()


def transact_write_items(self, transact_items):
    """moto 5.2.5's transact_write_items, with item-level rollback instead of table copies."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    originals = {}  # (table, hash, range) -> (table, hash DynamoType, range DynamoType | None, item copy | _MISSING)
    stream_lengths = {}
    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    def keep_original(table_name, key, current):
        table = self.get_table(table_name)
        if table.stream_shard is not None and table_name not in stream_lengths:
            stream_lengths[table_name] = len(table.stream_shard.items)
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        ident = (table_name, str(hash_value), str(range_value))
        if ident not in originals:
            originals[ident] = (table, hash_value, range_value, _MISSING if current is None else copy.deepcopy(current))

    def rollback():
        for table, hash_value, range_value, original in originals.values():
            if range_value is not None:
                if original is _MISSING:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = original
            elif original is _MISSING:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = original
        for table_name, length in stream_lengths.items():
            shard = self.get_table(table_name).stream_shard
            if shard is not None:
                del shard.items[length:]

    errors = []
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                keep_original(table_name, key, current)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    # Checked above (requests are serialized): parsing it again cost as much as the check.
                    condition_expression=None,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    # Checked above (requests are serialized): parsing it again cost as much as the check.
                    condition_expression=None,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=None,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: E722 as moto does
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)




_parsed_conditions = {}
_PARSED_CONDITIONS_MAX = 4096


def cached_filter_expression_with(parse, expression, names, values):
    """moto parses a condition expression on every write (its own lexer and parser: ~40% of the CPU of a
    produce with producer ids, measured with py-spy). The parsed expression is a tree evaluated against
    each item without changing, so the same expression with the same names and values is parsed once."""
    if expression is None:
        return parse(expression, names, values)
    key = (expression, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
    parsed = _parsed_conditions.get(key)
    if parsed is None:
        if len(_parsed_conditions) >= _PARSED_CONDITIONS_MAX:
            _parsed_conditions.clear()
        parsed = parse(expression, names, values)
        _parsed_conditions[key] = parsed
    return parsed


def patch_transactions():
    if moto.__version__ == PATCHED_VERSION:
        DynamoDBBackend.transact_write_items = transact_write_items
        global get_filter_expression
        import moto.dynamodb.models as models_module
        import moto.dynamodb.models.table as table_module

        original = get_filter_expression

        def cached(expression, names, values):
            return cached_filter_expression_with(original, expression, names, values)

        get_filter_expression = cached
        models_module.get_filter_expression = cached
        table_module.get_filter_expression = cached
    else:
        print(f"local/moto_transactions.py: moto {moto.__version__} is not {PATCHED_VERSION}; transactions left as they are", file=sys.stderr)
