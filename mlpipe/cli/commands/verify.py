"""`ml verify [PIPE] [--repair] [--json]`: find cache entries whose bytes no longer match their sidecar."""

from __future__ import annotations

import argparse
import sys

from mlpipe.cli.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", nargs="?", help="only the entries this pipe reaches (default: the whole cache)")
    parser.add_argument("--repair", action="store_true",
                        help="remove damaged entries, so the next run pulls or rebuilds them")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands.sync import pipe_builder, reached
    from mlpipe.cli.report import print_json, print_table, short
    from mlpipe.ops.verify import verify_cache

    settings = home_settings()
    wanted = reached(pipe_builder(settings, args.pipe))[0] if args.pipe else None
    result = verify_cache(settings, wanted, repair=args.repair)
    if args.json:
        print_json({"checked": result.checked, "repaired": result.repaired, "damaged": [
            {"data_hash": d.data_hash, "path": str(d.path), "problem": d.problem} for d in result.damaged]})
    elif result.damaged:
        print_table(([short(d.data_hash), d.problem] for d in result.damaged), ["entry", "problem"])
    scope = f"reached by {args.pipe}" if args.pipe else "in the cache"
    verdict = ("removed: the next run pulls or rebuilds them" if result.repaired
               else "run `ml verify --repair` to remove them")
    summary = (f"verify: {result.checked} entries {scope} checked, {len(result.damaged)} damaged"
               + (f"; {verdict}" if result.damaged else ""))
    print(summary, file=sys.stderr)
    return 1 if result.damaged and not result.repaired else 0
