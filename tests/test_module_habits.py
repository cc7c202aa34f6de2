"""PyTorch's module habits in convt.nn: train/eval, the module and parameter iterators (shared
modules and parameters once), zero_grad(set_to_none), Parameter as an array, assignment checks
and constructor arguments checked at construction with the functional API's messages."""

import copy as copy_module
import pickle

import numpy as np
import pytest
from convt import functional as F  # noqa: N812
from convt import nn, optim

torch = pytest.importorskip("torch")


def pair():
    """The same model in convt and PyTorch, with one layer and one activation shared."""
    shared, relu = nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()
    inner = nn.Sequential(nn.ConvTranspose2d(2, 2, 2), relu)
    ours = nn.Sequential(shared, relu, inner, shared, nn.Conv2d(2, 1, 1, bias=False))
    shared_t, relu_t = torch.nn.Conv2d(2, 2, 3, padding=1), torch.nn.ReLU()
    inner_t = torch.nn.Sequential(torch.nn.ConvTranspose2d(2, 2, 2), relu_t)
    theirs = torch.nn.Sequential(
        shared_t, relu_t, inner_t, shared_t, torch.nn.Conv2d(2, 1, 1, bias=False)
    )
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def names(pairs):
    return [(name, type(module).__name__) for name, module in pairs]


def test_module_iterators_match_torch():
    ours, theirs = pair()
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert names(ours.named_modules(remove_duplicate=False)) == names(
        theirs.named_modules(remove_duplicate=False)
    )
    assert names(ours.named_children()) == names(theirs.named_children())
    assert [type(m).__name__ for m in ours.modules()] == [
        type(m).__name__ for m in theirs.modules()
    ]
    assert [type(m).__name__ for m in ours.children()] == [
        type(m).__name__ for m in theirs.children()
    ]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters(remove_duplicate=False)] == [
        n for n, _ in theirs.named_parameters(remove_duplicate=False)
    ]
    assert [n for n, _ in ours[2].named_parameters(prefix="2", recurse=False)] == []
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    visited, visited_t = [], []
    assert ours.apply(lambda m: visited.append(type(m).__name__)) is ours
    theirs.apply(lambda m: visited_t.append(type(m).__name__))
    assert visited == visited_t


def test_train_and_eval_set_every_module():
    ours, theirs = pair()
    assert ours.training and all(m.training for m in ours.modules())
    assert ours.eval() is ours
    assert not any(m.training for m in ours.modules())
    assert ours.train() is ours and all(m.training for m in ours.modules())
    ours[2].train(False)
    theirs[2].train(False)
    assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()]
    with pytest.raises(TypeError, match=r"mode must be a bool"):
        ours.train("no")


def test_a_shared_parameter_is_stepped_once():
    layer = nn.Conv1d(1, 1, 1, bias=False)
    layer.weight.data[...] = 1.0
    model = nn.Sequential(layer, layer)
    opt = optim.SGD(model.parameters(), lr=0.1)
    layer.weight.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(layer.weight.data, 0.9)  # not 0.8


def test_zero_grad_set_to_none_as_torch():
    ours, theirs = pair()
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    ours.zero_grad(set_to_none=True)
    theirs.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in ours.parameters())
    y = ours[0](x)  # only the shared layer takes part
    dy = np.ones_like(y)
    ours[0].backward(dy)
    theirs[0](torch.tensor(x)).backward(torch.tensor(dy))
    for (name, p), (_, p_t) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert (p.grad is None) == (p_t.grad is None), name
        if p.grad is not None:
            np.testing.assert_allclose(p.grad, p_t.grad.numpy(), rtol=1e-5, atol=1e-6)
    before = {n: p.data.copy() for n, p in ours.named_parameters()}
    optim.SGD(ours.parameters(), lr=0.1, momentum=0.9).step()  # skips the None gradients
    for name, p in ours.named_parameters():
        assert np.array_equal(p.data, before[name]) == name.startswith(("2.", "4."))
    ours.zero_grad()
    assert all(p.grad is not None and not p.grad.any() for p in ours.parameters())


def test_parameter_is_the_array_numpy_and_functional_ask_for():
    layer = nn.Conv2d(2, 3, 3, padding=1)
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype(np.float32)
    assert np.asarray(layer.weight).shape == (3, 2, 3, 3) == layer.weight.shape
    assert np.asarray(layer.weight) is layer.weight.data
    assert np.asarray(layer.weight, dtype=np.float64).dtype == np.float64
    assert layer.weight.dtype == np.float32 and layer.weight.ndim == 4
    np.testing.assert_array_equal(F.conv2d(x, layer.weight, layer.bias, padding=1), layer(x))
    np.testing.assert_array_equal(np.array(layer.weight, copy=True), layer.weight.data)
    assert not np.shares_memory(np.array(layer.weight, copy=True), layer.weight.data)


def test_assigning_a_plain_array_to_a_parameter_raises_as_torch():
    layer, layer_t = nn.Conv2d(1, 2, 3), torch.nn.Conv2d(1, 2, 3)
    with pytest.raises(TypeError, match=r"cannot assign 'torch.FloatTensor' as parameter 'weight'"):
        layer_t.weight = torch.zeros(2, 1, 3, 3)
    with pytest.raises(TypeError, match=r"cannot assign 'numpy.ndarray' as parameter 'weight'"):
        layer.weight = np.zeros((2, 1, 3, 3))
    assert len(layer.parameters()) == 2
    layer.weight = nn.Parameter(np.zeros((2, 1, 3, 3), np.float32))
    layer.bias = None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert not layer(np.ones((1, 1, 3, 3), np.float32)).any()
    layer.weight.data = np.ones((2, 1, 3, 3), np.float32)  # .data may be replaced, as torch's
    assert layer(np.ones((1, 1, 3, 3), np.float32)).max() == 9


def functional_message(call):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    return str(info.value).split(": ", 1)[1]


X2, W2 = np.ones((1, 2, 8, 8)), np.ones((2, 2, 3, 3))


@pytest.mark.parametrize(
    ("make", "functional_call"),
    [
        (lambda: nn.Conv2d(2, 2, 3, padding="full"), lambda: F.conv2d(X2, W2, padding="full")),
        (lambda: nn.Conv2d(2, 2, 3, padding=-1), lambda: F.conv2d(X2, W2, padding=(-1, -1))),
        (lambda: nn.Conv2d(2, 2, 3, stride=0), lambda: F.conv2d(X2, W2, stride=(0, 0))),
        (lambda: nn.Conv2d(2, 2, 3, dilation=0), lambda: F.conv2d(X2, W2, dilation=(0, 0))),
        (
            lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2),
            lambda: F.conv_transpose2d(X2, W2, stride=2, output_padding=2),
        ),
        (
            lambda: nn.ConvTranspose2d(2, 2, 3, stride=1, dilation=2, output_padding=(0, 2)),
            lambda: F.conv_transpose2d(X2, W2, dilation=2, output_padding=(0, 2)),
        ),
        (
            lambda: nn.Conv1d(2, 2, 3, stride=2**61),
            lambda: F.conv1d(X2[0], W2[..., 0], stride=2**61),
        ),
    ],
    ids=["padding-full", "padding-1", "stride0", "dilation0", "op-stride", "op-dilation", "huge"],
)
def test_constructors_check_with_the_functional_messages(make, functional_call):
    with pytest.raises(ValueError) as info:
        make()
    name, message = str(info.value).split(": ", 1)
    assert name in ("Conv1d", "Conv2d", "ConvTranspose2d")
    assert message == functional_message(functional_call)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Conv1d(np.uint64(2**63), 1, 2), r"in_channels \(9223372036854775808\)"),
        (
            lambda: nn.ConvTranspose3d(2, np.uint64(2**63), 3),
            r"out_channels \(9223372036854775808\) must be at most",
        ),
        (lambda: nn.Conv2d(2**31, 2**31, 2), r"more elements than this machine can address"),
        (lambda: nn.Conv1d(2, 2, 2**40, dilation=2**40), r"kernel_size \(1099511627776,\) with"),
        (lambda: nn.Conv2d(2, 2, 3, groups=0), r"groups must be a positive int, got 0"),
    ],
)
def test_absurd_sizes_are_value_errors_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("bias", [0.5, np.array(0.5), "yes", None])
def test_bias_must_be_a_bool_whatever_its_type(bias):
    with pytest.raises(TypeError, match=r"Conv2d: bias must be True or False"):
        nn.Conv2d(2, 2, 3, bias=bias)


def test_numpy_sizes_and_dtypes_are_taken():
    layer = nn.Conv2d(
        np.int64(2), np.int32(4), np.int16(3), stride=np.uint8(2), groups=np.int64(2),
        dtype=np.float64, bias=np.bool_(True),
    )  # fmt: skip
    assert repr(layer) == repr(torch.nn.Conv2d(2, 4, 3, stride=2, groups=2))
    assert layer.weight.dtype == layer.bias.dtype == np.float64
    assert type(layer.in_channels) is int and type(layer.stride[0]) is int
    assert nn.ConvTranspose1d(1, 1, 2, dtype="float32").weight.dtype == np.float32


def test_a_copy_has_no_forward_waiting_and_runs():
    layer = nn.ConvTranspose2d(1, 2, 3, stride=2)
    x = np.ones((1, 1, 4, 4), np.float32)
    y = layer(x)
    dy = np.ones_like(y)
    for make in (lambda m: pickle.loads(pickle.dumps(m)), copy_module.deepcopy):
        copy = make(layer)
        with pytest.raises(ValueError, match=r"backward was called before forward"):
            copy.backward(dy)  # as a copy of a torch module, which carries no graph
        np.testing.assert_array_equal(copy(x), y)
        np.testing.assert_array_equal(copy.backward(dy), layer.backward(dy))
        np.testing.assert_array_equal(copy.weight.grad, layer.weight.grad)
        layer(x)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose2d"])
def test_before_and_after_pads_as_the_functional_api(name, mode):
    padding = ((2, 0), (1, 2))
    layer = getattr(nn, name)(2, 3, 3, padding=padding, padding_mode=mode, dtype=np.float64)
    assert f"padding={padding}" in repr(layer)
    function = getattr(F, name.lower().replace("convtranspose", "conv_transpose"))
    x = np.random.default_rng(7).standard_normal((1, 2, 6, 5))
    options = dict(padding=padding, padding_mode=mode)
    y = layer(x)
    np.testing.assert_array_equal(y, function(x, layer.weight, layer.bias, **options))
    dy = np.ones_like(y)
    expected = getattr(F, function.__name__ + "_backward")(dy, x, layer.weight, **options)
    np.testing.assert_array_equal(layer.backward(dy), expected[0])
    np.testing.assert_array_equal(layer.weight.grad, expected[1])


@pytest.mark.parametrize("padding", [((1, 2),), ((1, 2), (3,)), ((1, 2), 1)])
def test_pads_must_be_one_pair_per_dimension(padding):
    with pytest.raises(ValueError, match=r"Conv2d: padding must be an int, 2 ints or 2 \(before"):
        nn.Conv2d(1, 1, 3, padding=padding)
