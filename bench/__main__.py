"""`python -m bench [--quick] [--full] [--only SECTION ...]`: benchmarks, then the report."""

from bench.cli import main

if __name__ == "__main__":  # spawned worker processes import this module too
    raise SystemExit(main())
