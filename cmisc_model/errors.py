"""Errors caused by input (files, params, records) rather than by bugs.

The CLI prints these as one line and exits with status 2; anything else is a
bug and keeps its traceback.
"""

from cmisc_model.config import ParamsError
from cmisc_model.schemas import SchemaError, UnwritableError


class CmiscError(Exception):
    """Bad input: the message names the file, page or record."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    CmiscError,
    ParamsError,
    SchemaError,
    UnwritableError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
)
