"""`python -m mlpipe` is `ml`."""

from mlpipe.cli.main import run

# NOTE: guarded, because a local Dask cluster's worker processes (multiprocessing "spawn")
# import the parent's main module again, as `__mp_main__`: that must not start `ml` in them.
if __name__ == "__main__":
    run()
