"""Is this pointer a live object? ALIVE / FREED / CORRUPT / UNKNOWN, with the evidence.

The order of cpython-internals.md §7:

1. static: inside an image's data sections or ``_PyRuntime`` -> never freed;
2. the allocator's own state: a pymalloc block on its pool's free list or
   beyond ``nextoffset`` is free; a glibc chunk whose successor has
   PREV_INUSE clear, or whose first 16 bytes are tcache links, is free;
3. the debug hooks: 0xDD fill means freed under PYTHONMALLOC=debug (checked
   on ``ob_type``: a use after free may have incremented ``ob_refcnt``);
4. the type: ``ob_type`` must be a type object (``Objects.type_info``);
5. the refcount: 0 with an intact type is an object cached on a free list
   (or being deallocated); floats link their free list through ``ob_type``.

A verdict of CORRUPT needs positive evidence that an object starts at the
address (an allocated block whose layout puts an object there); without it
the answer is UNKNOWN. Every read may fail; nothing is followed unbounded.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotAnObject, PylifeError, UnreadableMemory
from ..target import Memory, Target, TargetKind
from . import allocators as al
from . import debug_hooks, free_threaded
from .objects import Objects, TypeInfo, plausible_pointer
from .pool_shape import SHAPE_NOTE, pool_block_by_shape
from .runtime import Runtime

ALIVE = "ALIVE"
FREED = "FREED"
CORRUPT = "CORRUPT"
UNKNOWN = "UNKNOWN"

# Where an object can start inside its block: nothing, a GC head, a GC head
# plus the 3.11+ managed dict/weakref pre-header (pycore_object.h).
PREHEADERS = (0, 16, 32)
STATIC_SECTIONS = (".data", ".bss", ".data.rel.ro", ".rodata", ".PyRuntime", ".tbss", ".tdata")


@dataclass
class Verdict:
    verdict: str
    reasons: list[str] = field(default_factory=list)
    allocator: dict[str, Any] = field(default_factory=dict)
    stale_type: str | None = None  # the type a freed object had, when still readable
    new_object: int | None = None  # the object that now occupies the memory, if any
    new_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "allocator": dict(self.allocator),
                "stale_type": self.stale_type}


def static_region(target: Target, runtime: Runtime, address: int) -> str | None:
    """'<section> of <image>' when ``address`` is static data, else None."""
    L = runtime.layout
    if L.has("_PyRuntimeState.size") and runtime.address <= address < runtime.address + L["_PyRuntimeState.size"]:
        return "_PyRuntime"
    try:
        found = target.section_of(address)
    except PylifeError:
        return None
    if not found:
        return None
    section, module = found
    if section not in STATIC_SECTIONS:
        return None
    return f"{section} of {os.path.basename(module)}" if module else section


class Assessor:
    """Verdicts for one stopped target; reuses the type cache of ``objects``."""

    def __init__(self, target: Target, mem: Memory, runtime: Runtime, objects: Objects) -> None:
        self.target = target
        self.mem = mem
        self.runtime = runtime
        self.objects = objects
        self.layout = runtime.layout
        self.allocator = al.detect_allocator(target, mem, runtime)

    # ---- small helpers ------------------------------------------------------------

    def _type(self, address: int) -> tuple[TypeInfo | None, str | None]:
        try:
            return self.objects.type_of(address), None
        except NotAnObject as exc:
            return None, str(exc)
        except PylifeError as exc:
            return None, f"not a PyObject: {exc}"

    def _type_name_at(self, type_address: int) -> str | None:
        try:
            return self.objects.type_info(type_address).qualified
        except PylifeError:
            return None

    def stale_type(self, address: int) -> str | None:
        """The type name still stored in ``ob_type``, if it is (still) a type."""
        try:
            return self._type_name_at(self.objects.type_address(address))
        except PylifeError:
            return None

    def _refcount(self, address: int) -> int | None:
        try:
            return self.objects.refcount(address)[0]
        except PylifeError:
            return None

    def _preheader(self, address: int, tp: TypeInfo) -> int:
        try:
            return self.layout.preheader_size(tp.flags, self.objects.is_gc(address, tp))
        except PylifeError:
            return 0

    def _object_size(self, address: int, tp: TypeInfo) -> int:
        try:
            return self.objects.size(address, tp)
        except PylifeError:
            return tp.basicsize

    def _object_in_block(self, start: int, skip: int, below: int | None = None) -> tuple[int, TypeInfo] | None:
        """A valid object whose allocation begins at ``start`` (after the hooks' header), other than ``skip``."""
        for pre in PREHEADERS:
            candidate = start + pre
            if candidate == skip or (below is not None and candidate >= below):
                continue
            tp, _error = self._type(candidate)
            if tp is not None and self._preheader(candidate, tp) == pre and self._live_refcount(candidate):
                return candidate, tp
        return None

    def _live_refcount(self, address: int) -> bool:
        """A refcount a live object can have: not 0, not a pointer (a GC head's
        ``_gc_next`` read as ``ob_refcnt`` looks like one)."""
        try:
            word = self.mem.u64(address + self.layout["PyObject.ob_refcnt"])
        except PylifeError:
            return False
        return self.layout.plausible_live_refcount(word)

    # ---- the verdict --------------------------------------------------------------------

    def assess(self, address: int, tp: TypeInfo | None = None, type_error: str | None = None) -> Verdict:
        verdict = Verdict(UNKNOWN, allocator=al.allocator_facts(self.allocator))
        facts = verdict.allocator
        if tp is None and type_error is None:
            tp, type_error = self._type(address)
        if not plausible_pointer(address) or address % 8:
            facts["region"] = "none"
            verdict.reasons.append(f"{address:#x} is not an aligned user-space address: not an object")
            return verdict
        try:
            self.mem.read(address, 16)
        except UnreadableMemory:
            facts["region"] = "unmapped"
            where = "not in the core file" if self.target.kind is TargetKind.CORE else "not mapped"
            verdict.reasons.append(f"memory at {address:#x} is unreadable ({where})")
            return verdict
        if self.layout.free_threaded:
            # The split refcount and ob_gc_bits are the evidence a "t" build gives (free_threaded.py).
            try:
                facts.update(free_threaded.Header.decode(self.mem.read(address, free_threaded.HEADER_SIZE)).facts())
            except UnreadableMemory:
                pass
        region = static_region(self.target, self.runtime, address)
        if region is not None:
            return self._static(verdict, address, region, tp, type_error)
        if self.layout.free_threaded:
            facts["region"] = "mimalloc"
            verdict.reasons.append(free_threaded.MIMALLOC_UNKNOWN)
            return verdict
        block: al.PoolBlock | None = None
        inside: bool | None = None
        if self.allocator.uses_pymalloc is not False:
            try:
                block, inside = al.pymalloc_lookup(self.target, self.mem, self.runtime, address)
            except PylifeError:
                block, inside = None, None
        by_shape = False
        if block is None and inside is None and self.allocator.uses_pymalloc is not False:
            # No arena table (a static without .symtab, 3.8-3.11): a pool is known by its header.
            block, inside = pool_block_by_shape(self.mem, self.layout, address)
            by_shape = True
            if block is not None:
                facts["pool_found_by"] = "shape"
                block = dataclasses.replace(block, why=f"{block.why}; {SHAPE_NOTE}")
        if block is not None:
            facts["region"] = "pymalloc"
            facts.update(block.facts())
            return self._pymalloc(verdict, address, block, tp, type_error)
        if inside:
            facts["region"] = "pymalloc"
            verdict.reasons.append(f"{address:#x} is in a pymalloc arena but not inside a block (pool header or tail)")
            return verdict
        return self._malloc(verdict, address, tp, type_error, pymalloc_known=inside is False, by_shape=by_shape)

    def _static(self, verdict: Verdict, address: int, region: str, tp: TypeInfo | None,
                type_error: str | None) -> Verdict:
        verdict.allocator["region"] = "static"
        verdict.allocator["section"] = region
        if tp is None:
            verdict.reasons.append(f"static data ({region}), but {type_error or 'not an object'}")
            return verdict
        verdict.verdict = ALIVE
        where = "inside _PyRuntime" if region == "_PyRuntime" else f"in {region}"
        verdict.reasons.append(f"static object {where}: never freed")
        return verdict

    def _alive_or_cached(self, verdict: Verdict, address: int, tp: TypeInfo, evidence: str) -> Verdict:
        refcnt = self._refcount(address)
        if refcnt == 0:
            verdict.verdict = FREED
            verdict.stale_type = tp.qualified
            verdict.reasons.append(evidence)
            verdict.reasons.append("refcount 0 with an intact type: cached on a free list (or being deallocated)")
            return verdict
        if refcnt is not None and refcnt < 0 and not self._immortal(refcnt):
            verdict.verdict = CORRUPT
            verdict.reasons.append(evidence)
            verdict.reasons.append(f"refcount {refcnt} is negative: decref'd more often than incref'd")
            return verdict
        verdict.verdict = ALIVE
        verdict.reasons.append(evidence)
        return verdict

    def _immortal(self, refcnt: int) -> bool:
        return self.layout.is_immortal(refcnt)

    def _float_free_list(self, address: int) -> str | None:
        """<= 3.13 floatobject.c float_dealloc: the free list links through ob_type (refcount 0)."""
        if self._refcount(address) != 0:
            return None
        try:
            link = self.objects.type_address(address)
        except PylifeError:
            return None
        if link == 0:
            return "refcount 0 and ob_type NULL: the last float on the float free list"
        block = al.pymalloc_lookup(self.target, self.mem, self.runtime, link)[0] if plausible_pointer(link) else None
        if block is not None and block.state is al.BlockState.ALLOCATED and self._refcount(link) == 0:
            size = al.pool_block(self.mem, self.layout, address)
            if size is not None and size.size == block.size:
                return f"refcount 0 and ob_type {link:#x} is another dead float: on the float free list"
        return None

    def _pymalloc(self, verdict: Verdict, address: int, block: al.PoolBlock, tp: TypeInfo | None,
                  type_error: str | None) -> Verdict:
        hooks = self.allocator.header
        offset = address - block.block
        if self.allocator.debug_hooks:
            header = debug_hooks.debug_header(self.mem, block.block + hooks)
            if header is not None:
                verdict.allocator.update(header.facts())
                if header.valid and header.trailer_ok is False:
                    verdict.reasons.append("the debug hooks' trailing pad bytes are overwritten: "
                                           "something wrote past the end of this block")
        if block.state in (al.BlockState.FREE, al.BlockState.NEVER_USED):
            verdict.verdict = FREED
            verdict.reasons.append(block.why)
            if debug_hooks.dead_fill(self.mem, address + 8, 8):
                verdict.reasons.append("filled with 0xDD: freed under PYTHONMALLOC=debug")
            if block.state is al.BlockState.FREE:
                # Only the block's first word became the free-list link: ob_type survives.
                verdict.stale_type = self.stale_type(address)
                if verdict.stale_type is None:
                    verdict.reasons.append("the stale type is gone (ob_type overwritten)")
            return verdict
        # An allocated block: who lives in it?
        if tp is not None:
            expected = hooks + self._preheader(address, tp)
            if offset == expected:
                # A new, smaller object at the start of the block may have
                # left this (stale) header alone: it covers the address.
                earlier = self._object_in_block(block.block + hooks, address, below=address)
                if earlier is not None and address < earlier[0] + self._object_size(*earlier):
                    return self._reused(verdict, address, earlier, tp.qualified, block.why)
                return self._alive_or_cached(verdict, address, tp, block.why)
            other = self._object_in_block(block.block + hooks, address)
            if other is not None:
                if address < other[0] + self._object_size(*other):
                    # Not where an object of this type starts, and inside a live
                    # object that does: what looks like a header is its data.
                    return self._interior(verdict, address, other, block.why)
                return self._reused(verdict, address, other, tp.qualified, block.why)
            verdict.verdict = ALIVE
            verdict.reasons.append(block.why)
            verdict.reasons.append(f"the object is {offset} bytes into its block; its type's layout says {expected}")
            return verdict
        if debug_hooks.dead_fill(self.mem, address + 8, 8):
            verdict.verdict = FREED
            verdict.reasons.append(block.why)
            verdict.reasons.append("filled with 0xDD: freed under PYTHONMALLOC=debug")
            return verdict
        if self.allocator.debug_hooks and debug_hooks.dead_fill(self.mem, address + 8, 8, debug_hooks.CLEANBYTE):
            verdict.verdict = FREED
            verdict.reasons.append(block.why)
            verdict.reasons.append("ob_type is 0xCD fill: the block was freed and handed out again "
                                   "(a fresh PYTHONMALLOC=debug allocation not yet written)")
            return verdict
        # The float free list links whole blocks: the rule holds at a block's
        # object start only (a float has no pre-header), never inside one.
        floats = self._float_free_list(address) if offset == hooks else None
        if floats is not None:
            verdict.verdict = FREED
            verdict.stale_type = "float"
            verdict.reasons.extend([block.why, floats])
            return verdict
        other = self._object_in_block(block.block + hooks, address)
        if other is not None and offset - hooks not in PREHEADERS and other[0] < address < other[0] + self._object_size(*other):
            # No object ever started at this offset of the block (objects start
            # after the hooks' header and a pre-header): data of the live one.
            return self._interior(verdict, address, other, block.why)
        if other is not None:
            new, new_tp = other
            verdict.allocator["new_object"] = new
            verdict.allocator["new_type"] = new_tp.qualified
            verdict.reasons.append(block.why)
            verdict.reasons.append(f"the block holds a {new_tp.qualified} object at {new:#x}: {address:#x} is either "
                                   "a pointer into it, or a stale pointer to a freed object whose block was reused")
            return verdict
        if offset - hooks in PREHEADERS:
            verdict.verdict = CORRUPT
            verdict.reasons.append(block.why)
            verdict.reasons.append(_corrupt_reason(type_error))
            return verdict
        verdict.reasons.append(f"{address:#x} is {offset} bytes into an allocated pymalloc block of "
                               f"size class {block.size}: an interior pointer, not an object start")
        return verdict

    def _object_chunk(self, address: int, chunk: al.Chunk, header: debug_hooks.DebugHeader | None) -> bool:
        """Enough evidence that an object was allocated at ``address`` in this chunk."""
        if header is not None:
            return header.valid and header.api == "o"
        if self.allocator.uses_pymalloc and chunk.size <= al.SMALL_REQUEST_THRESHOLD + 16:
            return False  # pymalloc serves requests up to 512 bytes itself
        return self._live_refcount(address)

    def _interior(self, verdict: Verdict, address: int, owner: tuple[int, TypeInfo], evidence: str) -> Verdict:
        """``address`` lies inside the live object that starts its block: no verdict on it as an object."""
        start, owner_tp = owner
        verdict.allocator["object"] = start
        verdict.allocator["object_type"] = owner_tp.qualified
        verdict.reasons.append(evidence)
        verdict.reasons.append(f"{address:#x} is {address - start} bytes into the live {owner_tp.qualified} object at "
                               f"{start:#x}: an interior pointer, not an object start")
        return verdict

    def _reused(self, verdict: Verdict, address: int, other: tuple[int, TypeInfo], stale: str | None,
                evidence: str) -> Verdict:
        new, new_tp = other
        verdict.verdict = FREED
        verdict.stale_type = stale
        verdict.new_object = new
        verdict.new_type = new_tp.qualified
        verdict.allocator["new_object"] = new
        verdict.allocator["new_type"] = new_tp.qualified
        verdict.reasons.append(evidence)
        verdict.reasons.append(f"the block was reused: it now holds a new {new_tp.qualified} object at {new:#x}")
        return verdict

    def _malloc(self, verdict: Verdict, address: int, tp: TypeInfo | None, type_error: str | None,
                pymalloc_known: bool, by_shape: bool = False) -> Verdict:
        facts = verdict.allocator
        hooks = self.allocator.header
        if pymalloc_known or self.allocator.uses_pymalloc is False:
            facts["region"] = "malloc"
        else:
            facts["region"] = "unknown"
        # Under the debug hooks over pymalloc, a large request goes on to the
        # public PyMem_RawMalloc, whose own hooks add a second ('r') header.
        raw = debug_hooks.DEBUG_HEADER if self.allocator.debug_hooks and self.allocator.name == "pymalloc" else 0
        pres = [self._preheader(address, tp)] if tp is not None else list(PREHEADERS)
        chunk: al.Chunk | None = None
        pre = pres[0]
        # glibc headers are only evidence when the block is known to come from
        # malloc: outside pymalloc's arenas, or with PYTHONMALLOC=malloc.
        trusted = pymalloc_known or self.allocator.name == "malloc"
        for candidate in pres if trusted else ():
            chunk = al.glibc_chunk(self.target, self.mem, address - candidate - hooks - raw)
            if chunk is not None:
                pre = candidate
                facts.update(chunk.facts())
                break
        header = debug_hooks.debug_header(self.mem, address - pre) if self.allocator.debug_hooks else None
        if header is not None:
            facts.update(header.facts())
        dead = debug_hooks.dead_fill(self.mem, address + 8, 8)
        if dead and self.allocator.debug_hooks:
            verdict.verdict = FREED
            if chunk is not None:
                verdict.reasons.append(chunk.why)
            verdict.reasons.append("filled with 0xDD: freed under PYTHONMALLOC=debug")
            return verdict
        if dead:
            verdict.reasons.append("filled with 0xDD (what PYTHONMALLOC=debug leaves in freed memory)")
        if chunk is not None and chunk.in_use is False:
            verdict.verdict = FREED
            verdict.reasons.append(chunk.why)
            verdict.stale_type = self.stale_type(address)
            if verdict.stale_type is None:
                verdict.reasons.append("the stale type is gone (glibc's free-list links overwrote the header)")
            return verdict
        if tp is not None and chunk is not None and chunk.tcache and self._refcount(address) == 0:
            # A GC head or pre-header took glibc's links; the header below is stale.
            verdict.verdict = FREED
            verdict.stale_type = tp.qualified
            verdict.reasons.append(chunk.why.replace("in use by malloc", "cached by malloc"))
            verdict.reasons.append("the block starts with glibc tcache links {next, key}: freed to malloc's tcache")
            return verdict
        if tp is not None and chunk is None and (by_shape or not pymalloc_known):
            # A freed block keeps its stale type: a valid header alone is no evidence of life.
            verdict.reasons.append(f"valid type ({tp.qualified}) and header, but the allocator's state is unknown "
                                   "(no symbols for its tables): cannot tell alive from freed")
            return verdict
        if tp is not None:
            evidence = chunk.why if chunk is not None else "not in a pymalloc arena"
            return self._alive_or_cached(verdict, address, tp, evidence)
        if chunk is not None and chunk.tcache and not (header is not None and header.valid):
            verdict.verdict = FREED
            verdict.reasons.append(chunk.why.replace("in use by malloc", "cached by malloc"))
            verdict.reasons.append("its first 16 bytes are glibc tcache links {next, key}: freed to malloc's tcache")
            verdict.reasons.append("the stale type is gone (glibc's free-list links overwrote the header)")
            return verdict
        if chunk is not None and chunk.in_use and self._object_chunk(address, chunk, header):
            verdict.verdict = CORRUPT
            verdict.reasons.append(chunk.why)
            verdict.reasons.append(_corrupt_reason(type_error))
            return verdict
        verdict.reasons.append(type_error or "not a PyObject")
        return verdict


def _corrupt_reason(type_error: str | None) -> str:
    text = type_error or "ob_type is not a type object"
    prefix = "not a PyObject: "
    return text[len(prefix):] if text.startswith(prefix) else text


def assess(target: Target, mem: Memory, runtime: Runtime, objects: Objects, address: int,
           tp: TypeInfo | None = None, type_error: str | None = None) -> Verdict:
    return Assessor(target, mem, runtime, objects).assess(address, tp, type_error)
