"""The k2tui cockpit: a Textual app that renders what the library's own functions return."""
