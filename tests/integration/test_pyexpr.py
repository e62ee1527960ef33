"""--py EXPR, --frame, --thread and `pylife frame` at the objects fixture's stop, live and on its core.

The fixture (tests/fixtures/objects_fixture.py) stops in a closure: Python
frames #0 trap (free vars conn, marks), #1 stop (their cells), #2 main
(locals path, names), #3 <module> (globals CACHE, PAIR, Conn). Its truth
holds the id() of every object an expression must find.
"""

from __future__ import annotations

import pytest

from . import params
from .driver import Session
from .test_commands import assert_json_error, assert_one_line_error, session  # noqa: F401 (fixture)

# label -> key of truth["pyexpr"]: the object the expression must name.
FOUND = {
    "py:cache_db": "cache_db", "py:cache_7": "cache_7", "py:cache_tuple": "cache_tuple",
    "py:cache_none": "cache_none", "py:cache_bytes": "cache_bytes", "py:db_name": "db_name",
    "py:db_items_last": "db_items_last", "py:pair_left_name": "pair_left_name", "py:conn_kind": "conn_kind",
    "py:conn_class": "conn_class", "py:len": "len",
}
PY_SESSIONS = params.sessions()


@pytest.mark.parametrize(params.SESSION_ARGS, PY_SESSIONS)
def test_expressions_name_the_objects(session: Session) -> None:  # noqa: F811
    assert session.truth is not None, session.describe()
    truth = session.truth["pyexpr"]
    found = {label: session.json(label)["address"] for label in FOUND}
    assert found == {label: truth[key] for label, key in FOUND.items()}
    assert session.json("py:db_name")["preview"] == "'db'"
    assert session.json("py:conn_class")["type"] == "type"
    marks = session.json("py:marks")  # a cell of frame #1, thread given by its id
    assert (marks["type"], marks["preview"]) == ("list", "['cell']")


@pytest.mark.parametrize(params.SESSION_ARGS, PY_SESSIONS)
def test_what_reading_cannot_do_is_one_line(session: Session) -> None:  # noqa: F811
    assert "Conn.upper is a property: reading it needs a call into the process" in assert_json_error(
        session, "pyerr:property")
    assert "__main__.Pair.right is not set" in assert_json_error(session, "pyerr:slot_unset")
    assert "key 'nope' not found in the dict (5 keys)" in assert_json_error(session, "pyerr:missing_key")
    missing = assert_json_error(session, "pyerr:missing_name")
    # co_qualname exists from 3.11; before, frames are named by co_name.
    assert missing.startswith(("name 'nothing_here' is not defined: searched the locals of stop.<locals>.trap "
                               "(frame #0 of thread ", "name 'nothing_here' is not defined: searched the locals "
                               "of trap (frame #0 of thread ")), missing
    assert "the globals of module '__main__', the builtins" in missing
    assert "a call is not supported" in assert_json_error(session, "pyerr:call")
    assert "is not defined" in assert_one_line_error(session.record("pyerr:text"))


@pytest.mark.parametrize(params.SESSION_ARGS, PY_SESSIONS)
def test_frame_selection(session: Session) -> None:  # noqa: F811
    assert session.truth is not None
    pid = session.truth["python"]["pid"]
    selected = session.json("frame:select")
    assert (selected["frame"], selected["function"], selected["tid"], selected["selected"]) == (2, "main", pid, True)
    assert selected["locals"] == ["path", "names"] and selected["frames"] == 4
    names = session.json("frame:names")  # `names` is main's local: found through the selection
    assert names["type"] == "list" and "'str_ascii'" in names["preview"]
    shown = session.json("frame:show")
    assert (shown["frame"], shown["selected"]) == (2, True)
    text = session.record("frame:text").output
    assert f"Python frame #2 of thread {pid} (selected; 4 frames)" in text and "main at " in text, text
    assert session.json("frame:reset")["function"] in ("stop.<locals>.trap", "trap")
