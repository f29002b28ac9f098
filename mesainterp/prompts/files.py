"""Prompt pairs from and to CSV and JSONL files.

Columns: `clean`, `corrupted`, `clean_answer`, `corrupted_answer`; the columns named
in `roles` hold a token position per row (negative counts from the end); every other
column is a label. With a tokenizer the four prompt columns are text; without one
they are token ids: a JSON list in JSONL, space-separated ints in CSV (an answer may
be a single int). Every refusal names the file, the line (and row) and the column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mesainterp.errors import ConfigError, allowed
from mesainterp.prompts.columns import LabelValue, token_ids
from mesainterp.prompts.errors import PromptError
from mesainterp.prompts.pairs import PromptPairs
from mesainterp.prompts.rows import PROMPT_COLUMNS, PromptRow, PromptText, as_text, tokenize_row
from mesainterp.prompts.tokenizer import check_tokenizer

__all__ = ["FORMATS", "load_prompts", "save_prompts"]

Format = Literal["csv", "jsonl"]
FORMATS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl"}

# A record as read: where it came from ("prompts.csv line 5 (row 3)") and its cells.
_Record = tuple[str, dict[str, Any]]


def _format(path: Path) -> Format:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError("path", f"{path.name}: unknown file type", allowed(sorted(FORMATS)))
    return fmt


def _csv_records(path: Path) -> Iterator[_Record]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        _check_header(path, list(reader.fieldnames or []))
        for row, cells in enumerate(reader):
            where = f"{path.name} line {reader.line_num} (row {row})"
            for name, value in cells.items():
                if name is None or value is None:
                    raise PromptError(where, None, "the number of cells differs from the header")
            yield where, dict(cells)


def _jsonl_records(path: Path) -> Iterator[_Record]:
    columns: list[str] | None = None
    row = 0
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {line_no} (row {row})"
            try:
                cells = json.loads(line)
            except json.JSONDecodeError as err:
                raise PromptError(where, None, f"not JSON: {err.msg}") from None
            if not isinstance(cells, dict):
                raise PromptError(
                    where, None, f"expected a JSON object, got {type(cells).__name__}"
                )
            if columns is None:
                columns = list(cells)
                _check_header(path, columns, where=where)
            missing = [c for c in columns if c not in cells]
            extra = [c for c in cells if c not in columns]
            if missing or extra:
                column = (missing or extra)[0]
                problem = "missing" if missing else "not in the first row"
                raise PromptError(where, column, f"{problem} (every row has the same columns)")
            yield where, cells
            row += 1


def _check_header(path: Path, columns: list[str], *, where: str | None = None) -> None:
    for name in PROMPT_COLUMNS:
        if name not in columns:
            raise PromptError(
                where or f"{path.name} line 1",
                name,
                f"missing column (have {allowed(columns) or 'no columns'})",
            )


def _parse_ids(where: str, column: str, value: Any) -> tuple[int, ...]:
    """Token ids from a string of space-separated ints (CSV), or a JSON list or int."""
    if isinstance(value, str):
        parts = value.split()
        if not all(p.lstrip("-").isdigit() for p in parts):
            raise PromptError(
                where,
                column,
                f"expected space-separated token ids, got {value!r} (text needs tokenizer=...)",
            )
        return tuple(int(p) for p in parts)
    return token_ids(value, where=where, column=column)


def _parse_role(where: str, column: str, value: Any) -> int:
    text = str(value).strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lstrip("-").isdigit():
        return int(text)
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    raise PromptError(where, column, f"expected a token position (an int), got {value!r}")


def _label_value(value: Any) -> LabelValue:
    """A CSV cell as the int or float it spells, else the text; JSON values as they are."""
    if not isinstance(value, str):
        return value if isinstance(value, str | int | float | bool) or value is None else str(value)
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def load_prompts(
    path: str | Path,
    *,
    tokenizer: Any | None = None,
    roles: Sequence[str] = (),
    add_special_tokens: bool = True,
    vocab_size: int | None = None,
) -> PromptPairs:
    """Read prompt pairs from a .csv or .jsonl file (columns: see the module docstring).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.jsonl"
    >>> _ = path.write_text(
    ...     '{"clean": [5, 1, 2], "corrupted": [6, 1, 2], "clean_answer": 5, '
    ...     '"corrupted_answer": 6, "S": 0, "template": "a"}\\n'
    ... )
    >>> pairs = load_prompts(path, roles=["S"])
    >>> pairs.position_labels, pairs.labels["template"]
    (('S', '1', '2'), ('a',))
    """
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise ConfigError("path", f"{path}: no such file")
    if isinstance(roles, str):
        raise ConfigError("roles", f"got the string {roles!r}", "a list of column names")
    if tokenizer is not None:
        check_tokenizer(tokenizer)
    records = list(_csv_records(path) if fmt == "csv" else _jsonl_records(path))
    if not records:
        raise PromptError(path.name, None, "no rows")
    columns = list(records[0][1])
    unknown_roles = [r for r in roles if r not in columns]
    if unknown_roles:
        raise PromptError(
            path.name, unknown_roles[0], f"role column missing (have {allowed(columns)})"
        )
    label_names = [c for c in columns if c not in PROMPT_COLUMNS and c not in roles]
    rows: list[PromptRow] = []
    texts: list[PromptText] = []
    for where, cells in records:
        if tokenizer is None:
            ids = {c: _parse_ids(where, c, cells[c]) for c in PROMPT_COLUMNS}
            rows.append(PromptRow(**ids, where=where))
        else:
            text = PromptText(
                **{c: as_text(cells[c], where=where, column=c) for c in PROMPT_COLUMNS}
            )
            texts.append(text)
            rows.append(
                tokenize_row(text, tokenizer, where=where, add_special_tokens=add_special_tokens)
            )
    return PromptPairs.from_rows(
        rows,
        tokenizer=tokenizer,
        labels={name: [_label_value(cells[name]) for _, cells in records] for name in label_names},
        roles={name: [_parse_role(w, name, cells[name]) for w, cells in records] for name in roles},
        texts=texts or None,
        vocab_size=vocab_size,
    )


def _cells(pairs: PromptPairs, i: int) -> dict[str, Any]:
    """Row `i` as a record: text if the pairs came from text, else token id lists."""
    row: Mapping[str, Any]
    if pairs.texts is not None:
        text = pairs.texts[i]
        row = {c: getattr(text, c) for c in PROMPT_COLUMNS}
    else:
        row = {c: list(pairs.rows[i].column(c)) for c in PROMPT_COLUMNS}
    out = dict(row)
    out.update({name: positions[i] for name, positions in pairs.roles.items()})
    out.update({name: values[i] for name, values in pairs.labels.items()})
    return out


def save_prompts(pairs: PromptPairs, path: str | Path) -> Path:
    """Write `pairs` as .csv or .jsonl, as text if they came from text, else as token ids.

    `load_prompts(path, roles=list(pairs.roles), tokenizer=...)` reads back the same pairs.

    >>> import tempfile, pathlib
    >>> pairs = PromptPairs.from_token_ids([[5, 1, 2]], [[6, 1, 2]], [[5, 1]], [6], roles={"S": [0]})
    >>> path = save_prompts(pairs, pathlib.Path(tempfile.mkdtemp()) / "pairs.csv")
    >>> print(path.read_text().strip())
    clean,corrupted,clean_answer,corrupted_answer,S
    5 1 2,6 1 2,5 1,6,0
    >>> load_prompts(path, roles=["S"]).rows == pairs.rows
    True
    """
    path = Path(path)
    fmt = _format(path)
    records = [_cells(pairs, i) for i in range(len(pairs))]
    if fmt == "jsonl":
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        for record in records:
            writer.writerow(
                {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in record.items()}
            )
    return path
