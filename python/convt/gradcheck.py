"""Finite-difference checks of gradients: :func:`gradcheck` and :func:`jacobian`.

This generalises the check of the question convt grew from ("predicted vs actual loss change"):
for a random ``grad_output`` ``dy`` and ``loss = sum(fn(...) * dy)``, the analytic gradients that
the backward pass returns for ``dy`` must equal ``(loss(p + eps) - loss(p - eps)) / (2 eps)`` for
every element ``p`` of every argument. Everything is computed in float64. The PyTorch equivalent
is ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from . import functional, nn

__all__ = ["GradcheckError", "GradcheckReport", "GradcheckResult", "gradcheck", "jacobian"]

_OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_BACKWARD = {getattr(functional, op): getattr(functional, op + "_backward") for op in _OPS}


class GradcheckError(AssertionError):
    """An analytic gradient differs from finite differences; ``report`` has the details."""

    def __init__(self, message: str, report: GradcheckReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class GradcheckResult:
    """The check of one argument's gradient.

    ``max_rel_error`` is ``max_abs_error`` divided by the largest ``|numeric|``; ``worst_index``
    is the element furthest outside ``atol + rtol * |numeric|``, with its two values.
    """

    name: str
    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...] | None = None
    analytic: float | None = None
    numeric: float | None = None
    reason: str = ""
    entries: int = 0
    checked: int = 0

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (
            f"{self.name}: max abs error {self.max_abs_error:.3g}, "
            f"max rel error {self.max_rel_error:.3g}  {verdict}"
        )
        if self.checked < self.entries:
            text += f" ({self.checked} of {self.entries} entries, sampled)"
        if self.reason:
            text += f" ({self.reason})"
        elif not self.passed:
            text += (
                f" (worst at {self.worst_index}: analytic {self.analytic:.6g}, "
                f"numeric {self.numeric:.6g})"
            )
        return text


@dataclass(frozen=True)
class GradcheckReport:
    """The result of :func:`gradcheck`: one :class:`GradcheckResult` per argument; truthy when
    all passed. ``report["weight"]`` picks one by name."""

    function: str
    results: tuple[GradcheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> GradcheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def __str__(self) -> str:
        lines = [f"gradcheck {self.function}: {'PASS' if self.passed else 'FAIL'}"]
        return "\n  ".join(lines + [str(result) for result in self.results])


def gradcheck(
    fn: Any,
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    backward: Callable[..., Sequence[Any]] | None = None,
    generator: Any = None,
    max_evaluations: int | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> GradcheckReport:
    """Checks the analytic gradients of ``fn`` against central differences, as
    ``torch.autograd.gradcheck``.

    ``fn`` is one of ``convt.functional``'s ``conv*`` / ``conv_transpose*`` (``inputs`` is
    ``(input, weight)`` or ``(input, weight, bias)``, ``kwargs`` such as ``stride`` go to the
    function and its ``*_backward``), a :class:`convt.nn.Module` (``inputs`` is ``(x,)``; checks
    the gradient for ``x`` and for every parameter, which are restored afterwards), or any
    callable given with ``backward(grad_output, *inputs, **kwargs)`` returning one gradient per
    input. Arguments are copied to float64; ``dy`` comes from ``generator`` (a NumPy Generator or
    seed; default :func:`convt.nn.default_generator`).

    Each checked entry costs two evaluations of ``fn``. With ``max_evaluations``, an input whose
    entries would need more is checked on a random sample of them (drawn from ``generator``,
    shared among the arguments by size, at least one entry each), and each result says how many
    it checked. ``progress=True`` shows a progress bar on stderr whose total, known before the
    first evaluation, is the number of entries to check.

    Returns the report; on a mismatch raises :class:`GradcheckError` (an AssertionError) naming
    the argument and the worst element, or, with ``raise_exception=False``, returns the falsy
    report.

    >>> import numpy as np, convt
    >>> x, w = np.random.randn(1, 2, 5, 5), np.random.randn(2, 3, 3, 3)
    >>> bool(convt.gradcheck(convt.functional.conv_transpose2d, (x, w), stride=2))
    True
    """
    eps = _step("gradcheck", eps)
    atol, rtol = (_tolerance(name, value) for name, value in (("atol", atol), ("rtol", rtol)))
    if max_evaluations is not None:
        if isinstance(max_evaluations, bool) or not isinstance(max_evaluations, (int, np.integer)):
            raise TypeError(
                f"gradcheck: max_evaluations must be an int or None, got "
                f"{type(max_evaluations).__name__}"
            )
        if max_evaluations < 2:
            raise ValueError(
                f"gradcheck: max_evaluations must be at least 2 (one entry), got {max_evaluations}"
            )
    inputs = (inputs,) if not isinstance(inputs, (tuple, list)) else tuple(inputs)
    rng = nn.default_generator() if generator is None else np.random.default_rng(generator)
    check = _Check(eps, atol, rtol, rng, max_evaluations, progress)
    if isinstance(fn, nn.Module):
        if kwargs or backward is not None:
            raise TypeError("gradcheck: a Module takes no keyword arguments or backward=")
        name = type(fn).__name__
        with check:
            results = _check_module(fn, inputs, check)
    else:
        name = getattr(fn, "__name__", repr(fn))
        with check:
            results = _check_function(fn, inputs, backward, kwargs, check)
    report = GradcheckReport(name, tuple(results))
    if not report and raise_exception:
        failed = next(result for result in report.results if not result.passed)
        raise GradcheckError(
            f"gradcheck: the gradient of {name} for '{failed.name}' does not match finite "
            f"differences (atol {atol}, rtol {rtol}):\n  {failed}\n{report}",
            report,
        )
    return report


def jacobian(fn: Callable[[np.ndarray], Any], x: Any, eps: float = 1e-6) -> np.ndarray:
    """The Jacobian of ``fn`` at ``x``, shape ``y.shape + x.shape``, by central differences in
    float64 (exact up to rounding for linear maps such as a convolution in one argument).

    Like TensorFlow's ``GradientTape.jacobian`` or ``torch.autograd.functional.jacobian``.

    >>> import numpy as np, convt
    >>> w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    >>> J = convt.jacobian(lambda x: convt.functional.conv2d(x, w), x)
    >>> J.shape, np.round(J[0, 0, 0, 0, 0, 0], 6).tolist()
    ((1, 1, 2, 2, 1, 1, 3, 3), [[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    """
    eps = _step("jacobian", eps)
    x = np.array(x, np.float64, order="C")
    y = np.asarray(fn(x))
    result = np.empty(y.shape + x.shape)
    columns, flat = result.reshape(y.size, x.size), x.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = np.asarray(fn(x), dtype=np.float64).reshape(-1)
        flat[i] = original - eps
        minus = np.asarray(fn(x), dtype=np.float64).reshape(-1)
        flat[i] = original
        columns[:, i] = (plus - minus) / (2 * eps)
    return result


def _real(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


def _step(where: str, eps: Any) -> float:
    # A zero, negative or non-finite step makes every difference quotient 0/0 or meaningless.
    value = _real(where, "eps", eps)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{where}: eps must be a finite number > 0, got {eps!r}")
    return value


def _tolerance(name: str, value: Any) -> float:
    number = _real("gradcheck", name, value)
    if not (np.isfinite(number) and number >= 0):
        raise ValueError(f"gradcheck: {name} must be a finite number >= 0, got {value!r}")
    return number


def _check_function(fn, inputs, backward, kwargs, check: _Check) -> list[GradcheckResult]:
    if backward is None:
        if fn not in _BACKWARD:
            raise TypeError(
                f"gradcheck: no known gradient for {fn!r}; pass a convt.functional convolution, "
                "a convt.nn Module, or backward="
            )
        backward, names = _functional_backward(_BACKWARD[fn]), ["input", "weight", "bias"]
    else:
        names = _argument_names(fn, len(inputs))
    arrays = [None if value is None else np.array(value, np.float64, order="C") for value in inputs]
    grad_output = check.rng.standard_normal(np.shape(fn(*arrays, **kwargs)))
    analytic = list(backward(grad_output, *arrays, **kwargs))

    def loss() -> float:
        return float(np.vdot(fn(*arrays, **kwargs), grad_output))

    checked = [
        (name, analytic[i] if i < len(analytic) else None, array)
        for i, (name, array) in enumerate(zip(names, arrays, strict=False))
        if array is not None
    ]
    check.plan([array.size for _, _, array in checked])
    return [check.compare(name, grad, array, loss) for name, grad, array in checked]


def _functional_backward(function_backward):
    def backward(grad_output, input, weight, bias=None, **kwargs):
        mask = (True, True, bias is not None)
        return function_backward(grad_output, input, weight, **kwargs, output_mask=mask)

    return backward


def _argument_names(fn, count: int) -> list[str]:
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"inputs[{i}]" for i in range(count)]


def _check_module(module, inputs, check: _Check) -> list[GradcheckResult]:
    if len(inputs) != 1:
        raise ValueError(f"gradcheck: a Module takes inputs=(x,), got {len(inputs)} inputs")
    x = np.array(inputs[0], np.float64, order="C")
    named = list(module.named_parameters())
    saved = [(parameter, parameter.data, parameter.grad) for _, parameter in named]
    try:
        for _, parameter in named:
            parameter.data = np.array(parameter.data, np.float64, order="C")
            parameter.grad = np.zeros_like(parameter.data)
        grad_output = check.rng.standard_normal(np.shape(module(x)))
        analytic = [module.backward(grad_output)] + [parameter.grad for _, parameter in named]

        def loss() -> float:
            with nn.no_grad():  # never backpropagated: nothing to save for backward
                return float(np.vdot(module(x), grad_output))

        arrays = [x] + [parameter.data for _, parameter in named]
        names = ["input"] + [name for name, _ in named]
        check.plan([array.size for array in arrays])
        return [
            check.compare(name, grad, array, loss)
            for name, grad, array in zip(names, analytic, arrays, strict=True)
        ]
    finally:
        for parameter, data, grad in saved:
            parameter.data, parameter.grad = data, grad


class _Check:
    """One gradcheck's settings, its choice of entries under ``max_evaluations`` and its progress
    bar."""

    def __init__(self, eps, atol, rtol, rng, max_evaluations, progress) -> None:
        self.eps, self.atol, self.rtol, self.rng = eps, atol, rtol, rng
        self.max_evaluations, self.progress = max_evaluations, progress
        self.quotas: list[int] = []
        self.bar: Any = None

    def __enter__(self) -> _Check:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def plan(self, sizes: Sequence[int]) -> None:
        """How many entries of each argument to check: all of them, or within the budget a
        share proportional to the argument's size (at least one entry of each non-empty one)."""
        total = sum(sizes)
        budget = total if self.max_evaluations is None else self.max_evaluations // 2
        if total <= budget:
            self.quotas = list(sizes)
        else:
            self.quotas = [min(size, max(1, size * budget // total)) for size in sizes]
        self.bar = tqdm(
            total=sum(self.quotas),
            desc="gradcheck",
            unit="entry",
            file=sys.stderr,
            disable=not self.progress,
        )

    def entries(self, size: int) -> np.ndarray:
        quota = self.quotas.pop(0)
        if quota >= size:
            return np.arange(size)
        return np.sort(self.rng.choice(size, size=quota, replace=False))

    def compare(self, name, analytic, array, loss) -> GradcheckResult:
        numeric = np.full(array.shape, np.nan)
        flat, column = array.reshape(-1), numeric.reshape(-1)
        entries = self.entries(flat.size)
        eps = self.eps
        for i in entries:
            original = flat[i]
            flat[i] = original + eps
            plus = loss()
            flat[i] = original - eps
            minus = loss()
            flat[i] = original
            column[i] = (plus - minus) / (2 * eps)
            self.bar.update(1)
        size, checked = int(flat.size), len(entries)
        if analytic is None or np.shape(analytic) != numeric.shape:
            got = "none" if analytic is None else f"shape {np.shape(analytic)}"
            reason = f"analytic gradient has {got}, expected shape {numeric.shape}"
            inf = float("inf")
            return GradcheckResult(
                name, False, inf, inf, reason=reason, entries=size, checked=checked
            )
        analytic = np.asarray(analytic, dtype=np.float64)
        if len(entries) == 0:
            return GradcheckResult(name, True, 0.0, 0.0, entries=size, checked=checked)
        picked = np.unravel_index(entries, numeric.shape)
        error = np.abs(analytic[picked] - numeric[picked])
        excess = error - (self.atol + self.rtol * np.abs(numeric[picked]))
        passed = bool(np.all(excess <= 0))
        worst = tuple(int(axis[int(np.argmax(excess))]) for axis in picked)
        max_abs, scale = float(np.max(error)), float(np.max(np.abs(numeric[picked])))
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        return GradcheckResult(
            name,
            passed,
            max_abs,
            max_rel,
            worst,
            float(analytic[worst]),
            float(numeric[worst]),
            entries=size,
            checked=checked,
        )
