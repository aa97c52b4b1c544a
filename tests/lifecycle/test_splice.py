"""The splice that puts the kernel's hot handlers back into its compiled loop
(``lifecycle/splice.py``): what it produces for the real kernel, and each form it refuses.

That the spliced, compiled kernel computes what the Python kernel (which calls the
handlers) computes is the engines' comparison in test_replay_properties.py and
test_properties_tier2.py; here: the rewrite itself.
"""

from __future__ import annotations

import ast

import pytest

from traceanalyzer.lifecycle import kernel
from traceanalyzer.lifecycle.splice import SpliceError, splice, spliced_tree


def _called(tree: ast.AST) -> set[str]:
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def test_the_compiled_loop_calls_no_hot_handler_and_holds_their_statements() -> None:
    tree = spliced_tree(kernel.replay, kernel._SPLICED)
    names = {h.__name__ for h in kernel._SPLICED}
    assert names <= _called(ast.parse(ast.unparse(ast.parse(_source(kernel.replay)))))
    assert _called(tree) & names == set()
    lines = {line.strip() for line in ast.unparse(tree).splitlines()}
    for handler in kernel._SPLICED:  # every line of each body but its returns is in the loop
        body = ast.parse(_source(handler)).body[0].body[1:]  # after the docstring
        for line in ast.unparse(body).splitlines():
            if not line.strip().startswith("return "):
                assert line.strip() in lines, (handler.__name__, line)
    # nothing but the handlers' statements was added: no return is left in the loop
    loop = next(n for n in ast.walk(tree) if isinstance(n, ast.For))
    assert not any(isinstance(n, ast.Return) for n in ast.walk(loop))


def _source(func) -> str:
    import inspect
    import textwrap

    return textwrap.dedent(inspect.getsource(func))


# --- small loops: the rewrite's rules ---------------------------------------------------

def _count_up(total, k):
    """Adds k to total; returns the new total."""
    if k < 0:
        return total
    total += k
    return total


def _loop(xs):
    total = 0
    for k in xs:
        total = _count_up(total, k)
        continue
    return total


def test_a_spliced_loop_computes_what_the_calls_compute() -> None:
    spliced = splice(_loop, [_count_up], dict(globals()))
    assert spliced([1, -5, 2, 3]) == _loop([1, -5, 2, 3]) == 6
    assert "_count_up" not in _called(spliced_tree(_loop, [_count_up]))


def _pair(total, k):
    return total + k  # not the call's target by name: assigned, then continue


def _loop_pair(xs):
    total = 0
    for k in xs:
        total = _pair(total, k)
        continue
    return total


def test_a_return_of_another_value_is_assigned_to_the_targets() -> None:
    assert splice(_loop_pair, [_pair], dict(globals()))([1, 2, 3]) == 6


def _no_continue(xs):
    total = 0
    for k in xs:
        total = _count_up(total, k)
    return total


def _other_names(xs):
    total = 0
    for k in xs:
        total = _count_up(total, k + 1)
        continue
    return total


def _returns_in_loop(total, k):
    while k > 0:
        return total
    return total


def _loop_returns_in_loop(xs):
    total = 0
    for k in xs:
        total = _returns_in_loop(total, k)
        continue
    return total


def _sets_carried(total, k):
    seen = k  # noqa: F841 - 'seen' is the loop's, set before it: the call would not change it
    return total


def _loop_sets_carried(xs):
    total = 0
    seen = 0
    for k in xs:
        total = _sets_carried(total, k)
        continue
    return total + seen


@pytest.mark.parametrize(("loop", "handler", "says"), [
    (_no_continue, _count_up, "must be followed by 'continue'"),
    (_other_names, _count_up, "must be its parameter names in order"),
    (_loop_returns_in_loop, _returns_in_loop, "'return' inside a loop of the handler"),
    (_loop_sets_carried, _sets_carried, "assigns seen, which the loop carries"),
    (_loop, _pair, "_pair: not called from _loop"),
])
def test_a_form_the_rewrite_cannot_keep_is_refused_naming_the_handler(loop, handler, says) -> None:
    with pytest.raises(SpliceError, match=says) as info:
        spliced_tree(loop, [handler])
    assert handler.__name__ in str(info.value)


def _clip(total, k):
    if k < 0:
        return total - 1  # a return nested in an if: rewritten in the body's own nodes
    return total + k


def _twice(xs):
    total = 0
    for k in xs:
        if k > 100:
            tmp = _clip(total, k)  # noqa: F841 - a second call site with another target
            continue
        total = _clip(total, k)
        continue
    return total


def test_a_handler_spliced_at_two_call_sites_returns_to_each_sites_targets() -> None:
    """Each site gets its own copy of the body: rewriting the first site's returns must
    not leak into the second's (it did: the second assigned the first's targets)."""
    xs = [1, 200, -3, 100]
    assert splice(_twice, [_clip], dict(globals()))(xs) == _twice(xs) == 100


# --- the guard rails: a handler whose names or form a splice would change ---------------

def _kw(total, k=1):
    return total + k


def _loop_kw(xs):
    total = 0
    for k in xs:
        total = _kw(total, k)
        continue
    return total


_G = 0


def _sets_global(total, k):
    global _G
    _G = k
    return total


def _loop_global(xs):
    total = 0
    for k in xs:
        total = _sets_global(total, k)
        continue
    return total


def _imports_over_carried(total, k):
    import math as seen  # noqa: F401 - binds the loop's 'seen'
    return total


def _loop_imports(xs):
    total = 0
    seen = 0
    for k in xs:
        total = _imports_over_carried(total, k)
        continue
    return total + seen


def _excepts_over_carried(total, k):
    try:
        raise ValueError(k)
    except ValueError as seen:  # noqa: F841 - binds (then deletes) the loop's 'seen'
        pass
    return total


def _loop_excepts(xs):
    total = 0
    seen = 0
    for k in xs:
        total = _excepts_over_carried(total, k)
        continue
    return total + seen


def _sets_y(total, k):
    y = k * 10
    return total + y


def _loop_reads_y_after(xs):
    total = 0
    for k in xs:
        if k > 0:
            total = _sets_y(total, k)
            continue
        y = k
    return total + y  # the loop's y ([-1, 5] -> 49); spliced, the handler's 50 (-> 100)


def _maybe(total, k):
    if k > 0:
        return total + k


def _loop_maybe(xs):
    total = 0
    for k in xs:
        total = _maybe(total, k)
        continue
    return total


def _bump(total, d):
    d = d + 1
    return total + d


def _loop_bump_not_fresh(xs):
    total = 0
    for k in xs:
        if k > 0:
            d = 1
        else:
            d = 2
        total = _bump(total, d)
        continue
    return total


@pytest.mark.parametrize(("loop", "handler", "says"), [
    (_loop_kw, _kw, "only plain positional parameters"),
    (_loop_global, _sets_global, "'global _G' cannot be spliced"),
    (_loop_imports, _imports_over_carried, "assigns seen, which the loop carries"),
    (_loop_excepts, _excepts_over_carried, "assigns seen, which the loop carries"),
    (_loop_reads_y_after, _sets_y, "assigns y, a name the loop's function uses"),
    (_loop_maybe, _maybe, "can reach its end without 'return'"),
    (_loop_bump_not_fresh, _bump, "assigns d, a name the loop's function uses"),
])
def test_a_handler_that_would_change_the_loops_names_is_refused(loop, handler, says) -> None:
    with pytest.raises(SpliceError, match=says) as info:
        spliced_tree(loop, [handler])
    assert handler.__name__ in str(info.value)


def _loop_bump_fresh(xs):
    total = 0
    for k in xs:
        d = k % 3  # set for every event before it is read, and only in the loop
        total = _bump(total, d)
        continue
    return total


def _sets_own_param(total, k):
    k = k * 2  # the loop's 'for' target: set afresh for the next event
    return total + k


def _loop_own_param(xs):
    total = 0
    for k in xs:
        total = _sets_own_param(total, k)
        continue
    return total


def test_a_name_the_loop_sets_afresh_for_every_event_may_be_reassigned() -> None:
    xs = [1, 2, 3, 4, 5]
    assert splice(_loop_bump_fresh, [_bump], dict(globals()))(xs) == _loop_bump_fresh(xs) == 11
    assert splice(_loop_own_param, [_sets_own_param], dict(globals()))(xs) == _loop_own_param(xs) == 30
