"""pylife: trace the lifetime of CPython objects from GDB and LLDB.

The core (everything outside ``pylife.dbg``) never imports a debugger module;
it reads target memory through the :class:`pylife.target.Target` protocol.
"""

__version__ = "0.1.0"
