"""`python -m tools.make_records --input=TILES --output=RECORDS`; see satx/records/__main__.py."""

from satx.records.__main__ import entry

if __name__ == "__main__":
    entry()
