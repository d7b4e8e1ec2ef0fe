"""`ml`: parse the command line, run one command, map errors to exit codes.

Exit codes (DESIGN.md): 0 success or nothing to do; 1 a job or a transfer failed while running;
2 invalid input found before anything ran (bad YAML, unknown names, bad URI, bad usage);
75 busy (`--no-wait` and the pipe is running); 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

DESCRIPTION = "MLPipe: make-style, cached machine-learning pipelines."
# command -> (module in mlpipe.cli.commands, one-line help); modules are imported only when needed
COMMANDS = {
    "init": ("init", "create the home layout (idempotent) and print its path"),
    "config": ("config", "show every setting, its value and where it came from"),
    "mount": ("mount", "link an app directory into the home"),
    "listpipe": ("listpipe", "list pipes on the apps path"),
    "listmodule": ("listmodule", "list modules and their interfaces"),
    "runpipe": ("runpipe", "run what is stale in a pipe, like make"),
    "listjob": ("listjob", "list job records, newest first"),
    "runjob": ("runjob", "run one recorded job again"),
    "joblog": ("joblog", "print a job's stdout and stderr"),
    "create_yaml": ("create_yaml", "write the module YAML for an argparse script"),
    "sync": ("sync", "mirror the cache to or from S3"),
    "cron": ("cron", "print a crontab line for a pipe"),
    "gc": ("gc", "remove cache entries no pipe reaches"),
    "verify": ("verify", "re-hash cache entries against their sidecars; --repair removes damaged ones"),
    # the original product's commands (docs/compat.md)
    "addapp": ("addapp", "link an app into the home (the original's name for mount)"),
    "viewjob": ("viewjob", "show a job's record, outputs and log files"),
    "viewmodule": ("viewmodule", "show a module's YAML and interface"),
    "canceljob": ("canceljob", "stop a running job (status canceled)"),
    "cancelpipe": ("cancelpipe", "stop the running runpipe of a pipe and its jobs"),
    "cleanjob": ("cleanjob", "cancel every running job of this home"),
    "deletepipe": ("deletepipe", "forget a pipe's doit DB and job records"),
    "getmd5": ("getmd5", "print the fingerprint of a file or folder, or a string's md5"),
    "startpipe": ("startpipe", "validate and plan a pipe without running it (runpipe --dry-run)"),
    "runall": ("runall", "run every pipe on the apps path"),
    "graph": ("graph", "print a pipe's job graph (dot, mermaid, svg, json)"),
    "ui": ("ui", "serve the local web UI: pipes, DAGs, jobs, logs, metrics"),
    "metrics": ("metrics", "parameters and metrics of jobs side by side; `metrics diff A B`"),
    "listexp": ("listexp", "experiments: the same table as `ml metrics`"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2, as DESIGN.md says
        self.print_usage(sys.stderr)
        self.exit(2, f"ml: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `ml` parser. With `command` (the one the command line names), only that command is
    imported and configured; without, the commands are only listed (for `ml --help` and usage
    errors: a subparser for every command was half the time of `ml --help`)."""
    if command is None:
        parser = _Parser(prog="ml", description=DESCRIPTION, usage="ml [-h] COMMAND ...", epilog=_command_list(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("command", metavar="COMMAND", nargs="?", choices=COMMANDS, help="one of the commands below")
        return parser
    parser = _Parser(prog="ml", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    module_name, help_text = COMMANDS[command]
    command_parser = sub.add_parser(command, prog=f"ml {command}", help=help_text, description=help_text)
    module = importlib.import_module(f"mlpipe.cli.commands.{module_name}")
    module.configure(command_parser)
    command_parser.set_defaults(handler=module.run)
    return parser


def _command_list() -> str:
    width = max(map(len, COMMANDS)) + 2
    return "commands:\n" + "\n".join(f"  {name:<{width}}{help_text}" for name, (_, help_text) in COMMANDS.items())


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ml`; return the exit code. Only here are exceptions turned into exit codes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (exit 2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 0
    stderr = sys.stderr
    try:
        return _run_command(args)
    finally:
        sys.stderr = stderr  # a command may have made it timestamp its lines (LOG_TIMESTAMPS)
        # NOTE: stdout is block-buffered when it is not a terminal, stderr is not: without this a
        # command's results (a dry run's table) reach a shared log after what comes next, even
        # cut mid-line ("2 of 4 jobs stale[2/4] ..."), when `main` runs again in the same process.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()


def _run_command(args: argparse.Namespace) -> int:
    from mlpipe.core.errors import MlpipeError  # not before: `ml --help` needs no dataclasses

    try:
        return int(args.handler(args) or 0)
    except MlpipeError as exc:
        if os.environ.get("MLPIPE_DEBUG"):
            raise
        print(f"ml {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ml {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # full disk, permissions: the user's environment, not a bug
        if os.environ.get("MLPIPE_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ml {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def run() -> None:
    """Console entry point."""
    sys.exit(main())
