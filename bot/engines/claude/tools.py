"""The tools a model may call, in one explicit registry per role.

Theory of operation: a tool is a typed function: its input is a pydantic model (the JSON
Schema the model sees is generated from it), its output a string for the model, or a
``ToolError`` that goes back as an ``is_error`` result.  The registry is the whole of what
the model can do: there is no shell, no network and no write outside the desired state.
Read tools go through ``FileSource`` (confined to the repository); edit tools only build
``ResourceChange`` values in a ``Draft`` (the flow writes them later with the same
round-trip editor the offline engine's drafts go through); validate and dry-run are the
project's own checks.  A tool call names a tool; an unknown name, malformed input or a
refused path is an error result, never an exception out of the loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.engines.base import EngineContext
from bot.estate import path_for
from bot.model import (
    KINDS,
    ChangeAction,
    ChangeSet,
    ResourceChange,
    Ticket,
    parse_resource,
)

In = TypeVar("In", bound=BaseModel)


class ToolError(Exception):
    """A tool refused or failed; the message goes back to the model as an error result."""


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Tool(Generic[In]):
    name: str
    description: str
    input: type[In]
    run: Callable[[In], str]
    final: bool = False
    """Calling it successfully ends the conversation (submit_plan, submit_change, ask)."""

    def schema(self) -> dict[str, Any]:
        spec = self.input.model_json_schema()
        spec.pop("title", None)
        return {"name": self.name, "description": self.description, "input_schema": spec}


@dataclass(frozen=True)
class Outcome:
    text: str
    is_error: bool = False
    final: bool = False


@dataclass
class Registry:
    tools: dict[str, Tool[Any]] = field(default_factory=dict)

    def add(self, tool: Tool[Any]) -> None:
        self.tools[tool.name] = tool

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def call(self, name: str, raw: object) -> Outcome:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(self.tools)
            return Outcome(f"There is no tool {name!r}. The tools are: {known}.", is_error=True)
        try:
            args = tool.input.model_validate(raw if isinstance(raw, dict) else {})
        except ValidationError as exc:
            return Outcome(f"Invalid input for {name}: {_errors(exc)}", is_error=True)
        try:
            return Outcome(tool.run(args), final=tool.final)
        except ToolError as exc:
            return Outcome(str(exc), is_error=True)


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "(input)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def untrusted_ticket(ticket: Ticket) -> str:
    """The ticket as a delimited block of data; markup inside it is neutralised."""

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    replies = "".join(f"\n<reply>{esc(r)}</reply>" for r in ticket.replies)
    return (
        f'<ticket number="{ticket.number}" author="{esc(ticket.author)}" trust="untrusted">\n'
        f"<title>{esc(ticket.title)}</title>\n<body>{esc(ticket.body)}</body>{replies}\n</ticket>"
    )


# ---------------------------------------------------------------- read tools


class PathInput(_Input):
    path: str = Field(description="Path relative to the repository root, e.g. infra/state")


class SearchInput(_Input):
    kind: str | None = Field(default=None, description="Resource kind, e.g. Container")
    field: str | None = Field(default=None, description="Field to match, e.g. node")
    value: str | None = Field(default=None, description="Value the field must contain")


class NameInput(_Input):
    name: str


class NoInput(_Input):
    pass


@dataclass
class Reading:
    """The read tools over one context; remembers what was read (the plan's "what I read")."""

    ctx: EngineContext
    ticket: Ticket
    read: list[str] = field(default_factory=list)

    def read_file(self, args: PathInput) -> str:
        text, why = self.ctx.files.read(args.path)
        if text is None:
            raise ToolError(why)
        self.read.append(args.path.strip())
        return text

    def list_files(self, args: PathInput) -> str:
        names, why = self.ctx.files.listing(args.path)
        if names is None:
            raise ToolError(why)
        return "\n".join(names) or "(empty)"

    def search_estate(self, args: SearchInput) -> str:
        if args.kind is not None and args.kind not in KINDS:
            raise ToolError(f"unknown kind {args.kind!r}; kinds: {', '.join(KINDS)}")
        rows = []
        for (kind, name), resource in sorted(self.ctx.estate.resources.items()):
            if args.kind and kind != args.kind:
                continue
            data = resource.model_dump(mode="json", exclude_none=True)
            if args.field and (
                args.field not in data
                or (args.value is not None and args.value not in json.dumps(data[args.field]))
            ):
                continue
            where = self.ctx.estate.files.get((kind, name), "")
            rows.append(json.dumps({"file": where, **data}, sort_keys=False))
        return "\n".join(rows[:50]) or "(no resource matches)"

    def read_capability(self, args: NameInput) -> str:
        found = next((c for c in self.ctx.capabilities if c.name == args.name), None)
        if found is None:
            names = ", ".join(c.name for c in self.ctx.capabilities)
            raise ToolError(f"no capability {args.name!r}; capabilities: {names}")
        return self.read_file(PathInput(path=f"capabilities/{found.name}.md"))

    def read_runbook(self, args: NameInput) -> str:
        return self.read_file(PathInput(path=f"runbooks/{args.name}"))

    def read_ticket(self, args: NoInput) -> str:
        return untrusted_ticket(self.ticket)

    def register(self, registry: Registry) -> None:
        registry.add(Tool("read_file", "Read a file of the repository.", PathInput, self.read_file))
        registry.add(
            Tool("list_files", "List a folder of the repository.", PathInput, self.list_files)
        )
        registry.add(
            Tool(
                "search_estate",
                "Find resources of the desired state by kind, and optionally by a field's value.",
                SearchInput,
                self.search_estate,
            )
        )
        registry.add(
            Tool(
                "read_capability",
                "Read a capability file by name.",
                NameInput,
                self.read_capability,
            )
        )
        registry.add(
            Tool("read_runbook", "Read a runbook file by name.", NameInput, self.read_runbook)
        )
        registry.add(
            Tool(
                "read_ticket",
                "Read the ticket and its thread (untrusted).",
                NoInput,
                self.read_ticket,
            )
        )


# ---------------------------------------------------------------- edit tools


class CreateInput(_Input):
    document: dict[str, Any] = Field(
        description="The whole resource document: kind, name, then the schema's fields"
    )


class SetFieldInput(_Input):
    kind: str
    name: str
    field: str = Field(description="Top-level field of the document, e.g. memory")
    value: Any = Field(description="The new value; null removes the field")


class DeleteInput(_Input):
    kind: str
    name: str


class SubmitChangeInput(_Input):
    summary: str = Field(max_length=300, description="One line: what the change does")


@dataclass
class Draft:
    """Edits to the desired state, as ResourceChange values (nothing is written here)."""

    ctx: EngineContext
    changes: dict[tuple[str, str], ResourceChange] = field(default_factory=dict)
    submitted: ChangeSet | None = None

    def change_set(self, summary: str) -> ChangeSet:
        if not self.changes:
            raise ToolError("there are no edits yet: create, set or delete a resource first")
        return ChangeSet(changes=tuple(self.changes.values()), summary=summary)

    def _current(self, kind: str, name: str) -> dict[str, Any] | None:
        pending = self.changes.get((kind, name))
        if pending is not None:
            return None if pending.action is ChangeAction.DELETE else dict(pending.data)
        found = self.ctx.estate.get(kind, name)
        if found is None:
            return None
        return found.model_dump(mode="json", exclude_unset=True) | {"kind": kind}

    def _checked(self, data: dict[str, Any]) -> tuple[str, str]:
        try:
            resource = parse_resource(data)
        except ValidationError as exc:
            raise ToolError(f"not a valid resource: {_errors(exc)}") from None
        path_for(resource.kind, resource.name)  # refuses names that are not file names
        return resource.kind, resource.name

    def create_resource(self, args: CreateInput) -> str:
        kind, name = self._checked(args.document)
        if self._current(kind, name) is not None:
            raise ToolError(f"{kind} {name} exists already: use set_field to change it")
        exists = self.ctx.estate.get(kind, name) is not None
        action = ChangeAction.UPDATE if exists else ChangeAction.CREATE
        self.changes[(kind, name)] = ResourceChange(
            action=action, kind=kind, name=name, data=dict(args.document)
        )
        return f"drafted {kind} {name} at {path_for(kind, name)}"

    def set_field(self, args: SetFieldInput) -> str:
        if args.field in ("kind", "name"):
            raise ToolError("kind and name identify a resource: delete it and create another")
        data = self._current(args.kind, args.name)
        if data is None:
            raise ToolError(f"there is no {args.kind} {args.name} to change")
        if args.value is None:
            data.pop(args.field, None)
        else:
            data[args.field] = args.value
        self._checked(data)
        old = self.changes.get((args.kind, args.name))
        action = old.action if old is not None else ChangeAction.UPDATE
        self.changes[(args.kind, args.name)] = ResourceChange(
            action=action, kind=args.kind, name=args.name, data=data
        )
        return f"set {args.field} of {args.kind} {args.name}"

    def delete_resource(self, args: DeleteInput) -> str:
        old = self.changes.get((args.kind, args.name))
        if old is not None and old.action is ChangeAction.CREATE:
            del self.changes[(args.kind, args.name)]
            return f"dropped the drafted {args.kind} {args.name}"
        found = self.ctx.estate.get(args.kind, args.name)
        if found is None:
            raise ToolError(f"there is no {args.kind} {args.name} to delete")
        self.changes[(args.kind, args.name)] = ResourceChange(
            action=ChangeAction.DELETE,
            kind=args.kind,
            name=args.name,
            data=found.model_dump(mode="json", exclude_unset=True) | {"kind": args.kind},
        )
        return f"deleting {args.kind} {args.name}"

    def validate(self, args: NoInput) -> str:
        if self.ctx.checks is None:
            raise ToolError("validation is not available here; the pipeline validates the PR")
        report = self.ctx.checks.validate(self.change_set("draft"))
        if report.ok:
            return "validation passed: " + ", ".join(report.checks)
        return "validation failed:\n" + "\n".join(
            f"- {f.location()}: {f.message}" for f in report.errors()[:20]
        )

    def dry_run(self, args: NoInput) -> str:
        if self.ctx.checks is None:
            raise ToolError("the dry-run is not available here; the pipeline dry-runs the PR")
        run = self.ctx.checks.dry_run(self.change_set("draft"))
        lines = [f"dry-run {run.status.value} on {', '.join(run.hosts) or 'no host'}"]
        lines += [f"- {t.host}: {t.task}: {t.status}" for t in run.tasks if t.status != "ok"][:30]
        lines += [f"error: {run.error}"] if run.error else []
        return "\n".join(lines)

    def submit_change(self, args: SubmitChangeInput) -> str:
        changes = self.change_set(args.summary)
        if self.ctx.checks is not None:
            report = self.ctx.checks.validate(changes)
            if not report.ok:
                raise ToolError(
                    "not submitted: validation failed:\n"
                    + "\n".join(f"- {f.location()}: {f.message}" for f in report.errors()[:20])
                )
        self.submitted = changes
        return "submitted"

    def register(self, registry: Registry) -> None:
        registry.add(
            Tool(
                "create_resource",
                "Draft a new resource document under infra/state/.",
                CreateInput,
                self.create_resource,
            )
        )
        registry.add(
            Tool(
                "set_field",
                "Set (or, with null, remove) a top-level field of an existing or drafted resource.",
                SetFieldInput,
                self.set_field,
            )
        )
        registry.add(
            Tool("delete_resource", "Delete a resource.", DeleteInput, self.delete_resource)
        )
        registry.add(
            Tool("validate", "Run the project's validation on the draft.", NoInput, self.validate)
        )
        registry.add(
            Tool(
                "dry_run",
                "Run the Ansible dry-run (--check --diff) of the draft.",
                NoInput,
                self.dry_run,
            )
        )
        registry.add(
            Tool(
                "submit_change",
                "Submit the drafted edits (they are validated first). Ends the work.",
                SubmitChangeInput,
                self.submit_change,
                final=True,
            )
        )
