"""`python -m mlpipe` is `ml`."""

from mlpipe.cli.main import run

run()
