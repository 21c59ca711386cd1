"""Stiffness targets: read a 6x6 Voigt stiffness from a file or a built-in name and normalize it.

A target measured on a real material (in Pa, kPa, MPa or GPa) is divided by the Young's modulus
of the base material the lattice is to be made of (spec ``targets.md``), so that every model sees
``C / E_b``. A target already given in that form has the unit ``normalized``.

Sources:

* a JSON file ``{"C": [[...6 numbers...], ...6 rows...]}`` or ``{"C21": [...21 numbers...]}``
  (21 constants in spec order ``C11 C12 ... C16 C22 ... C66``), optionally with ``"unit"`` and
  ``"base_modulus"`` (overridden by the arguments of :func:`load_target`) and descriptive keys
  ``name``, ``description``, ``base_material``, ``source``, ``notes``, and ``scan`` (the record
  of a homogenized scan, :mod:`metainv.scan`: its provenance goes into designs.json);
* a CSV or whitespace-separated text file with 6 rows of 6 numbers (``#`` starts a comment);
* a built-in name such as ``bone3`` (:func:`list_builtin_targets`).

Every problem raises :class:`metainv.errors.TargetError` with a one-line message. The loader
does not judge physical admissibility (symmetry, definiteness): that is
:func:`metainv.tensors.check_stiffness`'s job, which names the entry at fault.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import TargetError
from metainv.tensors import matrix_from_c21

logger = logging.getLogger(__name__)

NORMALIZED = "normalized"

#: Physical stress units and their size in pascal.
PASCALS_PER_UNIT: dict[str, float] = {"Pa": 1.0, "kPa": 1e3, "MPa": 1e6, "GPa": 1e9}

#: Every unit a target may be given in (matched case-insensitively).
UNITS: tuple[str, ...] = (*PASCALS_PER_UNIT, NORMALIZED)

#: Keys a target JSON file may carry besides ``C`` / ``C21``.
METADATA_KEYS: tuple[str, ...] = (
    "unit",
    "base_modulus",
    "name",
    "description",
    "base_material",
    "source",
    "notes",
    "scan",
)

#: Keys of a target's ``scan`` record kept as the provenance of designs made for it.
SCAN_PROVENANCE_KEYS: tuple[str, ...] = (
    "file",
    "sha256",
    "crop",
    "segmentation",
    "threshold",
    "coarsen",
    "voxel_size",
    "boundary",
    "tissue_modulus",
    "tissue_poisson_ratio",
    "unit",
    "bv_tv",
)

_BUILTIN_PACKAGE = "metainv"
_BUILTIN_FOLDER = ("data", "targets")
_MODULUS_PATTERN = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$")
_TEXT_SEPARATORS = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class Target:
    """A loaded target: ``stiffness`` (6, 6) is normalized by the base modulus.

    ``unit`` is the unit the source values were given in; ``base_modulus_pa`` the base
    material's Young's modulus in pascal (``None`` for a target given normalized).
    """

    name: str
    stiffness: np.ndarray
    unit: str
    base_modulus_pa: float | None
    base_material: str | None = None
    description: str | None = None
    source: str | None = None
    scan: dict[str, Any] | None = None

    def normalize_modulus(self, modulus: float | str, what: str = "modulus") -> float:
        """Express a modulus (e.g. of the solid, ``"114GPa"`` or a number in :attr:`unit`)
        relative to this target's base modulus, as the normalized stiffness is."""
        if self.base_modulus_pa is None:
            value, unit = parse_modulus(modulus, what=what)
            if unit is not None and unit != NORMALIZED:
                raise TargetError(
                    f"the target is normalized, so give the modulus {modulus!r} as a plain "
                    "number relative to the base material (1 is the base material itself)"
                )
            return value
        return modulus_in_pascal(modulus, default_unit=self.unit, what=what) / self.base_modulus_pa


def canonical_unit(unit: str) -> str:
    """The canonical spelling of ``unit`` (case-insensitive): one of :data:`UNITS`."""
    by_lower = {name.lower(): name for name in UNITS}
    canonical = by_lower.get(str(unit).strip().lower())
    if canonical is None:
        raise TargetError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    return canonical


def parse_modulus(text: float | str, what: str = "base modulus") -> tuple[float, str | None]:
    """Split a modulus such as ``"114GPa"``, ``"114 gpa"`` or ``114`` into ``(value, unit)``.

    The unit is canonical (:func:`canonical_unit`) or ``None`` when none is written. The value
    must be a positive finite number.
    """
    if isinstance(text, bool):
        raise TargetError(f"invalid {what} {text!r}: expected a positive number, e.g. 114GPa")
    if isinstance(text, (int, float)):
        value, unit = float(text), None
    else:
        match = _MODULUS_PATTERN.match(str(text))
        if match is None:
            raise TargetError(
                f"invalid {what} {text!r}: expected a positive number with an optional unit, "
                "e.g. 114GPa"
            )
        value = float(match.group(1))
        unit = canonical_unit(match.group(2)) if match.group(2) else None
    if not (math.isfinite(value) and value > 0):
        raise TargetError(f"invalid {what} {text!r}: it must be a positive finite number")
    return value, unit


#: Common base materials of printed lattices and their Young's moduli (as written, with unit):
#: annealed/as-built typical values from the materials' data sheets (Ti-6Al-4V: ASTM F136,
#: 316L: ASTM F138, CoCr: ASTM F75, PA12: laser-sintered, AlSi10Mg: laser powder bed fusion).
BASE_MATERIALS: dict[str, str] = {
    "Ti-6Al-4V": "114GPa",
    "316L": "193GPa",
    "CoCr": "210GPa",
    "AlSi10Mg": "70GPa",
    "PA12": "1.7GPa",
}

#: No solid is stiffer than about 1.2 TPa (diamond); a larger modulus is a unit slip.
MAX_MODULUS_PA = 1e13


def modulus_in_pascal(modulus: float | str, default_unit: str, what: str = "base modulus") -> float:
    """A modulus in pascal; a bare number is read in ``default_unit`` (a physical unit).
    Refused above :data:`MAX_MODULUS_PA` (no material is that stiff)."""
    value, unit = parse_modulus(modulus, what=what)
    unit = unit or canonical_unit(default_unit)
    if unit == NORMALIZED:
        raise TargetError(f"a {what} needs a physical unit ({', '.join(PASCALS_PER_UNIT)})")
    pascal = value * PASCALS_PER_UNIT[unit]
    if not pascal <= MAX_MODULUS_PA:
        raise TargetError(
            f"{what} {modulus!r} is {pascal:.3g} Pa, stiffer than any solid (diamond: about "
            f"1.2e12 Pa); check the number and its unit, e.g. 114GPa for Ti-6Al-4V"
        )
    return pascal


def list_builtin_targets() -> list[str]:
    """Names of the targets shipped with metainv (e.g. ``["bone3"]``)."""
    folder = _builtin_folder()
    return sorted(
        entry.name[: -len(".json")] for entry in folder.iterdir() if entry.name.endswith(".json")
    )


def load_target(
    source: str | Path,
    unit: str | None = None,
    base_modulus: float | str | None = None,
) -> np.ndarray:
    """Load a target stiffness and normalize it by the base modulus: returns ``C / E_b`` (6, 6).

    Args:
        source: a JSON, CSV or text file, or a built-in name (:func:`list_builtin_targets`).
        unit: the unit of the values (Pa, kPa, MPa, GPa or normalized, case-insensitive);
            ``None`` means the unit recorded in the source, else ``normalized``.
        base_modulus: the base material's Young's modulus ``E_b``, as ``"114GPa"`` or a number in
            ``unit``; ``None`` means the one recorded in the source. Required for a physical unit,
            refused for a normalized target.

    Raises:
        TargetError: with a one-line message for every kind of bad input.
    """
    return read_target(source, unit=unit, base_modulus=base_modulus).stiffness


def read_target(
    source: str | Path,
    unit: str | None = None,
    base_modulus: float | str | None = None,
) -> Target:
    """Like :func:`load_target` but also returns the unit, base modulus and description."""
    name, text, is_builtin = _read_source(source)
    return _target_from_text(name, text, is_builtin, unit, base_modulus)


def read_target_text(
    text: str,
    name: str = "target",
    unit: str | None = None,
    base_modulus: float | str | None = None,
) -> Target:
    """Like :func:`read_target` for the contents of a file (JSON, CSV or text) given as
    ``text``; ``name`` stands for the file in messages (``name.json`` is read as JSON)."""
    return _target_from_text(name, text.lstrip("\ufeff"), False, unit, base_modulus)


def _target_from_text(
    name: str,
    text: str,
    is_builtin: bool,
    unit: str | None,
    base_modulus: float | str | None,
) -> Target:
    if _looks_like_json(name, text):
        values, metadata = _parse_json(name, text)
    else:
        values, metadata = _parse_text(name, text), {}

    source_unit = metadata.get("unit")
    effective_unit = canonical_unit(unit if unit is not None else source_unit or NORMALIZED)
    if effective_unit == NORMALIZED:
        if base_modulus is not None:
            raise TargetError(
                f"a base modulus ({base_modulus}) was given but the target is already "
                "normalized; pass --unit Pa, kPa, MPa or GPa if its values are physical"
            )
        base_pa = None
        stiffness = values
    else:
        base = base_modulus if base_modulus is not None else metadata.get("base_modulus")
        if base is None:
            raise TargetError(
                f"the target is in {effective_unit}: pass --base-modulus, the base material's "
                "Young's modulus (e.g. --base-modulus 114GPa), to normalize it"
            )
        base_pa = modulus_in_pascal(base, default_unit=effective_unit)
        stiffness = values * (PASCALS_PER_UNIT[effective_unit] / base_pa)
    logger.debug("target %s: unit %s, base modulus %s Pa", name, effective_unit, base_pa)
    return Target(
        name=str(metadata.get("name") or (name if is_builtin else Path(name).stem)),
        stiffness=stiffness,
        unit=effective_unit,
        base_modulus_pa=base_pa,
        base_material=_optional_string(metadata.get("base_material")),
        description=_optional_string(metadata.get("description")),
        source=_optional_string(metadata.get("source")),
        scan=_scan_provenance(name, metadata.get("scan")),
    )


def _scan_provenance(name: str, record: Any) -> dict[str, Any] | None:
    """The provenance part of a target's ``scan`` record (None without one)."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise TargetError(f"{name}: 'scan' must be a JSON object (a scan record), got {record!r}")
    return {key: record[key] for key in SCAN_PROVENANCE_KEYS if key in record}


def _builtin_folder() -> Any:
    folder = resources.files(_BUILTIN_PACKAGE)
    for part in _BUILTIN_FOLDER:
        folder = folder / part
    return folder


def _read_source(source: str | Path) -> tuple[str, str, bool]:
    """``(display name, text, is_builtin)`` of a file path or built-in name."""
    path = Path(source)
    if path.is_dir():
        raise TargetError(f"{path} is a directory, not a target file")
    if path.is_file():
        try:
            return str(path), path.read_text(encoding="utf-8-sig"), False
        except UnicodeDecodeError:
            raise TargetError(f"cannot read {path}: not a UTF-8 text file") from None
        except OSError as error:
            raise TargetError(f"cannot read {path}: {error.strerror}") from None
    builtins = list_builtin_targets()
    name = str(source)
    if name.lower() in builtins:
        entry = _builtin_folder() / f"{name.lower()}.json"
        return name.lower(), entry.read_text(encoding="utf-8"), True
    if path.suffix or len(path.parts) > 1:
        raise TargetError(f"file not found: {path}")
    raise TargetError(
        f"unknown target {name!r}: no such file and no built-in target of that name "
        f"(built-in targets: {', '.join(builtins)})"
    )


def _looks_like_json(name: str, text: str) -> bool:
    return name.lower().endswith(".json") or text.lstrip().startswith(("{", "["))


def _parse_json(name: str, text: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Stiffness values (6, 6) in the source unit and the metadata of a JSON target."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise TargetError(
            f"invalid JSON in {name}: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    if not isinstance(document, dict):
        raise TargetError(
            f"{name}: expected a JSON object with key 'C' (6 rows of 6 numbers) or 'C21' "
            f"(21 numbers), got a JSON {type(document).__name__}"
        )
    unknown = [key for key in document if key not in ("C", "C21", *METADATA_KEYS)]
    if unknown:
        raise TargetError(
            f"{name}: unknown key {unknown[0]!r}; expected 'C' (6 rows of 6 numbers) or 'C21' "
            f"(21 numbers), optionally with {', '.join(METADATA_KEYS)}"
        )
    if "C" in document and "C21" in document:
        raise TargetError(f"{name}: give either 'C' or 'C21', not both")
    if "C" in document:
        values = _matrix_from_rows(name, document["C"])
    elif "C21" in document:
        values = _matrix_from_c21_list(name, document["C21"])
    else:
        found = ", ".join(repr(key) for key in document) or "none"
        raise TargetError(
            f"{name}: no stiffness found; expected key 'C' (6 rows of 6 numbers) or 'C21' "
            f"(21 numbers), found keys: {found}"
        )
    unit = document.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise TargetError(f"{name}: 'unit' must be a string such as \"GPa\", got {unit!r}")
    base_modulus = document.get("base_modulus")
    if base_modulus is not None and (
        isinstance(base_modulus, bool) or not isinstance(base_modulus, (int, float, str))
    ):
        raise TargetError(
            f"{name}: 'base_modulus' must be a number or a string such as \"114GPa\", "
            f"got {base_modulus!r}"
        )
    return values, {key: document[key] for key in METADATA_KEYS if key in document}


def _matrix_from_rows(name: str, rows: Any) -> np.ndarray:
    """Validate a JSON list of 6 lists of 6 numbers; returns (6, 6)."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise TargetError(f"{name}: 'C' must be a list of 6 rows, each a list of 6 numbers")
    _check_row_counts(name, [len(row) for row in rows])
    return np.array(
        [
            [
                _json_number(name, value, f"row {i + 1}, column {j + 1}")
                for j, value in enumerate(row)
            ]
            for i, row in enumerate(rows)
        ]
    )


def _matrix_from_c21_list(name: str, values: Any) -> np.ndarray:
    """Validate a JSON list of the 21 constants; returns the symmetric (6, 6)."""
    if not isinstance(values, list):
        raise TargetError(f"{name}: 'C21' must be a list of 21 numbers")
    if len(values) != 21:
        raise TargetError(f"{name}: expected 21 numbers in 'C21', got {len(values)}")
    numbers = np.array(
        [_json_number(name, value, f"'C21' entry {k + 1}") for k, value in enumerate(values)]
    )
    return matrix_from_c21(numbers)


def _json_number(name: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TargetError(f"{name}: {where}: {value!r} is not a number")
    try:
        return float(value)
    except OverflowError:
        raise TargetError(f"{name}: {where}: {value} is too large for a float") from None


def _parse_text(name: str, text: str) -> np.ndarray:
    """6 rows of 6 numbers separated by commas, semicolons or whitespace; ``#`` comments."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        content = line.split("#", 1)[0].strip()
        if content:
            rows.append([token for token in _TEXT_SEPARATORS.split(content) if token])
    if not rows:
        raise TargetError(f"{name}: empty file; expected 36 numbers in 6 rows of 6")
    _check_row_counts(name, [len(row) for row in rows])
    return np.array(
        [
            [_text_number(name, token, i, j) for j, token in enumerate(row)]
            for i, row in enumerate(rows)
        ]
    )


def _text_number(name: str, token: str, row: int, col: int) -> float:
    try:
        return float(token)
    except ValueError:
        raise TargetError(
            f"{name}: row {row + 1}, column {col + 1}: {token!r} is not a number"
        ) from None


def _check_row_counts(name: str, row_lengths: list[int]) -> None:
    """Exactly 6 rows of 6 entries, with a message that says what was found instead."""
    if len(row_lengths) != 6:
        plural = "row" if len(row_lengths) == 1 else "rows"
        hint = ""
        if sum(row_lengths) == 21:
            hint = " (for the 21 independent constants use a JSON file with key 'C21')"
        raise TargetError(
            f"{name}: expected 36 numbers in 6 rows of 6, got {len(row_lengths)} {plural}{hint}"
        )
    for i, length in enumerate(row_lengths):
        if length != 6:
            raise TargetError(
                f"{name}: expected 36 numbers in 6 rows of 6, row {i + 1} has {length} numbers"
            )


def _optional_string(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class TargetTable:
    """The rows of a file of many targets (batch design), each with its line and any problem.

    name: the file's name; stiffness: (T, 6, 6) normalized ``C / E_b`` (NaN for a row that
    could not be read); lines: (T,) the 1-based line of each row in the file (Parquet: the row
    number); problems: row index -> one-line reason the row cannot be designed.
    """

    name: str
    stiffness: np.ndarray
    lines: tuple[int, ...]
    problems: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def with_problems(self, found: dict[int, str]) -> TargetTable:
        """This table with ``found`` added (a row keeps its first problem)."""
        return TargetTable(self.name, self.stiffness, self.lines, {**found, **self.problems})

    @property
    def good(self) -> np.ndarray:
        """Indices of the rows without a problem."""
        return np.array([i for i in range(len(self)) if i not in self.problems], dtype=int)

    def checked(
        self, check: Callable[[np.ndarray], str | None], strict: bool = False
    ) -> TargetTable:
        """This table with ``check(row)`` (a one-line problem or None) applied to every good
        row. Raises :class:`metainv.errors.TargetError` listing every bad line when ``strict``
        and a row is bad, or when no row is left to design."""
        found = {int(i): problem for i in self.good if (problem := check(self.stiffness[i]))}
        table = self.with_problems(found)
        if table.problems and (strict or not len(table.good)):
            what = "every row" if not len(table.good) else f"{len(table.problems)} row(s)"
            raise TargetError(
                f"{self.name}: {what} cannot be designed"
                f"{' (--strict)' if strict and len(table.good) else ''}: "
                + "; ".join(table.messages())
            )
        if not len(table):
            raise TargetError(f"{self.name}: no target rows found")
        return table

    def messages(self) -> list[str]:
        """``"line N: reason"`` per bad row, in file order."""
        return [f"line {self.lines[i]}: {self.problems[i]}" for i in sorted(self.problems)]

    def statuses(self) -> list[str]:
        """``"ok"`` or ``"skipped: reason"`` per row."""
        return [
            "ok" if i not in self.problems else f"skipped: {self.problems[i]}"
            for i in range(len(self))
        ]


def read_target_table(
    source: str | Path,
    unit: str | None = None,
    base_modulus: float | str | None = None,
) -> TargetTable | None:
    """Many targets from a Parquet or CSV/text file of rows of 21 constants (spec order), or
    ``None`` when ``source`` holds a single 6x6 target instead.

    A text file is a table when its first line is a header of the names ``C11 ... C66`` (any
    order; the columns are taken by name) or another 21-column header, or when a row has 12 or
    more numbers (a single target's rows have 6). Rows are read one by one: a row with another
    count of values, a value that is not a number, or a matrix that is not finite is recorded
    as that line's problem (:attr:`TargetTable.problems`), and the other rows are kept. UTF-8
    with or without a byte-order mark. Parquet columns may be named ``C11 ... C66`` or be the
    first 21 numeric columns. A physical unit needs ``base_modulus`` as for a single target.
    """
    from metainv.tensors import C21_NAMES

    path = Path(source)
    if not path.is_file():
        return None
    if path.suffix.lower() == ".parquet":
        values, lines, problems = _parquet_rows(path, C21_NAMES)
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise TargetError(f"cannot read {path}: not a UTF-8 text file") from None
        parsed = _text_rows(path.name, text, C21_NAMES)
        if parsed is None:
            return None
        values, lines, problems = parsed
    effective_unit = canonical_unit(unit or NORMALIZED)
    if effective_unit != NORMALIZED:
        if base_modulus is None:
            raise TargetError(
                f"the targets are in {effective_unit}: pass --base-modulus (e.g. 114GPa)"
            )
        values = (
            values
            * PASCALS_PER_UNIT[effective_unit]
            / modulus_in_pascal(base_modulus, default_unit=effective_unit)
        )
    elif base_modulus is not None:
        raise TargetError(
            f"a base modulus ({base_modulus}) was given but the targets are normalized; pass "
            "--unit Pa, kPa, MPa or GPa if their values are physical"
        )
    with np.errstate(all="ignore"):
        stiffness = matrix_from_c21(values) if len(values) else np.zeros((0, 6, 6))
    for index in range(len(lines)):
        if index not in problems and not np.all(np.isfinite(stiffness[index])):
            problems[index] = "not a finite matrix (NaN or infinity)"
    return TargetTable(path.name, stiffness, tuple(lines), problems)


def _parquet_rows(
    path: Path, names: tuple[str, ...]
) -> tuple[np.ndarray, list[int], dict[int, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise TargetError(f"cannot read {path.name} as Parquet: {error}") from None
    columns = [n for n in names if n in table.column_names] or table.column_names[:21]
    if len(columns) != 21:
        raise TargetError(f"{path.name}: expected 21 columns C11..C66, found {len(columns)}")
    try:
        values = np.stack(
            [table.column(n).to_numpy(zero_copy_only=False).astype(float) for n in columns],
            axis=-1,
        )
    except (ValueError, TypeError, pa.ArrowException):
        raise TargetError(
            f"{path.name}: the columns {columns[0]}..{columns[-1]} must be numbers"
        ) from None
    return values.reshape(-1, 21), list(range(1, len(values) + 1)), {}


def _text_rows(
    name: str, text: str, names: tuple[str, ...]
) -> tuple[np.ndarray, list[int], dict[int, str]] | None:
    """Rows of a text table (see :func:`read_target_table`), or None for a single target."""
    if _looks_like_json(name, text):
        return None
    numbered = [
        (number, [token for token in _TEXT_SEPARATORS.split(content) if token])
        for number, line in enumerate(text.splitlines(), start=1)
        if (content := line.split("#", 1)[0].strip())
    ]
    if not numbered:
        return None
    order: list[int] | None = None
    first_line, first = numbered[0]
    header = [token.strip("\"'").upper() for token in first]
    if not any(_is_number(token) for token in header):
        known = {n.upper(): k for k, n in enumerate(names)}
        if len(header) == 21 and sorted(header) == sorted(known):
            order = [header.index(n.upper()) for n in names]
        elif len(header) == 21:
            order = list(range(21))
        elif any(token in known for token in header):
            missing = [n for n in names if n.upper() not in header]
            raise TargetError(
                f"{name}: line {first_line}: the header must name the 21 columns "
                f"{names[0]}..{names[-1]} (missing: {', '.join(missing[:4]) or 'none'}"
                f"{', ...' if len(missing) > 4 else ''}; {len(header)} columns found)"
            )
        else:
            return None  # not a table: read as a single target, with its own messages
        numbered = numbered[1:]
    elif max(len(tokens) for _, tokens in numbered) < 12:
        return None
    values = np.full((len(numbered), 21), np.nan)
    lines: list[int] = []
    problems: dict[int, str] = {}
    for index, (number, tokens) in enumerate(numbered):
        lines.append(number)
        if len(tokens) != 21:
            problems[index] = f"expected 21 numbers (C11..C66), got {len(tokens)}"
            continue
        bad = next((t for t in tokens if not _is_number(t)), None)
        if bad is not None:
            column = tokens.index(bad)
            label = names[order[column] if order else column] if column < 21 else column + 1
            problems[index] = f"{bad!r} is not a number (column {label})"
            continue
        row = [float(token) for token in tokens]
        values[index] = [row[k] for k in order] if order else row
    return values, lines, problems


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


#: A reachability factor from which a unit mix-up is suggested: 10 for too stiff means stiffer
#: than a lattice of density 1 (the solid itself, at rho_max = 0.1), as values in MPa or GPa
#: read as multiples of E_b are; a wrong --unit shifts a target by 1e3 or more.
UNIT_HINT_FACTOR = 10.0


def reachability_problem(
    target: np.ndarray,
    max_relative_density: float,
    family: str = "lattice",
    min_stiffness: float | None = None,
) -> str | None:
    r"""Why a normalized target (6, 6) cannot be designed, in one line, or None.

    Admissibility (:func:`metainv.tensors.check_stiffness`), then the Voigt bound
    ``C <= rho_max C_s`` of an isotropic solid (``E_s = 1``, ``nu_s = 0.3``): too stiff when
    ``lambda_max(bound^-1 C_t) > 1``; and, with ``min_stiffness``, too soft when even the
    target's stiffest direction ``lambda_max(C_s^-1 C_t)`` is below ``min_stiffness`` (the
    smallest value the family's softest designs reach). Each message gives the nearest
    achievable scale, and a factor of :data:`UNIT_HINT_FACTOR` or more asks whether ``--unit``
    was forgotten or wrong.
    """
    from metainv.tensors import check_stiffness, isotropic_stiffness

    report = check_stiffness(target)
    if not report.admissible:
        return "not an admissible stiffness: " + "; ".join(report.failures)
    solid = isotropic_stiffness(1.0, 0.3)
    bound = max_relative_density * solid
    ratio = float(np.max(np.linalg.eigvals(np.linalg.solve(bound, target)).real))
    if ratio > 1.0:
        return (
            f"stiffer than any {family} of relative density <= {max_relative_density} can be "
            f"(it exceeds the Voigt bound rho*C_solid by a factor {ratio:.2f}); the nearest "
            f"achievable scale is the target divided by at least {ratio:.2f}, e.g. a stiffer "
            f"base material (--base-modulus) or a softer target{_unit_hint(ratio)}"
        )
    if min_stiffness is not None:
        stiffest = ratio * max_relative_density
        if stiffest < min_stiffness:
            factor = min_stiffness / max(stiffest, np.finfo(float).tiny)
            return (
                f"softer than any {family} can be (its stiffest direction is {stiffest:.3g} "
                f"E_b, the softest designs reach {min_stiffness:.3g} E_b); the nearest "
                f"achievable scale is the target multiplied by at least {factor:.2f}, e.g. a "
                f"softer base material (--base-modulus) or a stiffer target{_unit_hint(factor)}"
            )
    return None


def _unit_hint(factor: float) -> str:
    if not factor >= UNIT_HINT_FACTOR:
        return ""
    return (
        "; a factor this large suggests a unit mix-up: did you forget --unit (Pa, kPa, MPa, "
        "GPa) with --base-modulus, or give the wrong one?"
    )


def check_reachable_target(
    target: np.ndarray,
    max_relative_density: float,
    family: str = "lattice",
    min_stiffness: float | None = None,
) -> None:
    """Raise :class:`metainv.errors.MetainvError` with :func:`reachability_problem`'s message
    (prefixed ``target is``) when the target cannot be designed."""
    from metainv.errors import MetainvError

    problem = reachability_problem(target, max_relative_density, family, min_stiffness)
    if problem is not None:
        raise MetainvError(f"target is {problem}")
