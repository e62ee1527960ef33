"""lldb's read-only evaluation of the C expressions `pylife` verbs take (`$rdi`, `op`,
`*(PyObject **)$rsp`, casts, members, globals).

lldb's expression evaluator is avoided where it can be: even with JIT disabled
it reserves scratch pages in a live inferior (lldb-server injects mmap calls)
and writes the result there. Registers, frame variables, globals, symbols and
C casts/dereferences of those (parsed by pylife.cexpr) are therefore resolved
read-only through SBFrame/SBValue, and only what is left goes to
EvaluateExpression, with JIT off so that it can never call a function in the
target (the user's --allow-call lifts that).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import lldb  # type: ignore[import-not-found]

from .. import cexpr
from ..errors import UnreadableMemory, UserError


class LldbAdapter(Protocol):
    """What the evaluator uses of LldbTarget."""

    target: Any  # lldb.SBTarget

    @property
    def process(self) -> Any: ...  # lldb.SBProcess

    def read(self, address: int, size: int) -> bytes: ...

    def symbol_address(self, name: str) -> int | None: ...

_MASK64 = (1 << 64) - 1
AGGREGATES = (lldb.eTypeClassStruct, lldb.eTypeClassUnion, lldb.eTypeClassClass,
              lldb.eTypeClassArray, lldb.eTypeClassFunction)
_DIAGNOSTIC_PREFIX = re.compile(r"^error:\s*(<user expression \d+>:\d+:\d+:\s*)?")


class _NotReadOnly(Exception):
    """The expression is beyond the read-only subset: hand it to lldb's evaluator."""


def evaluate_address(adapter: LldbAdapter, expression: str, allow_call: bool = False) -> int:
    """Target.evaluate_address for lldb: read-only when it can be, else lldb's evaluator."""
    evaluator = _Evaluator(adapter)
    text = expression.strip()
    try:
        return evaluator._read_only(cexpr.parse(text)) & _MASK64
    except _NotReadOnly:
        pass
    return evaluator._evaluate(text, allow_call)


class _Evaluator:
    def __init__(self, adapter: LldbAdapter) -> None:
        self.adapter = adapter
        self.target = adapter.target  # the SBTarget
        self.process = adapter.process
        self.read = adapter.read
        self.symbol_address = adapter.symbol_address

    def _frame(self) -> lldb.SBFrame:
        return self.process.GetSelectedThread().GetSelectedFrame()

    def _fail(self, text: str, reason: str) -> UserError:
        lines = reason.strip().splitlines()
        return UserError(f"cannot evaluate '{text}': {lines[0] if lines else 'unknown error'}")

    def _value_address(self, text: str, value: lldb.SBValue) -> int:
        """gdb's rule: an aggregate stands for its address, a scalar for its value."""
        canonical = value.GetType().GetCanonicalType()
        address = value.GetLoadAddress()
        reason = value.GetError().GetCString() if value.GetError().Fail() else None
        if canonical.GetTypeClass() in AGGREGATES:
            if address == lldb.LLDB_INVALID_ADDRESS:
                raise self._fail(text, reason or "value has no address")
            return int(address)
        error = lldb.SBError()
        number = value.GetValueAsUnsigned(error, 0)
        if reason is None and error.Success():
            return int(number)
        raise self._fail(text, reason or error.GetCString() or "not a number")

    def _read_only(self, node: cexpr.Node) -> int:
        """Registers, variables, globals, symbols, `(T)x` and `*(T *)x` without lldb's evaluator."""
        if isinstance(node, cexpr.Number):
            return node.value
        frame = self._frame()
        if isinstance(node, cexpr.Register):
            register = frame.FindRegister(node.name) if frame.IsValid() else None
            if register is None or not register.IsValid():
                raise _NotReadOnly  # maybe a convenience variable such as $0
            return self._value_address(node.text, register)
        if isinstance(node, (cexpr.Named, cexpr.Other)):
            if frame.IsValid():  # a local or argument first, as C scoping says
                value = frame.GetValueForVariablePath(node.text)
                if value.IsValid():
                    return self._value_address(node.text, value)
            if isinstance(node, cexpr.Other):
                raise _NotReadOnly
            return self._global(node)
        text, words, stars = node.text, list(node.type_words), node.stars
        operand = self._read_only(node.operand)
        if not node.deref:
            if stars:
                return operand
            size = self._type(words).GetByteSize()
            return operand & ((1 << (8 * size)) - 1) if 0 < size < 8 else operand
        if stars == 0:
            raise _NotReadOnly  # `*(long)x` is not C; let lldb word the error
        if stars > 1:
            # The pointee is a pointer: 8 bytes, whatever the type (known or not).
            return int.from_bytes(self._read_memory(text, operand, 8), "little")
        pointee = self._type(words)
        if pointee.GetCanonicalType().GetTypeClass() in AGGREGATES:
            return operand
        value = self.target.CreateValueFromAddress("pylife", lldb.SBAddress(operand, self.target), pointee)
        return self._value_address(text, value)

    def _global(self, named: cexpr.Named) -> int:
        """`name`, `&name`, `name.field`, `&name->field[2]`: a global variable, else a symbol.

        Names never reach lldb's evaluator: it would find nothing more, and its
        first use maps a probe page into a live inferior.
        """
        text, name, path = named.text, named.name, named.path
        variable = self.target.FindFirstGlobalVariable(name)
        if variable.IsValid():
            value = variable.GetValueForExpressionPath(path) if path else variable
            if not value.IsValid():
                raise self._fail(text, f"no member '{path}' in '{name}'")
            if named.address_of:
                address = value.GetLoadAddress()
                if address == lldb.LLDB_INVALID_ADDRESS:
                    raise self._fail(text, value.GetError().GetCString() or "value has no address")
                return int(address)
            return self._value_address(text, value)
        symbol = None if path else self.symbol_address(name)
        if symbol is None:
            raise self._fail(text, f"no variable or symbol '{name}' in the selected frame or the target")
        return symbol  # a function, or data without debug info: gdb gives the address too

    def _type(self, words: list[str]) -> lldb.SBType:
        names = [" ".join(words)]
        if words and words[0] in ("struct", "union"):
            names.append(" ".join(words[1:]))
        for name in names:
            found = self.target.FindFirstType(name)
            if found.IsValid():
                return found
        raise _NotReadOnly

    def _read_memory(self, text: str, address: int, size: int) -> bytes:
        try:
            return self.read(address, size)
        except UnreadableMemory as exc:
            raise self._fail(text, str(exc)) from None

    def _evaluate(self, text: str, allow_call: bool = False) -> int:
        value = self._expression(text, allow_call=allow_call)
        aggregate = value.GetType().GetCanonicalType().GetTypeClass() in AGGREGATES
        if aggregate and value.GetLoadAddress() == lldb.LLDB_INVALID_ADDRESS:
            # A struct result is a copy in lldb's memory; ask for the original's address.
            value = self._expression(f"&({text})", text, allow_call)
        return self._value_address(text, value) & _MASK64

    def _expression(self, expression: str, shown: str | None = None, allow_call: bool = False) -> lldb.SBValue:
        frame = self._frame()
        options = lldb.SBExpressionOptions()
        # No JIT means the IR interpreter only: it refuses function calls
        # (the user's --allow-call lifts that).
        options.SetAllowJIT(allow_call)
        options.SetIgnoreBreakpoints(True)
        options.SetTryAllThreads(False)
        options.SetSuppressPersistentResult(True)
        options.SetTimeoutInMicroSeconds(2_000_000)
        if frame.IsValid():
            value = frame.EvaluateExpression(expression, options)
        else:
            value = self.target.EvaluateExpression(expression, options)
        if value is None or not value.IsValid():
            raise self._fail(shown or expression, "no value")
        if not value.GetError().Success():
            raise self._fail(shown or expression, _expression_error(value.GetError().GetCString() or ""))
        return value


def _expression_error(message: str) -> str:
    """The line of lldb's multi-line diagnostic that says what went wrong."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [_DIAGNOSTIC_PREFIX.sub("", line) for line in lines if line.startswith("error:")]
    reason = (errors or lines or ["unknown error"])[0]
    if "Interpreter doesn't handle" in reason:
        # lldb's wording ("without a running target") misleads: JIT is off on purpose.
        reason = "it needs code to run in the program (pylife runs no code in it; --allow-call permits it)"
    return reason
