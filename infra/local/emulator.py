"""moto server, with two fixes to its DynamoDB transactions.

moto implements TransactWriteItems by deep-copying every table it touches,
applying the items, and restoring the copy if one fails. Two transactions
at once can then undo each other's writes, which DynamoDB never does, and
each transaction costs a copy of the whole table. Here DynamoDB requests
are served one at a time (so transactions are atomic, and concurrency tests
test the service, not the emulator), and a transaction saves and restores
only the items it touches. Other services (SQS long polls) stay concurrent.
A table created by CloudFormation gets booleans where the template passes
parameter text, as in AWS."""

import argparse
import copy
import signal
import sys
import threading

import moto.dynamodb.models as dynamodb_models

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DYNAMODB = threading.Lock()


def serialised(app):
    def wsgi(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB"):
            with DYNAMODB:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wsgi


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
            return original(self, transact_items)
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

    backend_class.transact_write_items = transact_write_items


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
    patch_cloudformation_booleans()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
