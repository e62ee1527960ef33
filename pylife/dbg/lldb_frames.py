"""What lldb's SB objects say about threads and frames, as the Target protocol's plain data.

Shared by LldbTarget's unwinding (native_frames) and its stop primitives
(stop_reason, stop_frame).
"""

from __future__ import annotations

import lldb  # type: ignore[import-not-found]

from ..frame_symbols import Symbol
from ..target import FrameArgument

_MASK64 = (1 << 64) - 1


def siginfo(thread: lldb.SBThread, number: int) -> tuple[int | None, int | None]:
    """(si_code, si_addr) of a live stop (x86-64 siginfo_t: si_code @8, si_addr @16).

    lldb-16 answers "Not implemented" for ELF cores: then both are None."""
    value = thread.GetSiginfo()
    if not value.IsValid() or value.GetError().Fail():
        return None, None
    data = value.GetData()
    error = lldb.SBError()
    signo = data.GetSignedInt32(error, 0)
    if error.Fail() or signo != number:
        return None, None
    code = data.GetSignedInt32(error, 8)
    address = data.GetUnsignedInt64(error, 16)
    return (None, None) if error.Fail() else (int(code), int(address) & _MASK64)


def frame_arguments(frame: lldb.SBFrame, local: bool = False) -> tuple[FrameArgument, ...]:
    """The frame's named arguments, or (``local``) its local variables in scope at the pc
    (debug info), as integers when they are pointers or integers."""
    values = frame.GetVariables(not local, local, False, True)  # arguments, locals, statics, in scope only
    result: list[FrameArgument] = []
    for index in range(values.GetSize()):
        value = values.GetValueAtIndex(index)
        type_class = value.GetType().GetCanonicalType().GetTypeClass()
        number: int | None = None
        if type_class in (lldb.eTypeClassPointer, lldb.eTypeClassBuiltin, lldb.eTypeClassEnumeration):
            error = lldb.SBError()
            raw = value.GetValueAsUnsigned(error, 0)
            if error.Success() and not value.GetError().Fail():
                number = int(raw) & _MASK64
        result.append(FrameArgument(value.GetName() or "?", value.GetTypeName() or "?", number))
    return tuple(result)


def first_frame_as_gdb(thread: lldb.SBThread) -> int:
    """Index of the innermost frame gdb would show after a watchpoint stop.

    A watchpoint reports the pc after the store. When that pc is the entry of
    an inlined call (say Py_SIZE), lldb shows the inlined callee as frame 0
    although none of it ran; gdb hides such frames (skip_inline_frames), and
    the writer is the caller. Same rule here, so both debuggers name the same writer.
    """
    if thread.GetStopReason() != lldb.eStopReasonWatchpoint:
        return 0
    index = 0
    while True:
        frame = thread.GetFrameAtIndex(index)
        if not frame.IsValid() or not frame.IsInlined():
            return index
        block = frame.GetFrameBlock()
        pc = frame.GetPCAddress()
        before = lldb.SBAddress(pc.GetLoadAddress(thread.GetProcess().GetTarget()) - 1, thread.GetProcess().GetTarget())
        if block.GetRangeIndexForBlockAddress(before) != lldb.UINT32_MAX:
            return index  # pc - 1 is inside the inlined call: it has started
        index += 1


def symbolize(frame: lldb.SBFrame) -> Symbol:
    line = frame.GetLineEntry()
    module = frame.GetModule()
    return (
        frame.GetFunctionName(),
        line.GetFileSpec().fullpath if line.IsValid() else None,
        (int(line.GetLine()) or None) if line.IsValid() else None,
        module.GetFileSpec().fullpath if module.IsValid() else None,
    )
