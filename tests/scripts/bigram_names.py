"""A bigram character model of names, counted and then learned, in the style of the lectures
that start language modelling from counts; runs with `import torch` or with
`import tinygrad_mlp as torch` (only the import line changes)."""

import torch
import torch.nn.functional as F

words = """emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily
elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace chloe penelope
layla riley zoey nora lily eleanor hannah lillian addison aubrey ellie stella natalie zoe leah
hazel violet aurora savannah audrey brooklyn bella claire skylar lucy paisley everly anna
caroline nova genesis emilia kennedy samantha maya willow kinsley naomi aaliyah elena sarah
ariana allison gabriella alice madelyn cora ruby eva serenity autumn adeline hailey gianna
valentina isla eliana quinn nevaeh ivy sadie piper lydia alexa josephine emery julia delilah
arianna vivian kaylee sophie brielle madeline""".split()
print(len(words), words[:5])

# ---- counts
chars = sorted(set("".join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
V = len(stoi)
print(V, itos[1], itos[V - 1])

N = torch.zeros((V, V), dtype=torch.int32)
for w in words:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:], strict=False):
        N[stoi[ch1], stoi[ch2]] += 1
print(N.shape, N.dtype, N.sum())
print(N[0])
print(N[:4, :10])
print(N.max(), N.argmax(), N[stoi["a"]].argmax().item())

p = N[0].float()
p = p / p.sum()
print(p)
print(torch.allclose(p.sum(), torch.tensor(1.0)), p.dtype)

g = torch.Generator().manual_seed(2147483647)
print(type(g).__name__, g.initial_seed())
draws = torch.multinomial(p, num_samples=20, replacement=True, generator=g)
print(draws.shape, draws.dtype)
print("sample draws:", draws.tolist())

P = (N + 1).float()
P /= P.sum(1, keepdims=True)
print(P.shape, P[0, :6])
print(P.sum(1)[:5])

for i in range(5):
    out = []
    ix = 0
    while True:
        p = P[ix]
        ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
        out.append(itos[ix])
        if ix == 0:
            break
    print(f"sample {i}: {''.join(out)}")

log_likelihood = 0.0
n = 0
for w in words:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:], strict=False):
        prob = P[stoi[ch1], stoi[ch2]]
        logprob = torch.log(prob)
        log_likelihood += logprob
        n += 1
print(f"{log_likelihood=}")
nll = -log_likelihood
print(f"{nll=}")
print(f"{nll / n}")
print(f"{(nll / n).item():.4f}")

# ---- the same model learned by gradient descent
xs, ys = [], []
for w in words:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:], strict=False):
        xs.append(stoi[ch1])
        ys.append(stoi[ch2])
xs = torch.tensor(xs)
ys = torch.tensor(ys)
num = xs.nelement()
print("number of examples:", num, xs.dtype, xs[:8])

xenc = F.one_hot(xs, num_classes=V).float()
print(xenc.shape, xenc.dtype, xenc[:2, :8])

W = torch.zeros((V, V), requires_grad=True)
for k in range(20):
    logits = xenc @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[torch.arange(num), ys].log().mean() + 0.01 * (W**2).mean()
    if k % 5 == 0:
        print(k, loss)
    W.grad = None
    loss.backward()
    W.data += -50 * W.grad
print(f"final loss {loss.item():.4f}")
print(W.grad.shape, W.grad.abs().max() > 0, W.is_leaf, logits.grad_fn)
print(probs[0, :5])
