"""convt.compat.tensorflow has TensorFlow's semantics: layouts, strides, SAME/VALID/explicit
padding, dilations, groups, and conv2d_transpose's output_shape check.

The oracles: TensorFlow's documented formulas (written out here, independently of the module),
the worked example of seed 001 (the blog post that checks conv2d_transpose and its gradients
against TensorFlow, listed in docs/index.md) with its printed numbers, the plain-loop reference of
tests/reference.py after converting TensorFlow's layouts, PyTorch's conv_transpose2d where
TensorFlow's arguments map onto it, and TensorFlow itself when it is installed (CI does not
install it; see ``test_matches_tensorflow``).
"""

import doctest
import math
import subprocess
import sys
import warnings

import convt
import numpy as np
import pytest
import reference
from conftest import assert_close, examples
from convt.compat import tensorflow as tfc
from hypothesis import given, settings
from hypothesis import strategies as st

REFERENCE_EXAMPLES = examples(150)


def test_works_where_tensorflow_cannot_be_imported():
    # sys.modules[name] = None makes `import name` raise ImportError, as if it were not installed.
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "import numpy as np\n"
        "from convt.compat import tensorflow as tf\n"
        "y = tf.conv2d_transpose(np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1)), [1, 4, 4, 1], 1, "
        "'VALID')\n"
        "assert y[0, :, :, 0].tolist()[1] == [2, 4, 4, 2], y\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- TensorFlow's documented rules, written as its documentation does ----


def span(kernel, dilation):
    return dilation * (kernel - 1) + 1


def tf_output_size(size, kernel, stride, dilation, padding):
    """TensorFlow's output size: ceil(in / s) for SAME, ceil((in - k_eff + 1) / s) for VALID."""
    if padding == "SAME":
        return math.ceil(size / stride)
    return math.ceil((size - span(kernel, dilation) + 1) / stride)


def tf_same_pads(size, kernel, stride, dilation):
    """SAME's (before, after) padding as TensorFlow's guide writes it (pad_along_height ...)."""
    k = span(kernel, dilation)
    total = max(k - stride, 0) if size % stride == 0 else max(k - size % stride, 0)
    return total // 2, total - total // 2


def channels_first(a):
    return np.moveaxis(a, -1, 1)


def channels_last(a):
    return np.moveaxis(a, 1, -1)


def torch_weight(filters):
    """TensorFlow's (k..., a, b) filters as the (b, a, k...) weight of PyTorch and the reference."""
    dims = filters.ndim - 2
    return filters.transpose(dims + 1, dims, *range(dims))


FUNCTIONS = {1: tfc.conv1d, 2: tfc.conv2d, 3: tfc.conv3d}
TRANSPOSES = {1: tfc.conv1d_transpose, 2: tfc.conv2d_transpose, 3: tfc.conv3d_transpose}
FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


# ---- seed 001 ----

X001 = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
F001 = np.arange(1, 5, dtype=np.float32).reshape(2, 2, 1, 1)
Y001 = [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]]


def test_seed001_conv2d_transpose():
    """Seed 001, 3.3: tf.nn.conv2d_transpose(x, filters, [1, 4, 4, 1], strides=1, "VALID")."""
    y = tfc.conv2d_transpose(X001, F001, [1, 4, 4, 1], strides=1, padding="VALID")
    assert y.shape == (1, 4, 4, 1) and y.dtype == np.float32
    np.testing.assert_array_equal(y.reshape(4, 4), Y001)


def test_seed001_conv2d_of_the_padded_input_with_the_flipped_filter():
    """Seed 001, 3.3: the same numbers as the VALID conv2d of the zero-padded input with the
    filter [[4, 3], [2, 1]] (the error back-propagated through a convolution)."""
    padded = np.pad(X001, [(0, 0), (1, 1), (1, 1), (0, 0)])
    flipped = np.array([[4, 3], [2, 1]], np.float32).reshape(2, 2, 1, 1)
    y = tfc.conv2d(padded, flipped, [1, 1, 1, 1], "VALID")
    np.testing.assert_array_equal(y.reshape(4, 4), Y001)


def test_seed001_jacobians():
    """Seed 001, 1.2-2.2: the Jacobians TensorFlow's GradientTape prints."""
    x, filters = X001.astype(np.float64), F001.astype(np.float64)
    dx = convt.jacobian(lambda x: tfc.conv2d(x, filters, [1, 1, 1, 1], "VALID"), x)
    expected_dx = [
        [[1, 2, 0], [3, 4, 0], [0, 0, 0]],
        [[0, 1, 2], [0, 3, 4], [0, 0, 0]],
        [[0, 0, 0], [1, 2, 0], [3, 4, 0]],
        [[0, 0, 0], [0, 1, 2], [0, 3, 4]],
    ]
    np.testing.assert_allclose(dx.reshape(4, 3, 3), expected_dx, atol=1e-8)
    dk = convt.jacobian(lambda f: tfc.conv2d(x, f, [1, 1, 1, 1], "VALID"), filters)
    expected_dk = [[[1, 2], [4, 5]], [[2, 3], [5, 6]], [[4, 5], [7, 8]], [[5, 6], [8, 9]]]
    np.testing.assert_allclose(dk.reshape(4, 2, 2), expected_dk, atol=1e-8)

    def transpose(x, f):
        return tfc.conv2d_transpose(x, f, [1, 4, 4, 1], strides=1, padding="VALID")

    dx = convt.jacobian(lambda x: transpose(x, filters), x).reshape(4, 4, 3, 3)
    dk = convt.jacobian(lambda f: transpose(x, f), filters).reshape(4, 4, 2, 2)
    assert dx[2][1][1][1] == pytest.approx(3.0, abs=1e-8)
    assert dk[2][1][1][0] == pytest.approx(5.0, abs=1e-8)


# ---- sizes and padding against TensorFlow's formulas ----


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_output_sizes_follow_tensorflows_formulas(dims):
    """Odd and even sizes, strides 1-3, kernels 1-4, dilations 1-2: the output size is
    ceil(in / s) for SAME and ceil((in - k_eff + 1) / s) for VALID, in every spatial dimension;
    SAME's padding is the guide's (the odd element at the end)."""
    sizes = range(1, 10) if dims < 3 else (1, 4, 7)
    for size in sizes:
        for stride in (1, 2, 3):
            for kernel in (1, 2, 3, 4):
                for dilation in (1, 2):
                    assert tfc.same_padding(size, kernel, stride, dilation) == tf_same_pads(
                        size, kernel, stride, dilation
                    )
                    x = np.ones((1, *[size] * dims, 1))
                    filters = np.ones((*[kernel] * dims, 1, 1))
                    for padding in ("SAME", "VALID"):
                        expected = tf_output_size(size, kernel, stride, dilation, padding)
                        args = (x, filters, stride, padding)
                        if padding == "VALID" and size < span(kernel, dilation):
                            # TensorFlow returns an empty array or fails; convt always fails.
                            with pytest.raises(ValueError, match="more than the padded input"):
                                FUNCTIONS[dims](*args, dilations=dilation)
                            continue
                        y = FUNCTIONS[dims](*args, dilations=dilation)
                        assert y.shape == (1, *[expected] * dims, 1), (size, stride, kernel)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_same_equals_valid_on_the_input_padded_as_tensorflow_documents(stride, kernel):
    rng = np.random.default_rng(stride * 10 + kernel)
    for height, width in ((5, 6), (6, 7), (4, 3)):
        x = rng.standard_normal((2, height, width, 3))
        filters = rng.standard_normal((kernel, kernel + 1, 3, 2))
        pads = [(0, 0), tf_same_pads(height, kernel, stride, 1)]
        pads += [tf_same_pads(width, kernel + 1, stride, 1), (0, 0)]
        expected = tfc.conv2d(np.pad(x, pads), filters, stride, "VALID")
        assert_close(tfc.conv2d(x, filters, stride, "SAME"), expected, np.float64)
        assert_close(tfc.conv2d(x, filters, stride, [list(p) for p in pads]), expected, np.float64)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv2d_transpose_output_shape_must_map_back_to_the_input(padding):
    """Every output_shape whose conv2d (same arguments) has the input's size is accepted and
    gives that shape; every other raises ValueError, as TensorFlow."""
    rng = np.random.default_rng(0)
    for stride in (1, 2, 3):
        for kernel in (1, 2, 3, 4):
            filters = rng.standard_normal((kernel, kernel, 2, 3))
            for out in range(1, 11):
                if padding == "VALID" and out < kernel:
                    continue
                size = tf_output_size(out, kernel, stride, 1, padding)
                x = rng.standard_normal((1, size, 4, 3))
                width = 4 * stride  # ceil(width / stride) == 4 under SAME and, with kernel <=
                width += 0 if padding == "SAME" else kernel - 1  # stride + 1, under VALID
                y = tfc.conv2d_transpose(x, filters, [1, out, width, 2], stride, padding)
                assert y.shape == (1, out, width, 2)
                for wrong in (out - stride, out + stride):
                    if wrong >= 1 and tf_output_size(wrong, kernel, stride, 1, padding) != size:
                        with pytest.raises(ValueError, match="output_shape"):
                            tfc.conv2d_transpose(x, filters, [1, wrong, width, 2], stride, padding)


# ---- random configurations against the plain-loop reference ----


@st.composite
def tf_cases(draw, transposed):
    """A random TensorFlow call: (function, args, kwargs, expected result)."""
    dims = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    stride = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dilation = draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    batch = draw(st.integers(1, 2))
    last = draw(st.booleans())
    data_format = FORMATS[dims][0 if last else 1]
    padding_kind = draw(st.sampled_from(["SAME", "VALID", "explicit"]))
    explicit = [tuple(draw(st.lists(st.integers(0, 2), min_size=2, max_size=2))) for _ in kernel]
    # The image side: the convolution's input, the transposed convolution's output.
    image = [
        max(1, span(k, d) - sum(p) if padding_kind == "explicit" else span(k, d))
        + draw(st.integers(0, 3))
        for k, d, p in zip(kernel, dilation, explicit, strict=True)
    ]
    if padding_kind == "SAME":
        pads = [tf_same_pads(*a) for a in zip(image, kernel, stride, dilation, strict=True)]
        padding = "SAME"
    elif padding_kind == "VALID":
        pads, padding = [(0, 0)] * dims, "VALID"
    else:
        pads = explicit
        padding = [[0, 0], [0, 0], *map(list, pads)]
        if last:
            padding = [padding[0], *padding[2:], padding[1]]
        if draw(st.booleans()):
            padding = [list(p) for p in pads]  # the spatial pairs alone
    response = reference.conv_output_size(image, kernel, stride, pads, dilation)

    def per_dimension(values):
        form = draw(st.sampled_from(["int", "spatial", "full"]))
        if form == "int" and len(set(values)) == 1:
            return values[0]
        if form == "full":
            return [1, *values, 1] if last else [1, 1, *values]
        return list(values)

    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if transposed:
        x = rng.standard_normal((batch, c_in, *response))
        w = rng.standard_normal((c_in, c_out // groups, *kernel))
        smallest = reference.conv_transpose_output_size(
            response, kernel, stride, pads, [0] * dims, dilation
        )
        output_padding = [i - s for i, s in zip(image, smallest, strict=True)]
        expected = reference.conv_transpose_forward(
            x, w, None, stride, pads, output_padding, groups, dilation
        )
        filters = w.transpose(*range(2, dims + 2), 1, 0)  # (k..., C_out / groups, C_in)
        shape = [batch, *image, c_out] if last else [batch, c_out, *image]
    else:
        x = rng.standard_normal((batch, c_in, *image))
        w = rng.standard_normal((c_out, c_in // groups, *kernel))
        expected = reference.conv_forward(x, w, None, stride, pads, dilation, groups)
        filters = w.transpose(*range(2, dims + 2), 1, 0)  # (k..., C_in / groups, C_out)
    if last:
        x, expected = channels_last(x), channels_last(expected)
    kwargs = dict(
        padding=padding,
        data_format=data_format,
        dilations=per_dimension(dilation) if draw(st.booleans()) or max(dilation) > 1 else None,
    )
    if transposed:
        return TRANSPOSES[dims], (x, filters, shape, per_dimension(stride)), kwargs, expected
    return FUNCTIONS[dims], (x, filters, per_dimension(stride)), kwargs, expected


@settings(max_examples=REFERENCE_EXAMPLES)
@given(case=tf_cases(transposed=False))
def test_conv_matches_reference(case):
    function, args, kwargs, expected = case
    assert_close(function(*args, **kwargs), expected, np.float64)


@settings(max_examples=REFERENCE_EXAMPLES)
@given(case=tf_cases(transposed=True))
def test_conv_transpose_matches_reference(case):
    function, args, kwargs, expected = case
    assert_close(function(*args, **kwargs), expected, np.float64)


# ---- layouts, explicit padding, dilations, groups ----


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_channels_first_and_last_agree(dims):
    rng = np.random.default_rng(dims)
    last, first = FORMATS[dims]
    x = rng.standard_normal((2, *[5] * dims, 3))
    filters = rng.standard_normal((*[3] * dims, 3, 4))
    stride = [2, *[1] * (dims - 1)]
    y_last = FUNCTIONS[dims](x, filters, [1, *stride, 1], "SAME", last, [1] * (dims + 2))
    y_first = FUNCTIONS[dims](channels_first(x), filters, [1, 1, *stride], "SAME", first)
    assert_close(y_first, channels_first(y_last), np.float64)
    assert y_first.flags.c_contiguous and y_last.flags.c_contiguous

    filters = rng.standard_normal((*[3] * dims, 4, 3))  # (k..., C_out, C_in)
    y = rng.standard_normal((2, 3, *[3] * dims, 3))[:, 0]  # a non-contiguous input
    image = [6, *[3] * (dims - 1)]
    z_last = TRANSPOSES[dims](y, filters, [2, *image, 4], stride, "SAME", last)
    z_first = TRANSPOSES[dims](channels_first(y), filters, [2, 4, *image], stride, "SAME", first)
    assert z_last.shape == (2, *image, 4)
    assert_close(z_first, channels_first(z_last), np.float64)


def test_explicit_padding_in_each_format():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 5, 2))
    filters = rng.standard_normal((3, 2, 2, 3))
    pads = [[1, 2], [0, 1]]
    expected = tfc.conv2d(np.pad(x, [(0, 0), *pads, (0, 0)]), filters, 1, "VALID")
    nhwc = tfc.conv2d(x, filters, 1, [[0, 0], *pads, [0, 0]])
    nchw = tfc.conv2d(channels_first(x), filters, 1, [[0, 0], [0, 0], *pads], "NCHW")
    spatial = tfc.conv2d(x, filters, 1, pads)
    arrays = tfc.conv2d(x, filters, np.array([1, 1]), np.array([[0, 0], *pads, [0, 0]]))
    for got in (nhwc, channels_last(nchw), spatial, arrays):
        assert_close(got, expected, np.float64)
    with pytest.raises(ValueError, match=r"\[0, 0\] in the batch and channel dimensions of NHWC"):
        tfc.conv2d(x, filters, 1, [[0, 0], *pads, [1, 0]])
    with pytest.raises(ValueError, match="explicit padding must be 4 pairs"):
        tfc.conv2d(x, filters, 1, [[1, 1]])

    # conv2d_transpose with explicit padding is the adjoint of conv2d with it (same filters).
    dy = rng.standard_normal(nhwc.shape)
    z = tfc.conv2d_transpose(dy, filters, x.shape, 1, pads)
    assert np.vdot(nhwc, dy) == pytest.approx(np.vdot(x, z))


def dilate(filters, dilation):
    """The filters with dilation - 1 zeros between taps in both spatial dimensions."""
    kh, kw = filters.shape[:2]
    dilated = np.zeros((dilation * (kh - 1) + 1, dilation * (kw - 1) + 1, *filters.shape[2:]))
    dilated[::dilation, ::dilation] = filters
    return dilated


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_dilations_equal_a_filter_with_zeros_inserted(padding, stride):
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((2, 9, 8, 2))
    filters = rng.standard_normal((3, 2, 2, 3))
    expected = tfc.conv2d(x, dilate(filters, 2), stride, padding)
    assert_close(tfc.conv2d(x, filters, stride, padding, dilations=2), expected, np.float64)
    assert_close(
        tfc.conv2d(x, filters, [1, stride, stride, 1], padding, dilations=[1, 2, 2, 1]),
        expected,
        np.float64,
    )
    dy = rng.standard_normal(expected.shape)
    expected = tfc.conv2d_transpose(dy, dilate(filters, 2), x.shape, stride, padding)
    got = tfc.conv2d_transpose(dy, filters, x.shape, stride, padding, dilations=[2, 2])
    assert_close(got, expected, np.float64)


def test_groups_come_from_the_filter_depth():
    """As TensorFlow: the input's channels over filters.shape[2] is the number of groups."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 5, 5, 4))
    filters = rng.standard_normal((3, 3, 2, 6))
    y = tfc.conv2d(x, filters, 1, "SAME")
    halves = [
        tfc.conv2d(x[..., 2 * g : 2 * g + 2], filters[..., 3 * g : 3 * g + 3], 1, "SAME")
        for g in range(2)
    ]
    assert_close(y, np.concatenate(halves, axis=-1), np.float64)
    z = tfc.conv2d_transpose(y, filters, x.shape, 1, "SAME")
    parts = [
        tfc.conv2d_transpose(
            y[..., 3 * g : 3 * g + 3], filters[..., 3 * g : 3 * g + 3], [1, 5, 5, 2], 1, "SAME"
        )
        for g in range(2)
    ]
    assert_close(z, np.concatenate(parts, axis=-1), np.float64)
    with pytest.raises(ValueError, match=r"multiple of filters.shape\[2\]"):
        tfc.conv2d(x, rng.standard_normal((3, 3, 3, 6)), 1, "SAME")


def test_output_shape_forms_and_errors():
    x = np.ones((2, 3, 3, 4))
    filters = np.ones((3, 3, 5, 4))  # (kH, kW, C_out, C_in)
    assert tfc.conv2d_transpose(x, filters, [2, 6, 5, 5], 2).shape == (2, 6, 5, 5)
    assert tfc.conv2d_transpose(x, filters, (6, 5), 2).shape == (2, 6, 5, 5)
    assert tfc.conv2d_transpose(x, filters, np.array([2, 6, 6, 5]), 2).shape == (2, 6, 6, 5)
    with pytest.raises(ValueError, match=r"output_shape \[2, 7, 5, 5\] does not map back"):
        tfc.conv2d_transpose(x, filters, [2, 7, 5, 5], 2)
    with pytest.raises(ValueError, match="has batch 1, input has 2"):
        tfc.conv2d_transpose(x, filters, [1, 6, 6, 5], 2)
    with pytest.raises(ValueError, match=r"7 channels must be a positive multiple of filters"):
        tfc.conv2d_transpose(x, filters, [2, 6, 6, 7], 2)
    with pytest.raises(ValueError, match=r"filters.shape\[3\] \(in_channels\) is 4"):
        tfc.conv2d_transpose(np.ones((2, 3, 3, 2)), filters, [2, 6, 6, 5], 2)
    with pytest.raises(ValueError, match="output_shape must have 4 values"):
        tfc.conv2d_transpose(x, filters, [2, 6, 6], 2)
    with pytest.raises(ValueError, match="not a valid conv2d input"):
        tfc.conv2d_transpose(x, filters, [2, 1, 1, 5], 2, "VALID")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, f: tfc.conv2d(x, f, 1, "VALID", "NWHC"), ValueError, "data_format must be"),
        (lambda x, f: tfc.conv2d(x, f, 1, "same"), ValueError, "padding must be 'SAME'"),
        (lambda x, f: tfc.conv2d(x, f, [2, 1, 1, 1], "SAME"), ValueError, "strides must be 1 in"),
        (lambda x, f: tfc.conv2d(x, f, [1, 1, 1], "SAME"), ValueError, "list of 1, 2 or 4"),
        (lambda x, f: tfc.conv2d(x, f, 1.5, "SAME"), TypeError, "strides must be an int"),
        (lambda x, f: tfc.conv2d(x, f, 1, "SAME", dilations=[1, 1, 2]), ValueError, "dilations"),
        (lambda x, f: tfc.conv2d(x[0], f, 1, "SAME"), ValueError, "input must have 4 dim"),
        (lambda x, f: tfc.conv2d(x, f[0], 1, "SAME"), ValueError, "filters must have 4 dim"),
        (lambda x, f: tfc.conv2d(x, f, 0, "SAME"), ValueError, "stride"),
        (lambda x, f: tfc.conv2d(x.astype(complex), f, 1, "SAME"), TypeError, "input must be"),
    ],
)
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2)))


def test_dtypes_and_no_copy_of_channels_first_input(monkeypatch):
    x32 = np.ones((1, 4, 4, 2), np.float32)
    f32 = np.ones((3, 3, 2, 2), np.float32)
    assert tfc.conv2d(x32, f32, 1, "SAME").dtype == np.float32
    assert tfc.conv2d(x32.astype(int), f32.astype(int), 1, "SAME").dtype == np.float64
    assert tfc.conv2d(x32, f32.astype(np.float64), 1, "SAME").dtype == np.float64

    seen = []
    forward = convt._core.forward
    monkeypatch.setattr(convt._core, "forward", lambda g, x, w: seen.append(x) or forward(g, x, w))
    nchw = np.ones((1, 2, 4, 4), np.float32)
    tfc.conv2d(nchw, f32, 1, "SAME", "NCHW")
    tfc.conv2d_transpose(nchw, f32, [1, 2, 4, 4], 1, "SAME", "NCHW")
    assert all(array is nchw for array in seen) and len(seen) == 2


# ---- PyTorch and TensorFlow themselves ----


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_conv2d_transpose_matches_torch_after_layout_conversion(stride, kernel):
    """SAME and VALID map onto PyTorch's conv_transpose2d with padding = the padding before and
    output_padding = what makes the size (when PyTorch allows it, output_padding < stride)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10 * stride + kernel)
    filters = rng.standard_normal((kernel, kernel, 2, 3))  # (kH, kW, C_out, C_in)
    weight = torch.from_numpy(np.ascontiguousarray(torch_weight(filters)))
    checked = 0
    for padding in ("SAME", "VALID"):
        for out in range(kernel, kernel + 2 * stride + 1):
            size = tf_output_size(out, kernel, stride, 1, padding)
            before = tf_same_pads(out, kernel, stride, 1)[0] if padding == "SAME" else 0
            output_padding = out - ((size - 1) * stride - 2 * before + kernel)
            if not 0 <= output_padding < stride:
                continue
            x = rng.standard_normal((2, size, size, 3))
            expected = torch.nn.functional.conv_transpose2d(
                torch.from_numpy(np.ascontiguousarray(channels_first(x))),
                weight,
                stride=stride,
                padding=before,
                output_padding=output_padding,
            ).numpy()
            got = tfc.conv2d_transpose(x, filters, [2, out, out, 2], stride, padding)
            assert_close(got, channels_last(expected), np.float64)
            checked += 1
    assert checked > 0


# Configurations where TensorFlow 2.21's CPU kernels follow its documented rules. Two corners are
# left out because TensorFlow disagrees with itself there: float32 conv2d through oneDNN (the
# default) returns wrong values for some strided shapes (e.g. input 5x4, filter 3x4, strides
# [1, 3]), and float64 Conv3D with SAME and a stride larger than the kernel (Eigen) shifts the
# window; convt follows the documented rule, as TensorFlow's float32 Conv3D does.
TF_CONFIGS = [
    # dims, input spatial, kernel, strides, padding, dilations
    (1, (7,), (3,), (2,), "SAME", (1,)),
    (1, (8,), (2,), (3,), "VALID", (1,)),
    (1, (9,), (3,), (1,), "SAME", (2,)),
    (2, (6, 7), (3, 2), (2, 2), "SAME", (1, 1)),
    (2, (5, 5), (3, 3), (2, 1), "VALID", (1, 1)),
    (2, (8, 6), (4, 3), (3, 2), "SAME", (1, 1)),
    (2, (7, 7), (3, 3), (1, 1), "SAME", (2, 2)),
    (2, (6, 5), (2, 3), (1, 1), [[0, 0], [1, 2], [0, 1], [0, 0]], (1, 1)),
    (3, (4, 5, 3), (2, 3, 1), (1, 2, 1), "VALID", (1, 1, 1)),
    (3, (4, 4, 4), (3, 3, 3), (1, 1, 1), "SAME", (1, 1, 1)),
]


def test_matches_tensorflow():
    """The functions against TensorFlow itself, when it is installed (float64, NHWC)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(5)
    for dims, size, kernel, strides, padding, dilations in TF_CONFIGS:
        x = rng.standard_normal((2, *size, 3))
        filters = rng.standard_normal((*kernel, 3, 2))
        full = [1, *strides, 1]
        if dims == 1:
            expected = tf.nn.conv1d(x, filters, list(strides), padding, dilations=list(dilations))
        else:
            conv = tf.nn.conv2d if dims == 2 else tf.nn.conv3d
            expected = conv(x, filters, full, padding, dilations=[1, *dilations, 1])
        y = FUNCTIONS[dims](x, filters, full, padding, dilations=list(dilations))
        assert_close(y, expected.numpy(), np.float64, f"conv{dims}d {size} {kernel} {strides}")
        if max(dilations) > 1:
            continue  # TensorFlow's CPU has no dilated transposed convolution
        transpose = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose}.get(
            dims, tf.nn.conv3d_transpose
        )
        dy = rng.standard_normal(y.shape)  # the same filters: (k..., C_out, C_in) of the adjoint
        expected = transpose(dy, filters, list(x.shape), full, padding).numpy()
        got = TRANSPOSES[dims](dy, filters, list(x.shape), full, padding)
        assert_close(got, expected, np.float64, f"conv{dims}d_transpose {size} {kernel}")


def test_docstring_examples():
    assert doctest.testmod(tfc, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
