"""The fuzzer's cases: plain JSON descriptions of calls, drawn from a seeded generator, so that
case ``index`` of seed ``seed`` is the same call on every run and in every process.

A case is either ``valid`` (a random convolution or transposed convolution, forward and
backward, on arrays of every layout, compared with the plain-loop reference) or ``hostile`` (a
call of any public function or ``convt._core`` entry point, with some arguments swapped for
extreme integers, wrong types, arrays of other dtypes and layouts, aliasing ``out=``...), which
must return or raise ValueError or TypeError in convt's words.

Generating a case needs neither convt nor NumPy, so the runner can rebuild a dead worker's case.
"""

from __future__ import annotations

import random
from typing import Any

# Integers at the edges of every integer type a size might pass through.
EXTREME_INTS = [
    0,
    -1,
    -2,
    2**15,
    2**31 - 1,
    2**31,
    2**32,
    2**40,
    2**53 + 1,
    2**60 - 1,
    2**60,
    2**62,
    2**63 - 1,
    2**63,
    2**64,
    2**100,
    -(2**31),
    -(2**63),
    -(2**63) - 1,
]
# Values that are no integer at all, as JSON-able descriptions (see build_value).
WRONG_TYPES = [
    {"float": 1.5},
    {"float": "nan"},
    {"float": "inf"},
    {"float": 2.0},
    {"bool": True},
    {"bool": False},
    {"none": None},
    {"str": "same"},
    {"str": "valid"},
    {"str": "avx2"},
    {"str": ""},
    {"bytes": "avx2"},
    {"list": []},
    {"list": [[1]]},
    {"list": [1, 2, 3, 4]},
    {"numpy": ["int64", 2**63 - 1]},
    {"numpy": ["uint64", 2**63]},
    {"numpy": ["float32", 1.5]},
    {"numpy": ["int32", 2]},
    {"array0d": 2},
    {"array0d": 0.5},
    {"object": None},
    {"dict": None},
]
DTYPES = ["float32", "float64"]
OTHER_DTYPES = [
    "float16",
    "int8",
    "int64",
    "uint64",
    "bool",
    "complex128",
    "object",
    "<U3",
    ">f8",
    ">f4",
    "datetime64[s]",
]
LAYOUTS = [
    "c",
    "fortran",
    "strided",
    "readonly",
    "unaligned",
    "byteswapped",
    "pickled",
    "metadata",
    "broadcast",
    "list",
]

FUNCTIONAL = [f"conv{d}d" for d in (1, 2, 3)] + [f"conv_transpose{d}d" for d in (1, 2, 3)]
SEED_FUNCTIONS = [
    "convolute",
    "convolute_full",
    "rotate_180",
    "cnn_forward",
    "cnn_backward",
    "fcn_forward",
    "fcn_backward",
]
LAYERS = [f"Conv{d}d" for d in (1, 2, 3)] + [f"ConvTranspose{d}d" for d in (1, 2, 3)]
SETTINGS = ["set_num_threads", "set_isa", "fma_peak_gflops", "gradcheck", "matrix"]


def array_spec(rng: random.Random, shape, dtype: str, layout: str = "c", fill: str = "random"):
    return {
        "array": list(shape),
        "dtype": dtype,
        "layout": layout,
        "fill": fill,
        "seed": rng.getrandbits(32),
    }


def pick_layout(rng: random.Random) -> str:
    return "c" if rng.random() < 0.6 else rng.choice(LAYOUTS[:-2])


def per_dim(rng: random.Random, dims: int, low: int, high: int):
    """An int or a tuple of ``dims`` ints, as users give them."""
    values = [rng.randint(low, high) for _ in range(dims)]
    return values[0] if rng.random() < 0.5 else values


def expand(value, dims: int) -> list[int]:
    return [value] * dims if isinstance(value, int) else list(value)


def valid_config(rng: random.Random) -> dict[str, Any]:
    """A random valid call of a convolution or transposed convolution, small enough for the
    plain-loop reference."""
    while True:
        dims = rng.choice([1, 1, 2, 2, 3])
        transposed = rng.random() < 0.5
        groups = rng.choice([1, 1, 2, 3])
        c_in, c_out = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
        kernel = [rng.randint(1, 3) for _ in range(dims)]
        stride = per_dim(rng, dims, 1, 3)
        dilation = per_dim(rng, dims, 1, 2)
        padding: Any = per_dim(rng, dims, 0, 2)
        if not transposed and rng.random() < 0.15:
            padding = "valid" if rng.random() < 0.5 else "same"
            if padding == "same":
                stride = 1
        output_padding: Any = 0
        if transposed:
            largest = [
                max(s, d) - 1
                for s, d in zip(expand(stride, dims), expand(dilation, dims), strict=True)
            ]
            output_padding = [rng.randint(0, m) for m in largest]
        size = [rng.randint(1, 6 if dims < 3 else 4) for _ in range(dims)]
        config = {
            "op": f"conv_transpose{dims}d" if transposed else f"conv{dims}d",
            "dims": dims,
            "transposed": transposed,
            "batch": rng.choice([None, 0, 1, 2, 3]) if rng.random() < 0.2 else rng.randint(1, 2),
            "in_channels": c_in,
            "out_channels": c_out,
            "groups": groups,
            "kernel": kernel,
            "size": size,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "output_padding": output_padding,
            "bias": rng.random() < 0.6,
            "dtype": rng.choice(DTYPES),
            "layouts": [pick_layout(rng) for _ in range(4)],  # input, weight, bias, grad_output
            "out": rng.random() < 0.25,
            "output_mask": [rng.random() < 0.8 for _ in range(3)],
            "seed": rng.getrandbits(32),
        }
        if output_size(config) is not None:
            return config


def output_size(config) -> list[int] | None:
    """The spatial output size of a configuration, None when it has none."""
    dims, transposed = config["dims"], config["transposed"]
    k = config["kernel"]
    s, d = expand(config["stride"], dims), expand(config["dilation"], dims)
    if config["padding"] == "same":
        return list(config["size"])
    p = [0] * dims if config["padding"] == "valid" else expand(config["padding"], dims)
    if transposed:
        op = expand(config["output_padding"], dims)
        out = [
            (i - 1) * s_ - 2 * p_ + d_ * (k_ - 1) + o_ + 1
            for i, k_, s_, p_, d_, o_ in zip(config["size"], k, s, p, d, op, strict=True)
        ]
    else:
        out = [
            (i + 2 * p_ - d_ * (k_ - 1) - 1) // s_ + 1
            for i, k_, s_, p_, d_ in zip(config["size"], k, s, p, d, strict=True)
        ]
    return out if min(out) >= 1 else None


def hostile_value(rng: random.Random, like=None):
    """An argument that a careless binding would crash on."""
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(EXTREME_INTS)
    if roll < 0.75:
        return rng.choice(WRONG_TYPES)
    if roll < 0.9:
        length = rng.randint(0, 4)
        return [rng.choice([*EXTREME_INTS, 1, 2, 3]) for _ in range(length)]
    return hostile_array(rng, like)


def hostile_array(rng: random.Random, like=None):
    """An array of a shape, dtype or layout a call does not take (or does, unusually)."""
    roll = rng.random()
    shape = (
        list(like) if like is not None else [rng.randint(1, 3) for _ in range(rng.randint(0, 5))]
    )
    if roll < 0.25 and shape:
        shape[rng.randrange(len(shape))] = rng.choice([0, 0, 1, 7])
    elif roll < 0.35:
        shape = [rng.randint(1, 3) for _ in range(rng.choice([0, 1, 6]))]
    elif roll < 0.45 and shape:
        shape = [0] + [rng.choice([2**20, 2**31, 1]) for _ in shape[1:]]
    dtype = rng.choice(OTHER_DTYPES) if rng.random() < 0.5 else rng.choice(DTYPES)
    fill = rng.choice(["random", "random", "nan", "inf", "huge", "zero"])
    return array_spec(rng, shape, dtype, rng.choice(LAYOUTS[:-1]), fill)


def array_shapes(config) -> dict[str, list[int]]:
    """The shapes of a configuration's arrays."""
    dims, groups = config["dims"], config["groups"]
    c_in, c_out = config["in_channels"], config["out_channels"]
    lead = [] if config["batch"] is None else [config["batch"]]
    if config["transposed"]:
        weight = [c_in, c_out // groups, *config["kernel"]]
    else:
        weight = [c_out, c_in // groups, *config["kernel"]]
    return {
        "input": [*lead, c_in, *config["size"]],
        "weight": weight,
        "bias": [c_out],
        "grad_output": [*lead, c_out, *output_size(config)],
    }
    del dims


def hostile_functional(rng: random.Random) -> dict[str, Any]:
    """A valid call of a functional op with one to three arguments made hostile."""
    config = valid_config(rng)
    backward = rng.random() < 0.4
    shapes = array_shapes(config)
    names = ["grad_output", "input", "weight"] if backward else ["input", "weight", "bias"]
    args = {
        name: array_spec(rng, shapes[name], config["dtype"], pick_layout(rng))
        for name in names
        if name != "bias" or config["bias"]
    }
    keys = ["stride", "padding", "dilation", "groups"]
    if config["transposed"]:
        keys.append("output_padding")
    kwargs = {key: config[key] for key in keys}
    choices = [*names, *keys, "out", "output_mask", "output_size", "unknown"]
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(choices)
        if target in names:
            shape = shapes[target]
            args[target] = (
                hostile_array(rng, shape) if rng.random() < 0.7 else hostile_value(rng, shape)
            )
        elif target == "out":
            kwargs["out"] = hostile_out(rng, backward, list(args))
        elif target == "output_mask":
            kwargs["output_mask"] = rng.choice(
                [None, [True], [1, 0, 1, 1], "yes", [True, False, True]]
            )
        elif target == "output_size" and config["transposed"]:
            kwargs["output_size"] = hostile_value(rng)
        elif target == "unknown":
            kwargs["unknown"] = 1
        elif target in keys:
            kwargs[target] = hostile_value(rng)
    name = f"{config['op']}_backward" if backward else config["op"]
    if backward and "output_mask" in kwargs and rng.random() < 0.5:
        pass
    return {"kind": "hostile", "function": f"functional.{name}", "args": args, "kwargs": kwargs}


def hostile_out(rng: random.Random, backward: bool, inputs: list[str]):
    """An out= that is wrong in some way, or aliases an input."""
    roll = rng.random()
    if roll < 0.3 and inputs:
        return {"alias": rng.choice(inputs)}
    if roll < 0.5:
        return hostile_value(rng)
    if backward and roll < 0.75:
        return [
            hostile_array(rng) if rng.random() < 0.5 else {"none": None}
            for _ in range(rng.choice([2, 3, 3, 4]))
        ]
    return hostile_array(rng)


def hostile_seed(rng: random.Random) -> dict[str, Any]:
    """A seed function with hostile matrices or strides."""
    function = rng.choice(SEED_FUNCTIONS)
    arity = {"rotate_180": 1, "cnn_backward": 3, "fcn_backward": 3}.get(function, 2)
    args = [
        array_spec(
            rng, [rng.randint(1, 5), rng.randint(1, 5)], rng.choice(DTYPES), pick_layout(rng)
        )
        for _ in range(arity)
    ]
    if rng.random() < 0.5:
        args[rng.randrange(arity)] = (
            hostile_array(rng) if rng.random() < 0.6 else hostile_value(rng)
        )
    kwargs = {}
    if function != "rotate_180" and rng.random() < 0.6:
        kwargs["strides"] = (
            hostile_value(rng) if rng.random() < 0.7 else [rng.choice(EXTREME_INTS), 1]
        )
    return {
        "kind": "hostile",
        "function": function,
        "args": dict(enumerate(args)),
        "kwargs": kwargs,
    }


def hostile_layer(rng: random.Random) -> dict[str, Any]:
    """A layer built with hostile arguments, then run forward and backward."""
    config = valid_config(rng)
    name = ("ConvTranspose" if config["transposed"] else "Conv") + f"{config['dims']}d"
    kwargs = {
        "in_channels": config["in_channels"],
        "out_channels": config["out_channels"],
        "kernel_size": config["kernel"],
        "stride": config["stride"],
        "padding": config["padding"],
        "dilation": config["dilation"],
        "groups": config["groups"],
        "bias": config["bias"],
    }
    if config["transposed"]:
        kwargs["output_padding"] = config["output_padding"]
    for _ in range(rng.randint(1, 2)):
        kwargs[rng.choice([*kwargs, "padding_mode", "dtype"])] = hostile_value(rng)
    shapes = array_shapes(config)
    return {
        "kind": "hostile",
        "function": f"nn.{name}",
        "args": {"input": array_spec(rng, shapes["input"], config["dtype"], pick_layout(rng))},
        "kwargs": kwargs,
        "pickle": rng.random() < 0.2,
    }


def hostile_setting(rng: random.Random) -> dict[str, Any]:
    """Settings, probes and the Matrix class with hostile arguments."""
    function = rng.choice(SETTINGS)
    if function == "fma_peak_gflops":
        value = rng.choice(
            [
                {"float": "inf"},
                {"float": "nan"},
                0,
                -1,
                {"float": 1e-4},
                {"float": 61.0},
                {"none": None},
                {"str": "1"},
            ]
        )
        return {
            "kind": "hostile",
            "function": "_core.fma_peak_gflops",
            "args": {0: value},
            "kwargs": {},
        }
    if function == "matrix":
        args = {
            0: hostile_value(rng) if rng.random() < 0.5 else rng.randint(0, 4),
            1: hostile_value(rng) if rng.random() < 0.5 else rng.randint(0, 4),
        }
        index = [hostile_value(rng), hostile_value(rng)] if rng.random() < 0.5 else [0, 0]
        return {
            "kind": "hostile",
            "function": rng.choice(["Matrix", "Matrix32"]),
            "args": args,
            "kwargs": {},
            "index": index,
        }
    if function == "gradcheck":
        shape = [1, 1, rng.randint(1, 3)]
        args = {0: array_spec(rng, shape, "float64"), 1: array_spec(rng, [1, 1, 1], "float64")}
        kwargs = {rng.choice(["eps", "atol", "rtol"]): hostile_value(rng)}
        return {"kind": "hostile", "function": "gradcheck", "args": args, "kwargs": kwargs}
    value = hostile_value(rng) if rng.random() < 0.7 else rng.randint(1, 3)
    if function == "set_isa":
        value = rng.choice(["portable", "avx2", "avx512", "bogus", None, {"bytes": "avx2"}, 1])
    return {"kind": "hostile", "function": function, "args": {0: value}, "kwargs": {}}


def make_case(seed: int, index: int, valid_share: float = 0.15) -> dict[str, Any]:
    """Case ``index`` of the run with ``seed``: valid with probability ``valid_share``, the
    rest hostile calls of the functional ops (65%), the seed functions (14%), the layers (12%)
    and the settings, probes and Matrix (9%)."""
    rng = random.Random(f"{seed}:{index}")
    if rng.random() < valid_share:
        case = {"kind": "valid", "config": valid_config(rng)}
    else:
        roll = rng.random()
        if roll < 0.65:
            case = hostile_functional(rng)
        elif roll < 0.79:
            case = hostile_seed(rng)
        elif roll < 0.91:
            case = hostile_layer(rng)
        else:
            case = hostile_setting(rng)
    case["seed"], case["index"] = seed, index
    return case
