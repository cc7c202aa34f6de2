# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False
"""An extension that uses every declaration of convt/__init__.pxd, built by
tests/test_downstream.py against the installed package and compared there with convt's Python API.
Arrays are NumPy's, seen as typed memoryviews; every kernel runs without the GIL."""

from cython cimport floating
from libc.string cimport memcpy
from libcpp.memory cimport unique_ptr

cimport convt
from convt cimport (
    Algorithm,
    Kernel,
    Plan,
    ConvGeometry,
    ConvKind,
    ConvOptions,
    Gradients,
    Matrix,
    PaddingRule,
    Shape,
    Strides,
    index_t,
)

import numpy as np


def as_list(value):
    return list(value) if isinstance(value, (tuple, list)) else [value]


cdef Shape shape_of(Py_ssize_t* shape, int ndim):
    cdef Shape result
    for i in range(ndim):
        result.push_back(shape[i])
    return result


cdef ConvGeometry geometry_of(str kind, Shape input_shape, Shape weight_shape,
                              dict options) except *:
    """The geometry of a call given PyTorch's keyword arguments (ints or tuples)."""
    cdef ConvOptions o
    o.stride = as_list(options.get("stride", 1))
    o.padding = as_list(options.get("padding", 0))
    o.dilation = as_list(options.get("dilation", 1))
    o.groups = options.get("groups", 1)
    o.output_padding = as_list(options.get("output_padding", 0))
    if "padding_after" in options:
        o.padding_after = as_list(options["padding_after"])
    if "output_size" in options:
        o.output_size = as_list(options["output_size"])
    rule = options.get("padding_rule")
    if rule == "same":
        o.padding_rule = PaddingRule.same
    elif rule == "valid":
        o.padding_rule = PaddingRule.valid
    else:
        o.padding_rule = PaddingRule.explicit_values
    o.padding_mode = convt.parse_padding_mode(options.get("padding_mode", "zeros").encode())
    cdef int dims = weight_shape.size() - 2
    if kind == "conv":
        return ConvGeometry.convolution(dims, input_shape, weight_shape, o)
    return ConvGeometry.transposed(dims, input_shape, weight_shape, o)


def default_geometry(str kind, input_shape, weight_shape):
    """The builders with their options left out."""
    cdef ConvGeometry g
    if kind == "conv":
        g = ConvGeometry.convolution(len(weight_shape) - 2, input_shape, weight_shape)
    else:
        g = ConvGeometry.transposed(len(weight_shape) - 2, input_shape, weight_shape)
    return tuple(g.output_shape())


def describe(str kind, input_shape, weight_shape, **options):
    """Everything the geometry says about a call, as Python values."""
    cdef ConvGeometry g = geometry_of(kind, input_shape, weight_shape, options)
    return {
        "name": g.name().decode(),
        "transposed": g.kind == ConvKind.transposed,
        "dims": g.dims,
        "batched": g.batched,
        "batch": g.batch,
        "groups": g.groups,
        "x_channels": g.x_channels,
        "y_channels": g.y_channels,
        "x_size": [g.x_size[g.axis(d)] for d in range(g.dims)],
        "y_size": [g.y_size[g.axis(d)] for d in range(g.dims)],
        "kernel": [g.kernel[g.axis(d)] for d in range(g.dims)],
        "stride": [g.stride[g.axis(d)] for d in range(g.dims)],
        "padding_before": [g.padding_before[g.axis(d)] for d in range(g.dims)],
        "padding_after": [g.padding_after[g.axis(d)] for d in range(g.dims)],
        "dilation": [g.dilation[g.axis(d)] for d in range(g.dims)],
        "output_padding": [g.output_padding[g.axis(d)] for d in range(g.dims)],
        "padding_mode": convt.padding_mode_name(g.padding_mode).decode(),
        "output_size_first": [g.output_size_first[g.axis(d)] for d in range(g.dims)],
        "output_size_last": [g.output_size_last[g.axis(d)] for d in range(g.dims)],
        "x_spatial": g.x_spatial(),
        "y_spatial": g.y_spatial(),
        "kernel_volume": g.kernel_volume(),
        "x_channels_per_group": g.x_channels_per_group(),
        "y_channels_per_group": g.y_channels_per_group(),
        "x_shape": tuple(g.x_shape()),
        "y_shape": tuple(g.y_shape()),
        "weight_shape": tuple(g.weight_shape()),
        "input_shape": tuple(g.input_shape()),
        "output_shape": tuple(g.output_shape()),
        "input_channels": g.input_channels(),
        "output_channels": g.output_channels(),
        "max_spatial_dims": convt.max_spatial_dims,
    }


def expect_shape(str kind, input_shape, weight_shape, actual, expected):
    cdef ConvGeometry g = geometry_of(kind, input_shape, weight_shape, {})
    g.expect_shape(b"grad_output", actual, expected)


cdef dtype_of(floating* tag):
    return np.float32 if floating is float else np.float64


def layer_forward(str kind, floating[:, :, :, ::1] x, floating[:, :, :, ::1] w,
                  floating[::1] bias=None, **options):
    """A 2-D layer's output through convt::forward (layer.hpp)."""
    cdef ConvGeometry g = geometry_of(kind, shape_of(x.shape, 4), shape_of(w.shape, 4), options)
    out = np.empty(tuple(g.output_shape()), dtype_of(&x[0, 0, 0, 0]))
    cdef floating[:, :, :, ::1] y = out
    cdef const floating* bias_data = NULL
    if bias is not None:
        bias_data = &bias[0]
    with nogil:
        convt.forward(g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], bias_data, &y[0, 0, 0, 0])
    return out


def layer_backward(str kind, floating[:, :, :, ::1] dy, floating[:, :, :, ::1] x,
                   floating[:, :, :, ::1] w, **options):
    """(dx, dw, db) through convt::backward (layer.hpp)."""
    cdef ConvGeometry g = geometry_of(kind, shape_of(x.shape, 4), shape_of(w.shape, 4), options)
    dtype = dtype_of(&x[0, 0, 0, 0])
    dx_array = np.empty_like(x, dtype=dtype)
    dw_array = np.empty_like(w, dtype=dtype)
    db_array = np.empty(g.output_channels(), dtype)
    cdef floating[:, :, :, ::1] dx = dx_array
    cdef floating[:, :, :, ::1] dw = dw_array
    cdef floating[::1] db = db_array
    with nogil:
        convt.backward(g, &dy[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0], &dx[0, 0, 0, 0],
                       &dw[0, 0, 0, 0], &db[0])
    return dx_array, dw_array, db_array


def conv2d_kernels(floating[:, :, :, ::1] x, floating[:, :, :, ::1] w, floating[::1] bias,
                   floating[:, :, :, ::1] dy, **options):
    """A convolution layer's forward pass and gradients through the three kernels and the bias
    pair (kernels.hpp): (y, dx, dw, db)."""
    cdef ConvGeometry g = geometry_of("conv", shape_of(x.shape, 4), shape_of(w.shape, 4), options)
    dtype = dtype_of(&x[0, 0, 0, 0])
    arrays = (np.empty(tuple(g.y_shape()), dtype), np.empty_like(x, dtype=dtype),
              np.empty_like(w, dtype=dtype), np.empty(g.y_channels, dtype))
    cdef floating[:, :, :, ::1] y = arrays[0]
    cdef floating[:, :, :, ::1] dx = arrays[1]
    cdef floating[:, :, :, ::1] dw = arrays[2]
    cdef floating[::1] db = arrays[3]
    with nogil:
        convt.conv_forward(g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], &y[0, 0, 0, 0])
        convt.add_bias(g, &bias[0], &y[0, 0, 0, 0])
        convt.conv_backward_input(g, &dy[0, 0, 0, 0], &w[0, 0, 0, 0], &dx[0, 0, 0, 0])
        convt.conv_backward_weight(g, &x[0, 0, 0, 0], &dy[0, 0, 0, 0], &dw[0, 0, 0, 0])
        convt.bias_backward(g, &dy[0, 0, 0, 0], &db[0])
    return arrays


def planned_layer(str kind, floating[:, :, :, ::1] x, floating[:, :, :, ::1] w,
                  floating[::1] bias, floating[:, :, :, ::1] dy, **options):
    """A layer through one Plan keeping its weights, run twice forward and once backward, and
    its three kernels: (y, dx, dw, db, kernels' results, algorithms, packings, geometry name)."""
    cdef ConvGeometry g = geometry_of(kind, shape_of(x.shape, 4), shape_of(w.shape, 4), options)
    cdef unique_ptr[Plan] plan = unique_ptr[Plan](new Plan(g))
    plan.get().keep_weights(True)
    dtype = dtype_of(&x[0, 0, 0, 0])
    arrays = [np.empty(tuple(g.output_shape()), dtype), np.empty_like(x, dtype=dtype),
              np.empty_like(w, dtype=dtype), np.empty(g.output_channels(), dtype)]
    cdef floating[:, :, :, ::1] y = arrays[0]
    cdef floating[:, :, :, ::1] dx = arrays[1]
    cdef floating[:, :, :, ::1] dw = arrays[2]
    cdef floating[::1] db = arrays[3]
    with nogil:
        plan.get().forward(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &bias[0], &y[0, 0, 0, 0])
        plan.get().forward(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &bias[0], &y[0, 0, 0, 0])
        plan.get().backward(&dy[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0], &dx[0, 0, 0, 0],
                            &dw[0, 0, 0, 0], &db[0])
    # The kernels on the x and y sides (y_shape, x_shape) whatever the layer.
    kernels = [np.empty(tuple(g.y_shape()), dtype), np.empty(tuple(g.x_shape()), dtype),
               np.empty_like(w, dtype=dtype)]
    cdef floating[:, :, :, ::1] x_side = x if g.kind == ConvKind.convolution else dy
    cdef floating[:, :, :, ::1] y_side = dy if g.kind == ConvKind.convolution else x
    cdef floating[:, :, :, ::1] forward_out = kernels[0]
    cdef floating[:, :, :, ::1] input_gradient = kernels[1]
    cdef floating[:, :, :, ::1] weight_gradient = kernels[2]
    with nogil:
        plan.get().conv_forward(&x_side[0, 0, 0, 0], &w[0, 0, 0, 0], &forward_out[0, 0, 0, 0])
        plan.get().conv_backward_input(&y_side[0, 0, 0, 0], &w[0, 0, 0, 0],
                                       &input_gradient[0, 0, 0, 0])
        plan.get().conv_backward_weight(&x_side[0, 0, 0, 0], &y_side[0, 0, 0, 0],
                                        &weight_gradient[0, 0, 0, 0])
    algorithms = {
        convt.kernel_name(kernel).decode(): convt.algorithm_name(plan.get().algorithm(kernel)).decode()
        for kernel in (Kernel.forward, Kernel.backward_input, Kernel.backward_weight)
    }
    return {
        "outputs": arrays,
        "kernels": kernels,
        "algorithms": algorithms,
        "keeps_weights": plan.get().keeps_weights(),
        "kept_packings": plan.get().kept_packings(),
        "kept_bytes": plan.get().kept_bytes(),
        "name": plan.get().geometry().name().decode(),
        "direct": convt.algorithm_name(Algorithm.direct).decode(),
    }


cdef to_array(Matrix[floating]& matrix):
    out = np.empty((matrix.rows(), matrix.cols()), dtype_of(matrix.data()))
    cdef floating[:, ::1] values = out
    if matrix.size():
        memcpy(&values[0, 0], matrix.data(), matrix.size() * sizeof(floating))
    return out


cdef Strides strides_of(strides):
    cdef Strides result
    result[0] = strides[0]
    result[1] = strides[1]
    return result


def matrix_functions(floating[:, ::1] x, floating[:, ::1] kernel, floating[:, ::1] dz, strides):
    """The seed's functions on Matrix views of the arrays: a dict of their results."""
    cdef Matrix[floating] xm = Matrix[floating].view(&x[0, 0], x.shape[0], x.shape[1])
    cdef Matrix[floating] km = Matrix[floating].view(&kernel[0, 0], kernel.shape[0],
                                                     kernel.shape[1])
    cdef Matrix[floating] dzm = Matrix[floating].view(&dz[0, 0], dz.shape[0], dz.shape[1])
    cdef Strides s = strides_of(strides)
    cdef Matrix[floating] convolved, full, rotated, unit, cnn_y, fcn_y
    cdef Gradients[floating] cnn, fcn
    with nogil:
        convolved = xm.convolute(km, s)
        full = xm.convolute_full(km, s)
        unit = xm.convolute(km)
        rotated = km.rotate_180()
        cnn_y = convt.cnn_forward(km, xm, s)
        fcn_y = convt.fcn_forward(km, xm, s)
    # dz has the output shape of cnn_forward or of fcn_forward, the caller says which by its size.
    if dz.shape[0] == cnn_y.rows() and dz.shape[1] == cnn_y.cols():
        with nogil:
            cnn = convt.cnn_backward(xm, dzm, km, s)
        gradients = {"cnn_dx": to_array(cnn.dx), "cnn_dw": to_array(cnn.dw)}
    else:
        with nogil:
            fcn = convt.fcn_backward(xm, dzm, km, s)
        gradients = {"fcn_dx": to_array(fcn.dx), "fcn_dw": to_array(fcn.dw)}
    return {
        "views": (xm.rows(), xm.cols(), xm.owns(), xm.data() == &x[0, 0]),
        "convolute": to_array(convolved),
        "convolute_unit_strides": to_array(unit),
        "convolute_full": to_array(full),
        "rotate_180": to_array(rotated),
        "cnn_forward": to_array(cnn_y),
        "fcn_forward": to_array(fcn_y),
        **gradients,
    }


def matrix_fcn_defaults(double[:, ::1] x, double[:, ::1] kernel, double[:, ::1] dz):
    """fcn_forward / fcn_backward / cnn_forward / cnn_backward with their strides left out."""
    cdef Matrix[double] xm = Matrix[double].view(&x[0, 0], x.shape[0], x.shape[1])
    cdef Matrix[double] km = Matrix[double].view(&kernel[0, 0], kernel.shape[0], kernel.shape[1])
    cdef Matrix[double] dzm = Matrix[double].view(&dz[0, 0], dz.shape[0], dz.shape[1])
    cdef Matrix[double] y = convt.fcn_forward(km, xm)
    cdef Gradients[double] g = convt.fcn_backward(xm, dzm, km)
    return to_array(y), to_array(g.dx), to_array(g.dw), to_array(convt.cnn_forward(km, y))


def matrix_owning(index_t rows, index_t cols):
    """An owning Matrix written through operator(), copied, assigned and read back with at()."""
    cdef Matrix[double] m = Matrix[double](rows, cols)
    cdef index_t i, j
    cdef double* element
    for i in range(rows):
        for j in range(cols):
            element = &m(i, j)
            element[0] = 10 * i + j
    cdef Matrix[double] copy = Matrix[double](m)
    cdef Matrix[double] assigned
    assigned = copy
    values = [[assigned.at(i, j) for j in range(cols)] for i in range(rows)]
    return m.owns(), copy.owns(), copy.data() != m.data(), values


def matrix_at(index_t rows, index_t cols, index_t i, index_t j):
    cdef Matrix[double] m = Matrix[double](rows, cols)
    return m.at(i, j)


def matrix_convolute(double[:, ::1] x, double[:, ::1] kernel):
    cdef Matrix[double] xm = Matrix[double].view(&x[0, 0], x.shape[0], x.shape[1])
    cdef Matrix[double] km = Matrix[double].view(&kernel[0, 0], kernel.shape[0], kernel.shape[1])
    cdef Matrix[double] result
    with nogil:
        result = xm.convolute(km)
    return to_array(result)


def set_num_threads(int threads):
    with nogil:
        convt.set_num_threads(threads)


def get_num_threads():
    with nogil:
        threads = convt.get_num_threads()
    return threads
