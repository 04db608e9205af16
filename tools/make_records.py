"""`python -m tools.make_records --input=TILES --output=RECORDS`; see satx/cli/make_records.py."""

from satx.cli.make_records import entry

if __name__ == "__main__":
    entry()
