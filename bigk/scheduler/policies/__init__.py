"""Built-in placement policies; importing this package registers them by name."""

from bigk.scheduler.policies import bestfit, binpack, spread  # noqa: F401
