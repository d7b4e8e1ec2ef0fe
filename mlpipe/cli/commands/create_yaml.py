"""`ml create_yaml SCRIPT.py [--dry_run] [--force]`: write the module YAML for an argparse script."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", type=Path, help="the module's script, APP/module/NAME.py (it is read, never run)")
    parser.add_argument("--dry_run", "--dry-run", "-n", dest="dry_run", action="store_true",
                        help="print the YAML instead of writing NAME.yaml")
    parser.add_argument("--force", action="store_true", help="overwrite an existing NAME.yaml")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands import home_settings
    from mlpipe.ops.authoring import write_module_yaml

    home_settings()
    text, target, notes = write_module_yaml(args.script, dry_run=args.dry_run, force=args.force)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        sys.stdout.write(text)
    else:
        module_id = f"{target.parent.parent.name}/module/{target.stem}"
        advice = "; check the notes above" if notes else ""
        print(f"wrote {target} (module {module_id}){advice}", file=sys.stderr)
    return 0
