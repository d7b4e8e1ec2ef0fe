"""`ml viewmodule ID [--json]`: a module's YAML file and the interface MLPipe reads from it."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module_id", metavar="ID", help="a module id (APP/module/NAME)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import print_json, print_table
    from mlpipe.home.apps import AppIndex
    from mlpipe.home.loader import load_module, read_text

    apps = AppIndex.discover(home_settings())
    module = load_module(apps, args.module_id)
    text = read_text(apps.module_path(args.module_id))
    ports = {section: {name: {"type": p.type, "optional": p.optional, "datafile": p.datafile}
                       for name, p in getattr(module, section).items()} for section in ("inputs", "outputs")}
    params = {name: {"type": p.type, "default": p.default, "required": p.required} for name, p in module.params.items()}
    if args.json:
        print_json({"module": module.module_id, "file": module.file, "yaml": text, **ports, "parameters": params,
                    "cmd": module.template, "shell": module.shell,
                    "input_from_job_config": module.inputs_from_job, "output_from_job_config": module.outputs_from_job})
        return 0
    print(f"file: {module.file}\n-----")
    print(text.rstrip("\n"))
    print("-----")
    rows = [[kind, name, p["type"], "optional" if p["optional"] else "", ""]
            for kind, section in (("input", "inputs"), ("output", "outputs")) for name, p in ports[section].items()]
    rows += [["parameter", name, p["type"], "required" if p["required"] else "", repr(p["default"])]
             for name, p in params.items()]
    print_table(rows, ["kind", "name", "type", "", "default"])
    runs = "/bin/sh -c, every value quoted" if module.shell else "an argument list (no shell)"
    named = [w for w, on in (("inputs", module.inputs_from_job), ("outputs", module.outputs_from_job)) if on]
    print(f"runs as: {runs}" + (f"; the job names its {' and '.join(named)}" if named else ""))
    return 0
