"""Where imagery lives and how tiles are listed: one reader per input kind, one way to read bytes.

`refs` (TileRef, Rejection, Listing: what every reader returns) <- `folders` (a folder or gs://
tree), `tables` (a CSV of paths / z,x,y / lon,lat), `places` (GeoJSON places, one label per
tile), `areas` and `aoi` (a bbox or polygons at one zoom, counted, never listed); `formats` (the
one table of image magic bytes); `sources` (files by template, HTTP XYZ/TMS/WMS, MBTiles,
PMTiles, an on-disk cache) and `base.read_refs`, which reads any listed tile. records, predict
and review only use these. Nothing here imports TensorFlow.
"""
