"""``depth``: the longest chain of weight layers from the input to the logits (data-free).

A size count beside ``params`` and ``flops``: the number of convolutions and linear layers on the
longest path through the network's computation graph, read off the autograd graph of one forward
pass, so it holds for any module (residual branches, parallel NAS-Bench-201 edges, attention)
without knowing its code. An identity choice adds nothing; a residual shortcut is a shorter path
beside the main one; parallel edges count once, by the longest. On every registered space it equals
the space's own ``count_layers`` (what ``--max-layers`` limits); it also measures a user's module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from diswot.spaces import FeatureNetwork

from ._base import Batch, BNMode, Proxy, TeacherContext, register_proxy
from ._util import module_modes, preserved_state

__all__ = ["DepthProxy", "graph_depth", "weight_depth"]

#: autograd node names (lower case) of the products a weight layer computes: convolutions (any
#: backend) and matrix products (``nn.Linear``, ``F.linear``, ``nn.MultiheadAttention``'s projections)
_LAYER_NODES = (
    "convolution",
    "mkldnnconvolution",
    "cudnnconvolution",
    "slowconv",
    "addmm",
    "mm",
    "bmm",
    "baddbmm",
    "linear",
    "matmul",
)


@register_proxy
class DepthProxy(Proxy):
    """Weight layers (convolutions, linear maps) on the longest input-to-logits path of the student's graph.

    Depth, with the parameter count and the FLOPs, is the third classic measure of a network's
    capacity (He et al., CVPR 2016: accuracy grows with the depth of the residual stages; Su et al.,
    NAS-Bench-Macro, CVPR 2021: a layer left as identity costs accuracy). ``score`` is the count.
    """

    name: ClassVar[str] = "depth"
    needs_data: ClassVar[bool] = False
    needs_grad: ClassVar[bool] = True
    bn_mode: ClassVar[BNMode] = "eval"
    citation: ClassVar[str] = "He et al., CVPR 2016 (depth); Su et al., NAS-Bench-Macro, CVPR 2021"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """``score`` = the number of weight layers on the longest path (0: the output ignores the input)."""
        return {"score": float(weight_depth(student, batch.images[:1]))}


def weight_depth(model: torch.nn.Module, images: torch.Tensor) -> int:
    """Weight layers of ``model`` on the longest path from ``images`` to its output.

    A weight layer is a convolution or a matrix product with a parameter of two or more dimensions
    among its operands (a kernel or a matrix; not a norm's scale, not a product of two activations).
    One eval-mode forward of ``images`` (one image is enough) with autograd on; modes, BatchNorm
    statistics and ``requires_grad`` flags are restored.
    """
    weights = {id(p) for p in model.parameters() if p.dim() >= 2}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    x = images.detach().clone().requires_grad_(True)
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with preserved_state(model), module_modes(model, training=False), torch.enable_grad():
            out = model(x)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    logits = getattr(out, "logits", out)
    return graph_depth(logits.grad_fn, x, weights)


def graph_depth(root: Any, source: torch.Tensor, weights: set[int]) -> int:
    """The most weight-layer nodes on any path of the autograd graph from ``root`` down to
    ``source``'s leaf: convolution and matrix-product nodes fed by a tensor of ``weights``
    (directly or through nodes that do not depend on ``source``, such as a transpose). 0 if
    ``root`` does not depend on ``source``. Iterative: graphs of deep networks exceed Python's
    recursion limit."""
    reaches: dict[Any, bool] = {}
    fed: dict[Any, bool] = {}  # a source-free subgraph that holds a weight
    depth: dict[Any, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, done = stack.pop()
        if node in depth:
            continue
        children = [c for c, _ in getattr(node, "next_functions", ()) if c is not None]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in depth)
            continue
        variable = getattr(node, "variable", None)
        if variable is not None:  # a leaf: AccumulateGrad
            reaches[node] = variable is source
            fed[node] = id(variable) in weights
            depth[node] = 0
            continue
        on_path = [c for c in children if reaches[c]]
        reaches[node] = bool(on_path)
        fed[node] = any(fed[c] for c in children if not reaches[c])
        layer = bool(on_path) and fed[node] and type(node).__name__.lower().startswith(_LAYER_NODES)
        depth[node] = max((depth[c] for c in on_path), default=0) + int(layer)
    return depth[root] if root is not None and reaches.get(root) else 0
