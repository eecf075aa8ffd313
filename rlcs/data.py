"""Load and validate data rows from a local JSONL/JSON/parquet/CSV file or a hub dataset id.

Rows are checked before training starts; the first bad row raises ``DataError``
naming the source and the row (and, for JSONL, the line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlcs.tasks import example_id

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class DataError(ValueError):
    """A data source or row that cannot be used; the message names where."""


_VISUAL_FIELDS = ("images", "image", "videos", "video")


def _messages(row: BaseModel) -> list[Message]:
    """The row's messages when its contract has them (an extra ``messages`` column of a pretraining row is
    not a conversation, and is not read)."""
    return (getattr(row, "messages", None) or []) if "messages" in type(row).model_fields else []


def _visual_fields(row: BaseModel) -> list[str]:
    """The non-empty image or video fields of a row, including image parts inside its messages."""
    fields = {"images": getattr(row, "images", None), **(row.model_extra or {})}
    found = [name for name in _VISUAL_FIELDS if fields.get(name)]
    if any(part.get("type") in ("image", "video") for m in _messages(row)
           if isinstance(m.content, list) for part in m.content):
        found.append("messages (image parts)")
    return found


def _image_paths(row: BaseModel) -> list[str]:
    """The row's image paths in placeholder order: ``images``, or the ``image`` (or ``path``) of each image
    part of its messages. Local files only: a URL is not fetched, and fails as a file not found."""
    from_parts = [str(part.get("image") or part.get("path") or "")
                  for m in _messages(row) if isinstance(m.content, list)
                  for part in m.content if part.get("type") == "image"]
    if "messages" in type(row).model_fields and row.messages is not None and row.images:
        raise ValueError("a row with 'messages' gives its images as image parts of its messages "
                         "({'type': 'image', 'image': PATH}), not in 'images'")
    if any(not path for path in from_parts):
        raise ValueError("an image part of 'messages' names no file ('image' or 'path')")
    return from_parts or list(row.images or [])


def _has_list_content(row: BaseModel) -> bool:
    return any(isinstance(m.content, list) for m in _messages(row))


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]]  # a list: chat-template parts, e.g. {"type": "image", "image": "a.png"}


def _template_messages(messages: list[Message]) -> list[dict]:
    """Roles and contents for the chat template; image parts keep only their type (the files travel apart)."""
    return [{"role": m.role, "content": m.content if isinstance(m.content, str) else
             [{"type": "image"} if part.get("type") == "image" else part for part in m.content]} for m in messages]


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
        return self


class SFTRow(BaseModel):
    """An SFT trace: ``prompt`` + ``response``, or ``messages`` ending with the assistant turn; ``images``
    for an image-text model."""

    model_config = ConfigDict(extra="allow")
    prompt: str | None = None
    response: str | None = None
    messages: list[Message] | None = None
    images: list[str] | None = None

    @model_validator(mode="after")
    def _shape(self) -> SFTRow:
        if self.messages is not None:
            if not self.messages or self.messages[-1].role != "assistant":
                raise ValueError("'messages' must end with an assistant message")
        elif self.prompt is None or self.response is None:
            raise ValueError("needs 'prompt' and 'response', or 'messages'")
        return self

    def as_messages(self) -> list[dict]:
        if self.messages is not None:
            return _template_messages(self.messages)
        images = self.images or []
        parts = [{"type": "image"} for _ in images] + [{"type": "text", "text": self.prompt}]
        user = parts if images else self.prompt
        return [{"role": "user", "content": user}, {"role": "assistant", "content": self.response}]


@dataclass
class Conversation:
    """An SFT row ready for tokenization: template messages and the image files, checked, in order."""

    messages: list[dict]
    images: list[str] = field(default_factory=list)


def load_rows(source: str, split: str = "train") -> datasets.Dataset | FileRows:
    """Rows of a local file (by suffix) or a hub dataset (``split``): JSONL, JSON and CSV read here, value for
    value (``FileRows``), parquet (typed columns) and hub datasets through ``datasets``."""
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
        return _read_jsonl(path)
    if path.suffix == ".json":
        return _read_json(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:
        raise DataError(f"{source}: could not be read as {builder}: {exc}") from exc


class FileRows(list):
    """A local JSONL, JSON or CSV file's rows as plain dicts, each value as the file gave it. ``datasets`` would
    give every row of a column one Arrow type: JSON answers 5 and 5.5 came back as 5.0 and 5.5, and CSV's
    "007" as 7, which a verifier then scores as wrong. ``lines``: each row's line in the file."""

    def __init__(self, rows: list[dict], lines: list[int]):
        super().__init__(rows)
        self.lines = lines

    @property
    def column_names(self) -> list[str]:
        return list(dict.fromkeys(key for row in self for key in row))


def _read_jsonl(path: Path) -> FileRows:
    rows, lines = [], []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_number}: not valid JSON: {exc.msg}") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}:{line_number}: each line must be a JSON object")
            rows.append(value)
            lines.append(line_number)
    return FileRows(rows, lines)


def _read_json(path: Path) -> FileRows:
    """A JSON array of row objects, or JSON lines under a .json name (both of which ``datasets`` reads)."""
    text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return _read_jsonl(path)  # one object per line
    if isinstance(value, dict):  # a single object is a one-line JSON-lines file
        return FileRows([value], [1])
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise DataError(f"{path}: a .json data file must hold an array of row objects (or one object per line)")
    return FileRows(value, list(range(1, len(value) + 1)))  # rows, not lines: the array has no line per row


def _read_csv(path: Path) -> FileRows:
    """Every cell a string (an empty cell: absent); the row schemas convert numeric fields themselves."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark
        reader = csv.DictReader(handle)
        rows, lines = [], []
        ended = 1  # the header's last line
        for row in reader:
            start, ended = ended + 1, reader.line_num  # a quoted cell may span lines: name the first
            if None in row:
                raise DataError(f"{path}:{start}: more cells than the header's {len(reader.fieldnames)}")
            rows.append({key: value for key, value in row.items() if value not in ("", None)})
            lines.append(start)
    return FileRows(rows, lines)


def _row(rows, index: int) -> str:
    """How an error names a row: its number, and its line in the file where that differs."""
    line = rows.lines[index] if isinstance(rows, FileRows) else index + 1
    return f"row {index + 1}" + (f" (line {line})" if line != index + 1 else "")


def _validated(rows: datasets.Dataset | FileRows, schema: type[BaseModel], source: str,
               images: bool = False) -> list[tuple[BaseModel, list[str]]]:
    """Each row checked against ``schema``, with its image files (absolute paths, each opened and
    verified). ``images=False`` (a text-only model): a row with images is an error, never a row
    silently trained without them."""
    out = []
    for index, row in enumerate(rows):
        try:
            parsed = schema.model_validate(row)
            visual = _visual_fields(parsed)
            if not images and visual:
                raise ValueError(f"{visual[0]!r} is not supported by this recipe's model, a "
                                 "text-only one, and the row would be trained without it; use an image-text model "
                                 "(docs/vision.md), or remove the field or drop the row")
            unread = [name for name in visual if name not in ("images", "messages (image parts)")]
            if unread:  # an image-text model reads `images` and image parts; anything else would be lost
                raise ValueError(f"{unread[0]!r} is not read by rlcs (videos are not supported; give images as "
                                 "'images', a list of paths, or as image parts of 'messages')")
            if not images and _has_list_content(parsed):
                raise ValueError("message content as a list of parts needs an image-text model; for a text-only "
                                 "model give each message's content as a string")
            paths = [_checked_image(path, source) for path in _image_paths(parsed)] if images else []
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise DataError(f"{source}: {_row(rows, index)}: {problems}") from None
        except ValueError as exc:
            raise DataError(f"{source}: {_row(rows, index)}: {exc}") from None
        out.append((parsed, paths))
    return out


def _checked_image(path: str, source: str) -> str:
    """An image path resolved against the data file's folder (absolute paths stay), which must open as an
    image: a missing or unreadable file stops the run here, before any compute."""
    from PIL import Image, UnidentifiedImageError

    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = Path(source).expanduser().parent / resolved
    if not resolved.is_file():
        raise ValueError(f"image file not found: {path} (looked for {resolved})")
    try:
        with Image.open(resolved) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"image file {path} cannot be read as an image: {exc}") from None
    return str(resolved.resolve())


def load_examples(source: str, split: str = "train", images: bool = False) -> list[dict]:
    """RL/eval examples as plain dicts, each with a stable ``id``, unique in the source: the sampler keeps
    its evidence per id, so a second row with the same id would take the first one's place."""
    examples, row_of_id = [], {}
    for number, (row, paths) in enumerate(_validated(load_rows(source, split), ExampleRow, source, images), start=1):
        example = row.model_dump(exclude_none=True)
        if "id" not in example:
            text = row.prompt if row.prompt is not None else json.dumps(example["messages"], sort_keys=True)
            if row.images:  # the same question about different images is a different item
                text += "\x00" + "\x00".join(row.images)
            example["id"] = example_id(row.domain, text)
        if _has_list_content(row):  # image parts keep only their type; the files are in `images`
            example["messages"] = _template_messages(row.messages)
        if paths:
            example["images"] = paths
        if example["id"] in row_of_id:
            given = "the same id" if row.id is not None else "the same domain and prompt, so the same content id"
            raise DataError(f"{source}: rows {row_of_id[example['id']]} and {number} have {given} "
                            f"({example['id']!r}); ids must be unique: remove or rename one")
        row_of_id[example["id"]] = number
        examples.append(example)
    return examples


def load_sft_conversations(source: str, split: str = "train", images: bool = False) -> list[Conversation]:
    """SFT rows as conversations; ``images``: the model reads images (each file checked here)."""
    return [Conversation(row.as_messages(), paths)
            for row, paths in _validated(load_rows(source, split), SFTRow, source, images)]


class DocumentRow(BaseModel):
    """A pretraining document: its text (in the recipe's ``text_field``), and ``images`` for an image-caption
    document of an image-text model."""

    model_config = ConfigDict(extra="allow")
    images: list[str] | None = None


@dataclass
class Document:
    """A pretraining document ready for tokenization; ``images``: checked paths of an image-caption one."""

    text: str
    images: list[str] = field(default_factory=list)


def load_documents(source: str, text_field: str = "text", split: str = "train",
                   images: bool = False) -> list[Document]:
    """Pretraining documents; ``images``: the model reads images (each file checked here), else a row with
    images is an error naming it."""
    rows = load_rows(source, split)
    texts = _texts(rows, text_field, source)
    return [Document(text, paths) for text, (_, paths) in zip(texts, _validated(rows, DocumentRow, source, images))]


def load_texts(source: str, field: str = "text", split: str = "train") -> list[str]:
    return _texts(load_rows(source, split), field, source)


def _texts(rows: datasets.Dataset | FileRows, field: str, source: str) -> list[str]:
    """The ``field`` column, every value a string; a missing column or a non-string value names the row."""
    if field not in rows.column_names:
        raise DataError(f"{source}: no column {field!r}; columns are {rows.column_names}")
    texts = [row.get(field) for row in rows] if isinstance(rows, FileRows) else rows[field]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{source}: {_row(rows, index)}: {field!r} must be a string, got {type(text).__name__}")
    return texts


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
