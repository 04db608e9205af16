"""`python -m tools.inspect_records RECORDS`; see satx/cli/inspect_records.py."""

from satx.cli.inspect_records import entry

if __name__ == "__main__":
    entry()
