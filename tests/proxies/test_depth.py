"""``depth``: weight layers on the longest input-to-logits path, read off the autograd graph."""

from __future__ import annotations

import torch
from torch import nn

from diswot.proxies import Batch, get_proxy
from diswot.proxies._depth import weight_depth
from diswot.spaces import get_space

from .conftest import TinyNet

X = torch.randn(1, 3, 8, 8)


class Residual(nn.Module):
    """Two convs on the main path, a strided 1x1 conv on the shortcut, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.short = nn.Conv2d(3, 4, 1, stride=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(torch.relu(self.a(x))) + self.short(x)
        return self.fc(y.mean((2, 3)))


class Attention(nn.Module):
    """A pre-norm transformer block: qkv, q k^T, softmax, @ v, proj, then fc1 and fc2."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.norm(t)).chunk(3, dim=-1)
        t = t + self.proj((q @ k.transpose(1, 2)).softmax(-1) @ v)
        t = t + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(t))))
        return self.head(t.mean(1))


class TorchAttention(nn.Module):
    """``nn.MultiheadAttention``: a packed input projection (a parameter, no Linear module), the output projection."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.pos = nn.Parameter(torch.zeros(1, 4, dim))
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head((t + self.attn(t, t, t)[0]).mean(1))


class Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.ones(x.shape[0], 3))


def test_a_chain_counts_every_weight_layer() -> None:
    for depth in (0, 1, 3):
        assert weight_depth(TinyNet(depth=depth), X) == depth + 2  # stem, blocks, classifier


def test_a_shortcut_is_a_shorter_path_beside_the_main_one() -> None:
    assert weight_depth(Residual(), X) == 3


def test_attention_counts_its_linear_layers_not_its_products() -> None:
    assert weight_depth(Attention(), X) == 6  # embed, qkv, proj, fc1, fc2, head


def test_a_packed_projection_counts_and_an_added_embedding_does_not() -> None:
    assert weight_depth(TorchAttention(), X) == 4  # embed, in_proj, out_proj, head


def test_an_output_that_ignores_the_input_has_depth_zero() -> None:
    assert weight_depth(Constant(), X) == 0


def test_flags_modes_and_statistics_are_restored() -> None:
    net = TinyNet(depth=2).train()
    net.body[0].weight.requires_grad_(False)
    stats = net.body[1].running_mean.clone()
    assert weight_depth(net, X) == 4
    assert not net.body[0].weight.requires_grad and net.body[3].weight.requires_grad
    assert all(m.training for m in net.modules())
    assert torch.equal(net.body[1].running_mean, stats)
    assert all(p.grad is None for p in net.parameters())


def test_the_spaces_networks_have_the_depth_of_their_architecture() -> None:
    x = torch.randn(1, 3, 32, 32)
    s0 = get_space("s0")
    assert weight_depth(s0.build(s0.decode("ResNet[3,7,3]"), num_classes=10), x) == 2 * 13 + 2
    macro = get_space("macro")
    # stem, three convs an inverted residual, the 1x1 head and the classifier; an identity at a
    # stage's first layer is a strided 1x1 conv
    assert weight_depth(macro.build(macro.decode("22222222"), num_classes=10), x) == 1 + 8 * 3 + 2
    assert weight_depth(macro.build(macro.decode("00000000"), num_classes=10), x) == 1 + 3 + 2
    nb201 = get_space("nb201")
    deep = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    skips = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    # 15 cells of the longest conv chain (3 or 0), the stem, two residual reductions of 2, the classifier
    assert weight_depth(nb201.build(nb201.decode(deep), num_classes=10), x) == 15 * 3 + 6
    assert weight_depth(nb201.build(nb201.decode(skips), num_classes=10), x) == 6


def test_the_registered_proxy_scores_the_depth() -> None:
    proxy = get_proxy("depth")
    batch = Batch(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), 5)
    assert proxy.run(proxy.prepare(None, batch), TinyNet(depth=3), batch)["score"] == 5.0
    assert not proxy.needs_data and not proxy.needs_teacher


def test_torchvisions_networks_have_the_depth_in_their_names() -> None:
    from torchvision import models

    x = torch.randn(1, 3, 64, 64)
    for name, depth in (("resnet18", 18), ("resnet50", 50), ("vgg11", 11)):
        assert weight_depth(models.get_model(name, weights=None, num_classes=10), x) == depth, name


def test_every_space_counts_the_layers_its_limit_counts() -> None:
    """The graph's depth is each space's own ``count_layers`` (what ``--max-layers`` limits)."""
    import optuna

    from diswot.spaces import list_spaces

    checked = {}
    for name in list_spaces():
        space = get_space(name)
        x = torch.randn(1, 3, space.image_size, space.image_size)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        archs = [space.smallest(), *(space.suggest(study.ask()) for _ in range(3))]
        small = [a for a in archs if space.count_params(a, 10) <= 10e6]  # the S2 spaces' random students are huge
        for arch in small:
            assert weight_depth(space.build(arch, num_classes=10), x) == space.count_layers(arch), (name, arch)
        checked[name] = len(small)
    assert min(checked.values()) >= 1 and sum(checked.values()) >= 20, checked
