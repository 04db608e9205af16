"""satx: image classifiers for satellite map tiles, from labelled tiles to country-scale maps."""

__version__ = "0.1.0"
