"""The seed's validation checklists as data: one TOML file per checklist, read by k2tui.validate.checklist."""
