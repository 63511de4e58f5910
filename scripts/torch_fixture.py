#!/usr/bin/python3
"""Dump outputs, losses and every gradient of tiny PyTorch models into a text fixture
that tests/test_torch_ref.c compares minidl against (the test needs no PyTorch).

Usage: /usr/bin/python3 scripts/torch_fixture.py > tests/fixtures/torch_ref.txt
Needs Debian's python3-torch. Format: per case a line `case NAME LOSS`, a line `arch KIND...`
(conv2d:STRIDE:PADDING), then blocks
`tensor NAME NDIM D0 D1 ...` followed by one line of %.17g values."""
import torch

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)


def dump(name, t):
    t = t.detach().reshape(t.shape)
    dims = " ".join(str(d) for d in t.shape)
    print(f"tensor {name} {t.dim()} {dims}".rstrip())
    print(" ".join(f"{v:.17g}" for v in t.flatten().tolist()))


def run(name, loss_name, layers, x, y):
    """layers: list of (kind, module-or-None); the final Softmax, if any, is skipped
    for CrossEntropy as minidl does, and applied for the dumped output."""
    print(f"case {name} {loss_name}")
    arch = []
    for kind, mod in layers:
        arch.append(f"conv2d:{mod.stride[0]}:{mod.padding[0]}" if kind == "conv2d" else kind)
    print("arch " + " ".join(arch))
    x = x.clone().requires_grad_(True)
    counts = {}
    dump("x", x)
    dump("y", y)
    h = x
    for kind, mod in layers:
        if kind in ("linear", "conv2d"):
            counts[kind] = counts.get(kind, 0) + 1
            dump(f"{kind}{counts[kind]}.weight", mod.weight)
            dump(f"{kind}{counts[kind]}.bias", mod.bias)
            if kind == "linear" and h.dim() > 2:
                h = h.flatten(1)
            h = mod(h)
        elif kind == "relu":
            h = torch.relu(h)
        elif kind == "sigmoid":
            h = torch.sigmoid(h)
        elif kind == "tanh":
            h = torch.tanh(h)
        elif kind == "softmax":
            break
    if loss_name == "CrossEntropy":
        loss = torch.nn.functional.cross_entropy(h, y.long().flatten())
        out = torch.softmax(h, dim=1) if layers[-1][0] == "softmax" else h
    else:
        loss = torch.nn.functional.mse_loss(h, y)
        out = h
    loss.backward()
    dump("out", out)
    dump("loss", loss.reshape(1))
    dump("grad.x", x.grad)
    counts = {}
    for kind, mod in layers:
        if kind in ("linear", "conv2d"):
            counts[kind] = counts.get(kind, 0) + 1
            dump(f"grad.{kind}{counts[kind]}.weight", mod.weight.grad)
            dump(f"grad.{kind}{counts[kind]}.bias", mod.bias.grad)


nn = torch.nn
run("mlp_ce", "CrossEntropy",
    [("linear", nn.Linear(5, 6)), ("relu", None), ("linear", nn.Linear(6, 6)), ("sigmoid", None),
     ("linear", nn.Linear(6, 4)), ("tanh", None), ("linear", nn.Linear(4, 3)), ("softmax", None)],
    torch.randn(4, 5), torch.tensor([[0.0], [2.0], [1.0], [2.0]]))
run("mlp_mse", "MSE",
    [("linear", nn.Linear(5, 4)), ("tanh", None), ("linear", nn.Linear(4, 2))],
    torch.randn(3, 5), torch.randn(3, 2))
run("cnn_ce", "CrossEntropy",
    [("conv2d", nn.Conv2d(1, 2, 3, stride=1, padding=1)), ("relu", None),
     ("conv2d", nn.Conv2d(2, 3, 3, stride=2, padding=1)), ("tanh", None),
     ("linear", nn.Linear(27, 4)), ("softmax", None)],
    torch.randn(2, 1, 6, 6), torch.tensor([[3.0], [1.0]]))
run("cnn_mse", "MSE",
    [("conv2d", nn.Conv2d(2, 2, (5, 3), stride=1, padding=1)), ("sigmoid", None),
     ("linear", nn.Linear(2 * 4 * 6, 2))],
    torch.randn(2, 2, 6, 6), torch.randn(2, 2))
