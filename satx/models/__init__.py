"""The model side, in pure Keras 3: backbone registry, augmentation layers, classifier, metrics.

Everything inside a model (augmentation, preprocessing, backbone, head) is `keras.layers` /
`keras.ops`, so it runs on the accelerator and stays backend-portable.
"""
