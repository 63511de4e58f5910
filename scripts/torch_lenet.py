#!/usr/bin/python3
"""PyTorch CPU yardstick for configs/fmnist_lenet.ini: the same network on Fashion-MNIST.

Conv2d(1,16,5,p2) BatchNorm2d ReLU MaxPool2d(2) Conv2d(16,32,5,p2) BatchNorm2d ReLU
MaxPool2d(2) Linear(1568,128) ReLU Dropout(0.25) Linear(128,10); Adam 1e-3, batch 64, a
new shuffle each epoch, inputs standardised per pixel with the training set's statistics
(the config's normalize=standard). Test accuracy in eval mode (running statistics, no
dropout) after each epoch. Stands alone (no OpenBLAS needed: convolutions run on oneDNN).

Usage: /usr/bin/python3 scripts/torch_lenet.py [--threads 1] [--epochs 10] [--seed 0] --csv DIR
  DIR holds train_x.csv train_y.csv test_x.csv test_y.csv (raw 0-255 pixels, as
  scripts/compare_torch.sh links them). Prints `epoch i: S s ... test acc A` per epoch
  and `final test acc A`, the lines compare_torch.sh reads.
"""
import argparse, os, resource, statistics, time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", metavar="DIR", required=True)
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import numpy as np, torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    print(f"# LeNet-BN: torch {torch.__version__} threads {torch.get_num_threads()} batch {a.batch} seed {a.seed}")
    t = time.perf_counter()
    load = lambda n, dt: np.loadtxt(os.path.join(a.csv, n), delimiter=",", dtype=dt)
    xtr, ytr = load("train_x.csv", np.float32), load("train_y.csv", np.int64)
    xte, yte = load("test_x.csv", np.float32), load("test_y.csv", np.int64)
    mean, std = xtr.mean(0), xtr.std(0)
    scale = np.where(std > 0, 1 / np.where(std > 0, std, 1), 1).astype(np.float32)
    xtr, xte = (xtr - mean) * scale, (xte - mean) * scale
    xtr, xte = (torch.from_numpy(v).reshape(-1, 1, 28, 28) for v in (xtr, xte))
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    print(f"data load (CSV {a.csv}): {time.perf_counter() - t:.2f} s")

    torch.manual_seed(a.seed)
    model = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, times, acc = len(xtr), [], 0.0
    for ep in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm, total = torch.randperm(n), 0.0
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        dt = time.perf_counter() - t0
        times.append(dt)
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[j:j + 1000]).argmax(1) == yte[j:j + 1000]).sum().item()
                          for j in range(0, len(xte), 1000))
        acc = correct / len(xte)
        print(f"epoch {ep}: {dt:7.3f} s  {n / dt:9.0f} samples/s  loss {total / n:.4f}  test acc {acc:.4f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"SUMMARY median {statistics.median(times):.3f} s/epoch, final test acc {acc:.4f}, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
