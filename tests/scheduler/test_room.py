"""`Room` rows taken at different moments of a cycle stack into one, whatever host ports were held then."""

import numpy as np

from bigk.cluster.model import HostPort, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.filters import Filters
from bigk.scheduler.retry import Room

from .helpers import cpu_node


def test_rooms_taken_with_and_without_host_ports_stack_and_compare() -> None:
    state = ClusterState([cpu_node("c0"), cpu_node("c1")])
    filters = Filters(state, 0.0, 60.0)
    empty = Room.of(state, filters, np.array([0]))  # no pod holds a host port yet: no ports array
    req = PodRequest(1000, 1024, host_ports=(HostPort(8080),))
    state.allocate("default/web", req, state.placement_for(1, req, ()))
    busy = Room.of(state, filters, np.array([1]))
    assert empty.ports is None and busy.ports is not None
    both = Room.concat([empty, busy])
    assert list(both.ports) == [0, 1] and list(both.cpu) == [32_000, 31_000]
    state.release("default/web")  # the port and the CPU come free on c1; nothing changed on c0
    assert list(Room.of(state, filters, np.array([0, 1])).grown(both)) == [False, True]
