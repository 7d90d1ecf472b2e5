"""datetime, date, time, timedelta, Path, UUID, Decimal, through both import styles."""

import datetime as dt
import decimal
import pathlib
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path, PurePosixPath
from uuid import UUID

from prefect import flow


@flow
def stdlib_types(
    when: datetime,
    day: date,
    at: time,
    span: timedelta,
    where: Path,
    ident: UUID,
    amount: Decimal,
):
    pass


@flow
def stdlib_defaults(
    when: datetime = datetime(2024, 1, 2, 3, 4, 5),
    aware: datetime = datetime(2024, 1, 2, tzinfo=timezone.utc),
    day: date = date(2024, 5, 6),
    at: time = time(12, 30),
    span: timedelta = timedelta(hours=1, minutes=30),
    where: Path = Path("/tmp/data"),
    pure: PurePosixPath = PurePosixPath("a/b"),
    ident: UUID = UUID("12345678-1234-5678-1234-567812345678"),
    amount: Decimal = Decimal("1.25"),
):
    pass


@flow
def module_attribute_types(
    when: dt.datetime = dt.datetime(2020, 1, 1),
    day: dt.date | None = None,
    span: dt.timedelta = dt.timedelta(seconds=5),
    where: pathlib.Path = pathlib.Path("x"),
    ident: uuid.UUID | None = None,
    amount: decimal.Decimal = decimal.Decimal(3),
):
    pass
