"""`ml listexp [PIPE]`: the original product's name for `ml metrics` (same options, same table)."""

from mlpipe.cli.commands.metrics import configure, run

__all__ = ["configure", "run"]
