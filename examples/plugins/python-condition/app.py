"""A Copra condition plugin in Python: output `if` conditions written as Python
expressions over the probed input, e.g. `input.width >= 1280 and input.duration < 600`.

Only a safe subset is accepted (comparisons, and/or/not, constants, `input.<field>`):
the expression is parsed with `ast` and walked, never passed to `eval`.
Built into a WASI component with componentize-py (see build.sh)."""

import ast

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

FIELDS = {
    "width", "height", "duration", "rotation", "fps", "bitrate", "has_video", "has_audio",
    "video_codec", "audio_codec", "pix_fmt", "sample_rate", "channels", "size", "format_name",
}
COMPARE = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
}


def invalid(message: str) -> Err:
    return Err(types.PluginError(code="condition_not_valid", message=message))


def parse(expression: str) -> ast.AST:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise invalid(f"syntax error at column {e.offset}: {e.msg}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "input" and node.attr in FIELDS):
                owner = getattr(node.value, "id", "?")
                raise invalid(f"unknown variable '{owner}.{node.attr}'; use input.<field>")
        elif isinstance(node, ast.Name):
            if node.id != "input":
                raise invalid(f"unknown name '{node.id}'")
        elif not isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not,
                                   ast.Compare, ast.Constant, ast.Load, *COMPARE)):
            raise invalid(f"'{type(node).__name__}' is not allowed in a condition")
    return tree.body


def evaluate(node: ast.AST, media: types.MediaInfo):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute):
        return getattr(media, node.attr)
    if isinstance(node, ast.UnaryOp):
        return not evaluate(node.operand, media)
    if isinstance(node, ast.BoolOp):
        values = (evaluate(v, media) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = evaluate(node.left, media)
        for op, right_node in zip(node.ops, node.comparators):
            right = evaluate(right_node, media)
            try:
                if not COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                raise invalid(f"cannot compare {left!r} with {right!r}")
            left = right
        return True
    # (ast.unparse is not in componentize-py's standard library)
    raise invalid(f"cannot evaluate a {type(node).__name__}")


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="python-condition", version="0.1.0", kind=types.PluginKind.CONDITION, provides=[])


class Condition(exports.Condition):
    def check(self, expression: str) -> None:
        parse(expression)

    def evaluate(self, expression: str, input: types.MediaInfo) -> bool:
        result = evaluate(parse(expression), input)
        if not isinstance(result, bool):
            raise invalid(f"'{expression}' is {result!r}, not true or false")
        return result
