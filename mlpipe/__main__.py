"""`python -m mlpipe` is `ml`."""

from mlpipe.cli import run

run()
