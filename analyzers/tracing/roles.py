"""The role of every operation of a traced call, decided from the graph alone.

Each tensor of the graph is a *signal* (it depends on the values of the call's inputs and can
carry relevance), *held* (it depends on them but is held constant: a mask, a normalising
standard deviation, CP-LRP's attention weights) or *constant* (weights, shapes). An
operation needs a rule only where it is *active*: its output is a signal that reaches the
call's output through inputs that carry relevance. Active operations get their role from
their entry in :mod:`analyzers.tracing.operations` and from their operands:

* a contraction (``MatMul``, ``Einsum``, a convolution) of a signal with a constant is a
  weight layer: the epsilon rule, at the end of its bias (where a bias follows);
* a product of two signals (``Q K^T``, ``A V``, ``x * y``) is bilinear: under AttnLRP each
  factor gets an equal share (Achtibat et al. 2024, the uniform rule); under CP-LRP the
  factor that is an attention weight (a softmax output) is held constant, so all relevance
  flows through the other (Ali et al. 2022);
* ``Softmax`` keeps its gradient: gradient times input at a softmax is AttnLRP's rule
  ``R_in = x * (R - s * sum(R))``;
* ``Rsqrt`` / ``Sqrt`` / ``Reciprocal`` of a second moment (``Mean`` of a square: a standard
  deviation or norm) are held constant, so LayerNormalization's centring stays linear;
* an elementwise function of one tensor (``tanh``, GELU's ``x * (1 + erf(x))``, a logit
  soft-cap ``c * tanh(x / c)``) gets the identity rule as a whole (a *region*: the
  elementwise operations between the tensor and the nonlinearities);
* everything else active moves, sums or pools values: relevance by its gradient.

An active operation with no entry is *unsupported*: the caller refuses the layer, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from analyzers.tracing.operations import Operation, operation, register_operation
from analyzers.tracing.operations import registered_operations as registered_operations
from analyzers.tracing.trace import Trace

#: AttnLRP (Achtibat et al. 2024): each factor of a bilinear product gets half.
ATTNLRP = "attnlrp"
#: CP-LRP (Ali et al. 2022): attention weights held constant.
CP_LRP = "cp_lrp"
CONVENTIONS = (ATTNLRP, CP_LRP)

_CONST, _HELD, _SIGNAL = 0, 1, 2
_ELEMENTWISE = ("affine", "scale", "divide", "elementwise", "statistic")
#: Operations whose output is a square-like quantity (a second moment is a reduction of one).
_SQUARES = ("Square", "SquaredDifference", "Pow", "Abs")
#: Operations that end a weight layer: its bias.
_BIAS = ("BiasAdd", "AddV2", "Add")


@dataclass(frozen=True)
class UnsupportedOperation:
    """An active operation without a rule: node name, operation type and why (empty: its
    type has no entry)."""

    node: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class Region:
    """An elementwise function of one tensor: identity rule from each exit to the source."""

    source: str
    exits: tuple[str, ...]
    nodes: frozenset[str]


@dataclass(frozen=True)
class Plan:
    """What the rewrite must do to a traced graph (tensor names are ``node:index``).

    Parameters
    ----------
    convention
        ``"attnlrp"`` or ``"cp_lrp"``.
    epsilon
        Tensors ending a weight layer (the epsilon rule applies there).
    shares
        ``(node, input slot, factor)``: the factor of a product that gets ``factor`` of its
        relevance.
    stops
        Tensors held constant (statistics, CP-LRP's attention weights).
    regions
        Elementwise functions of one tensor (the identity rule).
    relevant_inputs
        For each input of the trace, whether relevance reaches it.
    unsupported
        Active operations without a rule (empty where the call is supported).
    roles
        Node name -> role, for every active operation (``weight``, ``product``, ``softmax``,
        ``elementwise``, ``linear``) and every held one (``statistic``,
        ``attention weights``, ``held factor``).
    """

    convention: str
    epsilon: tuple[str, ...]
    shares: tuple[tuple[str, int, float], ...]
    stops: tuple[str, ...]
    regions: tuple[Region, ...]
    relevant_inputs: tuple[bool, ...]
    unsupported: tuple[UnsupportedOperation, ...]
    roles: dict[str, str] = field(repr=False)

    def nodes_with(self, role: str) -> list[str]:
        """Names of the nodes of ``role``, in graph order."""
        return [name for name, r in self.roles.items() if r == role]


def _tensor(ref: str) -> str:
    return ref if ":" in ref else f"{ref}:0"


def _node(tensor: str) -> str:
    return tensor.rsplit(":", 1)[0]


class _Graph:
    """The traced graph as nodes, data inputs, consumers and outputs, in topological order."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.nodes = {node.name: node for node in trace.graph_def.node}
        self.inputs = {name: [_tensor(i) for i in node.input if not i.startswith("^")]
                       for name, node in self.nodes.items()}
        self.outputs: dict[str, list[str]] = {name: [] for name in self.nodes}
        for tensor in trace.tensors:
            if _node(tensor) in self.outputs:
                self.outputs[_node(tensor)].append(tensor)
        for outs in self.outputs.values():
            outs.sort(key=lambda t: int(t.rsplit(":", 1)[1]))
        self.consumers: dict[str, list[tuple[str, int]]] = {}
        for name, ins in self.inputs.items():
            for slot, t in enumerate(ins):
                self.consumers.setdefault(t, []).append((name, slot))
        self.order = self._topological()

    def _topological(self) -> list[str]:
        done: set[str] = set()
        order: list[str] = []
        for start in self.nodes:
            stack = [(start, False)]
            while stack:
                name, expanded = stack.pop()
                if name in done:
                    continue
                if expanded:
                    done.add(name)
                    order.append(name)
                    continue
                stack.append((name, True))
                for t in self.inputs[name]:
                    if _node(t) in self.nodes and _node(t) not in done:
                        stack.append((_node(t), False))
        return order

    def op(self, name: str) -> str:
        return self.nodes[name].op

    def is_float(self, tensor: str) -> bool:
        info = self.trace.tensors.get(tensor)
        return info is not None and info.dtype.is_floating


def _positions(entry: Operation | None, n_inputs: int) -> range | tuple[int, ...]:
    if entry is None or entry.inputs is None:
        return range(n_inputs)
    return tuple(p for p in entry.inputs if p < n_inputs)


class _Analysis:
    def __init__(self, trace: Trace, convention: str, softmax_inputs: Sequence[bool],
                 held_factors: Iterable[str] | None) -> None:
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        self.g = _Graph(trace)
        self.convention = convention
        #: operation types whose outputs are held where they are factors of a product
        self.held_factors = set(("Softmax",) if convention == CP_LRP else ()) \
            if held_factors is None else set(held_factors)
        #: inputs that are softmax outputs computed outside the call
        self.softmax_inputs = {t for t, flag in zip(trace.inputs, softmax_inputs) if flag}
        self.held_inputs: set[str] = set()
        self.statistics: set[str] = set()

    # -- signal, held, constant ----------------------------------------------------------
    def states(self, holds: set[str]) -> dict[str, int]:
        g = self.g
        state: dict[str, int] = {}
        moment: dict[str, bool] = {}
        inputs = set(g.trace.inputs)
        self.statistics = set()
        for name in g.order:
            node_op = g.op(name)
            outs = g.outputs[name]
            ins = g.inputs[name]
            if node_op == "Placeholder":
                for t in outs:
                    live = t in inputs and t not in self.held_inputs and g.is_float(t)
                    state[t] = _SIGNAL if live else (_HELD if t in inputs else _CONST)
                continue
            entry = operation(node_op)
            in_states = [state.get(t, _CONST) for t in ins]
            varying = _HELD if any(s != _CONST for s in in_states) else _CONST
            live_in = [t for p in _positions(entry, len(ins)) for t in [ins[p]]
                       if state.get(t) == _SIGNAL]
            if node_op == "IdentityN":
                for t, s in zip(outs, in_states):
                    state[t] = s
                continue
            if entry is not None and entry.kind == "constant":
                out = _CONST
            elif (entry is not None and entry.kind in ("non_differentiable", "hold")) \
                    or name in holds:
                out = varying
            elif entry is not None and entry.kind == "statistic" and live_in \
                    and all(moment.get(t, False) for t in live_in):
                out = varying
                self.statistics.add(name)
            elif live_in:
                out = _SIGNAL
            else:
                out = varying
            for t in outs:
                state[t] = out if (out != _SIGNAL or g.is_float(t)) else _HELD
                moment[t] = state[t] == _SIGNAL and self._is_moment(name, entry, live_in,
                                                                   moment)
        return state

    def _is_moment(self, name: str, entry: Operation | None, live_in: list[str],
                   moment: dict[str, bool]) -> bool:
        """A second moment (a reduction of squares), or an elementwise function of one."""
        if entry is None:
            return False
        if entry.reduction:
            sources = {_node(t) for t in live_in}
            return all(self.g.op(s) in _SQUARES or self._is_self_product(s) for s in sources)
        if entry.kind in _ELEMENTWISE:
            return bool(live_in) and all(moment.get(t, False) for t in live_in)
        return False

    def _is_self_product(self, name: str) -> bool:
        ins = self.g.inputs[name]
        return self.g.op(name) in ("Mul", "MatMul", "BatchMatMulV2") and len(set(ins)) == 1

    def active(self, state: dict[str, int]) -> tuple[set[str], set[str]]:
        """Nodes whose output carries relevance to the call's output, and the tensors that
        carry it."""
        g = self.g
        wanted = {t for t in g.trace.outputs if state.get(t) == _SIGNAL}
        nodes: set[str] = set()
        for name in reversed(g.order):
            if not any(t in wanted for t in g.outputs[name]):
                continue
            if g.op(name) == "Placeholder":
                continue
            nodes.add(name)
            entry = operation(g.op(name))
            ins = g.inputs[name]
            for p in _positions(entry, len(ins)):
                if state.get(ins[p]) == _SIGNAL:
                    wanted.add(ins[p])
        return nodes, wanted

    # -- held factors (CP-LRP's attention weights; gates) ---------------------------------
    def attention_weights(self, state: dict[str, int], active: set[str]) -> set[str]:
        """Nodes of the held-factor types (softmax under CP-LRP), and inputs that are softmax
        outputs, whose value (through value-moving operations) is a factor of a product with
        another signal."""
        g = self.g
        found = set()
        starts = [(name, list(g.outputs[name])) for name in active
                  if g.op(name) in self.held_factors]
        if "Softmax" in self.held_factors:
            starts += [(t, [t]) for t in g.trace.inputs if t in self.softmax_inputs]
        for name, frontier in starts:
            seen: set[str] = set()
            while frontier:
                t = frontier.pop()
                if t in seen:
                    continue
                seen.add(t)
                for user, slot in g.consumers.get(t, []):
                    entry = operation(g.op(user))
                    if entry is None or user not in active:
                        continue
                    if entry.passthrough:
                        frontier += g.outputs[user]
                    elif entry.kind in ("contraction", "scale"):
                        others = [u for k, u in enumerate(g.inputs[user])
                                  if k != slot and state.get(u) == _SIGNAL
                                  and k in _positions(entry, len(g.inputs[user]))]
                        if others:
                            found.add(name)
        return found

    # -- roles -----------------------------------------------------------------------------
    def plan(self) -> Plan:
        g = self.g
        holds: set[str] = set()
        state = self.states(holds)
        active, wanted = self.active(state)
        attention: set[str] = set()
        if self.held_factors:
            attention = self.attention_weights(state, active)
            if attention:
                self.held_inputs = {t for t in attention if t in self.softmax_inputs}
                attention -= self.held_inputs
                holds |= attention
                state = self.states(holds)
                active, wanted = self.active(state)
        roles: dict[str, str] = {}
        unsupported: list[UnsupportedOperation] = []
        shares: list[tuple[str, int, float]] = []
        epsilon: list[str] = []
        ends: set[str] = set()
        order = [n for n in g.order if n in active]
        for name in order:  # contractions first: their ends bound the elementwise regions
            entry = operation(g.op(name))
            if entry is None:
                unsupported.append(UnsupportedOperation(name, g.op(name), ""))
                continue
            if entry.kind != "contraction":
                continue
            ins = g.inputs[name]
            live = [p for p in _positions(entry, len(ins)) if state.get(ins[p]) == _SIGNAL]
            if len(live) > 1:
                roles[name] = "product"
                shares += [(name, p, 1.0 / len(live)) for p in live]
            elif all(state.get(t) == _CONST for k, t in enumerate(ins) if k not in live):
                roles[name] = "weight"
                end = self._weight_end(name, state, active)
                epsilon.append(end)
                ends.add(end)
            else:
                roles[name] = "linear"
        source = self._sources(order, state, ends)
        cores: list[str] = []
        for name in order:
            entry = operation(g.op(name))
            if entry is None or entry.kind == "contraction" or name in roles:
                continue
            ins = g.inputs[name]
            live = [p for p in _positions(entry, len(ins)) if state.get(ins[p]) == _SIGNAL]
            origins = {source.get(ins[p], ins[p]) for p in live}
            kind = entry.kind
            nonlinear = (kind in ("elementwise", "statistic")
                         or (kind == "divide" and any(p != 0 for p in live))
                         or (kind == "scale" and len(live) > 1))
            if kind == "softmax":
                roles[name] = "softmax"
            elif not nonlinear:
                roles[name] = "linear"
            elif len(origins) == 1:
                roles[name] = "elementwise"
                cores.append(name)
            elif kind == "scale":
                roles[name] = "product"
                shares += [(name, p, 1.0 / len(live)) for p in live]
            else:
                unsupported.append(UnsupportedOperation(
                    name, g.op(name), "an elementwise function of two different signals"))
        for name in self.statistics:
            roles[name] = "statistic"
        for name in attention:
            roles[name] = "attention weights" if g.op(name) == "Softmax" else "held factor"
        regions = self._regions(cores, source, state, active, roles)
        stops = tuple(t for name in g.order if name in self.statistics | attention
                      for t in g.outputs[name][:1])
        relevant = tuple(t in wanted for t in g.trace.inputs)
        return Plan(convention=self.convention, epsilon=tuple(epsilon), shares=tuple(shares),
                    stops=stops, regions=regions, relevant_inputs=relevant,
                    unsupported=tuple(unsupported),
                    roles={n: roles[n] for n in g.order if n in roles})

    def _weight_end(self, name: str, state: dict[str, int], active: set[str]) -> str:
        """The tensor that ends the weight layer of contraction ``name``: its output, moved
        by reshapes / transposes, plus a constant bias where one follows."""
        g = self.g
        t = g.outputs[name][0]
        while True:
            users = [(u, s) for u, s in g.consumers.get(t, []) if u in active]
            if len(users) != 1:
                return t
            user, slot = users[0]
            entry = operation(g.op(user))
            if entry is not None and entry.passthrough and entry.kind == "linear":
                t = g.outputs[user][0]
                continue
            others = [u for k, u in enumerate(g.inputs[user]) if k != slot]
            if g.op(user) in _BIAS and others and all(state.get(u) == _CONST for u in others):
                return g.outputs[user][0]
            return t

    def _sources(self, order: list[str], state: dict[str, int], ends: set[str]
                 ) -> dict[str, str]:
        """Tensor -> the tensor it is an elementwise function of (itself if none)."""
        g = self.g
        source: dict[str, str] = {}
        for name in order:
            entry = operation(g.op(name))
            out = g.outputs[name][0] if g.outputs[name] else None
            if out is None:
                continue
            if entry is None or entry.kind not in _ELEMENTWISE or out in ends \
                    or name in self.statistics:
                source[out] = out
                continue
            ins = g.inputs[name]
            origins = {source.get(ins[p], ins[p]) for p in _positions(entry, len(ins))
                       if state.get(ins[p]) == _SIGNAL}
            source[out] = origins.pop() if len(origins) == 1 else out
        return source

    def _regions(self, cores: list[str], source: dict[str, str], state: dict[str, int],
                 active: set[str], roles: dict[str, str]) -> tuple[Region, ...]:
        g = self.g
        members: dict[str, set[str]] = {}
        for core in cores:
            origin = source[g.outputs[core][0]]
            region = members.setdefault(origin, set())
            stack = [core]
            while stack:
                name = stack.pop()
                if name in region:
                    continue
                region.add(name)
                entry = operation(g.op(name))
                for p in _positions(entry, len(g.inputs[name])):
                    t = g.inputs[name][p]
                    producer = _node(t)
                    if (t != origin and state.get(t) == _SIGNAL and producer in active
                            and source.get(t) == origin):
                        stack.append(producer)
        out = []
        outputs = set(g.trace.outputs)
        for origin, nodes in members.items():
            exits = []
            for name in g.order:
                if name not in nodes:
                    continue
                t = g.outputs[name][0]
                users = {u for u, _ in g.consumers.get(t, []) if u in active}
                if t in outputs or users - nodes:
                    exits.append(t)
                roles.setdefault(name, "elementwise")
                if roles[name] == "linear":
                    roles[name] = "elementwise"
            out.append(Region(origin, tuple(exits), frozenset(nodes)))
        return tuple(out)


def plan_relevance(trace: Trace, convention: str,
                   softmax_inputs: Iterable[bool] | None = None,
                   held_factors: Iterable[str] | None = None) -> Plan:
    """The roles of the operations of ``trace`` under ``convention`` (see module docstring).

    Parameters
    ----------
    trace
        The traced call.
    convention
        ``"attnlrp"`` or ``"cp_lrp"``.
    softmax_inputs
        For each input of the trace, whether it is a softmax output computed outside the call
        (under CP-LRP held constant where it multiplies another signal, as an attention
        weight).
    held_factors
        Operation types whose outputs are held constant where they are a factor of a product
        with another signal (default: ``("Softmax",)`` under CP-LRP, none under AttnLRP).
        ``("Sigmoid",)`` gives the LRP convention for gates (LSTM, GRU: the gate held, all
        relevance to the gated signal).
    """
    flags = list(softmax_inputs) if softmax_inputs is not None else [False] * len(trace.inputs)
    return _Analysis(trace, convention, flags, held_factors).plan()


__all__ = ["ATTNLRP", "CONVENTIONS", "CP_LRP", "Plan", "Region", "UnsupportedOperation",
           "plan_relevance", "register_operation", "registered_operations"]
