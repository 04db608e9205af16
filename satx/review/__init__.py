"""The mappers' review loop: predictions -> people in a browser -> labels -> the next records.

`store` (SQLite: queue, leases, decisions), `predictions` (what a finished predict run offers),
`server` (the page, JSON API and tiles), `summary` (progress, precision, overview), `export`
(labels.csv / .geojson for make_records), `run` (open, serve, export). No TensorFlow.
"""
