"""`python -m tools.make_sample_tiles --output=DIR`; see satx/records/sample_main.py."""

from satx.records.sample_main import entry

if __name__ == "__main__":
    entry()
