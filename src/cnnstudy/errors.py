"""Errors a user can act on. Stages print their message and exit 1, no traceback."""


class StudyError(Exception):
    """Base of every error whose message alone tells the user what to fix."""


class DataError(StudyError):
    """An input file is missing, corrupt or not what the stage expects."""


class FetchError(StudyError):
    """No mirror delivered a file whose checksum matched."""
