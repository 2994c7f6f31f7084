"""Benchmarks, data generators and helper programs, run from the repository root.

A package so that tests and benchmarks import the generators as modules
(``from scripts.netgen import generate``, ``from scripts.planted import planted``) with
no ``sys.path`` edits; run a script the same way: ``.venv/bin/python -m scripts.bench_api``.
"""
