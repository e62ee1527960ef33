"""Why the selected thread stopped, assembled once for both debuggers.

Each adapter answers three primitives of the Target protocol (``stop_reason``,
``stop_register``, ``stop_frame``); the loops over registers and frames are
here, so gdb and lldb report the same registers and the same frames.
"""

from __future__ import annotations

from .target import GENERAL_REGISTERS, FrameArguments, StopInfo, Target

_MASK64 = (1 << 64) - 1


def read_stop_info(target: Target, frames: int = 8) -> StopInfo | None:
    """The signal, fault address, general-purpose registers of the innermost frame,
    and the arguments and locals of the innermost ``frames`` frames. None without
    a stopped thread (or when the adapter cannot tell)."""
    reason = target.stop_reason()
    if reason is None:
        return None
    registers: dict[str, int] = {}
    for name in GENERAL_REGISTERS:
        value = target.stop_register(name)
        if value is not None:
            registers[name] = value & _MASK64
    arguments: list[FrameArguments] = []
    for index in range(max(0, frames)):
        frame = target.stop_frame(index)
        if frame is None:
            break
        arguments.append(frame)
    return StopInfo(reason.tid, reason.signal, reason.code, reason.fault_address, registers.get("rip"), registers,
                    tuple(arguments), reason.description, reason.instruction)
