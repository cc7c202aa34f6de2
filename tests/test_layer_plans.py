"""Each convolution layer holds one plan (convt._core.Plan) for its configuration and input
shape: repeated forwards reuse it and its packed weight, a changed weight is packed again, and a
new input shape gets a new plan. Results equal the functional API's, which plans per call."""

import numpy as np
import pytest
from convt import _core, nn
from convt import functional as F  # noqa: N812


def test_repeated_forwards_reuse_one_plan_and_its_packed_weight():
    layer = nn.Conv2d(16, 32, 3, padding=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    y = layer(x)
    plan = layer._plan
    assert isinstance(plan, _core.Plan) and plan.keep_weights
    assert plan.geometry.input_shape == x.shape
    packings = plan.kept_packings
    for _ in range(3):
        np.testing.assert_array_equal(layer(x), y)
    assert layer._plan is plan and plan.kept_packings == packings
    with nn.no_grad():
        layer(x)
    # An optimizer's in-place step changes the weight: it is packed again, never used stale.
    layer.weight.data -= 0.1 * rng.standard_normal(layer.weight.shape).astype(np.float32)
    expected = F.conv2d(x, layer.weight.data, layer.bias.data, padding=1)
    np.testing.assert_array_equal(layer(x), expected)
    assert layer._plan is plan
    if packings:
        assert plan.kept_packings == packings + 1


def test_a_new_input_shape_gets_a_new_plan():
    layer = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    rng = np.random.default_rng(1)
    small, large = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((3, 4, 7, 6))
    w, b = layer.weight.data, layer.bias.data
    for x in (small, large, small):
        y = layer(x)
        assert layer._plan.geometry.input_shape == x.shape
        np.testing.assert_array_equal(y, F.conv_transpose2d(x, w, b, stride=2, padding=1))
        dy = rng.standard_normal(y.shape)
        expected = F.conv_transpose2d_backward(dy, x, w, stride=2, padding=1)
        layer.zero_grad()
        np.testing.assert_array_equal(layer.backward(dy), expected[0])
        np.testing.assert_array_equal(layer.weight.grad, expected[1].astype(np.float32))
    unbatched = small[0]
    assert layer(unbatched).shape == (2, 9, 9)
    assert layer._plan.geometry.input_shape == unbatched.shape


def test_output_size_is_part_of_the_plan():
    layer = nn.ConvTranspose1d(2, 2, 3, stride=2)
    x = np.ones((1, 2, 4), np.float32)
    assert layer(x, output_size=[9]).shape == (1, 2, 9)
    assert layer(x, output_size=[10]).shape == (1, 2, 10)
    assert layer._plan.geometry.output_shape == (1, 2, 10)
    assert layer(x).shape == (1, 2, 9)


def test_a_changed_configuration_is_planned_again():
    layer = nn.Conv1d(2, 2, 3)
    x = np.random.default_rng(2).standard_normal((1, 2, 9))
    layer(x)
    layer.stride = (2,)
    np.testing.assert_array_equal(layer(x), F.conv1d(x, layer.weight, layer.bias, stride=2))
    layer.weight = nn.Parameter(np.ones((3, 2, 3)))
    layer.bias = None
    assert layer(x).shape == (1, 3, 4)


def test_inputs_of_other_dtypes_follow_the_functional_promotion():
    layer = nn.Conv2d(1, 1, 2)
    for x in (np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3), np.float16), [[[[1, 2], [3, 4]]]]):
        expected = F.conv2d(x, layer.weight, layer.bias)
        y = layer(x)
        assert y.dtype == expected.dtype
        np.testing.assert_array_equal(y, expected)
        layer.backward(np.ones_like(y))


def test_backward_checks_grad_output_against_the_plan():
    layer = nn.Conv2d(1, 1, 3)
    layer(np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"grad_output"):
        layer.backward(np.ones((1, 1, 4, 3)))
