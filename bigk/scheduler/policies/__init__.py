"""Built-in placement policies; importing this package registers them by name."""

from bigk.scheduler.policies import (  # noqa: F401
    bestfit,
    bigk_policy,
    binpack,
    dotprod,
    fgd,
    gpuclustering,
    gpupacking,
    random_fit,
    spread,
)
