"""Where imagery lives: areas of interest (and, as issue 13 proceeds, tile sources).

`aoi`: the tiles of one zoom that overlap (Multi)Polygons, counted exactly and handed out
lazily in a stable order. Nothing here imports TensorFlow.
"""
