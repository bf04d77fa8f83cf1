"""Validates every line of a traffic log against docs/log-format.schema.json.

Usage: python validate_records.py SCHEMA LOG. Prints one line per invalid record and exits 1
when any is invalid (or the log is empty), 0 otherwise. Used by tests/real_clients.rs.
"""

import json
import sys

import jsonschema

schema_path, log_path = sys.argv[1], sys.argv[2]
with open(schema_path) as f:
    schema = json.load(f)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)

bad = 0
lines = 0
with open(log_path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        lines += 1
        try:
            record = json.loads(line)
        except ValueError as e:
            print(f"line {n}: not JSON: {e}")
            bad += 1
            continue
        for err in validator.iter_errors(record):
            path = "/".join(str(p) for p in err.absolute_path)
            print(f"line {n}: at /{path}: {err.message[:300]}")
            bad += 1
if lines == 0:
    print("the log is empty")
    bad += 1
sys.exit(1 if bad else 0)
