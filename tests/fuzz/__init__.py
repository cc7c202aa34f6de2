"""A crash-safe fuzzer for convt's Python API and convt._core: ``python -m tests.fuzz --help``."""
