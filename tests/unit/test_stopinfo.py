"""pylife.stopinfo.read_stop_info: the register and frame loops both adapters once wrote,
over the Target's per-register and per-frame primitives."""

from __future__ import annotations

from pylife.stopinfo import read_stop_info
from pylife.target import FrameArguments, StopReason

from .fakes import FakeTarget


class _Stopped(FakeTarget):
    def __init__(self, registers: dict[str, int], frames: int) -> None:
        super().__init__()
        self.registers, self.depth, self.asked = registers, frames, []

    def stop_reason(self) -> StopReason | None:
        return StopReason(7, "SIGSEGV", 1, 0x10, "signal SIGSEGV", None)

    def stop_register(self, name: str) -> int | None:
        return self.registers.get(name)

    def stop_frame(self, index: int) -> FrameArguments | None:
        self.asked.append(index)
        return FrameArguments(f"f{index}", 0x1000 + index, ()) if index < self.depth else None


def test_registers_are_the_readable_general_ones_and_rip_is_the_pc() -> None:
    stop = read_stop_info(_Stopped({"rax": -1, "rip": 0x401000, "xmm0": 5}, 0))
    assert stop is not None and stop.tid == 7 and stop.signal == "SIGSEGV" and stop.fault_address == 0x10
    assert stop.registers == {"rax": (1 << 64) - 1, "rip": 0x401000}  # unsigned; only GENERAL_REGISTERS
    assert stop.pc == 0x401000 and stop.frames == () and stop.description == "signal SIGSEGV"


def test_frames_stop_at_the_outermost_or_at_the_limit() -> None:
    shallow = _Stopped({}, 3)
    stop = read_stop_info(shallow, frames=8)
    assert stop is not None and [f.function for f in stop.frames] == ["f0", "f1", "f2"] and shallow.asked == [0, 1, 2, 3]
    deep = _Stopped({}, 100)
    stop = read_stop_info(deep, frames=2)
    assert stop is not None and len(stop.frames) == 2 and deep.asked == [0, 1]
    assert read_stop_info(FakeTarget()) is None  # no stopped thread
