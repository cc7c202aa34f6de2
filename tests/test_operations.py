"""The table of operations makes every public convolution: the functions of convt.functional,
convt.torch, convt.compat.tensorflow and convt.dask and the layers of convt.nn, each named,
documented and with the signature of PyTorch's (or TensorFlow's) function of that operation."""

import ast
import inspect
import re

import convt
import pytest
from convt import functional, nn
from convt._operations import OPERATIONS, Operation
from convt.compat import tensorflow

IDS = [operation.name for operation in OPERATIONS]


def parameters(function) -> list[tuple[str, object]]:
    """``(name, default)`` of each parameter that may be passed by position."""
    return [
        (p.name, p.default)
        for p in inspect.signature(function).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD
    ]


def torch_parameters(operation: Operation) -> list[tuple[str, object]]:
    """The parameters of ``torch.nn.functional``'s function, read from the signature its
    docstring opens with (the function is a builtin, which ``inspect`` cannot read)."""
    torch = pytest.importorskip("torch")
    doc = getattr(torch.nn.functional, operation.name).__doc__
    header = re.search(rf"^{operation.name}\((.*)\) -> Tensor$", doc, re.M)
    assert header, doc[:200]
    call = ast.parse(f"f({header.group(1)})", mode="eval").body
    assert isinstance(call, ast.Call)
    names = [ast.unparse(a) for a in call.args]
    names += [k.arg for k in call.keywords]
    defaults = [inspect.Parameter.empty] * len(call.args)
    defaults += [ast.literal_eval(k.value) for k in call.keywords]
    return list(zip(names, defaults, strict=True))


def test_the_table_holds_the_six_operations_once():
    assert [(o.name, o.dims, o.transposed) for o in OPERATIONS] == [
        ("conv1d", 1, False),
        ("conv2d", 2, False),
        ("conv3d", 3, False),
        ("conv_transpose1d", 1, True),
        ("conv_transpose2d", 2, True),
        ("conv_transpose3d", 3, True),
    ]
    assert len({o.layer for o in OPERATIONS}) == len({o.tensorflow for o in OPERATIONS}) == 6


@pytest.mark.parametrize("operation", OPERATIONS, ids=IDS)
def test_functional_has_the_function_and_its_backward_with_pytorchs_signature(operation):
    function = getattr(functional, operation.name)
    backward = getattr(functional, f"{operation.name}_backward")
    assert {operation.name, f"{operation.name}_backward"} <= set(functional.__all__)
    assert (function.__name__, backward.__name__) == (operation.name, f"{operation.name}_backward")
    assert f"torch.nn.functional.{operation.name}" in function.__doc__
    assert backward.__doc__.startswith(f"Gradients of ``{operation.name}``")
    # The backward takes grad_output and the forward's arrays, then the forward's arguments.
    forward = parameters(function)
    assert [name for name, _ in forward[:3]] == ["input", "weight", "bias"]
    assert parameters(backward) == [
        ("grad_output", inspect.Parameter.empty),
        ("input", inspect.Parameter.empty),
        ("weight", inspect.Parameter.empty),
        *forward[3:],
    ]
    keywords = {"padding_mode", "out"} | ({"output_size"} if operation.transposed else set())
    signature = inspect.signature(function).parameters
    assert {n for n, p in signature.items() if p.kind is p.KEYWORD_ONLY} == keywords
    assert forward == torch_parameters(operation)


@pytest.mark.parametrize("operation", OPERATIONS, ids=IDS)
def test_the_torch_function_has_pytorchs_signature(operation):
    convt_torch = pytest.importorskip("convt.torch")
    function = getattr(convt_torch, operation.name)
    assert function.__name__ == operation.name and operation.name in convt_torch.__all__
    assert function.__doc__.startswith(f"``torch.nn.functional.{operation.name}`` computed by")
    assert parameters(function) == torch_parameters(operation)


@pytest.mark.parametrize("operation", OPERATIONS, ids=IDS)
def test_the_layer_is_the_operations_with_pytorchs_constructor(operation):
    layer = getattr(nn, operation.layer)
    assert layer.__name__ == operation.layer and operation.layer in nn.__all__
    assert (layer.dims, layer.transposed) == (operation.dims, operation.transposed)
    assert f"torch.nn.{operation.layer}" in layer.__doc__
    assert operation.weight_layout in layer.__doc__
    expected = {1: "(C_out, C_in / groups, k)", 2: "(C_out, C_in / groups, kH, kW)"}
    if not operation.transposed and operation.dims in expected:
        assert operation.weight_layout == expected[operation.dims]
    made = layer(4, 6, 3, groups=2)
    assert made.weight.shape == convt.weight_shape(operation.name, 4, 6, 3, groups=2)
    torch = pytest.importorskip("torch")
    theirs = inspect.signature(getattr(torch.nn, operation.layer).__init__).parameters
    ours = inspect.signature(layer.__init__).parameters
    assert [(n, p.default) for n, p in ours.items() if n != "generator"] == [
        (n, p.default) for n, p in theirs.items()
    ]
    assert ours["generator"].kind is inspect.Parameter.KEYWORD_ONLY


# TensorFlow's signatures, from its documentation of tf.nn (TensorFlow is not needed here).
TENSORFLOW = {
    "conv1d": "input, filters, stride, padding, data_format='NWC', dilations=None, name=None",
    "conv2d": "input, filters, strides, padding, data_format='NHWC', dilations=None, name=None",
    "conv3d": "input, filters, strides, padding, data_format='NDHWC', dilations=None, name=None",
    "conv1d_transpose": (
        "input, filters, output_shape, strides, padding='SAME', data_format='NWC', "
        "dilations=None, name=None"
    ),
    "conv2d_transpose": (
        "input, filters, output_shape, strides, padding='SAME', data_format='NHWC', "
        "dilations=None, name=None"
    ),
    "conv3d_transpose": (
        "input, filters, output_shape, strides, padding='SAME', data_format='NDHWC', "
        "dilations=None, name=None"
    ),
}


@pytest.mark.parametrize("operation", OPERATIONS, ids=IDS)
def test_the_tensorflow_function_has_tensorflows_signature(operation):
    function = getattr(tensorflow, operation.tensorflow)
    assert function.__name__ == operation.tensorflow and operation.tensorflow in tensorflow.__all__
    assert function.__doc__.startswith(f"``tf.nn.{operation.tensorflow}``: filters ``(")
    assert operation.kernel_axes in function.__doc__
    shown = ", ".join(
        name if default is inspect.Parameter.empty else f"{name}={default!r}"
        for name, default in parameters(function)
    )
    assert shown == TENSORFLOW[operation.tensorflow]


@pytest.mark.parametrize("operation", OPERATIONS, ids=IDS)
def test_the_dask_functions_take_the_functional_arguments(operation):
    convt_dask = pytest.importorskip("convt.dask")
    for suffix in ("", "_backward"):
        function = getattr(convt_dask, operation.name + suffix)
        assert function.__name__ == operation.name + suffix
        assert parameters(function) == parameters(getattr(functional, operation.name + suffix))
