"""Sites: a prediction run's hit tiles grouped into candidate places, one per school.

`find_sites(config)` -> `SitesRun`. `hits` (the run's rows above a threshold, as arrays) ->
`grid` (neighbour graph and connected components on the tile grid) -> `table` (ranked sites,
ids, points, outlines) -> `known` (known schools; distances on the sphere) -> `curve` (counts
over thresholds; a threshold for a budget of sites) -> `outputs`, `report`; `result` (a sites
folder's layout and its `SitesRun`). `python -m satx.sites` is the CLI. No TensorFlow.
"""

from satx import lazy_exports

_PUBLIC = {
    "find_sites": "satx.sites.run",
    "SitesRun": "satx.sites.result",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
