"""Other frameworks' conventions on convt's kernels.

``convt.compat.tensorflow``: ``tf.nn.conv2d``, ``tf.nn.conv2d_transpose`` and their 1-D and 3-D
forms, with TensorFlow's filter layouts, data formats and SAME/VALID padding, over NumPy arrays
(TensorFlow itself is not needed).
"""

from . import tensorflow

__all__ = ["tensorflow"]
