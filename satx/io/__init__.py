"""Storage (local folders, gs://), TF-free TFRecord files, run records, progress, failpoints.

Nothing here imports TensorFlow or Keras.
"""
