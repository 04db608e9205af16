"""`python -m satx.sites --predictions=PRED --output=SITES [--known=schools.geojson]`.

Groups the hit tiles of a finished prediction run into ranked candidate sites, marks each as
known or new against known schools, and reports how many known schools the hits recover.
"""

from __future__ import annotations

from satx.cli import command_line, entry_point
from satx.cli.flags import config_from_flags, define_flags
from satx.config import SitesConfig

define_flags(SitesConfig)


def main(argv: list[str]) -> int:
    """Find the sites, then print the counts and where the files are."""
    from satx.sites.run import find_sites

    del argv
    config = config_from_flags(SitesConfig)
    s = find_sites(config, command=command_line("satx.sites"))
    print(
        f"{s.hits:,} hit tiles (threshold {s.threshold:.4g}) -> {s.sites:,} sites, "
        f"{s.sites_per_million:,.1f} per million of {s.tiles_scored:,} tiles"
    )
    if s.known is not None:
        k = s.known
        print(
            f"known schools: {k.recovered:,} of {k.schools:,} recovered "
            f"({100 * k.recovered_share:.1f} % within {k.radius_m:g} m); "
            f"{k.known_sites:,} sites known, {k.new_sites:,} new"
        )
    for name, url in s.files.items():
        print(f"{name}: {url}")
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
