"""`ml graph PIPE [--format dot|mermaid|svg|json] [--status] [--collapse-sweeps]`: the job graph, on
stdout only (`ml graph P --format dot | dot -Tpng > p.png`)."""

from __future__ import annotations

import argparse
import sys

from mlpipe.cli.commands import home_settings

FORMATS = ("dot", "mermaid", "svg", "json")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", help="a pipe id (APP/pipe/NAME.yaml) or a path to a pipe YAML")
    parser.add_argument("--format", choices=FORMATS, default="dot", help="output format (default: dot)")
    parser.add_argument("--status", action="store_true",
                        help="colour and label each job by its dry-run status (as `ml runpipe -n`)")
    parser.add_argument("--collapse-sweeps", action="store_true", help="one node per sweep instead of its members")


def run(args: argparse.Namespace) -> int:
    from mlpipe.core.graph_render import FORMATS as RENDER
    from mlpipe.ops.pipe_graph import pipe_graph

    graph = pipe_graph(home_settings(), args.pipe, status=args.status, collapse=args.collapse_sweeps)
    sys.stdout.write(RENDER[args.format](graph))
    return 0
