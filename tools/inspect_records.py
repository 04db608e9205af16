"""`python -m tools.inspect_records RECORDS`; see satx/records/inspect_main.py."""

from satx.records.inspect_main import entry

if __name__ == "__main__":
    entry()
