#!/usr/bin/env python3
"""PyTorch side of `npm run bench`: trains the same LeNet-5 or ResNet-18 (3x3 stem, no max-pool,
28x28x1 input) with Adam on Fashion-MNIST for --steps batches of 64 after --warmup batches, then
times inference. Prints one line `RESULT {...}` (JSON). Used only by tools/bench/run.mjs."""
import argparse, gzip, json, resource, struct, sys, time

import numpy as np
import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument('--model', required=True, choices=['lenet5', 'resnet18'])
p.add_argument('--threads', type=int, required=True)
p.add_argument('--steps', type=int, required=True)
p.add_argument('--warmup', type=int, required=True)
p.add_argument('--infer-batches', type=int, required=True)
p.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist')
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
BATCH = 64


def idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def resnet18():
    # torchvision's ResNet-18 with the small-input stem Kiln's zoo uses (smallInput: true).
    import torchvision
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


n = (a.warmup + a.steps) * BATCH
x = torch.tensor(idx(f'{a.data_dir}/train-images-idx3-ubyte.gz')[:n], dtype=torch.float32).unsqueeze(1) / 255
y = torch.tensor(idx(f'{a.data_dir}/train-labels-idx1-ubyte.gz')[:n], dtype=torch.long)
model = lenet5() if a.model == 'lenet5' else resnet18()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
lossf = nn.CrossEntropyLoss()
model.train()
t0 = None
for i in range(a.warmup + a.steps):
    if i == a.warmup:
        t0 = time.perf_counter()
        c0 = time.thread_time()
    xb, yb = x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]
    opt.zero_grad()
    logits = model(xb)
    loss = lossf(logits, yb)
    loss.backward()
    opt.step()
    # Read loss and accuracy back, as the Kiln trainer does each step.
    loss.item(); (logits.argmax(1) == yb).float().mean().item()
train_time = time.perf_counter() - t0
train_cpu = time.thread_time() - c0

model.eval()
xi = torch.rand(BATCH, 1, 28, 28)
with torch.no_grad():
    model(xi)
    t1 = time.perf_counter()
    c1 = time.thread_time()
    for _ in range(a.infer_batches):
        model(xi)
    infer_time = time.perf_counter() - t1
    infer_cpu = time.thread_time() - c1

print('RESULT ' + json.dumps({
    'framework': 'pytorch', 'model': a.model, 'backend': 'torch-cpu', 'threads': a.threads,
    'steps': a.steps, 'warmup': a.warmup, 'inferBatches': a.infer_batches,
    'device': f'PyTorch {torch.__version__} CPU ({torch.get_num_threads()} thread(s))',
    'train_samples_per_sec': a.steps * BATCH / train_time,
    'infer_samples_per_sec': a.infer_batches * BATCH / infer_time,
    # Per CPU-second of the stepping thread (with one thread, all of the compute), as worker.mjs.
    'train_samples_per_cpu_sec': a.steps * BATCH / train_cpu,
    'infer_samples_per_cpu_sec': a.infer_batches * BATCH / infer_cpu,
    'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
