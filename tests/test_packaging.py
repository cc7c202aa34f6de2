"""What a user gets from ``pip install convt``: the wheel's files (the Python package, the
extension, its stub and py.typed, the C++ headers, the CMake package, the Cython declarations)
and the extras' requirements.

The files are the installed distribution's RECORD, which is the wheel's own list, or, when
``CONVT_WHEEL`` names a wheel file, that file's contents (.ci/run checks a wheel built from the
sdist that way).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGE = ROOT / "python" / "convt"
SOURCE_HEADERS = ROOT / "cpp" / "include" / "convt"


def wheel_files() -> set[str]:
    wheel = os.environ.get("CONVT_WHEEL")
    if wheel:
        return set(zipfile.ZipFile(wheel).namelist())
    distribution = importlib.metadata.distribution("convt")
    direct_url = distribution.read_text("direct_url.json") or ""
    if '"editable": true' in direct_url:
        pytest.skip("an editable install has no wheel's file list")
    return {str(path) for path in distribution.files or () if "__pycache__" not in path.parts}


def package_files() -> set[str]:
    return {name for name in wheel_files() if name.startswith("convt/")}


def test_the_wheel_carries_the_headers():
    headers = {name for name in package_files() if name.startswith("convt/include/")}
    assert "convt/include/convt/convt.hpp" in headers
    if SOURCE_HEADERS.is_dir():
        expected = {f"convt/include/convt/{path.name}" for path in SOURCE_HEADERS.glob("*.hpp")}
        assert headers == expected


def test_the_wheel_carries_the_cmake_package():
    cmake = {name for name in package_files() if name.startswith("convt/share/")}
    assert cmake == {
        "convt/share/cmake/convt/convtConfig.cmake",
        "convt/share/cmake/convt/convtConfigVersion.cmake",
        "convt/share/cmake/convt/convtTargets.cmake",
    }


def test_the_wheel_carries_the_python_package_its_stub_and_declarations():
    files = package_files()
    assert {"convt/__init__.pxd", "convt/_core.pyi", "convt/py.typed"} <= files
    extensions = {name for name in files if name.startswith("convt/_core.")}
    assert extensions == {"convt/_core.pyi", f"convt/_core{sysconfig.get_config_var('EXT_SUFFIX')}"}
    if SOURCE_PACKAGE.is_dir():
        sources = {
            f"convt/{path.relative_to(SOURCE_PACKAGE).as_posix()}"
            for path in SOURCE_PACKAGE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        built = {name for name in files if name.startswith(("convt/include/", "convt/share/"))}
        assert files - built - extensions == sources - {"convt/_core.pyi"}


def test_the_wheel_holds_nothing_outside_the_package():
    outside = {
        name
        for name in wheel_files()
        if not name.startswith(("convt/", "convt-")) and not name.endswith("/bin/convt")
    }
    assert outside == set()


def requirements(extra: str) -> list[str]:
    found = []
    for requirement in importlib.metadata.requires("convt") or []:
        name, _, marker = requirement.partition(";")
        if re.search(rf"extra\s*==\s*['\"]{extra}['\"]", marker):
            found.append(name.strip())
    return found


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def test_the_torch_extra_is_a_lower_bound_that_the_tested_version_meets():
    (requirement,) = requirements("torch")
    match = re.fullmatch(r"torch>=([\d.]+)", requirement.replace(" ", ""))
    assert match, f"the torch extra should be a lower bound, got {requirement!r}"
    lower = version_tuple(match.group(1))
    constraints = ROOT / "scripts" / "constraints.txt"
    if constraints.is_file():
        (pin,) = re.findall(r"^torch==([\d.]+)\s*$", constraints.read_text(), re.M)
        assert version_tuple(pin) >= lower
    try:
        installed = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return
    assert version_tuple(installed) >= lower, (
        f"torch {installed} is below the extra's {requirement}"
    )


def test_the_test_extra_brings_cython():
    assert any(re.match(r"cython\b", name, re.I) for name in requirements("test"))
