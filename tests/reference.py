"""Plain-loop float64 NumPy reference for N-d convolution and transposed convolution.

This is the test oracle, written for obvious correctness rather than speed. It does not import
convt, and the transposed convolution is written independently of the convolution (as its own
scatter formula), so the two check each other.

Conventions (PyTorch semantics, batched inputs only):

* ``x`` has shape ``(N, C, *spatial)`` with ``D = len(spatial)`` in 1, 2 or 3.
* ``stride`` and ``dilation`` are tuples of D ints; ``padding`` is a tuple of D pairs
  ``(before, after)``; ``groups`` is an int.
* Convolution weight: ``(C_out, C_in / groups, *kernel)``.
  Transposed-convolution weight: ``(C_in, C_out / groups, *kernel)``.
* Padding is a bounds check: an input position that falls outside the array reads zero
  (forward) or receives nothing (backward). With ``padding_mode`` 'reflect', 'replicate' or
  'circular' (PyTorch's) it is an index map instead: a position outside the array stands for
  the element that ``F.pad(x, mode)`` would put there (mirrored about the edge without
  repeating it, the edge itself, or wrapped around), which it reads in the forward pass and
  adds into in the backward pass. A transposed convolution's scatter likewise adds a target
  outside its output onto the element that position stands for: wrapped around for circular.

Every loop runs over spatial positions and kernel offsets with ``itertools.product``; the batch
and channel axes are handled by one ``einsum`` per step. Within a group ``g``, input channel
``g * cg_in + c`` meets output channel ``g * cg_out + f`` (``cg_*``: channels per group);
reshaping the channel axis to ``(groups, cg_*)`` lets one ``einsum`` do all groups at once.

The gradients come from the same loops by the accumulator rule: where the forward does
``acc += a * b``, the backward does ``da += dacc * b`` and ``db += dacc * a``.
"""

import itertools

import numpy as np


def conv_output_size(input_size, kernel, stride, padding, dilation):
    """Spatial output size of a convolution: ``(in_size + p0 + p1 - d*(k-1) - 1) // s + 1``."""
    return tuple(
        (i + p0 + p1 - d * (k - 1) - 1) // s + 1
        for i, k, s, (p0, p1), d in zip(input_size, kernel, stride, padding, dilation, strict=True)
    )


def conv_transpose_output_size(input_size, kernel, stride, padding, output_padding, dilation):
    """Spatial output size of a transposed convolution:
    ``(in_size-1)*s - p0 - p1 + d*(k-1) + output_padding + 1``."""
    return tuple(
        (i - 1) * s - p0 - p1 + d * (k - 1) + op + 1
        for i, k, s, (p0, p1), op, d in zip(
            input_size, kernel, stride, padding, output_padding, dilation, strict=True
        )
    )


def _at(pos):
    """Index selecting every leading (batch, group, channel) entry at spatial position ``pos``."""
    return (Ellipsis, *pos)


def _tap(pos, k, stride, padding, dilation):
    """``pos*s - p0 + k*d`` per spatial dim: the input position a convolution output ``pos``
    reads through kernel offset ``k``, and equally the output position a transposed-convolution
    input ``pos`` writes to."""
    return [
        p * s - p0 + kk * d
        for p, kk, s, (p0, _), d in zip(pos, k, stride, padding, dilation, strict=True)
    ]


def _source(i, n, mode):
    """The element of an axis of ``n`` that position ``i`` stands for, None for zero padding."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        assert -n <= i < 2 * n, "circular padding wraps around once at most"
        return i % n
    if mode == "reflect":
        assert -n < i < 2 * n - 1, "reflect padding reflects once at most"
        return -i if i < 0 else 2 * (n - 1) - i
    raise ValueError(f"unknown padding_mode {mode!r}")


def _element(pos, size, mode="zeros"):
    """The position of the array that ``pos`` stands for, or None when it reads zero padding."""
    source = [_source(p, n, mode) for p, n in zip(pos, size, strict=True)]
    return None if None in source else source


def _grouped(a, groups):
    """View ``(n, C)`` as ``(n, groups, C // groups)``."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups)


def _check(x, w, stride, padding, dilation, groups, output_padding=None):
    d = x.ndim - 2
    if d not in (1, 2, 3) or w.ndim != x.ndim:
        raise ValueError(f"expected x and w with 1-3 spatial dims, got {x.shape} and {w.shape}")
    lengths = [len(stride), len(padding), len(dilation)]
    if output_padding is not None:
        lengths.append(len(output_padding))
    if any(n != d for n in lengths):
        raise ValueError(f"stride/padding/dilation/output_padding must have length {d}")
    if groups < 1 or x.shape[1] % groups or w.shape[0] % groups:
        raise ValueError(f"groups={groups} must divide x channels {x.shape[1]} and w {w.shape[0]}")


# ---------------------------------------------------------------------------------------------
# Convolution (cross-correlation, as PyTorch's conv{1,2,3}d)
#
#   y[n, g*cg_out + f, o] = b[g*cg_out + f]
#       + sum_{c, k} x[n, g*cg_in + c, o*s - p0 + k*d] * w[g*cg_out + f, c, k]
# ---------------------------------------------------------------------------------------------


def conv_forward(x, w, b, stride, padding, dilation, groups, padding_mode="zeros"):
    """Convolution forward pass; equals ``torch.nn.functional.conv{D}d`` (of ``F.pad(x,
    padding, padding_mode)`` for a mode other than zeros)."""
    _check(x, w, stride, padding, dilation, groups)
    n, c_in = x.shape[:2]
    c_out, cg_in = w.shape[:2]
    if cg_in * groups != c_in:
        raise ValueError(f"w.shape[1]={cg_in} times groups={groups} must equal C_in={c_in}")
    ksize, in_size = w.shape[2:], x.shape[2:]
    out_size = conv_output_size(in_size, ksize, stride, padding, dilation)
    if min(out_size) < 1:
        raise ValueError(f"output size {out_size} is not positive")
    wg = w.reshape(groups, c_out // groups, cg_in, *ksize)  # (g, f, c, *k)

    y = np.zeros((n, c_out, *out_size))
    for o in itertools.product(*map(range, out_size)):
        acc = np.zeros((n, groups, c_out // groups))
        for k in itertools.product(*map(range, ksize)):
            i = _element(_tap(o, k, stride, padding, dilation), in_size, padding_mode)
            if i is not None:
                acc += np.einsum("ngc,gfc->ngf", _grouped(x[_at(i)], groups), wg[_at(k)])
        y[_at(o)] = acc.reshape(n, c_out)
    if b is not None:
        y += b.reshape((1, c_out, *[1] * len(out_size)))
    return y


def conv_backward(dy, x, w, stride, padding, dilation, groups, padding_mode="zeros"):
    """Gradients ``(dx, dw, db)`` of :func:`conv_forward` given the output gradient ``dy``."""
    _check(x, w, stride, padding, dilation, groups)
    n, c_in = x.shape[:2]
    c_out, cg_in = w.shape[:2]
    ksize, in_size = w.shape[2:], x.shape[2:]
    out_size = conv_output_size(in_size, ksize, stride, padding, dilation)
    if dy.shape != (n, c_out, *out_size):
        raise ValueError(f"dy has shape {dy.shape}, expected {(n, c_out, *out_size)}")
    wg = w.reshape(groups, c_out // groups, cg_in, *ksize)

    dx = np.zeros(x.shape)
    dwg = np.zeros(wg.shape)
    for o in itertools.product(*map(range, out_size)):
        dacc = _grouped(dy[_at(o)], groups)  # (n, g, f)
        for k in itertools.product(*map(range, ksize)):
            i = _element(_tap(o, k, stride, padding, dilation), in_size, padding_mode)
            if i is not None:
                # forward: acc[n, g, f] += x[n, g, c] * w[g, f, c]
                dx[_at(i)] += np.einsum("ngf,gfc->ngc", dacc, wg[_at(k)]).reshape(n, c_in)
                dwg[_at(k)] += np.einsum("ngf,ngc->gfc", dacc, _grouped(x[_at(i)], groups))
    db = dy.sum(axis=(0, *range(2, dy.ndim)))
    return dx, dwg.reshape(w.shape), db


# ---------------------------------------------------------------------------------------------
# Transposed convolution (as PyTorch's conv_transpose{1,2,3}d), written as a scatter:
#
#   y[n, g*cg_out + f, i*s - p0 + k*d] += x[n, g*cg_in + c, i] * w[g*cg_in + c, f, k]
#
# for every input position i and kernel offset k whose target lies inside the output; then
#   y[n, g*cg_out + f, :] += b[g*cg_out + f].
# ---------------------------------------------------------------------------------------------


def conv_transpose_forward(
    x, w, b, stride, padding, output_padding, groups, dilation, padding_mode="zeros"
):
    """Transposed-convolution forward pass; equals ``torch.nn.functional.conv_transpose{D}d``
    for zeros, and is the adjoint of :func:`conv_forward` with ``padding_mode`` for the others."""
    _check(x, w, stride, padding, dilation, groups, output_padding)
    n, c_in = x.shape[:2]
    if w.shape[0] != c_in:
        raise ValueError(f"w.shape[0]={w.shape[0]} must equal C_in={c_in}")
    cg_out = w.shape[1]
    c_out = cg_out * groups
    ksize, in_size = w.shape[2:], x.shape[2:]
    out_size = conv_transpose_output_size(in_size, ksize, stride, padding, output_padding, dilation)
    if min(out_size) < 1:
        raise ValueError(f"output size {out_size} is not positive")
    wg = w.reshape(groups, c_in // groups, cg_out, *ksize)  # (g, c, f, *k)

    y = np.zeros((n, c_out, *out_size))
    for i in itertools.product(*map(range, in_size)):
        xi = _grouped(x[_at(i)], groups)  # (n, g, c)
        for k in itertools.product(*map(range, ksize)):
            o = _element(_tap(i, k, stride, padding, dilation), out_size, padding_mode)
            if o is not None:
                y[_at(o)] += np.einsum("ngc,gcf->ngf", xi, wg[_at(k)]).reshape(n, c_out)
    if b is not None:
        y += b.reshape((1, c_out, *[1] * len(out_size)))
    return y


def conv_transpose_backward(
    dy, x, w, stride, padding, output_padding, groups, dilation, padding_mode="zeros"
):
    """Gradients ``(dx, dw, db)`` of :func:`conv_transpose_forward` given ``dy``."""
    _check(x, w, stride, padding, dilation, groups, output_padding)
    n, c_in = x.shape[:2]
    cg_out = w.shape[1]
    c_out = cg_out * groups
    ksize, in_size = w.shape[2:], x.shape[2:]
    out_size = conv_transpose_output_size(in_size, ksize, stride, padding, output_padding, dilation)
    if dy.shape != (n, c_out, *out_size):
        raise ValueError(f"dy has shape {dy.shape}, expected {(n, c_out, *out_size)}")
    wg = w.reshape(groups, c_in // groups, cg_out, *ksize)

    dx = np.zeros(x.shape)
    dwg = np.zeros(wg.shape)
    for i in itertools.product(*map(range, in_size)):
        xi = _grouped(x[_at(i)], groups)
        for k in itertools.product(*map(range, ksize)):
            o = _element(_tap(i, k, stride, padding, dilation), out_size, padding_mode)
            if o is not None:
                # forward: y[n, g, f] += x[n, g, c] * w[g, c, f]
                dacc = _grouped(dy[_at(o)], groups)  # (n, g, f)
                dx[_at(i)] += np.einsum("ngf,gcf->ngc", dacc, wg[_at(k)]).reshape(n, c_in)
                dwg[_at(k)] += np.einsum("ngf,ngc->gcf", dacc, xi)
    db = dy.sum(axis=(0, *range(2, dy.ndim)))
    return dx, dwg.reshape(w.shape), db
