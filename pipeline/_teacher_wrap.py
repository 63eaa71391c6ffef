"""Any classifier as a :class:`~diswot.spaces.FeatureNetwork`: its pre-pool features and final
``nn.Linear`` found, not declared (README, "Teachers").

* timm-style models (``forward_features``, ``forward_head(x, pre_logits=True)``,
  ``get_classifier()``): timm's uniform API gives all three.
* Any other module: traced with :mod:`torch.fx` (torchvision's ``NodePathTracer``, the tracer of
  :func:`torchvision.models.feature_extraction.create_feature_extractor`), shapes propagated on an
  example input; the classifier is the last ``nn.Linear`` on the path to the logits, the pooled
  vector is what it reads, and the features are the last tensor before it that still has more than
  one position (a ``(B, C, H, W)`` map with ``H*W > 1``, or tokens ``(B, N, C)``/``(B, H, W, C)``).
* ``features``/``classifier`` overrides name the graph node and the classifier module; a module
  that torch.fx cannot trace is read with forward hooks on the two named modules instead.

Token features feed DisWOT's relation term as they are (each sample is flattened); the pooled
vector the classifier reads feeds the semantic term, so every wrapper overrides ``forward_all``.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

import torch
from torch import fx, nn

from diswot.spaces import FeatureNetwork, NetworkOutput

from .errors import DiswotError

__all__ = ["HookedTeacher", "TimmTeacher", "TracedTeacher", "has_timm_api", "wrap_module"]

#: what a failed discovery tells the user to pass
_OVERRIDE_HINT = (
    "pass `teacher_features` NODE (the last feature map before the global pool) and "
    "`teacher_classifier` NAME (the final nn.Linear)"
)


def has_timm_api(model: nn.Module) -> bool:
    """Whether ``model`` offers timm's uniform API (``forward_features``, ``forward_head``, ``get_classifier``)."""
    return all(callable(getattr(model, name, None)) for name in ("forward_features", "forward_head", "get_classifier"))


class TimmTeacher(FeatureNetwork):  # type: ignore[misc,unused-ignore]  # mypy may see the editable install as Any
    """A timm model through its uniform API: ``forward_features``, ``forward_head(pre_logits=True)``,
    ``get_classifier()`` (timm docs, "Feature extraction")."""

    def __init__(self, *, model: nn.Module, classifier: nn.Linear) -> None:
        super().__init__()
        self.model = model
        self.classifier = classifier

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        features: torch.Tensor = self.model.forward_features(x)  # type: ignore[operator]
        return features

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """The vector timm's head gives its classifier (global pool, norm, pre-logits)."""
        pooled: torch.Tensor = self.model.forward_head(features, pre_logits=True)  # type: ignore[operator]
        return pooled.reshape(pooled.shape[0], -1)


class TracedTeacher(FeatureNetwork):  # type: ignore[misc,unused-ignore]  # mypy may see the editable install as Any
    """A traced module returning its ``features`` and ``pooled`` nodes, and its final linear layer."""

    def __init__(self, *, body: nn.Module, classifier: nn.Linear, nodes: tuple[str, str]) -> None:
        super().__init__()
        self.body = body
        self.classifier = classifier
        #: the graph nodes read: (features, pooled)
        self.nodes = nodes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        features: torch.Tensor = self.forward_all(x).features
        return features

    def forward_all(self, x: torch.Tensor) -> NetworkOutput:
        """One pass of the body; the classifier reads the pooled node, as in the original module."""
        out = self.body(x)
        pooled = out["pooled"].reshape(x.shape[0], -1)
        return NetworkOutput(out["features"], pooled, self.classifier(pooled))


class HookedTeacher(FeatureNetwork):  # type: ignore[misc,unused-ignore]  # mypy may see the editable install as Any
    """A module read with forward hooks: the output of ``features`` and the input of ``classifier``."""

    def __init__(self, *, model: nn.Module, features: str, classifier: nn.Linear, classifier_name: str) -> None:
        super().__init__()
        self.model = model
        self.classifier = classifier
        self.names = (features, classifier_name)
        self._features = model.get_submodule(features)
        #: the module's own final layer: its input is the pooled vector (``classifier`` may be rebuilt)
        self._head = model.get_submodule(classifier_name)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        features: torch.Tensor = self.forward_all(x).features
        return features

    def forward_all(self, x: torch.Tensor) -> NetworkOutput:
        """Run the whole module; the hooks keep what the two named modules saw."""
        seen: dict[str, torch.Tensor] = {}

        def keep_features(_m: nn.Module, _args: Any, out: torch.Tensor) -> None:
            seen["features"] = out

        def keep_pooled(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen["pooled"] = args[0]

        handles = [
            self._features.register_forward_hook(keep_features),
            self._head.register_forward_pre_hook(keep_pooled),
        ]
        try:
            self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        if "features" not in seen or "pooled" not in seen:
            raise DiswotError(f"teacher modules {self.names[0]!r}/{self.names[1]!r} did not run; {_OVERRIDE_HINT}")
        pooled = seen["pooled"].reshape(x.shape[0], -1)
        return NetworkOutput(seen["features"], pooled, self.classifier(pooled))


def wrap_module(
    model: nn.Module,
    *,
    name: str,
    image_size: int,
    features: str | None = None,
    classifier: str | None = None,
) -> tuple[FeatureNetwork, str]:
    """``model`` as a FeatureNetwork, and the qualified name of its classifier in ``model``.

    A :class:`FeatureNetwork` is returned as it is (no override applies). Raises
    :class:`DiswotError` with one line naming the override to pass when the parts cannot be found.
    """
    if isinstance(model, FeatureNetwork) and features is None and classifier is None:
        return model, _qualname(model, model.classifier) or "classifier"
    if has_timm_api(model) and features is None and classifier is None:
        head = model.get_classifier()  # type: ignore[operator]
        if isinstance(head, nn.Linear):
            return _checked(TimmTeacher(model=model, classifier=head), model, name, image_size), _qualname(model, head)
    try:
        graph, qualnames = _trace(model)
    except Exception as exc:  # torch.fx raises many kinds on dynamic control flow
        if features is not None and classifier is not None:
            linear = _linear(model, classifier, name)
            hooked = HookedTeacher(
                model=model, features=_module(model, features, name), classifier=linear, classifier_name=classifier
            )
            return _checked(hooked, model, name, image_size), classifier
        for field, override in (("teacher_features", features), ("teacher_classifier", classifier)):
            if override is not None:
                _named_module(model, field, override, name)  # a wrong name is the cause, not the trace
        if classifier is not None:
            _linear(model, classifier, name)
        raise DiswotError(
            f"teacher {name}: torch.fx cannot trace it ({type(exc).__name__}: {_first_line(exc)}); "
            f"{_OVERRIDE_HINT} as module names, to read them with hooks"
        ) from None
    _propagate_shapes(graph, model, image_size, name)
    linear_node = _classifier_node(graph, model, classifier, qualnames, name)
    pooled = _first_input(linear_node)
    if pooled is None:
        raise DiswotError(f"teacher {name}: the classifier {linear_node.target} reads no tensor; {_OVERRIDE_HINT}")
    feature_node = _feature_node(graph, features, pooled, qualnames, name)
    from torchvision.models.feature_extraction import create_feature_extractor

    nodes = (qualnames[feature_node], qualnames[pooled])
    body = create_feature_extractor(
        model,
        return_nodes={nodes[0]: "features", nodes[1]: "pooled"},
        tracer_kwargs=_tracer_kwargs(),
        suppress_diff_warning=True,
    )
    linear = _linear(model, str(linear_node.target), name)
    traced = TracedTeacher(body=body, classifier=linear, nodes=nodes)
    return _checked(traced, model, name, image_size), str(linear_node.target)


def _tracer_kwargs() -> dict[str, Any]:
    """torchvision's default tracer setup: its ops wrapped, its op modules kept as leaves."""
    import torchvision

    leaves = [m for m in vars(torchvision.ops).values() if isinstance(m, type) and issubclass(m, nn.Module)]
    return {"autowrap_modules": (math, torchvision.ops), "leaf_modules": leaves}


def _trace(model: nn.Module) -> tuple[fx.GraphModule, dict[fx.Node, str]]:
    """The eval-mode graph of ``model`` and each node's qualified name (create_feature_extractor's names)."""
    from torchvision.models.feature_extraction import NodePathTracer

    training = model.training
    tracer = NodePathTracer(**_tracer_kwargs())
    try:
        graph = tracer.trace(model.eval())
    finally:
        model.train(training)
    return fx.GraphModule(tracer.root, graph), dict(tracer.node_to_qualname)


def _propagate_shapes(graph: fx.GraphModule, model: nn.Module, image_size: int, name: str) -> None:
    from torch.fx.passes.shape_prop import ShapeProp

    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(graph).propagate(_example(model, image_size))
    except Exception as exc:
        raise _size_error(name, image_size, exc) from None
    finally:
        model.train(training)


def _example(model: nn.Module, image_size: int) -> torch.Tensor:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)).to(device)


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _first_input(node: fx.Node) -> fx.Node | None:
    return next((a for a in node.args if isinstance(a, fx.Node)), None)


def _classifier_node(
    graph: fx.GraphModule, model: nn.Module, override: str | None, qualnames: dict[fx.Node, str], name: str
) -> fx.Node:
    """The call of the final linear layer: the named one, else the last ``nn.Linear`` on the path to the output."""
    calls = [n for n in graph.graph.nodes if n.op == "call_module"]
    if override is not None:
        _linear(model, override, name)
        found = [n for n in calls if n.target == override]
        if not found:
            raise DiswotError(f"teacher {name}: the classifier {override!r} is never called in the traced graph")
        last: fx.Node = found[-1]
        return last
    output = next(n for n in graph.graph.nodes if n.op == "output")
    node = output.args[0]
    while isinstance(node, fx.Node):
        if node.op == "call_module" and isinstance(model.get_submodule(str(node.target)), nn.Linear):
            return node
        node = _first_input(node)
    raise DiswotError(f"teacher {name}: no final nn.Linear found on the path to the logits; {_OVERRIDE_HINT}")


def _feature_node(
    graph: fx.GraphModule, override: str | None, pooled: fx.Node, qualnames: dict[fx.Node, str], name: str
) -> fx.Node:
    """The named node (or the last node of the named module), else the last tensor before ``pooled``
    that has more than one position."""
    if override is not None:
        by_name = {q: n for n, q in qualnames.items()}
        inside = [q for q in by_name if q.startswith(f"{override}.")]
        if override not in by_name and inside:  # a module traced through: its last node
            return by_name[inside[-1]]
        if override not in by_name:
            close = difflib.get_close_matches(override, list(by_name), n=3)
            hint = (
                f"; close matches: {', '.join(close)}" if close else "; see torchvision's get_graph_node_names(model)"
            )
            raise DiswotError(f"teacher {name}: no graph node {override!r}{hint}")
        return by_name[override]
    node: fx.Node | None = pooled
    while node is not None:
        shape = _shape(node)
        if shape is not None and len(shape) >= 3 and math.prod(shape[1:]) > max(shape[1:]):
            return node
        node = _first_input(node)
    raise DiswotError(f"teacher {name}: no feature map before the global pool found; {_OVERRIDE_HINT}")


def _module(model: nn.Module, path: str, name: str) -> str:
    names = [n for n, _ in model.named_modules() if n]
    if path not in names:
        close = difflib.get_close_matches(path, names, n=3)
        raise DiswotError(
            f"teacher {name} has no module {path!r}" + (f"; close matches: {', '.join(close)}" if close else "")
        )
    return path


def _named_module(model: nn.Module, field: str, path: str, name: str) -> None:
    """Refuse an override of an untraceable teacher that names none of its modules (only module names
    work there: they are read with hooks)."""
    names = [n for n, _ in model.named_modules() if n]
    if path not in names:
        close = difflib.get_close_matches(path, names, n=3)
        raise DiswotError(
            f"`{field}` {path!r} names no module of teacher {name} (torch.fx cannot trace it, so overrides are "
            "module names); "
            + (f"close matches: {', '.join(close)}" if close else f"its modules: {', '.join(names[:8])}, ...")
        )


def _linear(model: nn.Module, path: str, name: str) -> nn.Linear:
    module = model.get_submodule(_module(model, path, name))
    if not isinstance(module, nn.Linear):
        raise DiswotError(
            f"teacher {name}: `teacher_classifier` {path!r} is a {type(module).__name__}, not an nn.Linear"
        )
    return module


def _qualname(model: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in model.named_modules() if m is module), "")


def _checked(net: FeatureNetwork, model: nn.Module, name: str, image_size: int) -> FeatureNetwork:
    """Check on an example image that the wrapper's logits are the module's (eval mode): the parts are right."""
    training = model.training
    net.eval()
    try:
        with torch.no_grad():
            x = _example(model, image_size)
            ours, theirs = net.forward_all(x).logits, model(x)
    except DiswotError:
        raise
    except Exception as exc:
        raise _size_error(name, image_size, exc) from None
    finally:
        net.train(training)
        model.train(training)
    if (
        not isinstance(theirs, torch.Tensor)
        or theirs.shape != ours.shape
        or not torch.allclose(ours, theirs, atol=1e-4, rtol=1e-3)
    ):
        raise DiswotError(f"teacher {name}: the found classifier does not give the module's logits; {_OVERRIDE_HINT}")
    return net


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "")[:120]


def _size_error(name: str, image_size: int, exc: Exception) -> DiswotError:
    """One line: the teacher does not run at ``image_size``, and the option that sets its size."""
    return DiswotError(
        f"teacher {name} fails on a {image_size} px image ({type(exc).__name__}: {_first_line(exc)}); "
        "pass its input size with `teacher_image_size`"
    )
