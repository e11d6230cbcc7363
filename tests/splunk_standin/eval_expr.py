"""Expressions of the ``eval`` and ``where`` commands.

Operators, from loosest to tightest binding as Splunk's search manual lists them: ``XOR``,
``OR``, ``AND``, ``NOT``, then ``=``/``==``/``!=``/``LIKE``, ``<``/``>``/``<=``/``>=``,
``+``/``-``/``.`` and ``*``/``/``/``%``, then unary minus. Boolean operators are uppercase.
Operands are number literals, double-quoted strings (``\\\\`` and ``\\"`` are escapes),
field names, single-quoted field names (``'a.b'``), calls and parentheses.

Semantics modelled: a field value that looks like a number is a number, so ``EventCode=7``
compares numerically. Other comparisons are between strings and case-sensitive. A missing
field is null; arithmetic, comparison and most functions of null are null, and ``where``
keeps a row only when its expression is true. Boolean operators follow three-valued logic.
A multivalue field stands for its first value.
NOTE: Python's ``re`` runs the regular expressions of match() and replace(), not PCRE.
The two agree on common patterns but differ in some syntax, such as possessive quantifiers.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .errors import SPLRuntimeError, SPLSyntaxError
from .values import render_scalar, to_number

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<quoted_field>'(?:[^'\\]|\\.)*')
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<operator>==|!=|<=|>=|=|<|>|\+|-|\*|/|%|\.|\(|\)|,)
    """,
    re.VERBOSE,
)
KEYWORDS = frozenset({"AND", "OR", "XOR", "NOT", "LIKE"})
# Minimum and maximum argument counts; None means no maximum.
FUNCTION_ARITY: dict[str, tuple[int, int | None]] = {
    "case": (2, None),
    "if": (3, 3),
    "match": (2, 2),
    "like": (2, 2),
    "coalesce": (1, None),
    "lower": (1, 1),
    "upper": (1, 1),
    "len": (1, 1),
    "isnull": (1, 1),
    "isnotnull": (1, 1),
    "true": (0, 0),
    "false": (0, 0),
    "null": (0, 0),
    "tonumber": (1, 2),
    "tostring": (1, 1),
    "substr": (2, 3),
    "replace": (3, 3),
    "round": (1, 2),
}
BOOLEAN_FUNCTIONS = frozenset({"match", "like", "isnull", "isnotnull", "true", "false"})
# Eval functions that Splunk has and this stand-in lacks, for a clearer error message.
SPLUNK_ONLY_FUNCTIONS = frozenset(
    {
        "abs", "ceiling", "cidrmatch", "floor", "in", "isint", "isnum", "isstr", "json_extract",
        "ltrim", "max", "md5", "min", "mvappend", "mvcount", "mvfilter", "mvindex", "mvjoin",
        "now", "nullif", "printf", "relative_time", "rtrim", "searchmatch", "sha256",
        "split", "spath", "strftime", "strptime", "time", "trim", "typeof", "urldecode",
        "validate",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class FieldRef:
    name: str


@dataclass(frozen=True)
class Negative:
    operand: Any


@dataclass(frozen=True)
class Not:
    operand: Any


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Call:
    name: str
    arguments: tuple[Any, ...]


def tokenize(text: str, command: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise SPLSyntaxError(
                f"Error in '{command}' command: The expression is malformed. "
                f"Unexpected character {text[position]!r} at position {position}."
            )
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup, match.group(), position))
        position = match.end()
    return tokens


def unescape_string(literal: str) -> str:
    """Return the text of a quoted literal: ``\\\\`` is a backslash and ``\\"`` or ``\\'`` the quote.

    Any other backslash stays, so ``"\\d+"`` reaches match() as the regex ``\\d+``.
    """
    body = literal[1:-1]
    quote = literal[0]
    out = []
    position = 0
    while position < len(body):
        char = body[position]
        if char == "\\" and position + 1 < len(body) and body[position + 1] in ("\\", quote):
            out.append(body[position + 1])
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


class ExpressionParser:
    """Recursive-descent parser over the tokens of one eval or where argument list."""

    def __init__(self, text: str, command: str) -> None:
        self.command = command
        self.tokens = tokenize(text, command)
        self.index = 0

    def error(self, detail: str) -> SPLSyntaxError:
        return SPLSyntaxError(f"Error in '{self.command}' command: The expression is malformed. {detail}")

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.index >= len(self.tokens)

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("The expression ends too early.")
        self.index += 1
        return token

    def accept(self, *texts: str, kind: str | None = None) -> Token | None:
        token = self.peek()
        if token is not None and token.text in texts and (kind is None or token.kind == kind):
            self.index += 1
            return token
        return None

    def expect(self, text: str) -> Token:
        token = self.peek()
        if token is None or token.text != text:
            found = "the end" if token is None else repr(token.text)
            raise self.error(f"Expected {text!r} but found {found}.")
        self.index += 1
        return token

    def parse_expression(self) -> Any:
        return self._parse_binary_level(0)

    # Each level lists the operators of one precedence, loosest first.
    LEVELS: tuple[tuple[str, ...], ...] = (
        ("XOR",),
        ("OR",),
        ("AND",),
    )

    def _parse_binary_level(self, level: int) -> Any:
        if level == len(self.LEVELS):
            return self._parse_not()
        left = self._parse_binary_level(level + 1)
        while token := self.accept(*self.LEVELS[level], kind="name"):
            left = Binary(token.text, left, self._parse_binary_level(level + 1))
        return left

    def _parse_not(self) -> Any:
        if self.accept("NOT", kind="name"):
            return Not(self._parse_not())
        return self._parse_equality()

    def _parse_equality(self) -> Any:
        left = self._parse_relational()
        while True:
            token = self.accept("=", "==", "!=", kind="operator") or self.accept("LIKE", kind="name")
            if token is None:
                return left
            operator = "=" if token.text == "==" else token.text
            left = Binary(operator, left, self._parse_relational())

    def _parse_relational(self) -> Any:
        left = self._parse_additive()
        while token := self.accept("<", ">", "<=", ">=", kind="operator"):
            left = Binary(token.text, left, self._parse_additive())
        return left

    def _parse_additive(self) -> Any:
        left = self._parse_multiplicative()
        while token := self.accept("+", "-", ".", kind="operator"):
            left = Binary(token.text, left, self._parse_multiplicative())
        return left

    def _parse_multiplicative(self) -> Any:
        left = self._parse_unary()
        while token := self.accept("*", "/", "%", kind="operator"):
            left = Binary(token.text, left, self._parse_unary())
        return left

    def _parse_unary(self) -> Any:
        if self.accept("-", kind="operator"):
            return Negative(self._parse_unary())
        return self._parse_primary()

    def _parse_primary(self) -> Any:
        token = self.take()
        if token.kind == "number":
            number = to_number(token.text)
            return Literal(number if number is not None else float(token.text))
        if token.kind == "string":
            return Literal(unescape_string(token.text))
        if token.kind == "quoted_field":
            return FieldRef(unescape_string(token.text))
        if token.text == "(":
            inner = self.parse_expression()
            self.expect(")")
            return inner
        if token.kind == "name" and token.text not in KEYWORDS:
            if self.accept("(", kind="operator"):
                return self._parse_call(token)
            return FieldRef(token.text)
        raise self.error(f"Unexpected {token.text!r} at position {token.position}.")

    def _parse_call(self, name_token: Token) -> Call:
        name = name_token.text
        arguments = []
        if not self.accept(")", kind="operator"):
            while True:
                arguments.append(self.parse_expression())
                if self.accept(")", kind="operator"):
                    break
                self.expect(",")
        return make_call(name, tuple(arguments), self.command)


def make_call(name: str, arguments: tuple[Any, ...], command: str) -> Call:
    """Check a function call's name and argument count, and compile literal regexes."""
    if name not in FUNCTION_ARITY:
        if name in SPLUNK_ONLY_FUNCTIONS:
            raise SPLSyntaxError(
                f"Error in '{command}' command: The Splunk stand-in does not support the "
                f"'{name}' function."
            )
        raise SPLSyntaxError(
            f"Error in '{command}' command: The '{name}' function is unsupported or undefined."
        )
    low, high = FUNCTION_ARITY[name]
    count = len(arguments)
    if count < low or (high is not None and count > high) or (name == "case" and count % 2):
        if name == "case":
            expected = "an even number of"
        elif low == high:
            expected = str(low)
        else:
            expected = f"{low} or more"
        raise SPLSyntaxError(
            f"Error in '{command}' command: The arguments to the '{name}' function are "
            f"invalid: it takes {expected} arguments, not {count}."
        )
    if name in {"match", "replace"} and isinstance(arguments[1], Literal):
        try:
            re.compile(str(arguments[1].value))
        except re.error as exc:
            raise SPLSyntaxError(
                f"Error in '{command}' command: Regex: {exc} in {arguments[1].value!r}."
            ) from exc
    return Call(name, arguments)


def is_boolean(node: Any) -> bool | None:
    """Return whether an expression always gives a boolean (True), never does (False), or may."""
    if isinstance(node, Not):
        return True
    if isinstance(node, Binary):
        if node.operator in {"AND", "OR", "XOR", "=", "!=", "LIKE", "<", ">", "<=", ">="}:
            return True
        return False
    if isinstance(node, Call):
        if node.name in BOOLEAN_FUNCTIONS:
            return True
        if node.name in {"case", "if", "coalesce", "null"}:
            return None
        return False
    if isinstance(node, Literal | Negative):
        return False
    return None


# Evaluation


def evaluate(node: Any, row: dict[str, Any]) -> Any:
    """Evaluate an expression over one row; null is None and booleans are bool."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, FieldRef):
        value = row.get(node.name)
        if isinstance(value, list):
            return value[0] if value else None
        return value
    if isinstance(node, Negative):
        value = evaluate(node.operand, row)
        if value is None:
            return None
        number = _number_operand(value, "-")
        return None if number is None else -number
    if isinstance(node, Not):
        return _not(evaluate(node.operand, row))
    if isinstance(node, Binary):
        return _binary(node, row)
    if isinstance(node, Call):
        return FUNCTIONS[node.name](node.arguments, row)
    raise TypeError(f"not an expression node: {node!r}")


def _not(value: Any) -> bool | None:
    if value is None:
        return None
    return not _boolean_operand(value, "NOT")


def _boolean_operand(value: Any, operator: str) -> bool:
    if not isinstance(value, bool):
        raise SPLRuntimeError(f"Type checking failed. '{operator}' only takes boolean arguments.")
    return value


def _number_operand(value: Any, operator: str) -> int | float | None:
    if isinstance(value, bool):
        raise SPLRuntimeError(f"Type checking failed. '{operator}' does not take boolean arguments.")
    return to_number(value)


def _binary(node: Binary, row: dict[str, Any]) -> Any:
    operator = node.operator
    left = evaluate(node.left, row)
    right = evaluate(node.right, row)
    if operator in {"AND", "OR", "XOR"}:
        return _logical(operator, left, right)
    if left is None or right is None:
        return None
    if operator == "=":
        return _compare(left, right, operator) == 0
    if operator == "!=":
        return _compare(left, right, operator) != 0
    if operator == "LIKE":
        return _like(left, right)
    if operator in {"<", ">", "<=", ">="}:
        order = _compare(left, right, operator)
        return {"<": order < 0, ">": order > 0, "<=": order <= 0, ">=": order >= 0}[operator]
    if operator == ".":
        for value in (left, right):
            if isinstance(value, bool):
                raise SPLRuntimeError("Type checking failed. '.' only takes strings and numbers.")
        return render_scalar(left) + render_scalar(right)
    return _arithmetic(operator, left, right)


def _logical(operator: str, left: Any, right: Any) -> bool | None:
    for value in (left, right):
        if value is not None:
            _boolean_operand(value, operator)
    if operator == "AND":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if operator == "OR":
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    return None if left is None or right is None else left != right


def _compare(left: Any, right: Any, operator: str) -> int:
    """Order two values: numerically when both are numbers, else as case-sensitive strings."""
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, bool) and isinstance(right, bool) and operator in {"=", "!="}:
            return 0 if left == right else 1
        raise SPLRuntimeError(f"Type checking failed. '{operator}' cannot compare booleans.")
    left_number, right_number = to_number(left), to_number(right)
    if left_number is not None and right_number is not None:
        return (left_number > right_number) - (left_number < right_number)
    left_text, right_text = render_scalar(left), render_scalar(right)
    return (left_text > right_text) - (left_text < right_text)


def _arithmetic(operator: str, left: Any, right: Any) -> Any:
    left_number = _number_operand(left, operator)
    right_number = _number_operand(right, operator)
    if left_number is None or right_number is None:
        if operator == "+" and isinstance(left, str) and isinstance(right, str):
            return left + right
        return None
    if operator == "+":
        return left_number + right_number
    if operator == "-":
        return left_number - right_number
    if operator == "*":
        return left_number * right_number
    if right_number == 0:
        return None
    if operator == "/":
        quotient = left_number / right_number
        return int(quotient) if quotient.is_integer() else quotient
    return left_number % right_number


def like_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an SQL LIKE pattern: ``%`` is any text and ``_`` any one character."""
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _like(value: Any, pattern: Any) -> bool:
    return like_pattern(render_scalar(pattern)).fullmatch(render_scalar(value)) is not None


# Functions take their unevaluated arguments, so case() and if() evaluate only what they need.


def _function_case(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    for position in range(0, len(arguments), 2):
        condition = evaluate(arguments[position], row)
        if condition is not None and _boolean_operand(condition, "case"):
            return evaluate(arguments[position + 1], row)
    return None


def _function_if(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    condition = evaluate(arguments[0], row)
    if condition is not None and _boolean_operand(condition, "if"):
        return evaluate(arguments[1], row)
    return evaluate(arguments[2], row)


def _function_match(arguments: tuple[Any, ...], row: dict[str, Any]) -> bool | None:
    value, pattern = (evaluate(argument, row) for argument in arguments)
    if value is None or pattern is None:
        return None
    try:
        return re.search(render_scalar(pattern), render_scalar(value)) is not None
    except re.error as exc:
        raise SPLRuntimeError(f"Regex: {exc} in {pattern!r}.") from exc


def _function_like(arguments: tuple[Any, ...], row: dict[str, Any]) -> bool | None:
    value, pattern = (evaluate(argument, row) for argument in arguments)
    if value is None or pattern is None:
        return None
    return _like(value, pattern)


def _function_coalesce(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    for argument in arguments:
        value = evaluate(argument, row)
        if value is not None:
            return value
    return None


def _string_function(transform: Callable[[str], Any]) -> Callable[..., Any]:
    def apply(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
        value = evaluate(arguments[0], row)
        return None if value is None else transform(render_scalar(value))

    return apply


def _function_tonumber(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    value = evaluate(arguments[0], row)
    if value is None:
        return None
    if len(arguments) == 1:
        return to_number(value)
    base = to_number(evaluate(arguments[1], row))
    try:
        return int(render_scalar(value), int(base)) if base is not None else None
    except ValueError:
        return None


def _function_substr(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    value = evaluate(arguments[0], row)
    start = to_number(evaluate(arguments[1], row))
    if value is None or start is None:
        return None
    text = render_scalar(value)
    # Splunk counts from 1, and a negative start counts back from the end.
    begin = int(start) - 1 if start > 0 else max(len(text) + int(start), 0)
    if len(arguments) == 3:
        length = to_number(evaluate(arguments[2], row))
        return None if length is None else text[begin : begin + int(length)]
    return text[begin:]


def _function_replace(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    value, pattern, replacement = (evaluate(argument, row) for argument in arguments)
    if value is None or pattern is None or replacement is None:
        return None
    try:
        return re.sub(render_scalar(pattern), render_scalar(replacement), render_scalar(value))
    except re.error as exc:
        raise SPLRuntimeError(f"Regex: {exc} in {pattern!r}.") from exc


def _function_round(arguments: tuple[Any, ...], row: dict[str, Any]) -> Any:
    """Round to a number of decimal places, 0 by default; null unless both are numbers.

    NOTE: halves round away from zero on the decimal text of the number (round(2.675, 2)
    is 2.68). How Splunk rounds halves is not verified.
    """
    number = to_number(evaluate(arguments[0], row))
    places = to_number(evaluate(arguments[1], row)) if len(arguments) == 2 else 0
    if number is None or places is None or places < 0 or int(places) != places:
        return None
    step = Decimal(1).scaleb(-int(places))
    rounded = Decimal(repr(number)).quantize(step, rounding=ROUND_HALF_UP)
    return int(rounded) if places == 0 else float(rounded)


FUNCTIONS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    "case": _function_case,
    "if": _function_if,
    "match": _function_match,
    "like": _function_like,
    "coalesce": _function_coalesce,
    "lower": _string_function(str.lower),
    "upper": _string_function(str.upper),
    "len": _string_function(len),
    "isnull": lambda arguments, row: evaluate(arguments[0], row) is None,
    "isnotnull": lambda arguments, row: evaluate(arguments[0], row) is not None,
    "true": lambda arguments, row: True,
    "false": lambda arguments, row: False,
    "null": lambda arguments, row: None,
    "tonumber": _function_tonumber,
    "tostring": _string_function(str),
    "substr": _function_substr,
    "replace": _function_replace,
    "round": _function_round,
}
