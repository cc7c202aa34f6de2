"""Typing: python/convt/_core.pyi describes the extension as built, the package ships py.typed, and
``mypy python/convt`` passes (when mypy is installed; it is in the dev extra).

The stub is compared with the extension by names and argument names (read from the signatures
pybind11 writes into docstrings), so that a binding added, removed or renamed in src/*.cpp fails
here until the stub follows.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import convt
import pytest
from convt import _core

PACKAGE = Path(convt.__file__).parent
STUB = PACKAGE / "_core.pyi"
ROOT = Path(__file__).resolve().parent.parent

# Members a class of the stub may declare that the runtime class lacks: the buffer protocol's
# __buffer__ exists at runtime only from Python 3.12, but the stub needs it for NumPy's ArrayLike.
STUB_ONLY = {"__buffer__"}


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def stub_functions(body) -> dict[str, list[str]]:
    """Function name -> argument names (overloads merged, ``self`` dropped); positional-only
    arguments are named as pybind11 names unnamed ones: arg0, arg1, ..."""
    functions: dict[str, list[str]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            positional = [a.arg for a in node.args.posonlyargs if a.arg != "self"]
            names = [f"arg{i}" for i in range(len(positional))]
            names += [a.arg for a in node.args.args + node.args.kwonlyargs if a.arg != "self"]
            functions.setdefault(node.name, []).extend(names)
    return functions


def stub_classes() -> dict[str, ast.ClassDef]:
    return {node.name: node for node in stub_tree().body if isinstance(node, ast.ClassDef)}


def public(names) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def runtime_argument_names(function) -> list[str]:
    """The argument names of every overload, from pybind11's docstring signatures."""
    names = []
    for signature in re.findall(
        rf"^(?:\d+\. )?{function.__name__}\((.*)\) ->", function.__doc__, re.M
    ):
        names += [name for name in re.findall(r"(?:^|, )(\w+): ", signature) if name != "self"]
    return names


def test_stub_declares_every_name_of_the_extension():
    tree = stub_tree()
    declared = set(stub_functions(tree.body)) | set(stub_classes())
    declared |= {
        node.target.id
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    assert declared == public(dir(_core)) | {"__version__"}


@pytest.mark.parametrize("name", sorted(public(dir(_core))))
def test_stub_matches_the_extension(name):
    runtime = getattr(_core, name)
    if isinstance(runtime, type):
        node = stub_classes()[name]
        members = stub_functions(node.body)
        assert public(members) == public(dir(runtime)), f"members of {name}"
        for member, arguments in members.items():
            if member in STUB_ONLY:
                continue
            attribute = getattr(runtime, member)
            if callable(attribute) and not isinstance(attribute, property):
                assert arguments == runtime_argument_names(attribute), f"{name}.{member}"
    else:
        assert stub_functions(stub_tree().body)[name] == runtime_argument_names(runtime)


def test_package_is_marked_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_mypy_passes():
    """``mypy python/convt`` with the configuration of pyproject.toml."""
    pytest.importorskip("mypy")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("needs the source tree")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "python/convt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
