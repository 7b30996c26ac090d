#!/usr/bin/env python3
"""PyTorch's side of tools/bench/e2e.mjs: the work `kiln train --model M --dataset fashion-mnist:DIR`
does, written the way a PyTorch user would, so that the two end-to-end times compare like for like:

- read the four gzipped IDX files from DIR (as Kiln's reader does), scale to [0, 1];
- hold out min(5000, n // 10) random training examples for validation (Kiln's default);
- standardise with the mean/std of the training split;
- 2 sanity validation batches (Lightning's and Kiln's default), then per epoch: a shuffled pass in
  batches of --batch-size with Adam (lr 1e-3), loss and accuracy read back every step; a validation
  pass (batch 256); the last and best weights (by validation accuracy) saved with the optimizer state;
- after training, a test pass (batch 256) for loss and accuracy, and a second one for the confusion
  matrix and per-class precision/recall/F1 (Kiln's test report), written to --out.

The models are the ones tools/bench/torch_bench.py trains (LeNet-5 with ReLU and max-pooling,
Kaiming-normal init as @kiln/zoo's; ResNet-18 with the 3x3 stem and no max-pool). Prints one line
`RESULT {...}` (JSON). Used only by tools/bench/e2e.mjs."""
import argparse, gzip, json, os, resource, struct, time

T_START = time.perf_counter()
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
T_IMPORTED = time.perf_counter()

p = argparse.ArgumentParser()
p.add_argument('--model', required=True, choices=['lenet5', 'resnet18'])
p.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--epochs', type=int, default=2)
p.add_argument('--batch-size', type=int, default=64)
p.add_argument('--lr', type=float, default=1e-3)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--threads', type=int, required=True)
p.add_argument('--out', required=True)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
rng = np.random.default_rng(a.seed)
os.makedirs(a.out, exist_ok=True)


def idx(name):
    with gzip.open(os.path.join(a.data_dir, name), 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


t_data = time.perf_counter()
train_x = idx('train-images-idx3-ubyte.gz')
train_y = idx('train-labels-idx1-ubyte.gz')
test_x = idx('t10k-images-idx3-ubyte.gz')
test_y = idx('t10k-labels-idx1-ubyte.gz')
n_val = min(5000, len(train_x) // 10)
perm = rng.permutation(len(train_x))
val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
x_tr = torch.from_numpy(train_x[tr_idx]).float().div_(255).unsqueeze(1)
y_tr = torch.from_numpy(train_y[tr_idx].astype(np.int64))
x_val = torch.from_numpy(train_x[val_idx]).float().div_(255).unsqueeze(1)
y_val = torch.from_numpy(train_y[val_idx].astype(np.int64))
x_te = torch.from_numpy(test_x).float().div_(255).unsqueeze(1)
y_te = torch.from_numpy(test_y.astype(np.int64))
mean, std = x_tr.mean().item(), x_tr.std().item()
data_seconds = time.perf_counter() - t_data


def norm(x):
    return (x - mean) / std


def lenet5():
    m = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    for layer in list(m)[:-1]:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')
            nn.init.zeros_(layer.bias)
    return m


def resnet18():
    import torchvision
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


model = lenet5() if a.model == 'lenet5' else resnet18()
opt = torch.optim.Adam(model.parameters(), lr=a.lr)


def evaluate(x, y, batches=None):
    """Mean loss and accuracy over (x, y) in batches of 256 (the first `batches` only when given)."""
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for k, i in enumerate(range(0, len(x), 256)):
            if batches is not None and k >= batches:
                break
            xb, yb = norm(x[i:i + 256]), y[i:i + 256]
            logits = model(xb)
            loss_sum += F.cross_entropy(logits, yb, reduction='sum').item()
            correct += (logits.argmax(1) == yb).sum().item()
            n += len(yb)
    model.train()
    return loss_sum / n, correct / n


evaluate(x_val, y_val, batches=2)  # sanity validation steps
best_acc, best_epoch = -1.0, None
train_seconds = 0.0
epoch_seconds_all = []
history = []
t_epoch = time.perf_counter()
for epoch in range(a.epochs):
    model.train()
    t0 = time.perf_counter()
    order = torch.from_numpy(rng.permutation(len(x_tr)))
    loss_sum, acc_sum, steps = 0.0, 0.0, 0
    for i in range(0, len(order), a.batch_size):
        bi = order[i:i + a.batch_size]
        xb, yb = norm(x_tr[bi]), y_tr[bi]
        opt.zero_grad()
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item()
        acc_sum += (logits.argmax(1) == yb).float().mean().item()
        steps += 1
    epoch_seconds = time.perf_counter() - t0
    train_seconds += epoch_seconds
    val_loss, val_acc = evaluate(x_val, y_val)
    history.append({'epoch': epoch, 'train_loss': loss_sum / steps, 'train_acc': acc_sum / steps, 'val_loss': val_loss, 'val_acc': val_acc,
                    'train_samples_per_sec': len(order) / epoch_seconds})
    state = {'model': model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': epoch}
    torch.save(state, os.path.join(a.out, 'last.pt'))
    if val_acc > best_acc:
        best_acc, best_epoch = val_acc, epoch
        torch.save(state, os.path.join(a.out, 'best.pt'))
    # Training, validation and checkpoints, as Kiln's epoch lines are timed.
    epoch_seconds_all.append(time.perf_counter() - t_epoch)
    t_epoch = time.perf_counter()

test_loss, test_acc = evaluate(x_te, y_te)
# The test report: a second pass for the confusion matrix and per-class precision/recall/F1.
model.eval()
cm = np.zeros((10, 10), dtype=np.int64)
with torch.no_grad():
    for i in range(0, len(x_te), 256):
        pred = model(norm(x_te[i:i + 256])).argmax(1).numpy()
        np.add.at(cm, (y_te[i:i + 256].numpy(), pred), 1)
tp = np.diag(cm).astype(np.float64)
precision = tp / np.maximum(cm.sum(0), 1)
recall = tp / np.maximum(cm.sum(1), 1)
f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
with open(os.path.join(a.out, 'test_report.json'), 'w') as f:
    json.dump({'confusion_matrix': cm.tolist(), 'precision': precision.tolist(), 'recall': recall.tolist(), 'f1': f1.tolist()}, f)

print('RESULT ' + json.dumps({
    'framework': 'pytorch', 'model': a.model, 'threads': torch.get_num_threads(), 'epochs': a.epochs,
    'device': f'PyTorch {torch.__version__} CPU ({torch.get_num_threads()} thread(s))',
    'train_examples': len(x_tr), 'val_examples': len(x_val), 'test_examples': len(x_te),
    'train_samples_per_sec': a.epochs * len(x_tr) / train_seconds,
    'last_epoch_samples_per_sec': history[-1]['train_samples_per_sec'],
    'val_accuracy': history[-1]['val_acc'], 'test_accuracy': test_acc, 'test_loss': test_loss, 'best_epoch': best_epoch,
    'data_seconds': data_seconds, 'epoch_seconds': epoch_seconds_all, 'test_seconds': time.perf_counter() - t_epoch,
    'import_seconds': T_IMPORTED - T_START, 'in_process_seconds': time.perf_counter() - T_START,
    'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
