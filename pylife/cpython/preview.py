"""A safe, budgeted, repr-like preview of an object's value.

Within budget the text equals Python's own repr for the builtin types we
decode (str, bytes, int, bool, float, None, tuple, list, dict, set,
frozenset, type, function, code, module) and object.__repr__'s
``<module.Qualname object at 0x...>`` for everything else. Cycles print as
Python prints them (``[...]``); exhausted budgets print ``...``.
"""

from __future__ import annotations

from ..errors import PylifeError
from .objects import Budget, Objects, TypeInfo

# Nesting is recursive (a few Python frames per level): a user's --depth must
# not reach the host interpreter's recursion limit on a deep, acyclic chain.
MAX_DEPTH = 64

_BRACKETS = {"list": ("[", "]"), "tuple": ("(", ")"), "dict": ("{", "}"), "set": ("{", "}"), "frozenset": ("{", "}")}


def preview(objects: Objects, address: int, budget: Budget | None = None) -> str:
    return _Previewer(objects, budget or Budget()).render(address, 0)


class _Previewer:
    def __init__(self, objects: Objects, budget: Budget) -> None:
        self.objects = objects
        self.budget = budget
        self.path: set[int] = set()  # containers being printed (Py_ReprEnter)

    def render(self, address: int, depth: int) -> str:
        try:
            tp = self.objects.type_of(address)
        except PylifeError:
            return f"<invalid object at {address:#x}>"
        try:
            text = self._render_known(address, tp, depth)
        except PylifeError as exc:
            text = f"<{tp.qualified} object at {address:#x}: {exc}>"
        self.budget.used += len(text)
        return text

    def _render_known(self, address: int, tp: TypeInfo, depth: int) -> str:
        o = self.objects
        b = self.budget
        kind = tp.kind
        if kind == "str":
            text, truncated = o.str_value(address, b.chars)
            return repr(text) + ("..." if truncated else "")
        if kind == "bytes":
            size = o.var_size(address)
            raw = o.mem.read(address + o.layout["PyBytesObject.ob_sval"], max(0, min(size, b.chars)))
            return repr(raw) + ("..." if size > b.chars else "")
        if kind in ("int", "bool"):
            value = o.int_value(address)
            if value is None:
                ndigits, sign = o._int_ndigits(address)
                return f"<int of {ndigits} 30-bit digits{', negative' if sign < 0 else ''}>"
            return repr(bool(value)) if kind == "bool" else str(value)
        if kind == "float":
            return repr(o.float_value(address))
        if kind == "NoneType":
            return "None"
        if kind == "type":
            return f"<class '{o.type_info(address).qualified}'>"
        if kind == "function":
            return f"<function {self._name_at(address, 'PyFunctionObject.func_qualname')} at {address:#x}>"
        if kind == "code":
            return self._code(address)
        if kind == "module":
            return self._module(address)
        if kind in _BRACKETS:
            return self._container(address, kind, depth)
        return f"<{tp.qualified} object at {address:#x}>"

    def _name_at(self, address: int, field: str) -> str:
        o = self.objects
        pointer = o.mem.ptr(address + o.layout[field])
        return o.str_value(pointer, 200)[0] if o.is_kind(pointer, "str") else "?"

    def _code(self, address: int) -> str:
        o = self.objects
        name = self._name_at(address, "PyCodeObject.co_name")
        filename = self._name_at(address, "PyCodeObject.co_filename")
        line = o.mem.i32(address + o.layout["PyCodeObject.co_firstlineno"])
        return f'<code object {name} at {address:#x}, file "{filename}", line {line}>'

    def _module(self, address: int) -> str:
        o = self.objects
        md_dict = o.mem.ptr(address + o.layout["PyModuleObject.md_dict"])
        name = file = None
        if o.is_kind(md_dict, "dict"):
            name_ptr = o.dict_get_str(md_dict, "__name__")
            file_ptr = o.dict_get_str(md_dict, "__file__")
            name = o.str_value(name_ptr, 200)[0] if name_ptr and o.is_kind(name_ptr, "str") else None
            file = o.str_value(file_ptr, 400)[0] if file_ptr and o.is_kind(file_ptr, "str") else None
        name_text = repr(name) if name is not None else "?"
        return f"<module {name_text} from {file!r}>" if file else f"<module {name_text}>"

    def _container(self, address: int, kind: str, depth: int) -> str:
        o = self.objects
        b = self.budget
        opening, closing = _BRACKETS[kind]
        if address in self.path:
            return opening + "..." + closing
        if depth >= min(b.depth, MAX_DEPTH) or b.used >= b.total:
            return opening + "..." + closing
        self.path.add(address)
        try:
            if kind == "dict":
                pairs, count = o.dict_items(address, b.items, b.scan)
                parts = [f"{self.render(k, depth + 1)}: {self.render(v, depth + 1)}" for k, v in pairs]
            elif kind in ("set", "frozenset"):
                keys, count = o.set_keys(address, b.items, b.scan)
                parts = [self.render(k, depth + 1) for k in keys]
            else:
                items, count = o.sequence_items(address, kind, b.items)
                parts = [self.render(p, depth + 1) for p in items]
        finally:
            self.path.discard(address)
        if count > len(parts):
            parts.append("...")
        body = ", ".join(parts)
        if kind == "tuple" and count == 1 and len(parts) == 1:
            body += ","
        if kind in ("set", "frozenset"):
            if count == 0 and not parts:
                return f"{kind}()"
            text = "{" + body + "}"
            return f"frozenset({text})" if kind == "frozenset" else text
        return opening + body + closing
