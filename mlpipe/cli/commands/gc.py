"""`ml gc [--dry-run] [--keep-days N]`: remove cached data and job records no pipe reaches any more."""

from __future__ import annotations

import argparse
import sys
import time

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="say what would be removed; remove nothing")
    parser.add_argument("--keep-days", "--keep_days", dest="keep_days", type=float, default=30.0, metavar="N",
                        help="keep anything younger than N days, reachable or not (default: 30)")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import print_table, short
    from mlpipe.core.errors import UsageError
    from mlpipe.ops.gc import DATA, JOB, SCRATCH, collect_garbage, human_size

    if args.keep_days < 0:
        raise UsageError("--keep-days must be 0 or more")
    collection = collect_garbage(home_settings(), args.keep_days, args.dry_run)
    for note in collection.notes:
        print(f"note: {note}", file=sys.stderr)
    removed = sorted(collection.removed, key=lambda item: (item.kind, item.when))
    now = time.time()
    if removed:
        print_table(([item.kind, short(item.key), human_size(item.size), _age(now - item.when), item.what]
                     for item in removed), ["kind", "id", "size", "age", "what"])
    verb = "would remove" if args.dry_run else "removed"
    totals = []
    for kind, label in ((DATA, "cache entries"), (JOB, "job records")):
        items = [item for item in removed if item.kind == kind]
        totals.append(f"{len(items)} {label} ({human_size(sum(item.size for item in items))})")
    scratch = [item for item in removed if item.kind == SCRATCH]
    if scratch:
        totals[-1] += f" and {len(scratch)} scratch folders of dead processes"
    print(f"gc: {verb} {', '.join(totals[:-1])} and {totals[-1]}; kept {collection.kept_reachable} that pipes reach"
          f" and {collection.kept_young} younger than {args.keep_days:g} days")
    return 0


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.0f}h" if hours < 24 else f"{hours / 24:.0f}d"
