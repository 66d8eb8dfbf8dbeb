"""Config errors a user can read: one line naming the key, not a usage dump or a traceback.

jsonargparse reports a bad value inside a ``class_path`` config as a tree (every member of the
``Union`` it tried, the ``NoneType`` alternative, the whole given value), after ~60 lines of
usage. :class:`ShortErrorParser` prints only the leaves of that tree, each prefixed with the full
key as it is written on the command line (``data.init_args.sampling``), plus close matches for a
mistyped key. :func:`constructor_error` does the same for a ``ValueError`` that a constructor
raises while the CLI instantiates the config. ``JSONARGPARSE_DEBUG=true`` restores the full report.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
import traceback
from collections.abc import Iterable
from typing import Any, NoReturn

from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser

__all__ = ["ShortErrorParser", "condense", "constructor_error", "plain_values"]

# what jsonargparse's Union report says around the leaves
_NOISE = (
    re.compile(r"^Does not validate against any of the Union subtypes$"),
    re.compile(r"^Subtypes: "),
    re.compile(r"^Errors:$"),
    re.compile(r"^Expected a <class 'NoneType'>"),
    re.compile(r"^Given value type: "),
    re.compile(r"^Given value: "),
)
_GIVEN_SCALAR = re.compile(r"^Given value: ([^{\[(]{1,60})$")
_KEY = re.compile(r'^Parser key "([^"]+)":\s*(.*)$')
# a class given to a callable-typed argument (``head: class_path + init_args``) reports its
# keys at the end of the type's line, and its whole value after the leaf
_NESTED_KEY = re.compile(r'^.*: Parser key "([^"]+)":\s*$')
_CALLABLE_TYPE = re.compile(r"^Type .* expects a function or a callable class: (.+)$")
_VALUE_DUMP = re.compile(r"\.? Got value: Namespace\((?:class_path='([^']+)')?.*$")
_CLASS = re.compile(r"^Problem with given class_path '([^']+)':\s*(.*)$")
_UNKNOWN_OPTION = re.compile(r"Option '([^']+)' is not accepted")
_UNKNOWN_SUBCOMMAND_OPTION = re.compile(r"(?:Group '([^']+)' )?does not accept option '([^']+)'")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.+)$")
_HINT = "(--help lists every option; JSONARGPARSE_DEBUG=true shows jsonargparse's full report)"
_MAX_LINES = 4


def _init_parameters(class_path: str) -> list[str]:
    """Constructor argument names of ``class_path`` (following ``**kwargs`` up the MRO)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return []
    names: list[str] = []
    for klass in getattr(cls, "__mro__", [cls]):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names += [p.name for p in params
                  if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return list(dict.fromkeys(names))


def _did_you_mean(wrong: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(wrong, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def condense(message: str, known_keys: Iterable[str] = ()) -> list[str]:
    """jsonargparse's error ``message`` → at most a few lines ``key (class): what is wrong``.

    ``known_keys``: the parser's options, for "did you mean" on a mistyped top-level key.
    """
    leaves: list[list[str]] = []  # [key, class_path, text]
    # (indent, key, class_path) of the structural lines above the current one
    stack: list[tuple[int, str, str]] = [(-1, "", "")]
    for raw in message.splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" -"))
        text = raw.strip().removeprefix("- ").strip()
        while stack[-1][0] >= indent:
            stack.pop()
        prefix, class_path = stack[-1][1], stack[-1][2]
        given = _GIVEN_SCALAR.match(text)
        if given:  # restrictions do not always repeat the value: add it to their leaves
            for leaf in leaves:
                if leaf[0] == prefix and "Got value" not in leaf[2]:
                    leaf[2] += f" (given: {given.group(1)})"
            continue
        if any(pattern.search(text) for pattern in _NOISE):
            continue
        nested = _NESTED_KEY.match(text)
        if nested:
            stack.append((indent, f"{prefix}.init_args.{nested.group(1)}", class_path))
            continue
        callable_type = _CALLABLE_TYPE.match(text)
        if callable_type:
            text, prefix = callable_type.group(1), f"{prefix}.init_args"
        dump = _VALUE_DUMP.search(text)
        if dump:
            text = text[: dump.start()]
            class_path = dump.group(1) or class_path  # the class whose argument it is
        key = _KEY.match(text)
        if key:
            prefix = f"{prefix}.{key.group(1)}" if prefix else key.group(1)
            stack.append((indent, prefix, class_path))
            text = key.group(2)
        klass = _CLASS.match(text)
        if klass:
            prefix, class_path = f"{prefix}.init_args" if prefix else "init_args", klass.group(1)
            stack.append((indent, prefix, class_path))
            text = klass.group(2)
        if not text:
            continue
        unknown = _UNKNOWN_OPTION.search(text)
        if unknown and class_path:
            text += _did_you_mean(unknown.group(1), _init_parameters(class_path))
        unknown = _UNKNOWN_SUBCOMMAND_OPTION.search(text)
        if unknown:
            group, option = unknown.groups()
            text += _did_you_mean(f"{group}.{option}" if group else option, known_keys)
        unrecognized = _UNRECOGNIZED.search(text)
        if unrecognized:  # argparse's message for a command-line option (no abbreviations)
            options = [a for a in unrecognized.group(1).split() if a.startswith("--")]
            text += "".join(_did_you_mean(a[2:].partition("=")[0], known_keys) for a in options)
        leaves.append([prefix, class_path, text])
    lines = [f"{key}{f' ({owner})' if owner else ''}: {text}" if key else text
             for key, owner, text in leaves]
    lines = list(dict.fromkeys(lines)) or [message.strip().splitlines()[0]]
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], f"... and {len(lines) - _MAX_LINES + 1} more"]
    return lines


def _option_keys(parser: Any) -> list[str]:
    """Every option's key, those of the subcommands' parsers included."""
    keys: list[str] = []
    for action in getattr(parser, "_actions", []):
        if isinstance(getattr(action, "choices", None), dict):  # the subcommands
            for subparser in action.choices.values():
                keys += _option_keys(subparser)
        elif getattr(action, "dest", None):
            keys.append(action.dest)
    return list(dict.fromkeys(keys))


class ShortErrorParser(LightningArgumentParser):
    """``LightningArgumentParser`` whose errors are a few lines: ``error: key: what is wrong``.

    Abbreviated options are refused (``allow_abbrev=False``, jsonargparse 5's default):
    argparse otherwise takes a mistyped option that is the prefix of a real one as that option,
    so ``--trainer.max_epoch=3`` silently set ``max_epochs`` and ``--model.init_args.init=…``
    whichever ``init_…`` key it happened to prefix uniquely.
    """

    def __init__(self, *args: Any, allow_abbrev: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        from jsonargparse._common import debug_mode_active

        if not self.exit_on_error or debug_mode_active():
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        lines = condense(message, _option_keys(parser))
        sys.stderr.write("".join(f"error: {line}\n" for line in lines) + _HINT + "\n")
        self.exit(2)


def constructor_error(error: BaseException) -> str:
    """One line for a ``ValueError`` raised in a constructor while instantiating the config:
    the class whose ``__init__`` raised it and its message (jsonargparse wraps it in Union
    reports; the innermost cause is the one that names the value)."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    where = ""
    for frame, _ in traceback.walk_tb(root.__traceback__):
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name == "__init__" and owner is not None:
            where = f"{type(owner).__module__}.{type(owner).__qualname__}: "
    return f"error: {where}{root}"


def plain_values(value: Any) -> Any:
    """``value`` with jsonargparse's restricted numbers (``PositiveInt``, ``ClosedUnitInterval``
    …) turned back into ``int``/``float``, in place for namespaces, so that the config stored in
    checkpoints loads with ``torch.load(weights_only=True)``."""
    if isinstance(value, Namespace):
        for key in list(value.__dict__):
            value.__dict__[key] = plain_values(value.__dict__[key])
        return value
    if isinstance(value, dict):
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_values(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_values(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and type(value) is not int:
        return int(value)
    if isinstance(value, float) and type(value) is not float:
        return float(value)
    return value
