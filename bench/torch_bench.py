#!/usr/bin/python3
"""Training throughput of PyTorch (CPU) on the networks of bench/torch_bench.ts, for the ratio of
memristor-tfjs to PyTorch. Not a dependency of the package: Debian's python3-torch
(`apt-get install python3-torch`, run with /usr/bin/python3).

The same architectures as models/mcnn.ts and models/resnet.ts (float; PyTorch has no quantizers):
  mcnn      conv 3x3 8 same + ReLU, max pool 2, conv 3x3 12 valid + ReLU, max pool 3, FC 192 -> 10, on 28x28x1
  resnet20  He et al.'s CIFAR ResNet-20 with projection shortcuts (1x1 conv + BN), no conv bias,
            BN momentum 0.1 (tfjs 0.9), global average pooling, FC 64 -> 10, on 32x32x3
The step is what the tfjs side times: forward, softmax cross-entropy, backward, Adam (lr 1e-3) on
one fixed random batch, synchronous (loss.item()). Warm-up steps first; each (model, threads)
configuration is timed `--rounds` times, interleaved, and the best round is kept.

  /usr/bin/python3 bench/torch_bench.py [--models mcnn,resnet20] [--threads 1,2] [--batch 64]
                                        [--steps N] [--rounds R] [--out FILE.json] [--params]
Prints one JSON object on stdout (and writes it to --out if given).
"""
import argparse
import json
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mcnn(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 12, 3)
        self.fc = nn.Linear(192, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 3, 3)
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)
        self.shortcut = None
        if stride != 1 or cin != cout:  # option B: a projection where the shape changes
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class Resnet(nn.Module):
    def __init__(self, depth=20, classes=10):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, eps=1e-3, momentum=0.1)
        blocks, cin = [], 16
        for s, f in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(cin, f, 2 if s > 0 and b == 0 else 1))
                cin = f
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = {
    'mcnn': (lambda: Mcnn(), (1, 28, 28)),
    'resnet20': (lambda: Resnet(20), (3, 32, 32)),
}


def setup(name, batch):
    make, shape = MODELS[name]
    torch.manual_seed(1)
    model = make()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, *shape)
    y = torch.arange(batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='mcnn,resnet20')
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--steps', type=int, default=0, help='timed steps a round (default: 60 for mcnn, 8 for resnet20)')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--out')
    ap.add_argument('--params', action='store_true', help='print the trainable parameters of each model as JSON and exit (the test compares them with tfjs)')
    a = ap.parse_args()
    if a.params:
        print(json.dumps({m: sum(p.numel() for p in MODELS[m][0]().parameters() if p.requires_grad) for m in MODELS}))
        return
    names = [m for m in a.models.split(',') if m]
    for m in names:
        if m not in MODELS:
            sys.exit(f'--models: unknown {m} (choose {", ".join(MODELS)})')
    threads = [int(t) for t in a.threads.split(',') if t]
    configs = [(m, t) for m in names for t in threads]
    steps = {(m, t): a.steps or (60 if m == 'mcnn' else 8) for m, t in configs}
    fns = {}
    for m, t in configs:
        torch.set_num_threads(t)
        fns[(m, t)] = setup(m, a.batch)
        for _ in range(a.warmup):
            fns[(m, t)]()
    best = {}
    for _ in range(a.rounds):
        for m, t in configs:  # interleaved: a slow moment of the shared machine hits every configuration
            torch.set_num_threads(t)
            n = steps[(m, t)]
            t0 = time.perf_counter()
            for _ in range(n):
                fns[(m, t)]()
            sps = n * a.batch / (time.perf_counter() - t0)
            best[(m, t)] = max(best.get((m, t), 0), sps)
    result = {
        'framework': 'pytorch',
        'torch': torch.__version__,
        'python': platform.python_version(),
        'batchSize': a.batch,
        'optimizer': 'adam 1e-3',
        'rounds': a.rounds,
        'rows': [{'model': m, 'threads': t, 'samplesPerSec': round(best[(m, t)], 1), 'steps': steps[(m, t)]} for m, t in configs],
        'note': 'best of interleaved rounds after warm-up; one fixed random batch; float32 CPU; torch.set_num_threads per row',
    }
    text = json.dumps(result, indent=2)
    if a.out:
        with open(a.out + '.tmp', 'w') as f:
            f.write(text + '\n')
        import os
        os.replace(a.out + '.tmp', a.out)
    print(text)


if __name__ == '__main__':
    main()
