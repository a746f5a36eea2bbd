"""``impasto presets``: every setting of every preset."""

from __future__ import annotations

import argparse
import json

from impasto.cli.options import describe, options_table
from impasto.config import fields_help
from impasto.presets import PRESETS


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("presets", help="list the presets and their settings")
    parser.add_argument("--json", action="store_true", help="print the presets as JSON recipes")
    parser.add_argument("--markdown", action="store_true", help="print stylize's option table (as in docs/options.md)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if args.markdown:
        print(options_table())
        return 0
    if args.json:
        print(json.dumps({name: config.to_dict() for name, config in PRESETS.items()}, indent=2, sort_keys=True))
        return 0
    meta = fields_help()
    for name, config in PRESETS.items():
        print(name)
        for field, info in meta.items():
            print(f"  {field} = {describe(getattr(config, field), info['none'])}")
    return 0
