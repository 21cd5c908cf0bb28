"""Small frozen values for the evaluator's half of the pipeline, made without a class library.

Every `pbr eval` imports the evaluator's half (data, evaluator, statement, errors, the checked
program and the compiled contract kept for it): attrs, with the modules it imports, cost about
15 ms there, a tenth of a run over 10,000 participants. The syntax tree, the parser and the checker
keep attrs. A class lists its fields as annotations, in order, with their defaults as class
attributes; `_hidden` names the fields left out of equality, hashing and repr (positions, as
attrs' `eq=False, repr=False`), `_unshown` those left out of repr only, `_last` those a base
class declares that come after a subclass's own fields (attrs' `kw_only`).
"""

from __future__ import annotations

_REQUIRED = object()


class FrozenError(AttributeError):
    """An attempt to change a frozen value."""


class Frozen:
    """A value that cannot be changed once made: fields by position or name, compared by value."""

    __slots__ = ()
    _fields: tuple = ()  # (name, default or _REQUIRED), in order: set for each class
    _compared: tuple = ()
    _shown: tuple = ()
    _hidden: tuple = ()
    _unshown: tuple = ()
    _last: tuple = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in vars(klass).get("__annotations__", {}):
                if not name.startswith("_") and name not in names:
                    names.append(name)
        names = [name for name in names if name not in cls._last] + [name for name in names if name in cls._last]
        cls._fields = tuple((name, getattr(cls, name, _REQUIRED)) for name in names)
        cls._compared = tuple(name for name in names if name not in cls._hidden)
        cls._shown = tuple(name for name in cls._compared if name not in cls._unshown)

    def __init__(self, *args, **kwargs) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} values, not {len(args)}")
        values = self.__dict__
        for (name, default), value in zip(fields, args):
            values[name] = value
        for name, default in fields[len(args):]:
            if name in kwargs:
                values[name] = kwargs.pop(name)
            elif default is _REQUIRED:
                raise TypeError(f"{type(self).__name__} needs `{name}`")
            else:
                values[name] = default
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field `{next(iter(kwargs))}`")

    def __setattr__(self, name: str, value) -> None:
        raise FrozenError(f"{type(self).__name__} is frozen: `{name}` cannot be changed")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"{type(self).__name__} is frozen: `{name}` cannot be removed")

    def evolve(self, **changes):
        """A copy with some fields changed (as attrs.evolve)."""
        values = {name: self.__dict__[name] for name, _ in self._fields}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        return all(mine[name] == theirs[name] for name in self._compared)

    def __hash__(self) -> int:
        values = self.__dict__
        return hash((self.__class__, *(values[name] for name in self._compared)))

    def __repr__(self) -> str:
        values = self.__dict__
        return f"{type(self).__qualname__}({', '.join(f'{name}={values[name]!r}' for name in self._shown)})"

    def __reduce__(self):
        values = self.__dict__
        return _rebuilt, (self.__class__, tuple(values[name] for name, _ in self._fields))


def _rebuilt(cls, values: tuple):
    """A frozen value read back by pickle (its fields set directly, as when it was made)."""
    made = object.__new__(cls)
    made.__dict__.update(zip((name for name, _ in cls._fields), values))
    return made
