"""The one exception tree of satx: library code raises these, CLIs turn them into exit codes."""


class SatxError(Exception):
    """Root of every error satx raises on purpose; the message is meant for a person."""


class InputError(SatxError):
    """The user's input (a folder, CSV, flag or file) cannot be used as given."""


class OutputExistsError(SatxError):
    """The output already holds a complete (or foreign) result and --overwrite was not given."""


class RecordsError(SatxError):
    """A records folder is inconsistent: manifest and shards disagree, or a shard is damaged."""


class StorageError(SatxError):
    """A local or gs:// read/write failed after retries."""
