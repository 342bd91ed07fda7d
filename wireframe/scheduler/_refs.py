"""How the API names a job: by id, or by anything with an `id` (what `submit` returned)."""

from __future__ import annotations

from typing import Protocol, TypeAlias


class SupportsJobId(Protocol):
    """Anything that names a job by its `id`: Submitted, Duplicate, JobRecord, ChildHandle."""

    @property
    def id(self) -> int:
        """The job's id."""
        ...


JobRef: TypeAlias = int | SupportsJobId
"""A job given by id, or by what names it (`depends_on=`, `parent=`)."""


class SupportsJobType(Protocol):
    """Anything that names a job type by its `type` ("domain::name"): a JobType."""

    @property
    def type(self) -> str:
        """The job type's full name."""
        ...
