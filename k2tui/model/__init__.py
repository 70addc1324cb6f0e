"""The v2 trade record: its Avro schema, Python type, rules, symbols and wire format (one module each, so
that a reader of one does not import the others)."""
