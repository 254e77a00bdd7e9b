"""The API reference covers every public name, and every docstring keeps its contract.

``docs/api.rst`` (built by ``make docs``) is the list of what is documented:
every name in ``ragged.__all__`` must have a directive there, and every
callable it documents must say what it raises (``:raises X:`` fields, or
``:raises: nothing``) and where it may be called from (a ``:Called from:``
field: inside a goroutine, from a plain thread, or anywhere).  Broken
cross-references are caught by the Sphinx build itself (``-n -W``).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import ragged

API = Path(__file__).resolve().parents[2] / "docs" / "api.rst"
DIRECTIVE = re.compile(r"^\.\. auto(function|class|exception|module):: (\S+)$")
OPTION = re.compile(r"^   :(members|special-members): (.*)$")


def documented() -> list[tuple[str, str, list[str]]]:
    """``(kind, dotted name, members)`` for each directive of docs/api.rst."""
    out: list[tuple[str, str, list[str]]] = []
    for line in API.read_text().splitlines():
        m = DIRECTIVE.match(line)
        if m:
            out.append((m.group(1), m.group(2).removesuffix("()"), []))
            continue
        o = OPTION.match(line)
        if o and out:
            out[-1][2].extend(x.strip() for x in o.group(2).split(","))
    return out


def resolve(name: str) -> Any:
    """The object a directive names (``Chan`` is ``ragged.Chan``; dotted names are imported)."""
    if "." not in name:
        obj = getattr(ragged, name)
        # ``import ragged.trace`` rebinds ragged.trace to that (callable) module.
        return getattr(obj, name) if inspect.ismodule(obj) else obj
    mod, _, attr = name.rpartition(".")
    return getattr(__import__(mod, fromlist=[attr]), attr)


def doc_of(obj: Any) -> str:
    return inspect.getdoc(obj) or ""


def contract_problems(what: str, doc: str) -> list[str]:
    """What a callable's docstring lacks: a summary, its raises, where it may be called from."""
    problems = []
    if not doc.strip():
        return [f"{what}: no docstring"]
    if not re.search(r"^:raises( [\w.]+)?:", doc, re.M):
        problems.append(f"{what}: no ':raises X:' field (or ':raises: nothing')")
    if not re.search(r"^:Called from: \S", doc, re.M):
        problems.append(f"{what}: no ':Called from:' field")
    return problems


ENTRIES = documented()


def test_every_public_name_is_in_the_reference() -> None:
    names = {name for _, name, _ in ENTRIES} | {name.removeprefix("ragged.") for _, name, _ in ENTRIES}
    missing = [n for n in ragged.__all__ if n not in names]
    assert not missing, f"add these to docs/api.rst: {missing}"


@pytest.mark.parametrize(("kind", "name", "members"), ENTRIES, ids=[e[1] for e in ENTRIES])
def test_docstrings_keep_the_contract(kind: str, name: str, members: list[str]) -> None:
    obj = resolve(name)
    problems: list[str] = []
    if kind in ("exception", "module"):
        if not doc_of(obj).strip():
            problems.append(f"{name}: no docstring")
    elif kind == "function":
        problems += contract_problems(name, doc_of(obj))
    else:
        problems += contract_problems(name, doc_of(obj))  # the constructor's contract is the class's
        for member in members:
            raw = inspect.getattr_static(obj, member, None)
            if isinstance(raw, property):
                if not (raw.__doc__ or "").strip():
                    problems.append(f"{name}.{member}: no docstring")
            elif callable(raw) and not inspect.isclass(raw):
                problems += contract_problems(f"{name}.{member}", doc_of(getattr(obj, member)))
    assert not problems, "\n".join(problems)


# A private name in backquotes or a role (``_lock``, :class:`~ragged._sync.X`, ``_barrier.foreachp``).
_PRIVATE = re.compile(r"(``|`~?|[\s(])(ragged\.)?_[a-z][a-z_]*[.`\s]")


def _public_docs() -> list[tuple[str, str]]:
    """(name, docstring) of every exported name and of the documented members of each class."""
    out = []
    for kind, name, members in ENTRIES:
        if kind == "module":
            continue
        obj = resolve(name)
        out.append((name, doc_of(obj)))
        for member in members:
            raw = inspect.getattr_static(obj, member, None)
            out.append((f"{name}.{member}", (raw.__doc__ or "") if isinstance(raw, property) else doc_of(raw)))
    return out


def test_the_reference_names_no_private_internals() -> None:
    """What a user reads in the reference talks about ragged's behaviour, not its private modules or fields."""
    bad = [
        f"{name}: {line.strip()}"
        for name, doc in _public_docs()
        for line in doc.splitlines()
        if _PRIVATE.search(line) and "__" not in line
    ]
    assert not bad, "\n".join(bad)


ROOT = API.parent.parent
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def _programs() -> list[tuple[str, str]]:
    """Every python block of the README and the guides that is a whole program (it calls ragged.run)."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs" / "guides").glob("*.md"))]:
        for i, m in enumerate(_BLOCK.finditer(path.read_text())):
            if "ragged.run(" in m.group(1):
                out.append((f"{path.relative_to(ROOT)}#{i}", m.group(1)))
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("where", "code"), _programs(), ids=[w for w, _ in _programs()])
def test_the_examples_in_the_readme_and_guides_run(where: str, code: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert proc.returncode == 0, f"{where}:\n{proc.stdout}\n{proc.stderr}"
