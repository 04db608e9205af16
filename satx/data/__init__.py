"""The input side, in TensorFlow: records -> parsed, decoded, batched tiles on the host.

`read` streams shards (with a count of what damaged shards lost) and parses them with the
records schema; `decode` turns JPEG/PNG bytes into uint8 tiles (shared by training, the export's
bytes signature and prediction); `pipeline` builds the training and evaluation datasets.
"""
