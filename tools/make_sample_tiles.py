"""`python -m tools.make_sample_tiles --output=DIR`; see satx/cli/make_sample_tiles.py."""

from satx.cli.make_sample_tiles import entry

if __name__ == "__main__":
    entry()
