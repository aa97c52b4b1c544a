"""Splice small handler functions into the loop that calls them, in the source numba
compiles.

The replay kernel keeps each hot call family (allocate, lock, unlock, free, map, unmap)
in a function of its own, called from the loop as::

    nf, nl_live = _on_unlock(F, nf, S, M, ...)
    continue

Run as Python, that is what happens. Compiled, a call would cost numba a reference count
on every array the handler receives, around code LLVM cannot prove does not raise (1.3-1.7x
kernel time, 1.1-1.4x even with numba's own ``inline="always"``). So before compiling,
:func:`splice` rewrites the loop's syntax tree: each such call and its ``continue`` become
the handler's body, a ``return`` of the call's targets becomes ``continue``. The compiled
loop is then the one a hand-inlined kernel would be, statement for statement.

What makes that rewrite sound is checked, and a :class:`SpliceError` names the handler
that breaks it:

- the call is a statement of its own followed by ``continue``, its arguments are the
  handler's parameter names, in order (so the handler's names are the loop's names);
- every ``return`` gives back exactly the call's targets (or the rewrite assigns them),
  and none sits inside a loop of the handler (there ``continue`` would mean that loop);
- the handler assigns no variable the loop carries from one event to the next (one set
  before the loop) unless the call takes it back as a target: as a function it could not
  change the caller's variable, spliced it would; nor, for the same reason, any other name
  the loop's function uses (its locals would become the loop's), except a name the loop
  sets afresh for every event before it reads it and that nothing outside the loop
  mentions (the handler is followed by ``continue``, so its value is never read again);
- the handler takes plain positional parameters only (no defaults, ``*args``, keyword-only
  or ``**kwargs``: the call could not pass them by name), binds no name through
  ``global`` or ``nonlocal``, and, when its call takes targets, cannot reach its end
  without a ``return`` (as a function it would return None there; spliced, the targets
  would silently keep their old values).
"""

from __future__ import annotations

import ast
import copy
import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any


class SpliceError(ValueError):
    """A handler or its call does not keep the form :func:`splice` relies on."""


def splice(func: Callable[..., Any], handlers: Iterable[Callable[..., Any]],
           namespace: dict[str, Any]) -> Callable[..., Any]:
    """``func`` with every call of ``handlers`` (followed by ``continue``) replaced by the
    handler's body; compiled from the rewritten tree with ``namespace`` as its globals.
    Line numbers stay those of the source file (a spliced statement keeps its handler's)."""
    code = compile(spliced_tree(func, handlers), inspect.getsourcefile(func) or "<splice>", "exec")
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)  # noqa: S102 - our own source, rewritten: defines the function
    return scope[func.__name__]


def spliced_tree(func: Callable[..., Any], handlers: Iterable[Callable[..., Any]]) -> ast.Module:
    """The syntax tree :func:`splice` compiles (``ast.unparse`` it to read it). Raises
    :class:`SpliceError` when a handler is never called as one."""
    tree = _parse(func)
    fdef = tree.body[0]
    assert isinstance(fdef, ast.FunctionDef)
    bodies = {h.__name__: _function(h) for h in handlers}
    carried = _assigned(s for s in fdef.body if not isinstance(s, (ast.For, ast.While)))
    used = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)} | _parameters(fdef)
    outside = {n.id for s in fdef.body if not isinstance(s, (ast.For, ast.While))
               for n in ast.walk(s) if isinstance(n, ast.Name)}
    splicer = _Splicer(bodies, carried, used, outside)
    splicer.visit(fdef)
    unused = sorted(set(bodies) - splicer.spliced)
    if unused:
        raise SpliceError(f"{', '.join(unused)}: not called from {func.__name__} as a statement "
                          "followed by 'continue'")
    return ast.fix_missing_locations(tree)


def _parse(func: Callable[..., Any]) -> ast.Module:
    """The function's definition, line numbers as in its file."""
    lines, first = inspect.getsourcelines(func)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    ast.increment_lineno(tree, first - 1)
    return tree


def _function(func: Callable[..., Any]) -> ast.FunctionDef:
    fdef = _parse(func).body[0]
    assert isinstance(fdef, ast.FunctionDef)
    return fdef


def _parameters(fdef: ast.FunctionDef) -> set[str]:
    a = fdef.args
    every = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x is not None]
    return {p.arg for p in every}


def _assigned(statements: Iterable[ast.stmt]) -> set[str]:
    """Names the statements bind: assignments, augmented assignments, loop and ``with``
    targets, ``:=``, ``del``, imports, ``except ... as``, match captures."""
    names: set[str] = set()
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
                names.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                names.add(node.rest)
    return names


def _fresh(loop: ast.For | ast.While, outside: set[str]) -> set[str]:
    """Names ``loop`` sets for every event before reading them, and which nothing outside
    the function's loops mentions: its ``for`` targets, and each name whose first mention
    among the body's top-level statements is a plain assignment to it that does not read it."""
    fresh = _assigned([ast.Expr(loop.target)]) if isinstance(loop, ast.For) else set()
    head = loop.iter if isinstance(loop, ast.For) else loop.test
    seen = {n.id for n in ast.walk(head) if isinstance(n, ast.Name)}
    for stmt in loop.body:
        mentioned = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        if isinstance(stmt, ast.Assign):
            read = {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
            fresh |= {t.id for t in stmt.targets if isinstance(t, ast.Name)} - seen - read
        seen |= mentioned
    return fresh - outside


def _ends(body: list[ast.stmt]) -> bool:
    """Whether control cannot run off the end of ``body`` (every path returns or raises)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return _ends(last.body) and _ends(last.orelse)
    return False


def _check_form(name: str, fdef: ast.FunctionDef) -> None:
    """Refuse a handler whose parameters or bindings a splice could not keep."""
    a = fdef.args
    if a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg or a.defaults:
        raise SpliceError(f"{name}: only plain positional parameters, without defaults, can be "
                          f"spliced (def {name}({ast.unparse(a)}))")
    for node in ast.walk(fdef):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            raise SpliceError(f"{name}: '{ast.unparse(node)}' cannot be spliced (line {node.lineno})")


class _Splicer(ast.NodeTransformer):
    def __init__(self, bodies: dict[str, ast.FunctionDef], carried: set[str], used: set[str],
                 outside: set[str]) -> None:
        self.bodies = bodies
        self.carried = carried
        self.used = used  #: every name of the loop's function (before splicing)
        self.outside = outside  #: names its statements other than the loops mention
        self.loops: list[set[str]] = []  #: per enclosing loop, the names it sets afresh
        self.spliced: set[str] = set()

    def _loop(self, node: ast.For | ast.While) -> ast.AST:
        self.loops.append(_fresh(node, self.outside))
        try:
            return self.generic_visit(node)
        finally:
            self.loops.pop()

    visit_For = visit_While = _loop  # type: ignore[assignment]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(node, field, self._block(block))
        return node

    def _block(self, block: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        k = 0
        while k < len(block):
            stmt = block[k]
            name, targets = _handler_call(stmt)
            k += 1
            if name not in self.bodies:
                out.append(stmt)
                continue
            if k >= len(block) or not isinstance(block[k], ast.Continue):
                raise SpliceError(f"{name}: its call must be followed by 'continue' (line {stmt.lineno})")
            k += 1  # the body ends in its own 'continue'
            out.extend(self._body(name, stmt, targets))
        return out

    def _body(self, name: str, stmt: ast.stmt, targets: list[str]) -> list[ast.stmt]:
        fdef = self.bodies[name]
        _check_form(name, fdef)
        call = stmt.value  # type: ignore[attr-defined]
        params = [a.arg for a in fdef.args.args]
        args = [a.id if isinstance(a, ast.Name) else None for a in call.args]
        if call.keywords or args != params:
            raise SpliceError(f"{name}: called with {ast.unparse(call)}; the arguments must be "
                              f"its parameter names in order ({', '.join(params)})")
        body = copy.deepcopy(fdef.body)  # rewritten in place below: one copy per call site
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        stray = (_assigned(body) & self.carried) - set(targets)
        if stray:
            raise SpliceError(f"{name} assigns {', '.join(sorted(stray))}, which the loop carries, "
                              "without returning it to the call")
        fresh = self.loops[-1] if self.loops else set()
        captured = (_assigned(body) & self.used) - set(targets) - fresh
        if captured:
            raise SpliceError(f"{name} assigns {', '.join(sorted(captured))}, a name the loop's "
                              "function uses: spliced, the handler's local would overwrite it")
        if targets and not _ends(body):
            raise SpliceError(f"{name}: can reach its end without 'return' (line {body[-1].lineno}); "
                              f"its call takes {', '.join(targets)}")
        block = ast.Module(body=list(body), type_ignores=[])
        _Returns(name, targets).visit(block)  # a top-level return may become two statements
        body = block.body
        if not isinstance(body[-1], ast.Continue):
            body.append(ast.copy_location(ast.Continue(), body[-1]))
        self.spliced.add(name)
        return body


def _handler_call(stmt: ast.stmt) -> tuple[str | None, list[str]]:
    """(function name, target names) of ``targets = f(...)`` or ``f(...)``; (None, [])
    for any other statement."""
    if isinstance(stmt, ast.Expr):
        value, targets = stmt.value, []
    elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        value, target = stmt.value, stmt.targets[0]
        elts = target.elts if isinstance(target, ast.Tuple) else [target]
        if not all(isinstance(t, ast.Name) for t in elts):
            return None, []
        targets = [t.id for t in elts]  # type: ignore[attr-defined]
    else:
        return None, []
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id, targets
    return None, []


class _Returns(ast.NodeTransformer):
    """``return x`` -> ``continue`` when x is the call's targets, else ``targets = x``
    then ``continue``; a return inside one of the handler's own loops is refused."""

    def __init__(self, name: str, targets: list[str]) -> None:
        self.name = name
        self.targets = targets
        self.depth = 0

    def _loop(self, node: ast.AST) -> ast.AST:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        return node

    visit_For = visit_While = _loop

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        raise SpliceError(f"{self.name}: a nested function cannot be spliced")

    def visit_Return(self, node: ast.Return) -> ast.AST | list[ast.stmt]:
        if self.depth:
            raise SpliceError(f"{self.name}: 'return' inside a loop of the handler (line {node.lineno})")
        value = node.value
        names = [e.id if isinstance(e, ast.Name) else None
                 for e in (value.elts if isinstance(value, ast.Tuple) else [value])] if value else []
        done = ast.copy_location(ast.Continue(), node)
        if names == self.targets:
            return done
        if value is None or not self.targets:
            raise SpliceError(f"{self.name}: returns {ast.unparse(node)!r}, its call takes "
                              f"{', '.join(self.targets) or 'nothing'} (line {node.lineno})")
        store = [ast.Name(t, ast.Store()) for t in self.targets]
        target = store[0] if len(store) == 1 else ast.Tuple(store, ast.Store())
        return [ast.copy_location(ast.Assign([target], value), node), done]
