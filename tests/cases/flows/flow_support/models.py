"""User code a flow imports: only importing it (--flow-python) tells its schema."""

from pydantic import BaseModel


class Target(BaseModel):
    table: str
    mode: str = "append"
