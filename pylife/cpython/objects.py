"""PyObject views: header, type, size, and a safe, budgeted preview of the value.

Everything is decoded from raw bytes with the layout's offsets. Target memory
is hostile: each read may fail and each pointer, length or count may be junk,
so every loop has a budget and every container walk a visited set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import NotAnObject, PylifeError, UnreadableMemory
from ..target import Memory
from . import free_threaded
from .layout import (
    TPFLAGS_HAVE_GC,
    TPFLAGS_HEAPTYPE,
    TPFLAGS_TYPE_SUBCLASS,
    Layout,
)

# A budget, not a plausibility rule: CPython puts no limit on tp_name.
MAX_TYPE_NAME = 4096
MAX_POINTER = (1 << 47) - 1  # x86-64 user space (canonical lower half)

# Static (non-heap) types whose values we decode, by tp_name. Heap types with
# the same name are never matched (a C extension cannot make a heap type
# pretend to be a builtin here).
BUILTIN_KINDS = frozenset({
    "str", "int", "bool", "float", "bytes", "tuple", "list", "dict", "set",
    "frozenset", "type", "function", "code", "module", "NoneType",
})
SET_DUMMY_TYPE_NAME = "<dummy key> type"  # Objects/setobject.c _PySetDummy_Type


@dataclass(frozen=True)
class TypeInfo:
    address: int
    name: str  # tp_name as stored
    qualified: str  # module-qualified for heap types, tp_name otherwise
    flags: int
    basicsize: int
    itemsize: int
    kind: str | None  # one of BUILTIN_KINDS for the exact builtin type, else None

    @property
    def is_heap(self) -> bool:
        return bool(self.flags & TPFLAGS_HEAPTYPE)


@dataclass
class Budget:
    """Limits for one preview: nesting depth, items per container, chars per string."""

    depth: int = 3
    items: int = 10
    chars: int = 80
    total: int = 2000  # soft cap on the whole preview
    scan: int = 10_000  # hash-table slots examined per container
    used: int = field(default=0, init=False)


def plausible_pointer(value: int) -> bool:
    return 4096 <= value <= MAX_POINTER


class Objects:
    """Decoders for one stopped target (types are cached by address)."""

    def __init__(self, mem: Memory, layout: Layout) -> None:
        self.mem = mem
        self.layout = layout
        self._types: dict[int, TypeInfo] = {}
        self._resolving: set[int] = set()  # heap types whose qualified name is being read

    # ---- header and type -------------------------------------------------

    def refcount(self, address: int) -> tuple[int, bool]:
        """(ob_refcnt, immortal) as stored (3.14+: the 32-bit ob_refcnt); free-threaded:
        Py_REFCNT from both fields."""
        if self.layout.free_threaded:
            header = self.ft_header(address)
            return header.refcount(free_threaded.deferred_bias(self.layout.key)), header.immortal
        value = self.layout.decode_refcount(self.mem.u64(address + self.layout["PyObject.ob_refcnt"]))
        return value, self.layout.is_immortal(value)

    def ft_header(self, address: int) -> free_threaded.Header:
        """The free-threaded object header (free_threaded.py)."""
        return free_threaded.Header.decode(self.mem.read(address, free_threaded.HEADER_SIZE))

    def type_address(self, address: int) -> int:
        return self.mem.ptr(address + self.layout["PyObject.ob_type"])

    def type_of(self, address: int) -> TypeInfo:
        """The validated type of the object at ``address`` or NotAnObject."""
        if not plausible_pointer(address):
            raise NotAnObject(f"not a PyObject: {address:#x} is not a plausible object address")
        try:
            type_address = self.type_address(address)
        except UnreadableMemory as exc:
            raise NotAnObject(f"not a PyObject: {exc}") from None
        return self.type_info(type_address, what=f"ob_type {type_address:#x}")

    def type_info(self, type_address: int, what: str = "") -> TypeInfo:
        cached = self._types.get(type_address)
        if cached is not None:
            return cached
        what = what or f"type {type_address:#x}"
        L = self.layout
        if type_address == 0:
            raise NotAnObject("not a PyObject: ob_type is NULL")
        if not plausible_pointer(type_address):
            raise NotAnObject(f"not a PyObject: {what} is not a valid pointer")
        try:
            block = self.mem.read(type_address, L["PyTypeObject.tp_flags"] + 8)
            metatype = struct.unpack_from("<Q", block, L["PyObject.ob_type"])[0]
            flags = struct.unpack_from("<Q", block, L["PyTypeObject.tp_flags"])[0]
            if not plausible_pointer(metatype):
                raise NotAnObject(f"not a PyObject: {what} is not a type object (its ob_type is {metatype:#x})")
            meta_flags = self.mem.u64(metatype + L["PyTypeObject.tp_flags"])
        except UnreadableMemory:
            raise NotAnObject(f"not a PyObject: {what} is not a type object (unreadable)") from None
        if not meta_flags & TPFLAGS_TYPE_SUBCLASS:
            raise NotAnObject(f"not a PyObject: {what} is not a type object (its type is not a metatype)")
        name_ptr = struct.unpack_from("<Q", block, L["PyTypeObject.tp_name"])[0]
        name = self._type_name(name_ptr, what)
        basicsize, itemsize = struct.unpack_from("<qq", block, L["PyTypeObject.tp_basicsize"])
        if not (0 < basicsize < 1 << 24) or not (0 <= itemsize < 1 << 16):
            raise NotAnObject(f"not a PyObject: {what} has tp_basicsize {basicsize}, tp_itemsize {itemsize}")
        is_heap = bool(flags & TPFLAGS_HEAPTYPE)
        qualified = self._heap_type_qualname(type_address) if is_heap else None
        kind = name if (not is_heap and name in BUILTIN_KINDS) else None
        if kind is None and flags & TPFLAGS_TYPE_SUBCLASS:
            kind = "type"  # a metatype: its instances are classes
        info = TypeInfo(type_address, name, qualified or name, flags, basicsize, itemsize, kind)
        self._types[type_address] = info
        return info

    def _type_name(self, name_ptr: int, what: str) -> str:
        """tp_name: one readable NUL-terminated string of at most MAX_TYPE_NAME bytes.

        Its content never judges the type: generated classes have names far
        longer than 256 bytes, and any bytes are legal in a heap type's name
        (ht_name's UTF-8: controls, invalid UTF-8 through the C API). The text
        is kept whole here (invalid UTF-8 as \\x escapes); renderers escape
        and cut it."""
        if not plausible_pointer(name_ptr):
            raise NotAnObject(f"not a PyObject: {what} has tp_name {name_ptr:#x}")
        try:
            raw = self.mem.cstring(name_ptr, MAX_TYPE_NAME + 1)
        except UnreadableMemory:
            raise NotAnObject(f"not a PyObject: {what} has an unreadable tp_name") from None
        if len(raw) > MAX_TYPE_NAME or self._runs_into_unreadable(name_ptr, raw):
            raise NotAnObject(f"not a PyObject: {what} has no NUL-terminated tp_name within {MAX_TYPE_NAME} bytes")
        return raw.decode("utf-8", errors="backslashreplace")

    def _runs_into_unreadable(self, name_ptr: int, raw: bytes) -> bool:
        """cstring stops short at an unreadable page: then the NUL was never seen."""
        try:
            return self.mem.u8(name_ptr + len(raw)) != 0
        except UnreadableMemory:
            return True

    def heap_type_qualname(self, type_address: int) -> str | None:
        """module.qualname of a heap type, read without checking it is a ready type."""
        return self._heap_type_qualname(type_address)

    def _heap_type_qualname(self, type_address: int) -> str | None:
        """module.qualname from ht_qualname and tp_dict['__module__'] (typeobject.c type_repr)."""
        if type_address in self._resolving:
            return None  # corrupt memory leading back to this type (e.g. its own instance as a tp_dict key)
        self._resolving.add(type_address)
        try:
            qualname_ptr = self.mem.ptr(type_address + self.layout["PyHeapTypeObject.ht_qualname"])
            if not self.is_kind(qualname_ptr, "str"):
                return None
            qualname = self.str_value(qualname_ptr, MAX_TYPE_NAME)[0]
            tp_dict = self.mem.ptr(type_address + self.layout["PyTypeObject.tp_dict"])
            module_ptr = self.dict_get_str(tp_dict, "__module__") if self.is_kind(tp_dict, "dict") else None
            module = self.str_value(module_ptr, MAX_TYPE_NAME)[0] if module_ptr and self.is_kind(module_ptr, "str") else None
        except PylifeError:
            return None
        finally:
            self._resolving.discard(type_address)
        if module and module != "builtins":
            return f"{module}.{qualname}"
        return qualname

    def is_kind(self, address: int, kind: str) -> bool:
        try:
            return self.type_of(address).kind == kind
        except PylifeError:
            return False

    # ---- size and GC ---------------------------------------------------------

    def is_gc(self, address: int, tp: TypeInfo) -> bool:
        """Py_TPFLAGS_HAVE_GC, except static type objects (type_is_gc in typeobject.c)."""
        if not tp.flags & TPFLAGS_HAVE_GC:
            return False
        if tp.kind == "type":
            try:
                return bool(self.mem.u64(address + self.layout["PyTypeObject.tp_flags"]) & TPFLAGS_HEAPTYPE)
            except UnreadableMemory:
                return False
        return True

    def size(self, address: int, tp: TypeInfo) -> int:
        """Bytes of the object's own block: header, items, GC head and pre-header.

        Separately allocated buffers (list items, dict keys, set tables) are
        not counted. int and str follow their __sizeof__ (longobject.c,
        unicodeobject.c); static type objects are sizeof(PyTypeObject).
        """
        L = self.layout
        own = tp.basicsize
        if tp.kind == "str":
            own = self._str_size(address)
        elif tp.kind in ("int", "bool"):
            own = L["PyLongObject.ob_digit"] + 4 * max(self._int_ndigits(address)[0], self._min_int_digits())
        elif tp.kind == "type" and not self.mem.u64(address + L["PyTypeObject.tp_flags"]) & TPFLAGS_HEAPTYPE:
            own = L["PyTypeObject.size"]
        elif tp.itemsize:
            own += tp.itemsize * abs(self.mem.i64(address + L["PyVarObject.ob_size"]))
        if L.has_inline_values(tp.flags):
            own += self._inline_values_size(address, tp)
        return own + L.preheader_size(tp.flags, self.is_gc(address, tp))

    def _inline_values_size(self, address: int, tp: TypeInfo) -> int:
        """3.13 inline values, allocated after tp_basicsize (typeobject.c _PyType_AllocNoTrack).

        pycore_dict.h _PyInlineValuesSize(n) = n rounded up to 8 (the order
        prefix) + (n + 1) pointers, n being the shared keys' usable size at
        allocation. The object records a capacity one less: dictobject.c
        _PyObject_InitInlineValues decrements dk_usable (while it is > 1)
        before storing it in the first byte of the PyDictValues at
        obj + tp_basicsize. (Checked against pymalloc size classes on 3.13.0;
        for a type whose dk_usable had already reached 1 this counts 8 bytes
        too many.)
        """
        allocated = self.mem.u8(address + tp.basicsize) + 1
        return (allocated + 7) // 8 * 8 + (allocated + 1) * 8

    def _min_int_digits(self) -> int:
        # 3.11+ int___sizeof__ counts at least one digit (longobject.c).
        return 1 if self.layout.int_has_min_one_digit() else 0

    # ---- value decoders ------------------------------------------------------

    def str_value(self, address: int, max_chars: int) -> tuple[str, bool]:
        """(text, truncated) of a str object (Include/cpython/unicodeobject.h)."""
        L = self.layout
        state = self.mem.u32(address + L["PyASCIIObject.state"]) >> L.str_state_shift()
        length = self.mem.i64(address + L["PyASCIIObject.length"])
        kind = (state >> 2) & 7
        compact = (state >> 5) & 1
        ascii_only = (state >> 6) & 1
        if L.str_has_ready_bit() and not (state >> 7) & 1:
            raise NotAnObject(f"str at {address:#x} is not ready (legacy wstr-only string)")
        if kind not in (1, 2, 4) or length < 0 or length > 1 << 40:
            raise NotAnObject(f"str at {address:#x} has kind {kind}, length {length}")
        if compact and ascii_only:
            data = address + L["PyASCIIObject.size"]
        elif compact:
            data = address + L["PyCompactUnicodeObject.size"]
        else:
            data = self.mem.ptr(address + L["PyUnicodeObject.data"])
        count = min(length, max_chars)
        raw = self.mem.read(data, count * kind)
        codec = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind]
        text = raw.decode(codec) if kind == 1 else self._decode_wide(raw, codec)
        return text, count < length

    @staticmethod
    def _decode_wide(raw: bytes, codec: str) -> str:
        try:
            return raw.decode(codec, "surrogatepass")
        except UnicodeDecodeError:
            return raw.decode(codec, "replace")

    def _str_size(self, address: int) -> int:
        L = self.layout
        state = self.mem.u32(address + L["PyASCIIObject.state"]) >> L.str_state_shift()
        length = self.mem.i64(address + L["PyASCIIObject.length"])
        kind = (state >> 2) & 7 or 1
        if not (state >> 5) & 1:  # legacy string: data is a separate block
            return self.type_of(address).basicsize
        header = L["PyASCIIObject.size"] if (state >> 6) & 1 else L["PyCompactUnicodeObject.size"]
        return header + (max(length, 0) + 1) * kind

    def _int_ndigits(self, address: int) -> tuple[int, int]:
        """(number of 30-bit digits, sign in {-1, 0, 1})."""
        L = self.layout
        if L.int_uses_lv_tag():
            # 3.12+ longintrepr.h: ndigits = lv_tag >> 3; sign = 1 - (lv_tag & 3).
            tag = self.mem.u64(address + L["PyLongObject.lv_tag"])
            return tag >> 3, 1 - (tag & 3)
        size = self.mem.i64(address + L["PyVarObject.ob_size"])
        return abs(size), (size > 0) - (size < 0)

    def int_value(self, address: int, max_digits: int = 200) -> int | None:
        """The int's value, or None when it has more than ``max_digits`` digits."""
        ndigits, sign = self._int_ndigits(address)
        if ndigits > max_digits:
            return None
        raw = self.mem.read(address + self.layout["PyLongObject.ob_digit"], 4 * ndigits)
        value = 0
        for (digit,) in reversed(list(struct.iter_unpack("<I", raw))):
            value = (value << 30) | (digit & 0x3FFFFFFF)
        return -value if sign < 0 else value

    def float_value(self, address: int) -> float:
        return self.mem.f64(address + self.layout["PyFloatObject.ob_fval"])

    def var_size(self, address: int) -> int:
        return self.mem.i64(address + self.layout["PyVarObject.ob_size"])

    def sequence_items(self, address: int, kind: str, limit: int) -> tuple[list[int], int]:
        """(first item pointers, ob_size) of a tuple or list."""
        L = self.layout
        count = self.var_size(address)
        if kind == "tuple":
            items = address + L["PyTupleObject.ob_item"]
        else:
            items = self.mem.ptr(address + L["PyListObject.ob_item"])
        wanted = max(0, min(count, limit))
        if wanted == 0:
            return [], count
        raw = self.mem.read(items, 8 * wanted)
        return [p for (p,) in struct.iter_unpack("<Q", raw)], count

    def dict_items(self, address: int, limit: int, scan: int = 10_000) -> tuple[list[tuple[int, int]], int]:
        """(first (key, value) pointer pairs in insertion order, ma_used).

        3.8-3.10: Objects/dict-common.h; 3.11+: Include/internal/pycore_dict.h.
        """
        L = self.layout
        used = self.mem.i64(address + L["PyDictObject.ma_used"])
        keys = self.mem.ptr(address + L["PyDictObject.ma_keys"])
        values = self.mem.ptr(address + L["PyDictObject.ma_values"])
        return self.keys_items(keys, values, limit, scan, f"dict at {address:#x}"), used

    def keys_items(self, keys: int, values: int, limit: int, scan: int = 10_000,
                   owner: str = "dict") -> list[tuple[int, int]]:
        """First (key, value) pointer pairs of a keys object, values in ``values`` when split.

        Split tables (instance attributes) pair the type's shared keys with an
        object's own values array, indexed like the entries (pycore_dict.h).
        """
        L = self.layout
        if L.dict_keys_log2():
            log2_size = self.mem.u8(keys + L["PyDictKeysObject.dk_log2_size"])
            log2_index_bytes = self.mem.u8(keys + L["PyDictKeysObject.dk_log2_index_bytes"])
            dk_kind = self.mem.u8(keys + L["PyDictKeysObject.dk_kind"])
            if log2_size > 40 or log2_index_bytes > 43:
                raise NotAnObject(f"{owner} has implausible keys (log2 size {log2_size})")
            capacity = 1 << log2_size
            entries = keys + L["PyDictKeysObject.dk_indices"] + (1 << log2_index_bytes)
            entry_size = L["PyDictKeyEntry.size"] if dk_kind == 0 else L["PyDictUnicodeEntry.size"]
            key_off, value_off = (8, 16) if dk_kind == 0 else (0, 8)
            values_base = values + L.offsets.get("PyDictValues.values", 0) if values else 0
        else:
            capacity = self.mem.i64(keys + L["PyDictKeysObject.dk_size"])
            if capacity <= 0 or capacity > 1 << 40 or capacity & (capacity - 1):
                raise NotAnObject(f"{owner} has implausible dk_size {capacity}")
            width = 1 if capacity <= 0xFF else 2 if capacity <= 0xFFFF else 4 if capacity <= 0xFFFFFFFF else 8
            entries = keys + L["PyDictKeysObject.dk_indices"] + capacity * width
            entry_size, key_off, value_off = L["PyDictKeyEntry.size"], 8, 16
            values_base = values
        nentries = self.mem.i64(keys + L["PyDictKeysObject.dk_nentries"])
        nentries = max(0, min(nentries, capacity, scan)) if limit > 0 else 0
        pairs: list[tuple[int, int]] = []
        chunk = 256
        for start in range(0, nentries, chunk):
            count = min(chunk, nentries - start)
            raw = self.mem.read(entries + start * entry_size, count * entry_size)
            vals = self.mem.read(values_base + 8 * start, 8 * count) if values_base else b""
            for i in range(count):
                key = struct.unpack_from("<Q", raw, i * entry_size + key_off)[0]
                value = (struct.unpack_from("<Q", vals, 8 * i)[0] if values_base
                         else struct.unpack_from("<Q", raw, i * entry_size + value_off)[0])
                if key and value:
                    pairs.append((key, value))
                    if len(pairs) >= limit:
                        return pairs
        return pairs

    def dict_get_str(self, address: int, key: str, scan: int = 4096) -> int | None:
        """Value pointer for a str key, comparing text (no hashing needed)."""
        if not address:
            return None
        pairs, _ = self.dict_items(address, limit=scan, scan=scan)
        for k, v in pairs:
            try:
                if self.is_kind(k, "str") and self.str_value(k, len(key) + 1) == (key, False):
                    return v
            except PylifeError:
                continue
        return None

    def set_keys(self, address: int, limit: int, scan: int = 10_000) -> tuple[list[int], int]:
        """(first key pointers in table order, used) (Objects/setobject.c)."""
        L = self.layout
        used = self.mem.i64(address + L["PySetObject.used"])
        mask = self.mem.i64(address + L["PySetObject.mask"])
        table = self.mem.ptr(address + L["PySetObject.table"])
        if mask < 0 or mask > 1 << 40:
            raise NotAnObject(f"set at {address:#x} has implausible mask {mask}")
        slots = min(mask + 1, scan) if limit > 0 else 0
        entry = L["setentry.size"]
        keys: list[int] = []
        for start in range(0, slots, 256):
            count = min(256, slots - start)
            raw = self.mem.read(table + start * entry, count * entry)
            for i in range(count):
                key = struct.unpack_from("<Q", raw, i * entry + L["setentry.key"])[0]
                if not key:
                    continue
                try:
                    if self.type_of(key).name == SET_DUMMY_TYPE_NAME:
                        continue
                except PylifeError:
                    pass
                keys.append(key)
                if len(keys) >= limit:
                    return keys, used
        return keys, used
