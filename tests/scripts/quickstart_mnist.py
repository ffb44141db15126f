"""The shape of PyTorch's official quickstart (a Dataset, DataLoaders, a Sequential model,
train and test loops printing loss and accuracy, saving and loading the weights), with a small
part of MNIST standing in for FashionMNIST; runs with `import torch` or with
`import tinygrad_mlp as torch` (only the import line changes).

Usage: python quickstart_mnist.py MNIST_DIR   (the folder with the gzip IDX files)"""

import gzip
import math
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class MNISTPart(Dataset):
    def __init__(self, root, start, stop):
        images = read_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz"))[start:stop]
        self.images = images.astype(np.float32)[:, None] / 255.0
        self.labels = read_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"))[start:stop]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return torch.tensor(self.images[idx]), int(self.labels[idx])


root = sys.argv[1]
training_data = MNISTPart(root, 0, 1280)
test_data = MNISTPart(root, 1280, 1600)

batch_size = 64

# Create data loaders.
train_dataloader = DataLoader(training_data, batch_size=batch_size)
test_dataloader = DataLoader(test_data, batch_size=batch_size)

for X, y in test_dataloader:
    print(f"Shape of X [N, C, H, W]: {X.shape}")
    print(f"Shape of y: {y.shape} {y.dtype}")
    break

device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
print(f"Using {device} device")
print(torch.backends.mps.is_available(), torch.cuda.is_available())


# Define model
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


model = NeuralNetwork().to(device)
print(model)

# numpy draws the initial weights, so that both libraries start from the same numbers
rng = np.random.default_rng(0)
with torch.no_grad():
    for name, param in model.named_parameters():
        bound = 1 / math.sqrt(param.shape[-1])
        values = rng.uniform(-bound, bound, tuple(param.shape)).astype(np.float32)
        param.copy_(torch.from_numpy(values))
        print(f"{name}: {param.shape} {param.dtype} {param.requires_grad}")

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-1)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 5 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")


epochs = 2
for t in range(epochs):
    print(f"Epoch {t + 1}\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    test(test_dataloader, model, loss_fn)
print("Done!")

torch.save(model.state_dict(), "model.pth")
print("Saved PyTorch Model State to model.pth")

model = NeuralNetwork().to(device)
print(model.load_state_dict(torch.load("model.pth", weights_only=True, map_location="cpu")))

classes = [str(digit) for digit in range(10)]

model.eval()
for i in range(3):
    x, y = test_data[i][0], test_data[i][1]
    with torch.no_grad():
        x = x.to(device)
        pred = model(x)
        predicted, actual = classes[pred[0].argmax(0)], classes[y]
        print(f'Predicted: "{predicted}", Actual: "{actual}"')
        print(pred[0].softmax(0).max(), pred.shape)
