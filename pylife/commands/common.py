"""Argument helpers shared by verbs: naming an object by address, debugger expression or Python expression."""

from __future__ import annotations

import argparse
import re

from ..errors import UserError
from ..session import Session
from ..target import Target

_INTEGER = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")


def resolve_address(target: Target, words: list[str], allow_call: bool = False) -> int:
    """An address from a literal (0x..., decimal) or any debugger expression."""
    expression = " ".join(words).strip()
    if not expression:
        raise UserError("an address or expression is required")
    if _INTEGER.match(expression):
        value = int(expression, 0)
    else:
        value = target.evaluate_address(expression, allow_call)
    if not 0 <= value < 1 << 64:
        raise UserError(f"'{expression}' is not a 64-bit address")
    return value


def add_frame_arguments(parser: argparse.ArgumentParser) -> None:
    """--frame/--thread: which Python frame names are looked up in (numbered as `pylife bt --python`)."""
    parser.add_argument("--frame", type=int, metavar="N",
                        help="Python frame N, numbered as 'pylife bt --python' (default: 'pylife frame', else 0)")
    parser.add_argument("--thread", type=int, metavar="TID",
                        help="OS thread id, as 'pylife bt --all' prints it (default: the debugger's thread)")


def add_object_arguments(parser: argparse.ArgumentParser) -> None:
    """ADDR words or --py EXPR (+ --frame/--thread): the one way every verb names an object."""
    parser.add_argument("address", nargs="*", metavar="ADDR", help="address or debugger expression (op, $rdi, ...)")
    parser.add_argument("--py", metavar="EXPR",
                        help="a Python expression read from memory in the selected Python frame: "
                             "names, .attributes, [constant] subscripts (e.g. 'cache[\"db\"].conn')")
    parser.add_argument("--allow-call", action="store_true",
                        help="let the debugger call functions in the program to evaluate ADDR (never by default)")
    add_frame_arguments(parser)


def has_object(args: argparse.Namespace) -> bool:
    return bool(args.address) or args.py is not None


def resolve_object(session: Session, args: argparse.Namespace) -> int:
    """The object's address from ADDR words or --py; UserError (one line) otherwise."""
    from ..pyexpr import evaluate_py

    if args.py is not None:
        if args.address:
            raise UserError("give ADDR or --py EXPR, not both")
        return evaluate_py(session, args.py, frame=args.frame, thread=args.thread)
    if args.frame is not None or args.thread is not None:
        raise UserError("--frame and --thread apply to --py EXPR")
    if not args.address:
        verb = vars(args).get("verb") or "VERB"
        raise UserError(f"pylife {verb}: ADDR (an address or debugger expression) or --py EXPR is required "
                        f"(see 'pylife {verb} --help')")
    return resolve_address(session.target, args.address, args.allow_call)
