"""The documentation is tested: every ```python block of README.md and docs/*.md runs (the blocks
of one file in order, sharing their variables), every ``$ python -m convt ...`` command shown
in a ```console block prints what the page says, and every relative link leads somewhere.
Blocks that use PyTorch run when it is installed; without it the page reports them skipped."""

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
FILES = [ROOT / "README.md", *PAGES]
FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
USES_TORCH = re.compile(r"\btorch\b")  # torch, torch.nn, convt.torch
HAS_TORCH = importlib.util.find_spec("torch") is not None


def blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """The ``(line number, code)`` of each fenced block of ``language`` in ``path``, except those
    marked ``skip`` (```python skip), for code that cannot run here."""
    text = path.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 2, match.group(3))
        for match in FENCE.finditer(text)
        if match.group(1) == language and "skip" not in match.group(2).split()
    ]


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_docs_to_test():
    assert {p.name for p in PAGES} >= {
        "index.md",
        "transposed-convolution.md",
        "output-size.md",
        "weight-layouts.md",
        "seed-000-bug.md",
        "interop.md",
    }
    assert all(blocks(page, "python") for page in PAGES if page.name != "index.md")


@pytest.mark.parametrize("path", FILES, ids=name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    needing_torch = []
    for line, code in blocks(path, "python"):
        if USES_TORCH.search(code) and not HAS_TORCH:
            needing_torch.append(line)
            continue
        exec(compile(code, f"{name(path)}, block at line {line}", "exec"), namespace)
    if needing_torch:
        pytest.skip(f"{name(path)}: the blocks at lines {needing_torch} need PyTorch")


def commands():
    for path in FILES:
        for line, text in blocks(path, "console"):
            parts = re.split(r"^\$ ", text, flags=re.M)
            assert parts[0] == "", f"{name(path)}:{line}: a console block starts with '$ '"
            for part in parts[1:]:
                command, _, output = part.partition("\n")
                yield pytest.param(command, output, id=f"{name(path)}:{line}")


def normalise(text: str) -> str:
    """Floating-point numbers vary in their last digits between machines (instruction sets,
    summation order): the comparison keeps everything else."""
    return re.sub(r"\d+\.\d+(e[-+]\d+)?|\d+e[-+]\d+", "<number>", text)


@pytest.mark.parametrize(("command", "expected"), list(commands()))
def test_console_blocks_show_what_the_command_prints(command, expected, tmp_path):
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "convt"], command
    result = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert normalise(result.stdout) == normalise(expected)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    slugs = set()
    for heading in re.findall(r"^#+ +(.+?) *$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


@pytest.mark.parametrize("path", FILES, ids=name)
def test_relative_links_resolve(path):
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{name(path)}: broken link {target}"
        if anchor:
            assert anchor in anchors(linked), f"{name(path)}: no heading for {target}"


def test_every_page_is_reachable_from_the_index():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "index.md":
            assert f"]({page.name})" in index, page.name
