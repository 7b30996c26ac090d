#!/usr/bin/env python3
"""PyTorch reference for

    kiln train --model lenet5 --dataset folder:DIR --image-size HxW --channels C --epochs N

on a class-per-folder tree with train/ and test/ sub-folders (e.g. one written by
tools/fixtures/data/make-messy-folder.mjs): torchvision's ImageFolder with the same preparation
(EXIF orientation applied, grey or RGB, stretched to H×W, scaled to [0, 1], standardised with the
per-channel mean/std of the training split), the same LeNet-5 (He-normal hidden layers, PyTorch's
default head), Adam(lr), batch size, epochs and validation hold-out as `kiln train`'s defaults.
Prints one JSON line with the test accuracy. Used to set expectations, never at run time.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
from PIL import ImageOps
from torchvision import datasets, transforms

p = argparse.ArgumentParser()
p.add_argument('--data', required=True, help='folder with train/ and test/ sub-folders of <class>/<image>')
p.add_argument('--image-size', default='28x28')
p.add_argument('--channels', type=int, default=1, choices=[1, 3])
p.add_argument('--epochs', type=int, default=2)
p.add_argument('--batch-size', type=int, default=64)
p.add_argument('--lr', type=float, default=1e-3)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--val', type=int, default=None, help="training images held out (default: kiln's, 5000 but at most a tenth)")
a = p.parse_args()
h, w = (int(v) for v in a.image_size.lower().split('x'))
torch.manual_seed(a.seed)


def prepare(img):
    # Cameras store rotation in EXIF; Kiln's decoder applies it, so the reference does too.
    img = ImageOps.exif_transpose(img)
    return img.convert('L' if a.channels == 1 else 'RGB')


to_tensor = transforms.Compose([transforms.Lambda(prepare), transforms.Resize((h, w)), transforms.ToTensor()])


def load(split):
    ds = datasets.ImageFolder(f'{a.data}/{split}', transform=to_tensor)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor(ds.targets, dtype=torch.long)
    return x, y, ds.classes


xtr, ytr, classes = load('train')
xte, yte, test_classes = load('test')
assert classes == test_classes, (classes, test_classes)
val = a.val if a.val is not None else min(5000, len(ytr) // 10)
if val:
    perm = torch.randperm(len(ytr))
    xtr, ytr = xtr[perm[val:]], ytr[perm[val:]]
# Standardise with the training split's statistics, as kiln train does.
mean = xtr.mean(dim=(0, 2, 3), keepdim=True)
std = xtr.std(dim=(0, 2, 3), unbiased=False, keepdim=True)
xtr = (xtr - mean) / std
xte = (xte - mean) / std

side = lambda n: ((n // 2) - 4) // 2
model = nn.Sequential(
    nn.Conv2d(a.channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(16 * side(h) * side(w), 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, len(classes)))
for m in list(model)[:-1]:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
        nn.init.zeros_(m.bias)
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
lossf = nn.CrossEntropyLoss()
t0 = time.time()
for epoch in range(a.epochs):
    perm = torch.randperm(len(ytr))
    model.train()
    for i in range(0, len(ytr), a.batch_size):
        idxs = perm[i:i + a.batch_size]
        opt.zero_grad()
        loss = lossf(model(xtr[idxs]), ytr[idxs])
        loss.backward()
        opt.step()
model.eval()
with torch.no_grad():
    logits = model(xte)
    acc = (logits.argmax(1) == yte).float().mean().item()
print(json.dumps({'framework': 'pytorch', 'torch': torch.__version__, 'classes': len(classes), 'train_examples': len(ytr), 'val_holdout': val,
                  'test_examples': len(yte), 'epochs': a.epochs, 'test_accuracy': acc, 'test_loss': lossf(logits, yte).item(),
                  'mean': mean.flatten().tolist(), 'std': std.flatten().tolist(), 'train_seconds': time.time() - t0}))
