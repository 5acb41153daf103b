"""`python -m emulator console`: open the web console of the running `serve` in a browser, or print its
URL (`--print`, or when no browser can be started here)."""

from __future__ import annotations

import argparse
import webbrowser

from emulator.cli import endpoints
from emulator.cli.errors import CliError
from emulator.storage.layout import Layout


def console_url(layout: Layout) -> str:
    live = endpoints.live_endpoints(layout)
    if live is None:
        raise CliError(f"no `serve` process answers for {layout.root}: start `python -m emulator serve` "
                       "(it prints the console's URL too), then run `python -m emulator console` again")
    url = live[0].get("Console")
    if not url:
        raise CliError(f"the `serve` process of {layout.root} predates the console: restart it")
    return url


def cmd_console(args: argparse.Namespace) -> int:
    url = console_url(Layout.at(args.state_dir))
    print(url)
    if not args.print_only and not webbrowser.open(url):
        print("(no browser could be started here: open the URL above)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("console", help="open the web console of the running `serve` (or print its URL)")
    parser.add_argument("--print", dest="print_only", action="store_true", help="only print the URL")
    parser.set_defaults(func=cmd_console)
