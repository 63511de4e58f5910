#!/usr/bin/python3
"""Dump outputs, losses and every gradient of tiny PyTorch models into a text fixture
that tests/test_torch_ref.c compares minidl against (the test needs no PyTorch).

Usage: /usr/bin/python3 scripts/torch_fixture.py > tests/fixtures/torch_ref.txt
Needs Debian's python3-torch. Format: per case a line `case NAME LOSS`, a line `arch KIND...`
(conv2d:STRIDE:PADDING, maxpool2d:K:STRIDE, avgpool2d:K:STRIDE, dropout:P), then blocks
`tensor NAME NDIM D0 D1 ...` followed by one line of %.17g values.

The last case (lenet_ce) uses the layers with state and modes: its forward in inference
(out.eval, running statistics), one training forward and backward (batch statistics; the
dropout mask PyTorch drew is dumped as dropout1.mask for minidl to apply), the running
statistics after it (after.NAME.running_mean/var), one SGD step (lr 0.1) on the
parameters (step.NAME.weight/bias) and the inference forward after the step
(out.eval.step)."""
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


def run_lenet(name):
    """Conv BN2d ReLU MaxPool Conv BN2d Tanh AvgPool Linear BN1d ReLU Dropout Linear Softmax."""
    torch.manual_seed(1)
    layers = [("conv2d", nn.Conv2d(1, 3, 3, padding=1)), ("batchnorm2d", nn.BatchNorm2d(3)), ("relu", None),
              ("maxpool2d", nn.MaxPool2d(2)), ("conv2d", nn.Conv2d(3, 4, 3, padding=1)),
              ("batchnorm2d", nn.BatchNorm2d(4)), ("tanh", None), ("avgpool2d", nn.AvgPool2d(2, 1)),
              ("linear", nn.Linear(36, 6)), ("batchnorm1d", nn.BatchNorm1d(6)), ("relu", None),
              ("dropout", nn.Dropout(0.25)), ("linear", nn.Linear(6, 3)), ("softmax", None)]
    arch, named, counts = [], [], {}
    for kind, mod in layers:
        if kind == "conv2d":
            arch.append(f"conv2d:{mod.stride[0]}:{mod.padding[0]}")
        elif kind in ("maxpool2d", "avgpool2d"):
            arch.append(f"{kind}:{mod.kernel_size}:{mod.stride}")
        elif kind == "dropout":
            arch.append(f"dropout:{mod.p}")
        else:
            arch.append(kind)
        if kind in ("conv2d", "linear", "batchnorm1d", "batchnorm2d"):
            counts[kind] = counts.get(kind, 0) + 1
            named.append((f"{kind}{counts[kind]}", mod))
        if kind.startswith("batchnorm"):
            with torch.no_grad():  # away from the defaults, so that every term shows
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    print(f"case {name} CrossEntropy")
    print("arch " + " ".join(arch))
    x = torch.randn(4, 1, 8, 8).requires_grad_(True)
    y = torch.tensor([[2.0], [0.0], [1.0], [2.0]])
    dump("x", x)
    dump("y", y)
    for nm, mod in named:
        dump(f"{nm}.weight", mod.weight)
        dump(f"{nm}.bias", mod.bias)
        if nm.startswith("batchnorm"):
            dump(f"{nm}.running_mean", mod.running_mean)
            dump(f"{nm}.running_var", mod.running_var)

    def forward(h, training, masks):
        for kind, mod in layers:
            if mod is not None:
                mod.train(training)
            if kind == "softmax":
                break
            if kind == "linear" and h.dim() > 2:
                h = h.flatten(1)
            if kind == "dropout":
                if training:  # inverted dropout with the mask it draws, dumped for minidl
                    mask = (torch.rand_like(h) >= mod.p).double() / (1 - mod.p)
                    masks.append(mask)
                    h = h * mask
                continue
            h = {"relu": torch.relu, "tanh": torch.tanh}[kind](h) if mod is None else mod(h)
        return h

    with torch.no_grad():
        dump("out.eval", torch.softmax(forward(x, False, []), dim=1))
    masks = []
    logits = forward(x, True, masks)
    dump("dropout1.mask", masks[0])
    loss = torch.nn.functional.cross_entropy(logits, y.long().flatten())
    loss.backward()
    dump("out", logits)
    dump("loss", loss.reshape(1))
    dump("grad.x", x.grad)
    for nm, mod in named:
        dump(f"grad.{nm}.weight", mod.weight.grad)
        dump(f"grad.{nm}.bias", mod.bias.grad)
    for nm, mod in named:
        if nm.startswith("batchnorm"):
            dump(f"after.{nm}.running_mean", mod.running_mean)
            dump(f"after.{nm}.running_var", mod.running_var)
    with torch.no_grad():
        for nm, mod in named:
            for p in (mod.weight, mod.bias):
                p -= 0.1 * p.grad
            dump(f"step.{nm}.weight", mod.weight)
            dump(f"step.{nm}.bias", mod.bias)
        dump("out.eval.step", torch.softmax(forward(x, False, []), dim=1))


run_lenet("lenet_ce")
