"""The CLI's one error: a problem the user fixes (exit status 2); the message says how."""


class CliError(Exception):
    pass
