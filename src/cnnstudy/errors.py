"""Errors a user can act on. Stages print their message and exit 1, no traceback."""


class StudyError(Exception):
    """Base of every error whose message alone tells the user what to fix."""


class DataError(StudyError):
    """An input file is missing, corrupt or not what the stage expects."""


class FetchError(StudyError):
    """No mirror delivered a file whose checksum matched."""


class BrokenFileError(DataError, ValueError):
    """A file another stage wrote is not what it wrote (broken JSON, wrong encoding)."""


class OutputError(StudyError):
    """An output could not be written (disk full, read-only folder, no permission)."""


class InterruptedRun(StudyError):
    """The user pressed Ctrl-C or the process got SIGTERM; outputs were left as they were."""


# What to do about the OS errors a stage meets when writing, by errno name.
_OS_ADVICE = {
    "ENOSPC": "the disk is full: free some space (`dvc gc` removes unused cache entries) and run the stage again",
    "EDQUOT": "the disk quota is exhausted: free some space and run the stage again",
    "EFBIG": "the file is larger than this system allows (`ulimit -f`?)",
    "EROFS": "the folder is on a read-only file system: make it writable or work in a writable copy",
    "EACCES": "permission denied: make the folder writable for this user",
    "EPERM": "operation not permitted: check the folder's permissions and attributes",
    "ENOTDIR": "a path component is a file where a folder is expected: move it away",
    "EISDIR": "a folder stands where a file is expected: move it away",
    "EEXIST": "a file stands where a folder is expected: move it away",
    "ELOOP": "too many symbolic links (a symlink loop?): fix the link",
    "ENAMETOOLONG": "the path is too long for this file system",
    "EMFILE": "too many open files (`ulimit -n`)",
    "EIO": "input/output error: the disk or network file system is failing",
}


def describe_os_error(exc: OSError) -> str:
    """'<file>: <what happened>; <what to do>' for an OSError, in one line."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    what = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else "a file"
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    advice = _OS_ADVICE.get(name)
    return f"{where}: {what}" + (f"; {advice}" if advice else "")


def output_error(path, exc: OSError) -> OutputError:
    """An OutputError naming `path` (a write error from file.write carries no file name)."""
    if exc.filename is None:
        exc = OSError(exc.errno, exc.strerror, str(path))
    return OutputError(f"cannot write {describe_os_error(exc)}")
