"""How a 2-D transposed convolution makes its output, with its own numbers: ``convt explain``.

:func:`explain` works out, for one input size, kernel, stride, padding, output_padding and
dilation (each per dimension: height, width), everything ``python -m convt explain`` prints and
draws: the output size, the zero-inserted and padded input, the flipped kernel, which input
values and kernel taps make each output value, how many of them overlap on each output pixel,
and the output computed three ways by convt (scatter, zero insertion + convolution with the
flipped kernel, and the backward-input pass of a convolution), which must agree.

:mod:`.model` computes it, :mod:`.text` writes it and :mod:`.picture` draws it.

>>> from convt.explain import explain
>>> e = explain(3, 3, stride=2, padding=1, output_padding=1)
>>> e.output_size, e.grid_size, e.passed
((6, 6), (8, 8), True)
>>> e.contribution_text(1, 1)
'y22 = a11*w33 + a12*w31 + a21*w13 + a22*w11'
"""

from .model import EXTRA as EXTRA
from .model import INPUT as INPUT
from .model import MAX_CELLS as MAX_CELLS
from .model import PAD as PAD
from .model import TAP as TAP
from .model import ZERO as ZERO
from .model import Axis, Explanation, explain
from .text import MAX_LISTED as MAX_LISTED

__all__ = ["Axis", "Explanation", "explain"]
