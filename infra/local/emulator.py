"""moto server, with fixes to its DynamoDB transactions and queries.

moto implements TransactWriteItems by deep-copying every table it touches,
applying the items, and restoring the copy if one fails. Two transactions
at once can then undo each other's writes, which DynamoDB never does, and
each transaction costs a copy of the whole table. Here DynamoDB requests
are served one at a time (so transactions are atomic, and concurrency tests
test the service, not the emulator), and a transaction saves and restores
only the items it touches. Other services (SQS long polls) stay concurrent.

Served one at a time, though, transactions never overlap, so moto never
refuses one the way DynamoDB does: DynamoDB cancels a transaction with the
reason `TransactionConflict` at an item that another transaction in flight
holds, and refuses a PutItem, UpdateItem or DeleteItem of such an item with
TransactionConflictException (developer guide, "Transaction conflict
handling"). Two requests are in flight together when each was sent before
the other was answered; here, where they wait for their turn, that is when
one arrived before the other's answer and is served soon after it. So a
committed transaction holds its items while the emulator serves the next
SPAN DynamoDB requests (environment variable EMULATOR_TRANSACTION_SPAN,
default 4; 0 turns it off), and refuses, as DynamoDB does, those of them
that touch its items and arrived before it answered. Counted in requests,
not milliseconds: the emulator's speed (its table sizes, the machine's
load) does not change which requests conflict, and no answer waits. A
client's next request, sent after the answer, never meets its own
transaction; concurrent requests on one hot item (one counter in every
create) fail as they would in AWS.

moto answers every Query by listing and sorting the whole table, then
keeping the items of the asked partition: a Query's time grows with the
table, so seeding a project of 100,000 organizations (make bench-scale)
slows to a crawl and the test suite slows as its table grows. Here a
Query starts from the items of its partition only: the table's own
partition for a base-table Query, and for an index a grouping of the
table's items by the index's partition key, built when an index is first
queried after a write (so a run of reads between writes pays one pass
over the table, not one per Query). moto still does all the rest (key
conditions, order, paging, filters, projections); only its candidates
shrink, and a candidate list always holds every item of the partition.

moto projects an item (an INCLUDE index, a ProjectionExpression) through
Python's decimal with DynamoDB's context, which refuses some numbers that
DynamoDB stores (1E-130, its smallest positive number, raises Rounded): a
projection of top-level attributes copies them instead.

A table created by CloudFormation gets booleans where the template passes
parameter text, as in AWS."""

import argparse
import collections
import copy
import inspect
import itertools
import json
import os
import signal
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    DynamodbException,
    TransactionCanceledException,
)

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DYNAMODB = threading.Lock()

# DynamoDB requests served while a transaction just served is still in
# flight (see above).
SPAN = int(os.environ.get("EMULATOR_TRANSACTION_SPAN", "4"))

# Numbers every DynamoDB request as it arrives, before its turn; a
# transaction's answer takes the next number (its horizon), so a request
# with a smaller number was sent before that answer.
ARRIVALS = itertools.count()

CONFLICT_MESSAGE = "Transaction is ongoing for the item"


class InFlight:
    """The transactions still in flight: for each, the request count when it
    was served, its horizon and its items. Used under DYNAMODB only."""

    def __init__(self):
        self.served = 0
        self.holds = collections.deque()

    def next_request(self):
        self.served += 1
        while self.holds and self.served - self.holds[0][0] > SPAN:
            self.holds.popleft()

    def hold(self, items, horizon):
        if SPAN > 0 and items:
            self.holds.append((self.served, horizon, frozenset(items)))

    def conflicts(self, items, arrival):
        """For each item: whether a transaction in flight holds it for a
        request that arrived at `arrival`."""
        return [any(item in held and arrival < horizon for _, horizon, held in self.holds) for item in items]


IN_FLIGHT = InFlight()

# The request this thread serves (werkzeug gives each request a thread):
# its DynamoDB operation, when it arrived, and the items its transaction
# wrote.
REQUEST = threading.local()


class TransactionConflictException(DynamodbException):
    def __init__(self):
        super().__init__(ERROR_TYPE_PREFIX + "TransactionConflictException", message=CONFLICT_MESSAGE)


def serialised(app):
    def wsgi(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return app(environ, start_response)
        arrival = next(ARRIVALS)
        with DYNAMODB:
            IN_FLIGHT.next_request()
            REQUEST.operation, REQUEST.arrival, REQUEST.held = target.rpartition(".")[2], arrival, []
            if not REQUEST.operation.startswith(READ_ONLY):
                WRITE[0] = next(WRITES)
            try:
                body = list(app(environ, start_response))
                IN_FLIGHT.hold(REQUEST.held, next(ARRIVALS))
            finally:
                REQUEST.operation, REQUEST.held = None, []
        return body

    return wsgi


# DynamoDB operations that change no item: everything else may, and makes
# the index groupings (see patch_queries) stale.
READ_ONLY = ("Get", "BatchGet", "Query", "Scan", "TransactGet", "Describe", "List")
WRITES = itertools.count(1)
WRITE = [0]


def held_item(table_name, key):
    return (table_name, json.dumps(key, sort_keys=True))


def item_key(backend, op_type, op):
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def patch_transactions():
    backend_class = dynamodb_models.DynamoDBBackend
    original = backend_class.transact_write_items

    class TableCopyIsIdentity:
        # moto's own whole-table snapshot becomes a no-op; we restore items.
        @staticmethod
        def deepcopy(value, memo=None):
            if isinstance(value, dynamodb_models.Table):
                return value
            return copy.deepcopy(value, memo)

        copy = staticmethod(copy.copy)

    dynamodb_models.copy = TableCopyIsIdentity

    def transact_write_items(self, transact_items):
        touched = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            try:
                touched.append(held_item(op["TableName"], item_key(self, op_type, op)))
            except Exception:  # invalid request: moto reports it itself
                touched.append(None)
        # An invalid transaction (an item twice, say) is moto's to refuse.
        valid = None not in touched and len(set(touched)) == len(touched)
        held = IN_FLIGHT.conflicts(touched, REQUEST.arrival) if valid else []
        if any(held):
            raise TransactionCanceledException(
                [("TransactionConflict", CONFLICT_MESSAGE, None) if h else (None, None, None) for h in held]
            )
        saved = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            try:
                key = item_key(self, op_type, op)
                current = self.get_item(op["TableName"], key)
            except Exception:  # invalid request: moto reports it itself
                continue
            before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            saved.append((op["TableName"], key, before))
        try:
            result = original(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(saved):
                if before is None:
                    table = self.get_table(table_name)
                    hash_value, range_value = self.get_keys_value(table, key)
                    if table.get_item(hash_value, range_value) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise
        REQUEST.held = touched
        return result

    backend_class.transact_write_items = transact_write_items


def index_partition(table, attribute, value):
    """The table's items whose `attribute` is `value` (an index partition),
    from a grouping of the table by `attribute` kept until the next write."""
    built = table.__dict__.get("_emulator_groups")
    if built is None or built[0] != WRITE[0]:
        built = (WRITE[0], {})
        table.__dict__["_emulator_groups"] = built
    groups = built[1].get(attribute)
    if groups is None:
        groups = collections.defaultdict(list)
        for partition in table.items.values():
            for item in partition.values() if table.range_key_attr else [partition]:
                key = item.attrs.get(attribute)
                if key is not None:
                    groups[key].append(item)
        built[1][attribute] = groups
    return groups.get(value, [])


def patch_queries():
    table_class = dynamodb_models.Table
    original = table_class.query
    signature = inspect.signature(original)

    def query(self, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs).arguments
        hash_key, index_name = call.get("hash_key"), call.get("index_name")
        conditions = call.get("hash_key_conditions") or []
        candidates = None
        if index_name is None and hash_key is not None and self.range_key_attr:
            partition = self.items.get(hash_key)
            candidates = list(partition.values()) if partition else []
        elif index_name is not None and len(conditions) == 1:
            attribute, value = conditions[0]
            index = next((i for i in self.all_indexes() if i.name == index_name), None)
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] if index else []
            if hashes == [attribute]:
                candidates = list(index_partition(self, attribute, value))
        if candidates is None:
            return original(self, *args, **kwargs)
        # Served one at a time: no other request sees the shadowed method.
        self.all_items = lambda: candidates
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    table_class.query = query


def patch_projections():
    item_class = dynamodb_models.dynamo_type.Item
    original = item_class.project

    def project(self, projection_expressions):
        if not all(len(path) == 1 for path in projection_expressions):
            return original(self, projection_expressions)
        names = {path[0] for path in projection_expressions}
        kept = {name: copy.deepcopy(value.to_json()) for name, value in self.attrs.items() if name in names}
        return item_class(hash_key=self.hash_key, range_key=self.range_key, attrs=kept)

    item_class.project = project


def patch_item_writes():
    """A single-item write of an item a transaction holds is refused."""
    backend_class = dynamodb_models.DynamoDBBackend

    def guarded(name, operation, key_of):
        original = getattr(backend_class, name)

        def write(self, table_name, first, *args, **kwargs):
            # Only the request itself: a transaction or a batch writes
            # through the same methods.
            if getattr(REQUEST, "operation", None) == operation and IN_FLIGHT.holds:
                try:
                    item = held_item(table_name, key_of(self, table_name, first))
                except Exception:  # invalid request: moto reports it itself
                    item = None
                if item is not None and IN_FLIGHT.conflicts([item], REQUEST.arrival)[0]:
                    raise TransactionConflictException()
            return original(self, table_name, first, *args, **kwargs)

        setattr(backend_class, name, write)

    guarded("put_item", "PutItem", lambda self, table, item: item_key(self, "Put", {"TableName": table, "Item": item}))
    guarded("update_item", "UpdateItem", lambda self, table, key: key)
    guarded("delete_item", "DeleteItem", lambda self, table, key: key)


def patch_cloudformation_booleans():
    """CloudFormation hands a String parameter to a Boolean property as its
    text (the template's TableDeletionProtection "true"); AWS converts it,
    moto keeps the text, and DescribeTable then answers a string where the
    SDKs expect a boolean (the Rust SDK fails to read the answer)."""
    table_class = dynamodb_models.Table
    original = table_class.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, *args, **kwargs):
        properties = cloudformation_json.get("Properties", {})
        value = properties.get("DeletionProtectionEnabled")
        if isinstance(value, str):
            properties["DeletionProtectionEnabled"] = value.strip().lower() == "true"
        return original(cls, resource_name, cloudformation_json, *args, **kwargs)

    table_class.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    patch_transactions()
    patch_queries()
    patch_projections()
    patch_item_writes()
    patch_cloudformation_booleans()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
