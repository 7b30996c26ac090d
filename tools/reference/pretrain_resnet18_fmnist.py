"""Writes a torchvision ResNet-18 state dict (torch.save, .pth) pretrained on part of Fashion-MNIST.

A stand-in for torchvision's ImageNet weights on a machine without network access, for the worked
example in docs/fine-tuning.md: the model is torchvision's own resnet18 (ImageNet layout, 7x7 stem)
trained on classes 0-4 of Fashion-MNIST at 64x64 RGB, so fine-tuning on the other classes starts
from features that really transfer.

    /usr/bin/python3 tools/reference/pretrain_resnet18_fmnist.py --out resnet18-fmnist04.pth \
        [--per-class 600] [--epochs 2] [--data-dir /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision


def idx(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--out', required=True)
    p.add_argument('--per-class', type=int, default=600)
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist')
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x = idx(os.path.join(a.data_dir, 'train-images-idx3-ubyte.gz'))
    y = idx(os.path.join(a.data_dir, 'train-labels-idx1-ubyte.gz'))
    keep = np.concatenate([np.flatnonzero(y == c)[: a.per_class] for c in range(5)])
    xs = torch.tensor(x[keep], dtype=torch.float32).div(255).unsqueeze(1)
    xs = F.interpolate(xs, size=(64, 64), mode='bilinear', align_corners=False).repeat(1, 3, 1, 1)
    mean, std = xs.mean().item(), xs.std().item()
    xs = (xs - mean) / std
    ys = torch.tensor(y[keep], dtype=torch.long)
    model = torchvision.models.resnet18(num_classes=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.time()
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(ys))
        for i in range(0, len(ys), 64):
            b = order[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(model(xs[b]), ys[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xs[:2000:7]).argmax(1) == ys[:2000:7]).float().mean().item()
        print(f'epoch {epoch + 1}: loss {loss.item():.3f}, train-sample accuracy {acc:.3f} ({time.time() - t0:.0f} s)', flush=True)
    torch.save(model.state_dict(), a.out)
    print(f'wrote {a.out} (classes 0-4, 64x64 RGB, input mean {mean:.4f}, std {std:.4f})')


if __name__ == '__main__':
    main()
