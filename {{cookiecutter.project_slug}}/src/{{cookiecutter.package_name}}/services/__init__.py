"""The logic the blueprints and the CLI call."""
