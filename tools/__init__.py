"""Command-line tools: `python -m tools.<name>` (thin wrappers over satx.cli)."""
