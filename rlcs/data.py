"""Load and validate data rows from a local JSONL/JSON/parquet/CSV file or a hub dataset id.

Rows are checked before training starts; the first bad row raises ``DataError``
naming the source and the row (and, for JSONL, the line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import datasets
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlcs.tasks import example_id

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class DataError(ValueError):
    """A data source or row that cannot be used; the message names where."""


_VISUAL_FIELDS = ("images", "image", "videos", "video")


def _no_images(row: BaseModel) -> None:
    """Vision-language training is not built yet: an image row is an error, never a silent text-only row."""
    fields = {"images": getattr(row, "images", None), **(row.model_extra or {})}
    for name in _VISUAL_FIELDS:
        if fields.get(name):
            raise ValueError(f"{name!r} is not supported yet: rlcs trains text-only models, and this row would "
                             "be trained without it; remove the field or drop the row")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ExampleRow(BaseModel):
    """The RL / evaluation example contract (see DESIGN.md)."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    domain: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[Message] | None = None
    images: list[str] | None = None
    answer: Any
    difficulty: float | None = Field(None, ge=0, le=1)
    level: int | None = None

    @model_validator(mode="after")
    def _needs_prompt(self) -> ExampleRow:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("exactly one of 'prompt' or 'messages' is required")
        if self.answer is None:
            raise ValueError("'answer' must not be null")
        _no_images(self)
        return self


class SFTRow(BaseModel):
    """An SFT trace: ``prompt`` + ``response``, or ``messages`` ending with the assistant turn."""

    model_config = ConfigDict(extra="allow")
    prompt: str | None = None
    response: str | None = None
    messages: list[Message] | None = None

    @model_validator(mode="after")
    def _shape(self) -> SFTRow:
        _no_images(self)
        if self.messages is not None:
            if not self.messages or self.messages[-1].role != "assistant":
                raise ValueError("'messages' must end with an assistant message")
        elif self.prompt is None or self.response is None:
            raise ValueError("needs 'prompt' and 'response', or 'messages'")
        return self

    def as_messages(self) -> list[dict]:
        if self.messages is not None:
            return [{"role": m.role, "content": m.content} for m in self.messages]
        return [{"role": "user", "content": self.prompt}, {"role": "assistant", "content": self.response}]


def load_rows(source: str, split: str = "train") -> datasets.Dataset:
    """Rows of a local file (by suffix) or a hub dataset (``split``), as a ``datasets.Dataset``."""
    path = Path(source).expanduser()
    builder = _BUILDERS.get(path.suffix)
    if builder is None and not path.exists():
        try:
            return datasets.load_dataset(source, split=split)
        except Exception as exc:  # hub errors are varied; name the source either way
            raise DataError(f"{source}: could not load as a hub dataset: {exc}") from exc
    if not path.is_file():
        raise DataError(f"{source}: file not found")
    if builder is None:
        raise DataError(f"{source}: unsupported file type; use one of {sorted(_BUILDERS)}")
    if path.suffix == ".jsonl":
        _check_jsonl(path)
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:
        raise DataError(f"{source}: could not be read as {builder}: {exc}") from exc


def _check_jsonl(path: Path) -> None:
    """datasets' JSON errors name no line; find the bad one ourselves."""
    with path.open() as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_number}: not valid JSON: {exc.msg}") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}:{line_number}: each line must be a JSON object")


def _validated(rows: datasets.Dataset, schema: type[BaseModel], source: str) -> list[BaseModel]:
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(schema.model_validate(row))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise DataError(f"{source}: row {index + 1}: {problems}") from None
    return out


def load_examples(source: str, split: str = "train") -> list[dict]:
    """RL/eval examples as plain dicts, each with a stable ``id``, unique in the source: the sampler keeps
    its evidence per id, so a second row with the same id would take the first one's place."""
    examples, row_of_id = [], {}
    for number, row in enumerate(_validated(load_rows(source, split), ExampleRow, source), start=1):
        example = row.model_dump(exclude_none=True)
        if "id" not in example:
            text = row.prompt if row.prompt is not None else json.dumps(example["messages"], sort_keys=True)
            example["id"] = example_id(row.domain, text)
        if example["id"] in row_of_id:
            given = "the same id" if row.id is not None else "the same domain and prompt, so the same content id"
            raise DataError(f"{source}: rows {row_of_id[example['id']]} and {number} have {given} "
                            f"({example['id']!r}); ids must be unique: remove or rename one")
        row_of_id[example["id"]] = number
        examples.append(example)
    return examples


def load_sft_conversations(source: str, split: str = "train") -> list[list[dict]]:
    return [row.as_messages() for row in _validated(load_rows(source, split), SFTRow, source)]


def load_texts(source: str, field: str = "text", split: str = "train") -> list[str]:
    rows = load_rows(source, split)
    if field not in rows.column_names:
        raise DataError(f"{source}: no column {field!r}; columns are {rows.column_names}")
    texts = rows[field]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{source}: row {index + 1}: {field!r} must be a string, got {type(text).__name__}")
    return texts


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
