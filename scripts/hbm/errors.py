"""The two ways a step refuses to go on; each message says what is wrong and where."""


class InputError(ValueError):
    """Bad config or data."""


class ConvergenceError(RuntimeError):
    """A fit failed the convergence gate."""
