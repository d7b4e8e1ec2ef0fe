"""A doit file exposing exactly the tasks `ml runpipe` builds (same builder, same DB):

    doit -f dodo_template.py pipe=APP/pipe/NAME.yaml list
    doit -f dodo_template.py pipe=APP/pipe/NAME.yaml run [-n 2] [TASK ...]
    doit -f dodo_template.py pipe=APP/pipe/NAME.yaml info TASK
"""

import sys

from doit import get_var

from mlpipe.core.errors import MlpipeError
from mlpipe.engine.doit_runner import dodo_namespace

try:
    globals().update(dodo_namespace(get_var("pipe")))
except MlpipeError as exc:
    sys.exit(f"dodo_template.py: {exc}")
