"""Debugger adapters: translate gdb/lldb <-> the Target protocol and the pylife CLI."""
