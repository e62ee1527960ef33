"""Reading `obj.name`, `obj[key]` from memory, as CPython would find them, without calling anything.

Attribute lookup follows PyObject_GenericGetAttr (Objects/object.c) and
type_getattro (Objects/typeobject.c): data descriptors of the type's MRO
first, then the instance's own attributes, then the rest of the MRO. Only
what a read can answer is answered: a member (``__slots__``) is read at its
offset; a property, a getset or a method needs a call into the process, and
that is a one-line error. Dict lookups compare keys by reading them (never
hashing: str hashes depend on the process's secret).

Target memory is hostile: every loop is bounded (ReadLimits) and every
pointer is checked with ``Objects.type_of`` before it is followed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import NotAnObject, PylifeError, UserError
from .objects import Objects, TypeInfo, plausible_pointer

# Include/object.h tp_flags: subclasses of the builtin containers keep their layout.
TPFLAGS_LIST_SUBCLASS = 1 << 25
TPFLAGS_TUPLE_SUBCLASS = 1 << 26
TPFLAGS_DICT_SUBCLASS = 1 << 29
# Include/structmember.h (3.12+ Include/descrobject.h Py_T_OBJECT, Py_T_OBJECT_EX, Py_RELATIVE_OFFSET).
T_OBJECT = 6
T_OBJECT_EX = 16
RELATIVE_OFFSET = 8
MAX_SEQUENCE = 1 << 40  # an ob_size beyond this is junk memory


@dataclass(frozen=True)
class ReadLimits:
    """Budgets for one expression over hostile memory."""

    dict_entries: int = 100_000  # entries compared per dict lookup
    mro_length: int = 64  # classes searched per attribute lookup
    key_chars: int = 4096  # characters (bytes) read from a key to compare it
    tuple_depth: int = 8  # nesting of tuple keys


class Reader:
    """Attribute, item and key reads over one stopped target's objects."""

    def __init__(self, objects: Objects, limits: ReadLimits | None = None) -> None:
        self.objects = objects
        self.mem = objects.mem
        self.layout = objects.layout
        self.limits = limits or ReadLimits()

    # ---- dict lookups by constant keys -------------------------------------------------

    def dict_lookup(self, address: int, key: object) -> int | None:
        """The value stored under ``key`` (a host constant) in the dict at ``address``, or None."""
        L = self.layout
        used = self.mem.i64(address + L["PyDictObject.ma_used"])
        keys = self.mem.ptr(address + L["PyDictObject.ma_keys"])
        values = self.mem.ptr(address + L["PyDictObject.ma_values"])
        return self.table_lookup(keys, values, key, used, f"dict at {address:#x}")

    def table_lookup(self, keys: int, values: int, key: object, used: int | None, owner: str) -> int | None:
        budget = self.limits.dict_entries
        if used is not None and not 0 <= used <= MAX_SEQUENCE:
            raise NotAnObject(f"{owner} has implausible ma_used {used}")
        pairs = self.objects.keys_items(keys, values, limit=budget, scan=budget, owner=owner)
        for stored_key, value in pairs:
            if self.key_equals(stored_key, key, 0):
                return value
        if used is not None and used > len(pairs) and len(pairs) >= budget:
            raise UserError(f"{owner}: key not among the first {budget} entries read (it holds {used})")
        return None

    def key_equals(self, address: int, key: object, depth: int) -> bool:
        """Whether the key object at ``address`` equals ``key``, by reading it (Python == for these types)."""
        o = self.objects
        try:
            tp = o.type_of(address)
        except PylifeError:
            return False  # a garbage key never equals a constant
        kind = tp.kind
        try:
            if key is None:
                return kind == "NoneType"
            if isinstance(key, str):
                if kind != "str":
                    return False
                text, truncated = o.str_value(address, min(len(key) + 1, self.limits.key_chars))
                return not truncated and text == key
            if isinstance(key, bytes):
                if kind != "bytes":
                    return False
                size = o.var_size(address)
                if size != len(key):
                    return False
                return o.mem.read(address + self.layout["PyBytesObject.ob_sval"], size) == key
            if isinstance(key, (bool, int)):  # 1 == True == 1.0, as dict lookups see them
                if kind in ("int", "bool"):
                    return o.int_value(address, max_digits=len(str(abs(int(key)))) // 9 + 2) == int(key)
                return kind == "float" and o.float_value(address) == key
            if isinstance(key, tuple):
                if kind != "tuple" or depth >= self.limits.tuple_depth:
                    return False
                items, count = o.sequence_items(address, "tuple", len(key) + 1)
                return count == len(key) and all(self.key_equals(a, k, depth + 1) for a, k in zip(items, key))
        except PylifeError:
            return False
        return False

    # ---- sequences -----------------------------------------------------------------

    def sequence_item(self, address: int, tp: TypeInfo, index: int) -> int:
        o = self.objects
        kind = "list" if tp.kind == "list" or tp.flags & TPFLAGS_LIST_SUBCLASS else "tuple"
        count = o.var_size(address)
        if not 0 <= count <= MAX_SEQUENCE:
            raise NotAnObject(f"{kind} at {address:#x} has implausible ob_size {count}")
        position = index + count if index < 0 else index
        if not 0 <= position < count:
            raise UserError(f"{kind} index {index} out of range ({kind} of {count} items)")
        if kind == "tuple":
            items = address + self.layout["PyTupleObject.ob_item"]
        else:
            items = self.mem.ptr(address + self.layout["PyListObject.ob_item"])
        item = self.mem.ptr(items + 8 * position)
        if not item:
            raise UserError(f"{kind} item {index} is NULL")
        return item

    def subscript(self, address: int, key: object) -> int:
        """``obj[key]`` for a dict, list or tuple (or a subclass keeping their layout)."""
        tp = self.objects.type_of(address)
        if tp.kind == "dict" or tp.flags & TPFLAGS_DICT_SUBCLASS:
            value = self.dict_lookup(address, key)
            if value is None:
                raise UserError(f"key {key!r} not found in the dict ({self.mem.i64(address + self.layout['PyDictObject.ma_used'])} keys)")
            return value
        if tp.kind in ("list", "tuple") or tp.flags & (TPFLAGS_LIST_SUBCLASS | TPFLAGS_TUPLE_SUBCLASS):
            if isinstance(key, tuple) or not isinstance(key, int):
                raise UserError(f"{tp.qualified} indices must be integers, not {type(key).__name__}")
            return self.sequence_item(address, tp, int(key))
        raise UserError(f"subscripting a {tp.qualified} object needs a call into the process "
                        "(only dict, list and tuple are read from memory)")

    # ---- attributes ----------------------------------------------------------------

    def attribute(self, address: int, name: str) -> int:
        tp = self.objects.type_of(address)
        if name == "__class__":
            return tp.address
        if tp.kind == "module":
            return self._module_attribute(address, name)
        if tp.kind == "type":
            return self._class_attribute(address, name)
        return self._instance_attribute(address, tp, name)

    def type_lookup(self, type_address: int, name: str) -> int | None:
        """_PyType_Lookup without the method cache: the first class of tp_mro whose dict holds ``name``."""
        for klass in self.mro(type_address):
            tp_dict = self.mem.ptr(klass + self.layout["PyTypeObject.tp_dict"])
            if tp_dict and self.objects.is_kind(tp_dict, "dict"):  # NULL for 3.12+ static builtin types
                value = self.dict_lookup(tp_dict, name)
                if value is not None:
                    return value
        return None

    def mro(self, type_address: int) -> list[int]:
        """tp_mro's classes, or the tp_base chain when tp_mro is not set (yet)."""
        L = self.layout
        limit = self.limits.mro_length
        mro = self.mem.ptr(type_address + L["PyTypeObject.tp_mro"])
        if mro and self.objects.is_kind(mro, "tuple"):
            classes, count = self.objects.sequence_items(mro, "tuple", limit)
            if count > limit:
                raise UserError(f"the MRO of the type at {type_address:#x} has {count} classes (limit {limit})")
            return [c for c in classes if self.objects.is_kind(c, "type")]
        chain: list[int] = []
        klass = type_address
        while klass and klass not in chain and len(chain) < limit:
            chain.append(klass)
            klass = self.mem.ptr(klass + L["PyTypeObject.tp_base"])
        return chain

    def _descriptor_kind(self, descr: int) -> tuple[TypeInfo, bool, bool]:
        """(descriptor's type, has tp_descr_get, has tp_descr_set)."""
        dtype = self.objects.type_of(descr)
        L = self.layout
        getter = self.mem.ptr(dtype.address + L["PyTypeObject.tp_descr_get"])
        setter = self.mem.ptr(dtype.address + L["PyTypeObject.tp_descr_set"])
        return dtype, bool(getter), bool(setter)

    def _data_descriptor(self, address: int, owner: TypeInfo, name: str, descr: int, dtype: TypeInfo) -> int:
        if dtype.name == "member_descriptor" and not dtype.is_heap:
            return self._member(address, owner, name, descr)
        what = "a property" if dtype.name == "property" else f"a {dtype.qualified} descriptor"
        raise UserError(f"{owner.qualified}.{name} is {what}: reading it needs a call into the process")

    def _member(self, address: int, owner: TypeInfo, name: str, descr: int) -> int:
        """A PyMemberDef slot (``__slots__`` entries are T_OBJECT_EX members): the pointer at its offset."""
        L = self.layout
        member = self.mem.ptr(descr + L["PyMemberDescrObject.d_member"])
        if not plausible_pointer(member):
            raise NotAnObject(f"member descriptor {name!r} at {descr:#x} has no PyMemberDef")
        raw = self.mem.read(member, L["PyMemberDef.flags"] + 4)
        kind = struct.unpack_from("<i", raw, L["PyMemberDef.type"])[0]
        offset = struct.unpack_from("<q", raw, L["PyMemberDef.offset"])[0]
        flags = struct.unpack_from("<i", raw, L["PyMemberDef.flags"])[0]
        if kind not in (T_OBJECT, T_OBJECT_EX):
            raise UserError(f"{owner.qualified}.{name} is a C member (type code {kind}), not an object")
        if flags & RELATIVE_OFFSET or not 0 < offset < (1 << 20):
            raise UserError(f"{owner.qualified}.{name} is a member at offset {offset} (flags {flags:#x}) "
                            "that pylife does not read")
        value = self.mem.ptr(address + offset)
        if not value:
            raise UserError(f"{owner.qualified}.{name} is not set (slot at offset {offset} is NULL)")
        return value

    def instance_dict_lookup(self, address: int, tp: TypeInfo, name: str) -> tuple[int | None, bool]:
        """(value of ``name`` in the instance's own attributes, whether the instance has any place for them)."""
        L = self.layout
        scheme = L.managed_dict_scheme(tp.flags)
        owner = f"attributes of the {tp.qualified} at {address:#x}"
        if scheme is not None:
            cached_keys = self.mem.ptr(tp.address + L["PyHeapTypeObject.ht_cached_keys"]) if tp.is_heap else 0
            if scheme == "values_pointer":
                values = self.mem.ptr(address - 32)
                if values and cached_keys:
                    return self.table_lookup(cached_keys, values, name, None, owner), True
            elif scheme == "dict_or_values":
                word = self.mem.u64(address - 24)
                if word & 1:
                    if not cached_keys:
                        return None, True
                    return self.table_lookup(cached_keys, word + 1, name, None, owner), True
                return self._dict_at(word, name), True
            elif scheme == "inline_values":
                values = address + tp.basicsize
                if self.mem.u8(values + L["PyDictValues.valid"]) and cached_keys:
                    return self.table_lookup(cached_keys, values, name, None, owner), True
            return self._dict_at(self.mem.ptr(address - 24), name), True
        dictoffset = self.mem.i64(tp.address + L["PyTypeObject.tp_dictoffset"])
        if dictoffset == 0:
            return None, False
        if dictoffset < 0:  # _PyObject_ComputedDictPointer: from the end of a variable-size object
            count = abs(self.objects.var_size(address))
            if count > MAX_SEQUENCE:
                raise NotAnObject(f"{tp.qualified} at {address:#x} has implausible ob_size {count}")
            size = (tp.basicsize + count * tp.itemsize + 7) // 8 * 8
            dictoffset += size
        return self._dict_at(self.mem.ptr(address + dictoffset), name), True

    def instance_dict(self, address: int, tp: TypeInfo) -> int | None:
        """The instance's __dict__ object when one exists in memory (not built from values)."""
        L = self.layout
        scheme = L.managed_dict_scheme(tp.flags)
        if scheme is not None:
            word = self.mem.u64(address - 24)
            return None if (scheme == "dict_or_values" and word & 1) or not word else word
        dictoffset = self.mem.i64(tp.address + L["PyTypeObject.tp_dictoffset"])
        if dictoffset <= 0:
            return None if dictoffset == 0 else self._computed_dict(address, tp, dictoffset)
        return self.mem.ptr(address + dictoffset) or None

    def _computed_dict(self, address: int, tp: TypeInfo, dictoffset: int) -> int | None:
        count = abs(self.objects.var_size(address))
        size = (tp.basicsize + min(count, MAX_SEQUENCE) * tp.itemsize + 7) // 8 * 8
        return self.mem.ptr(address + size + dictoffset) or None

    def _dict_at(self, pointer: int, name: str) -> int | None:
        if not pointer:
            return None
        if not self.objects.is_kind(pointer, "dict"):
            raise NotAnObject(f"instance dict pointer {pointer:#x} is not a dict")
        return self.dict_lookup(pointer, name)

    def _instance_attribute(self, address: int, tp: TypeInfo, name: str) -> int:
        descr = self.type_lookup(tp.address, name)
        dtype, getter, setter = self._descriptor_kind(descr) if descr is not None else (None, False, False)
        if name == "__dict__" and (descr is None or (dtype is not None and dtype.name == "getset_descriptor")):
            found = self.instance_dict(address, tp)
            if found is None:
                raise UserError(f"the {tp.qualified} at {address:#x} has no __dict__ in memory "
                                "(its attributes are stored as values; building the dict needs a call)")
            return found
        if descr is not None and dtype is not None and setter:
            return self._data_descriptor(address, tp, name, descr, dtype)
        value, has_dict = self.instance_dict_lookup(address, tp, name)
        if value is not None:
            return value
        if descr is not None and dtype is not None:
            if getter:
                what = "a method" if dtype.kind == "function" else f"a {dtype.qualified}"
                raise UserError(f"{tp.qualified}.{name} is {what}: reading it through an instance needs a call "
                                f"into the process (name it on the class: {tp.name}.{name})")
            return descr
        searched = ("the instance's attributes, " if has_dict else "") + f"the class {tp.qualified} and its bases"
        hook = " (__getattr__ would need a call)" if self.type_lookup(tp.address, "__getattr__") else ""
        if not tp.is_heap and not self.mem.ptr(tp.address + self.layout["PyTypeObject.tp_dict"]):
            # 3.12+ keeps a static builtin type's dict in the interpreter state (typeobject.c
            # managed_static_type_state), where this lookup does not go.
            hook += f" (the dict of builtin type {tp.name} is not in the type object)"
        raise UserError(f"{tp.qualified} object has no attribute {name!r}: searched {searched}{hook}")

    def _class_attribute(self, address: int, name: str) -> int:
        klass = self.objects.type_info(address)
        meta = self.objects.type_of(address)
        meta_descr = self.type_lookup(meta.address, name)
        if meta_descr is not None:
            dtype, _getter, setter = self._descriptor_kind(meta_descr)
            if setter:
                return self._data_descriptor(address, meta, name, meta_descr, dtype)
        descr = self.type_lookup(address, name)
        if descr is not None:
            dtype, getter, _setter = self._descriptor_kind(descr)
            # On a class these descriptors return themselves (func_descr_get, property_descr_get,
            # member_get and getset_get with a NULL instance); others need their __get__ called.
            if not getter or (not dtype.is_heap and dtype.name in _SELF_ON_CLASS):
                return descr
            raise UserError(f"{klass.qualified}.{name} is a {dtype.qualified}: reading it needs a call into the process")
        if meta_descr is not None:
            return meta_descr
        raise UserError(f"type object {klass.qualified} has no attribute {name!r}: searched the class, its bases "
                        f"and its metaclass {meta.qualified}")

    def _module_attribute(self, address: int, name: str) -> int:
        md_dict = self.mem.ptr(address + self.layout["PyModuleObject.md_dict"])
        if not self.objects.is_kind(md_dict, "dict"):
            raise NotAnObject(f"module at {address:#x} has no dict (md_dict {md_dict:#x})")
        if name == "__dict__":
            return md_dict
        value = self.dict_lookup(md_dict, name)
        if value is not None:
            return value
        module = self.dict_lookup(md_dict, "__name__")
        label = repr(self.objects.str_value(module, 200)[0]) if module and self.objects.is_kind(module, "str") else ""
        hook = " (its __getattr__ would need a call)" if self.dict_lookup(md_dict, "__getattr__") else ""
        raise UserError(f"module {label or hex(address)} has no attribute {name!r}{hook}")


_SELF_ON_CLASS = frozenset({"function", "property", "member_descriptor", "getset_descriptor"})
