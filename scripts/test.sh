#!/usr/bin/env bash
# The whole convt test suite, Python and C++. Run it from a fresh virtual environment:
#
#   python -m venv .venv && . .venv/bin/activate && bash scripts/test.sh
#
# It installs what the tests need (GoogleTest from Debian's packages when it is missing and this
# runs as root; the package itself with its test, torch and dask extras), then runs
#   1. the pytest suite,
#   2. the C++ unit tests with ctest,
#   3. the C++ examples,
#   4. a C++ program that finds an installed convt with find_package.
# Every part runs even when an earlier one failed; the script then lists the failed parts and
# exits non-zero. pytest collecting no tests counts as a failure.
#
# Environment: PYTHON (default: python, else python3), CONVT_CPP_BUILD_DIR (default: build/cpp).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
BUILD_DIR=${CONVT_CPP_BUILD_DIR:-build/cpp}
JOBS=$(nproc 2>/dev/null || echo 2)
START=$SECONDS

section() {
  printf '\n==================== %s ====================\n' "$*"
}

elapsed() {
  printf -- '-- %s took %d s\n' "$1" $((SECONDS - $2))
}

# --------------------------------------------------------------------------------------------
section "Setup"
step=$SECONDS
echo "python: $PYTHON ($("$PYTHON" --version 2>&1))"
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
  echo "note: no virtual environment is active; pip installs into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
fi

# GoogleTest: Debian's googletest and libgtest-dev provide the CMake package GTest.
gtest_found() {
  local dir
  for dir in /usr/lib/*/cmake/GTest /usr/lib/cmake/GTest /usr/local/lib/cmake/GTest \
    /usr/local/lib/*/cmake/GTest /usr/local/lib64/cmake/GTest /usr/lib64/cmake/GTest; do
    [[ -f "$dir/GTestConfig.cmake" ]] && return 0
  done
  return 1
}
if gtest_found; then
  echo "GoogleTest: found"
elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "GoogleTest: missing; installing googletest and libgtest-dev"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends googletest libgtest-dev
else
  echo "error: GoogleTest's CMake package (GTestConfig.cmake) is missing." >&2
  echo "Install it (Debian/Ubuntu: sudo apt-get install googletest libgtest-dev) and rerun." >&2
  exit 1
fi

# The package with its test extras. The torch extra is a lower bound; the constraints file pins the
# version tested (torch==2.13.0). Never ask pip for torch without it: an unpinned torch pulls a
# multi-gigabyte CUDA build.
"$PYTHON" -m pip install -c scripts/constraints.txt ".[test,torch,dask]"

# CMake and Ninja for the C++ tests, from PyPI when the machine has none.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from PyPI"
  "$PYTHON" -m pip install "${missing[@]}"
  hash -r
fi
echo "cmake: $(cmake --version | head -n1); ninja: $(ninja --version)"
elapsed "setup" "$step"

# --------------------------------------------------------------------------------------------
# The test parts. Each runs with errexit in a subshell of its own; a part that fails is recorded
# and the others still run, so one run shows every failure. The examples and the find_package
# check need the C++ build and are skipped when it failed.

python_tests() {
  # From the repository root, so `import convt` finds the installed package (the sources live
  # in python/convt, which is not on sys.path).
  local status=0
  "$PYTHON" -m pytest || status=$?
  if ((status == 5)); then
    echo "error: pytest collected no tests" >&2
  elif ((status != 0)); then
    echo "error: pytest failed (exit code $status)" >&2
  fi
  return "$status"
}

cpp_build() {
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCONVT_BUILD_TESTS=ON -DCONVT_BUILD_EXAMPLES=ON -DCONVT_SANITIZE=OFF
  cmake --build "$BUILD_DIR" --parallel "$JOBS"
}

cpp_tests() {
  # One test at a time: several tests start OpenMP threads of their own.
  cd "$BUILD_DIR"
  ctest --output-on-failure --no-tests=error
}

cpp_examples() {
  # ctest ran them too; run here so that their output shows.
  "$BUILD_DIR/cpp/examples/seed000_training"
  "$BUILD_DIR/cpp/examples/batched_conv"
}

find_package_consumer() {
  local scratch
  scratch=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the local variable is gone when the trap runs
  trap "rm -rf '$scratch'" EXIT
  cmake --install "$BUILD_DIR" --prefix "$scratch/prefix"
  cmake -S cpp/tests/consumer -B "$scratch/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$scratch/prefix"
  cmake --build "$scratch/build"
  "$scratch/build/app"
}

failed=()
last_status=0
# run TITLE FUNCTION: runs FUNCTION under errexit in a subshell, records a failure, and sets
# last_status. Call it as a plain command: in an `if` or `||` context bash would ignore errexit
# inside it.
run() {
  local title=$1 function=$2 begin=$SECONDS
  section "$title"
  set +e
  (
    set -e
    "$function"
  )
  last_status=$?
  set -e
  if ((last_status == 0)); then
    printf -- '-- %s: passed in %d s\n' "$title" $((SECONDS - begin))
  else
    printf -- '-- %s: FAILED (exit code %d) after %d s\n' "$title" "$last_status" \
      $((SECONDS - begin))
    failed+=("$title")
  fi
}

run "Python tests (pytest)" python_tests
run "C++ build" cpp_build
if ((last_status == 0)); then
  run "C++ unit tests (ctest)" cpp_tests
  run "C++ examples" cpp_examples
  run "find_package(convt) from an installed copy" find_package_consumer
else
  failed+=("C++ tests, examples and find_package check: not run, the build failed")
fi

if ((${#failed[@]})); then
  section "FAILED"
  printf '  %s\n' "${failed[@]}"
  echo "total: $((SECONDS - START)) s"
  exit 1
fi
section "All tests passed"
echo "total: $((SECONDS - START)) s"
