"""Faster equivalents of backend steps whose cost grows with the square of a rule's size.

Each replacement gives the same query as the backend's own method, byte for byte,
so the stored query stays the backend's output. tests/test_render_speedups.py
converts rules that reach the replaced code both ways and compares the results.
"""

import copy
import types
from collections import deque

from sigma.conditions import (
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaRegularExpression


def speedups_apply(backend) -> None:
    """Bind the faster steps that apply to this backend instance, if any."""
    try:
        from sigma.backends.loki.loki import LogQLBackend
    except ImportError:
        return
    if isinstance(backend, LogQLBackend):
        backend.partition_rule = types.MethodType(_loki_partition_rule, backend)
        # The arguments that the query split left out, as text.
        backend.portal_left_out = []


def left_out_take(backend) -> list[str]:
    """Return and forget what the backend's query split left out since the last call."""
    left_out = getattr(backend, "portal_left_out", None)
    if not left_out:
        return []
    backend.portal_left_out = []
    return left_out


def _highest_or(condition) -> ConditionOR | None:
    """Return the first OR met in a breadth-first walk of the parse tree."""
    pending = deque([condition])
    while pending:
        node = pending.popleft()
        if isinstance(node, ConditionOR):
            return node
        if isinstance(node, ConditionItem):
            pending.extend(node.args)
    return None


def _loki_partition_rule(backend, condition, partitions: int) -> list:
    """Split a condition whose LogQL query is too long, as pySigma-backend-loki does.

    The backend (0.15.1) deep-copies the whole condition once per part and then keeps
    only that part's slice of the highest OR's arguments. For
    `driver_load_win_vuln_drivers.yml` of SigmaHQ (4,432 hashes in 78 parts) that
    copied every hash 78 times and took 20 to 28 s per render. Here the highest OR
    holds only the part's slice while the copy is made, so each hash is copied
    once, and everything above the condition (the rule's detection with all its
    values) is copied once and shared by the parts. The backend only reads the
    parts after this, so sharing changes no output. A `1 of selection*` that
    matches one selection leaves the selection's `or` below a dropped one-argument
    `or` in its own parent chain. There the shared copy would contain the whole
    condition, so each part copies its parents itself.

    The slices are the backend's own: parts of `int(count / partitions)` arguments,
    so up to `partitions - 1` trailing arguments are left out of every query, as
    the backend leaves them out. They are recorded on the backend for a fidelity
    warning. Cases the fast path does not cover (no OR, fewer arguments than
    parts) go to the backend's method, which calls this one again or returns the
    condition whole.
    """
    top_or = _highest_or(condition)
    if top_or is None or len(top_or.args) < partitions:
        return type(backend).partition_rule(backend, condition, partitions)
    arguments = top_or.args
    size = int(len(arguments) / partitions)
    outside: dict | None = {}
    copy.deepcopy(condition.parent, outside)
    if any(id(node) in outside for node in _subtree(condition)):
        outside = None
    parts = []
    try:
        for index in range(partitions):
            top_or.args = arguments[index * size : (index + 1) * size]
            memo = None if outside is None else dict(outside)
            parts.append(copy.deepcopy(condition, memo))
    finally:
        top_or.args = arguments
    backend.portal_left_out.extend(
        _condition_text(argument) for argument in arguments[size * partitions :]
    )
    return parts


def _subtree(condition) -> list:
    """Return the condition and every node below it."""
    nodes = [condition]
    for node in nodes:
        if isinstance(node, ConditionItem):
            nodes.extend(node.args)
    return nodes


# Characters of one left-out argument named in a warning.
MAX_TEXT_CHARS = 200


def _condition_text(condition) -> str:
    """Describe one left-out argument: field and pattern, keyword pattern, or the
    arguments of a nested `and` or `or`."""
    if isinstance(condition, ConditionFieldEqualsValueExpression | ConditionValueExpression):
        value = condition.value
        pattern = value.regexp if isinstance(value, SigmaRegularExpression) else str(value)
        name = (
            condition.field
            if isinstance(condition, ConditionFieldEqualsValueExpression)
            else "keyword"
        )
        text = f"{name} ~ {pattern}"
    elif isinstance(condition, ConditionItem):
        operator = " or " if isinstance(condition, ConditionOR) else " and "
        text = "(" + operator.join(_condition_text(arg) for arg in condition.args) + ")"
    else:
        text = str(condition)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 3] + "..."
    return text
