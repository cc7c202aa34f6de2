"""convt from C++ and Cython out of the installed package, as a user builds against it after
``pip install convt``: headers found only through ``convt.get_include()``, the CMake package only
through ``convt.get_cmake_dir()`` (never the source tree's), everything built in a temporary folder.

- A Cython extension that uses every declaration of ``convt/__init__.pxd``
  (tests/downstream/every_declaration.pyx) runs forward and backward passes without the GIL on
  typed memoryviews, in float32 and float64, and matches ``convt.functional`` and the seed's
  functions; bad arguments raise ``ValueError`` through ``except +``.
- The C++ consumer (cpp/tests/consumer) configured with ``-Dconvt_DIR``, with OpenMP and without
  it (then single-threaded, linking no OpenMP runtime).
- The page docs/cpp-and-cython.md, run as a reader would: every block whose info string says
  ``downstream`` runs in order in one folder (cmake/cpp/cython blocks are written to the file
  they name, sh blocks run in bash, python blocks run; the python ones also say ``skip`` so that
  tests/test_docs.py leaves them to this file, as they need the extension the sh blocks build).

The builds need a C++ compiler (``$CXX`` or ``c++``) and, for the CMake ones, cmake; without
them the tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import convt
import numpy as np
import pytest
from conftest import assert_close
from convt import functional

ROOT = Path(__file__).resolve().parent.parent
CXX = shutil.which(os.environ.get("CXX", "c++"))
CMAKE = shutil.which("cmake")
NINJA = shutil.which("ninja")

needs_compiler = pytest.mark.skipif(CXX is None, reason="no C++ compiler ($CXX or c++) on PATH")
needs_cmake = pytest.mark.skipif(CMAKE is None, reason="cmake is not on PATH")
DTYPES = [np.float32, np.float64]


def run(command, cwd, env=None, shell=False) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, shell=shell, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def shell_environment() -> dict[str, str]:
    """This interpreter's environment first on PATH, so that `python`, `cython` and
    `python -m convt` in a shell line mean the installed package under test."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.name.split(".")[0], path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_cython_extension(source: Path, folder: Path):
    """Cython, then the C++ compiler, with convt's headers from get_include() alone."""
    shutil.copy(source, folder)
    run([sys.executable, "-m", "cython", "-3", "--cplus", source.name], cwd=folder)
    target = source.stem + sysconfig.get_config_var("EXT_SUFFIX")
    python_include = sysconfig.get_paths()["include"]
    flags = ["-O2", "-std=c++17", "-fPIC", "-shared", "-fopenmp"]
    includes = [f"-I{convt.get_include()}", f"-I{python_include}"]
    run([CXX, *flags, *includes, f"{source.stem}.cpp", "-o", target], cwd=folder)
    return load_module(folder / target)


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler ($CXX or c++) on PATH")
    folder = tmp_path_factory.mktemp("cython")
    return build_cython_extension(ROOT / "tests" / "downstream" / "every_declaration.pyx", folder)


# --------------------------------------------------------------------------------------------
# Where the installed package keeps its C++ files


def test_get_include_names_the_installed_headers():
    include = Path(convt.get_include())
    package = Path(convt._core.__file__).resolve().parent
    assert include == package / "include"
    headers = {path.name for path in (include / "convt").glob("*.hpp")}
    assert {"convt.hpp", "geometry.hpp", "kernels.hpp", "matrix.hpp", "version.hpp"} <= headers
    source = ROOT / "cpp" / "include" / "convt"
    if source.is_dir():
        assert headers == {path.name for path in source.glob("*.hpp")}


def test_get_cmake_dir_names_the_installed_package():
    folder = Path(convt.get_cmake_dir())
    assert folder.is_relative_to(Path(convt._core.__file__).resolve().parent)
    for name in ("convtConfig.cmake", "convtConfigVersion.cmake", "convtTargets.cmake"):
        assert (folder / name).is_file(), name


@pytest.mark.parametrize("function", [convt.get_include, convt.get_cmake_dir])
def test_a_package_without_its_cpp_files_says_so(function, monkeypatch, tmp_path):
    monkeypatch.setattr(convt._locations, "_core", SimpleNamespace(__file__=str(tmp_path / "m.so")))
    with pytest.raises(FileNotFoundError, match=r"convt is installed without its C\+\+ files"):
        function()


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("--includes", lambda: f"-I{convt.get_include()}"), ("--cmakedir", convt.get_cmake_dir)],
)
def test_command_line_prints_them(flag, expected):
    result = subprocess.run(
        [sys.executable, "-m", "convt", flag], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected() + "\n"


# --------------------------------------------------------------------------------------------
# A Cython extension against the installed declarations

LAYERS = [
    ("conv", (2, 4, 9, 8), (6, 2, 3, 2), dict(stride=2, padding=1, dilation=1, groups=2)),
    ("conv", (3, 3, 7, 7), (5, 3, 3, 3), dict(stride=1, padding=2, dilation=2)),
    ("transposed", (2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("transposed", (1, 6, 4, 4), (6, 1, 2, 3), dict(stride=(1, 2), padding=(0, 1), groups=3)),
]


def functional_arguments(kind, options):
    """convt.functional's keyword arguments for a layer of LAYERS."""
    names = ("stride", "padding", "dilation", "groups")
    if kind == "transposed":
        names += ("output_padding",)
    return {name: options[name] for name in names if name in options}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("kind", "input_shape", "weight_shape", "options"), LAYERS)
def test_forward_and_backward_match_functional(
    extension, dtype, kind, input_shape, weight_shape, options
):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(input_shape).astype(dtype)
    w = rng.standard_normal(weight_shape).astype(dtype)
    geometry = extension.describe(kind, input_shape, weight_shape, **options)
    b = rng.standard_normal(geometry["output_channels"]).astype(dtype)
    forward = functional.conv2d if kind == "conv" else functional.conv_transpose2d
    backward = (
        functional.conv2d_backward if kind == "conv" else functional.conv_transpose2d_backward
    )
    arguments = functional_arguments(kind, options)

    expected = forward(x, w, b, **arguments)
    assert_close(extension.layer_forward(kind, x, w, b, **options), expected, dtype)
    assert_close(extension.layer_forward(kind, x, w, **options), expected - b[:, None, None], dtype)

    dy = rng.standard_normal(expected.shape).astype(dtype)
    gradients = extension.layer_backward(kind, dy, x, w, **options)
    for name, actual, wanted in zip(
        ("dx", "dw", "db"), gradients, backward(dy, x, w, **arguments), strict=True
    ):
        assert_close(actual, wanted, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_three_kernels_and_the_bias_pair_match_functional(extension, dtype):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 10, 9)).astype(dtype)
    w = rng.standard_normal((6, 4, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    options = dict(stride=2, padding=1)
    y = functional.conv2d(x, w, b, **options)
    dy = rng.standard_normal(y.shape).astype(dtype)
    actual = extension.conv2d_kernels(x, w, b, dy, **options)
    expected = (y, *functional.conv2d_backward(dy, x, w, **options))
    for name, got, wanted in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
        assert_close(got, wanted, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("kind", "input_shape", "weight_shape", "options"), LAYERS)
def test_a_plan_runs_the_layer_and_its_kernels(
    extension, dtype, kind, input_shape, weight_shape, options
):
    rng = np.random.default_rng(15)
    x = rng.standard_normal(input_shape).astype(dtype)
    w = rng.standard_normal(weight_shape).astype(dtype)
    geometry = extension.describe(kind, input_shape, weight_shape, **options)
    b = rng.standard_normal(geometry["output_channels"]).astype(dtype)
    dy = rng.standard_normal(geometry["output_shape"]).astype(dtype)
    result = extension.planned_layer(kind, x, w, b, dy, **options)

    arguments = functional_arguments(kind, options)
    forward = functional.conv2d if kind == "conv" else functional.conv_transpose2d
    backward = (
        functional.conv2d_backward if kind == "conv" else functional.conv_transpose2d_backward
    )
    expected = (forward(x, w, b, **arguments), *backward(dy, x, w, **arguments))
    for name, actual, wanted in zip(
        ("y", "dx", "dw", "db"), result["outputs"], expected, strict=True
    ):
        assert_close(actual, wanted, dtype, name)
    # The kernels alone: conv_forward maps the x side to the y side, whatever the layer.
    x_side, y_side = (x, dy) if kind == "conv" else (dy, x)
    kernels = (
        functional.conv2d(x_side, w, **functional_arguments("conv", options)),
        *functional.conv2d_backward(y_side, x_side, w, **functional_arguments("conv", options))[:2],
    )
    for name, actual, wanted in zip(("y", "dx", "dw"), result["kernels"], kernels, strict=True):
        assert_close(actual, wanted, dtype, f"kernel {name}")

    assert result["name"] == geometry["name"]
    assert set(result["algorithms"]) == {
        "conv_forward",
        "conv_backward_input",
        "conv_backward_weight",
    }
    assert set(result["algorithms"].values()) <= {
        "direct",
        "shifted",
        "pointwise",
        "im2col",
        "col2im",
    }
    assert result["direct"] == "direct"
    assert result["keeps_weights"]
    # Two forward calls with one weight pack it at most once per kernel they run.
    assert result["kept_packings"] <= 3
    assert (result["kept_bytes"] > 0) == (result["kept_packings"] > 0)


def test_geometry_describes_the_call(extension):
    options = dict(stride=2, padding=1, output_padding=1)
    g = extension.describe("transposed", [2, 4, 5, 6], [4, 3, 3, 3], **options)
    y = functional.conv_transpose2d(np.zeros((2, 4, 5, 6)), np.zeros((4, 3, 3, 3)), **options)
    assert g["output_shape"] == y.shape == (2, 3, 10, 12)
    expected = {
        "name": "conv_transpose2d",
        "transposed": True,
        "dims": 2,
        "batched": True,
        "batch": 2,
        "x_channels": 3,
        "y_channels": 4,
        "x_size": [10, 12],
        "y_size": [5, 6],
        "kernel": [3, 3],
        "stride": [2, 2],
        "padding_before": [1, 1],
        "padding_after": [1, 1],
        "output_padding": [1, 1],
        "x_spatial": 120,
        "y_spatial": 30,
        "kernel_volume": 9,
        "weight_shape": (4, 3, 3, 3),
        "input_shape": (2, 4, 5, 6),
        "x_shape": (2, 3, 10, 12),
        "y_shape": (2, 4, 5, 6),
        "input_channels": 4,
        "output_channels": 3,
        "max_spatial_dims": 3,
    }
    assert {name: g[name] for name in expected} == expected
    same = extension.describe("conv", [1, 2, 7], [3, 2, 4], padding_rule="same")
    assert same["padding_before"] == [1] and same["padding_after"] == [2]
    assert same["output_shape"] == (1, 3, 7) and same["batched"]
    unbatched = extension.describe("conv", [2, 6, 6], [3, 2, 3, 3], padding_rule="valid")
    assert not unbatched["batched"] and unbatched["output_shape"] == (3, 4, 4)
    assert extension.describe("conv", [1, 2, 5, 5, 5], [2, 1, 3, 3, 3], groups=2)["dims"] == 3
    strided = extension.describe("conv", [1, 2, 7], [3, 2, 4], stride=2, padding_rule="same")
    assert strided["output_shape"] == (1, 3, 4) and strided["padding_after"] == [2]
    circular = extension.describe(
        "transposed", [1, 2, 12], [2, 1, 3], stride=2, padding=1, padding_mode="circular"
    )
    assert circular["padding_mode"] == "circular"
    assert (circular["output_size_first"], circular["output_size_last"]) == ([23], [24])


def test_builders_without_options_use_the_defaults(extension):
    assert extension.default_geometry("conv", [1, 2, 6, 6], [3, 2, 3, 3]) == (1, 3, 4, 4)
    assert extension.default_geometry("transposed", [1, 3, 4, 4], [3, 2, 3, 3]) == (1, 2, 6, 6)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("strides", [(1, 1), (2, 3)])
def test_matrix_and_the_seed_functions_match_python(extension, dtype, strides):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((7, 8)).astype(dtype)
    k = rng.standard_normal((3, 2)).astype(dtype)
    cnn_y = convt.cnn_forward(k, x, strides)
    fcn_y = convt.fcn_forward(k, x, strides)
    for dz in (rng.standard_normal(cnn_y.shape), rng.standard_normal(fcn_y.shape)):
        results = extension.matrix_functions(x, k, dz.astype(dtype), strides)
        assert results["views"] == (7, 8, False, True)
        assert_close(results["convolute"], convt.convolute(x, k, strides), dtype)
        assert_close(results["convolute_unit_strides"], convt.convolute(x, k), dtype)
        assert_close(results["convolute_full"], convt.convolute_full(x, k, strides), dtype)
        assert_close(results["rotate_180"], convt.rotate_180(k), dtype)
        assert_close(results["cnn_forward"], cnn_y, dtype)
        assert_close(results["fcn_forward"], fcn_y, dtype)
        dz = dz.astype(dtype)
        if dz.shape == cnn_y.shape:
            expected = dict(
                zip(("cnn_dx", "cnn_dw"), convt.cnn_backward(x, dz, k, strides), strict=True)
            )
        else:
            expected = dict(
                zip(("fcn_dx", "fcn_dw"), convt.fcn_backward(x, dz, k, strides), strict=True)
            )
        for name, wanted in expected.items():
            assert_close(results[name], wanted, dtype, name)


def test_seed_functions_without_strides(extension):
    rng = np.random.default_rng(14)
    x, k = rng.standard_normal((5, 4)), rng.standard_normal((3, 3))
    dz = rng.standard_normal((7, 6))
    y, dx, dw, round_trip = extension.matrix_fcn_defaults(x, k, dz)
    assert_close(y, convt.fcn_forward(k, x), np.float64)
    for actual, wanted in zip((dx, dw), convt.fcn_backward(x, dz, k), strict=True):
        assert_close(actual, wanted, np.float64)
    assert_close(round_trip, convt.cnn_forward(k, y), np.float64)


def test_owning_matrices_copy_their_elements(extension):
    owns, copy_owns, separate, values = extension.matrix_owning(2, 3)
    assert owns and copy_owns and separate
    assert values == [[0, 1, 2], [10, 11, 12]]


def test_bad_arguments_raise_value_error_with_convts_message(extension):
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels, but weight.shape\[1\]"):
        extension.describe("conv", [2, 3, 8, 8], [4, 2, 3, 3])
    with pytest.raises(ValueError, match=r"output_padding \(2\) must be smaller than stride"):
        extension.describe("transposed", [1, 2, 4, 4], [2, 2, 3, 3], stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding_mode='reflect' needs padding smaller"):
        extension.describe("conv", [1, 2, 3], [3, 2, 3], padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode must be 'zeros', 'reflect'"):
        extension.describe("conv", [1, 2, 7], [3, 2, 4], padding_mode="mirror")
    with pytest.raises(ValueError, match=r"grad_output must have shape \(1, 3, 4, 4\)"):
        extension.expect_shape("conv", [1, 2, 6, 6], [3, 2, 3, 3], [1, 3, 4, 5], [1, 3, 4, 4])
    with pytest.raises(ValueError, match=r"Matrix: index \(5, 0\) is outside a 2 x 2 matrix"):
        extension.matrix_at(2, 2, 5, 0)
    with pytest.raises(ValueError, match=r"convolute: the kernel of shape \(4, 4\) is larger"):
        extension.matrix_convolute(np.ones((3, 3)), np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"set_num_threads: threads \(0\) must be positive"):
        extension.set_num_threads(0)
    x = np.ones((1, 2, 5, 5))
    with pytest.raises(ValueError, match="conv2d: stride"):
        extension.layer_forward("conv", x, np.ones((3, 2, 3, 3)), stride=0)


def test_threads_are_the_extensions_own(extension):
    before = extension.get_num_threads()
    try:
        extension.set_num_threads(1)
        assert extension.get_num_threads() == 1
        assert convt.get_num_threads() == before  # the convt module keeps its own setting
    finally:
        extension.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# The C++ consumer through find_package


def build_consumer(folder: Path, *options: str) -> Path:
    generator = ["-G", "Ninja"] if NINJA else []
    run(
        [
            CMAKE,
            "-S",
            str(ROOT / "cpp" / "tests" / "consumer"),
            "-B",
            str(folder),
            *generator,
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_CXX_COMPILER={CXX}",
            f"-Dconvt_DIR={convt.get_cmake_dir()}",
            *options,
        ],
        cwd=folder.parent,
    )
    run([CMAKE, "--build", str(folder)], cwd=folder.parent)
    return folder / "app"


def linked_libraries(program: Path) -> str:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf is not on PATH")
    return run([readelf, "-d", str(program)], cwd=program.parent)


@needs_compiler
@needs_cmake
def test_cpp_consumer_builds_with_convt_dir(tmp_path):
    program = build_consumer(tmp_path / "build")
    output = run([str(program)], cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert "matches the seed" in output
    assert "batched conv_transpose2d matches a plain loop" in output
    if "built with OpenMP" in output:
        assert "kernels on 2 thread(s)" in output
        assert "gomp" in linked_libraries(program) or "libomp" in linked_libraries(program)


@needs_compiler
@needs_cmake
def test_cpp_consumer_without_openmp_runs_single_threaded(tmp_path):
    program = build_consumer(tmp_path / "build", "-DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON")
    output = run([str(program)], cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert "built without OpenMP, kernels on 1 thread(s)" in output
    assert "batched conv_transpose2d matches a plain loop" in output
    assert not re.search(r"gomp|libomp|libiomp", linked_libraries(program))


# --------------------------------------------------------------------------------------------
# docs/cpp-and-cython.md, as a reader runs it

PAGE = ROOT / "docs" / "cpp-and-cython.md"
FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def page_blocks() -> list[tuple[str, list[str], str]]:
    """(language, the info string's other words, code) of the page's downstream blocks."""
    found = []
    for match in FENCE.finditer(PAGE.read_text(encoding="utf-8")):
        words = match.group(2).split()
        if "downstream" in words:
            found.append(
                (
                    match.group(1),
                    [w for w in words if w not in ("downstream", "skip")],
                    match.group(3),
                )
            )
    return found


def test_the_page_has_each_kind_of_block():
    languages = [language for language, _, _ in page_blocks()]
    assert {"cmake", "cpp", "cython", "sh", "python"} <= set(languages)


@needs_compiler
@needs_cmake
@pytest.mark.skipif(shutil.which("python3-config") is None, reason="python3-config is not on PATH")
def test_the_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = shell_environment()
    namespace: dict = {"__name__": "docs_cpp_and_cython"}
    printed = []
    for language, words, code in page_blocks():
        if language in ("cmake", "cpp", "cython"):
            (tmp_path / words[0]).write_text(code, encoding="utf-8")
        elif language == "sh":
            printed.append(run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env))
        else:
            exec(compile(code, f"{PAGE.name}, python block", "exec"), namespace)
    assert capsys.readouterr().out == (
        "conv_transpose2d: input has 2 channels, but weight.shape[0] (in_channels) is 3\n"
    )
    assert any(
        re.fullmatch(
            r"conv_transpose2d: output \(1, 2, 16, 16\), y\[0\] = 1.75, db\[0\] = 256, "
            r"\d+ thread\(s\)\n",
            text,
        )
        for text in printed
    ), printed
