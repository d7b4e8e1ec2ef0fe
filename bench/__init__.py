"""MLPipe benchmarks: synthetic pipes timed as whole processes next to plain doit and make.

    python -m bench            the full run (`make bench`), writes bench/results.json
    python -m bench --quick    N = 100 only, fewer repeats (a smoke test of the harness)

Layout: `generate.py` writes one case (an app + pipe, the same DAG as a `dodo.py` and as a
`Makefile`), `measure.py` runs and times processes, `hashbench.py` times md5 and the stat-keyed
memo on a 1 GB file, `harness.py` runs everything and prints the table.
"""
