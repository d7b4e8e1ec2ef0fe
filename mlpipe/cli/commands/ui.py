"""`ml ui [--host 127.0.0.1] [--port 8250] [--open] [--token T] [--export DIR]`: serve the local web
UI, or write it as static files."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8250, help="port (default: 8250; 0: any free port)")
    parser.add_argument("--open", action="store_true", help="open the URL in a browser")
    parser.add_argument("--token", help="session token (default: a random one; '' disables it, loopback only)")
    parser.add_argument("--export", metavar="DIR", help="write the pages as static files into DIR instead of serving")


def run(args: argparse.Namespace) -> int:
    settings = home_settings()
    if args.export:
        import sys
        from pathlib import Path

        from mlpipe.ui.export import export_site

        count = export_site(settings, Path(args.export))
        print(f"ml ui: wrote {Path(args.export) / 'index.html'} ({count} views; open it in a browser)", file=sys.stderr)
        return 0
    from mlpipe.ui.server import serve

    serve(settings, args.host, args.port, args.token, args.open)
    return 0
