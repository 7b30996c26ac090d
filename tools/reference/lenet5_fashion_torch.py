#!/usr/bin/env python3
"""PyTorch reference for `kiln train --model lenet5 --dataset fashion-mnist`: the same modern
LeNet-5, Adam(lr), batch size, epochs and [0, 1] scaling, trained on the Debian Fashion-MNIST
files. Prints one JSON line. Used to set expectations, never at run time."""
import argparse, gzip, json, struct, time
import numpy as np
import torch
import torch.nn as nn

def idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)

p = argparse.ArgumentParser()
p.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--epochs', type=int, default=2)
p.add_argument('--batch-size', type=int, default=64)
p.add_argument('--lr', type=float, default=1e-3)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--val', type=int, default=0, help='hold out this many training examples')
a = p.parse_args()
torch.manual_seed(a.seed)
d = a.data_dir
xtr = torch.tensor(idx(f'{d}/train-images-idx3-ubyte.gz'), dtype=torch.float32).unsqueeze(1) / 255
ytr = torch.tensor(idx(f'{d}/train-labels-idx1-ubyte.gz'), dtype=torch.long)
xte = torch.tensor(idx(f'{d}/t10k-images-idx3-ubyte.gz'), dtype=torch.float32).unsqueeze(1) / 255
yte = torch.tensor(idx(f'{d}/t10k-labels-idx1-ubyte.gz'), dtype=torch.long)
if a.val:
    perm = torch.randperm(len(ytr))
    xtr, ytr = xtr[perm[a.val:]], ytr[perm[a.val:]]
model = nn.Sequential(
    nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
lossf = nn.CrossEntropyLoss()
t0 = time.time(); n = 0
for epoch in range(a.epochs):
    perm = torch.randperm(len(ytr))
    model.train()
    for i in range(0, len(ytr), a.batch_size):
        idxs = perm[i:i + a.batch_size]
        opt.zero_grad()
        loss = lossf(model(xtr[idxs]), ytr[idxs])
        loss.backward(); opt.step(); n += len(idxs)
train_time = time.time() - t0
model.eval()
with torch.no_grad():
    logits = model(xte)
    acc = (logits.argmax(1) == yte).float().mean().item()
    tl = lossf(logits, yte).item()
print(json.dumps({'framework': 'pytorch', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'test_accuracy': acc, 'test_loss': tl, 'train_samples_per_sec': n / train_time, 'val_holdout': a.val}))
