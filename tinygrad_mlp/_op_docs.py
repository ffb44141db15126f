"""What each registered op is called by and what its derivative is, in words: the source of the
op table in docs/autograd.md (``python docs/op_table.py`` rewrites it; a test keeps it current).

Every op in ``ops.OPS`` has one entry here: ``name: (called by, derivative)``.
"""

from __future__ import annotations

from .ops import OPS

OP_DOCS: dict[str, tuple[str, str]] = {
    "add": ("`+`, `add`", "1 for each input"),
    "sub": ("`-`, `sub`", "1 for a, −1 for b"),
    "mul": ("`*`, `mul`", "b for a, a for b"),
    "div": ("`/`, `div`", "1/b for a, −a/b² for b"),
    "remainder": ("`%`, `remainder`", "1 for a, −floor(a/b) for b"),
    "neg": ("unary `-`, `neg`", "−1"),
    "pow": (
        "`a ** c` (c a number), `pow`, `sqrt`, `rsqrt`, `reciprocal`",
        "c·a^(c−1) (0 when c = 0)",
    ),
    "pow_tensor": (
        "`a ** b` with a tensor b, `c ** a`",
        "b·a^(b−1) for a; a^b·log a for b (0 where a ≤ 0)",
    ),
    "abs": ("`abs`", "sign(a) (0 at 0)"),
    "sign": ("`sign`", "0"),
    "clamp": ("`clamp`/`clip` with number bounds", "1 inside [min, max], 0 where clipped"),
    "maximum": (
        "`tm.maximum`, `clamp` with tensor bounds",
        "1 to the larger, ½ each at a tie, as PyTorch",
    ),
    "minimum": (
        "`tm.minimum`, `clamp` with tensor bounds",
        "1 to the smaller, ½ each at a tie, as PyTorch",
    ),
    "where": (
        "`tm.where`, `masked_fill`",
        "g where the condition holds for the first input, elsewhere for the second",
    ),
    "exp": ("`exp`", "eˣ"),
    "expm1": ("`expm1`", "eˣ"),
    "log": ("`log`", "1/x"),
    "log1p": ("`log1p`", "1/(1+x)"),
    "sin": ("`sin`", "cos x"),
    "cos": ("`cos`", "−sin x"),
    "erf": ("`erf`", "2/√π·e^(−x²)"),
    "relu": ("`x.relu()`, `F.relu`, `nn.ReLU`", "1 where x > 0, else 0"),
    "sigmoid": ("`x.sigmoid()`, `F.sigmoid`, `nn.Sigmoid`", "s(1 − s)"),
    "tanh": ("`x.tanh()`, `F.tanh`, `nn.Tanh`", "1 − t²"),
    "leaky_relu": ("`F.leaky_relu`, `nn.LeakyReLU`", "1 where x > 0, else the slope"),
    "elu": ("`F.elu`, `nn.ELU`", "1 where x > 0, else α·eˣ"),
    "gelu": ("`F.gelu`, `nn.GELU(approximate=)`", "Φ(x) + x·φ(x) (or that of the tanh form)"),
    "silu": ("`F.silu`, `nn.SiLU`", "s(x)·(1 + x(1 − s(x)))"),
    "softplus": ("`F.softplus`, `nn.Softplus`", "sigmoid(βx); 1 above the threshold"),
    "mish": ("`F.mish`, `nn.Mish`", "tanh(sp(x)) + x·sigmoid(x)·(1 − tanh²(sp(x)))"),
    "hardtanh": ("`F.hardtanh`, `nn.Hardtanh`", "1 strictly inside (min, max), else 0"),
    "relu6": ("`F.relu6`, `nn.ReLU6`", "1 strictly inside (0, 6), else 0"),
    "hardswish": ("`F.hardswish`, `nn.Hardswish`", "0 up to -3, x/3 + 1/2 inside, 1 from 3 up"),
    "softmax": ("`softmax(dim)`, `F.softmax`, `nn.Softmax`", "s ⊙ (g − Σ g ⊙ s), along the dim"),
    "log_softmax": (
        "`log_softmax(dim)`, `F.log_softmax`, `nn.LogSoftmax`",
        "g − softmax · Σ g, along the dim",
    ),
    "sum": ("`sum`", "g copied"),
    "mean": ("`mean`", "g/n"),
    "var": ("`var`, `std`, `var_mean`, `std_mean`", "2(x − mean)/(n − correction)"),
    "amax": ("`amax`/`amin`/`max()`/`min()`", "g at the maxima, split between ties"),
    "prod": ("`prod`", "the product of the others (exact at zeros)"),
    "reshape": ("`view`/`reshape`/`flatten`/`unsqueeze`/`squeeze`", "g reshaped back"),
    "permute": ("`permute`/`transpose`/`T`/`t()`", "the inverse permutation"),
    "expand": ("`expand`/`repeat`", "summed over the broadcast dims"),
    "getitem": (
        "`a[index]` (ints, slices, None, ..., int tensors, bool masks), `gather`, `max(dim)`",
        "g scattered back (repeated indices add)",
    ),
    "scatter": (
        "`scatter_add`, `scatter_reduce`, `index_add` (getitem's adjoint)",
        "g picked at the index",
    ),
    "copy_slices": (
        "`a[index] = v`, in-place writes through a view (PyTorch's CopySlices)",
        "g with the written positions zeroed for the base; g at those positions for the value",
    ),
    "diagonal": ("`diagonal`, `diag` of a matrix", "g put back on the diagonal, zeros elsewhere"),
    "scatter_last": (
        "`scatter` (repeated positions keep the last write)",
        "g picked at each write's position (PyTorch's rule: every repeat included)",
    ),
    "cat": ("`tm.cat`, `tm.stack`", "each input's slice of g"),
    "cast": ("`.to(dtype)`, `.float()`, ..., `clone`", "g cast back"),
    "to_device": ("`.to(device)`, `.cuda()`", "g moved back"),
    "matmul": (
        "`@`, `matmul`, `mm`, `bmm`, `dot` (numpy's 1-D, 2-D and batched rules)",
        "G Bᵀ for A, Aᵀ G for B",
    ),
    "linear": (
        "`F.linear(x, w, b=None)`, `nn.Linear`",
        "G W for x, Gᵀ x for W, G summed over rows for b",
    ),
    "mlp": (
        "`nn.Sequential` on consecutive `Linear` layers and their activations",
        "layer by layer from the top: the activation's rule, then the rule of `linear`",
    ),
    "atan": ("`atan`", "1/(1+x²)"),
    "asin": ("`asin`", "1/√(1−x²)"),
    "acos": ("`acos`", "−1/√(1−x²)"),
    "atan2": ("`atan2`", "(x, −y)/(x²+y²)"),
    "cumsum": (
        "`cumsum` (and `cumprod` is a scan of products)",
        "the running sum of g from the other end",
    ),
    "einsum": (
        "`tm.einsum` (after taking diagonals and summing lone subscripts), `tensordot`, `bilinear`",
        "g contracted with the other operands",
    ),
    "linalg_solve": ("`linalg.solve`, `linalg.inv`", "A⁻ᵀG for B and −(A⁻ᵀG)Xᵀ for A"),
    "linalg_det": ("`linalg.det`", "det · A⁻ᵀ (where det = 0: the cofactors, through the SVD)"),
    "linalg_cholesky": ("`linalg.cholesky`", "the standard formula, written out in `ops/maths.py`"),
    "linalg_eigh": (
        "`linalg.eigh` (the factorisation packed into one output)",
        "the standard formula, written out in `ops/maths.py`",
    ),
    "linalg_qr": (
        "`linalg.qr` (the factorisation packed into one output)",
        "the standard formula, written out in `ops/maths.py`",
    ),
    "linalg_svd": (
        "`linalg.svd` (the factorisation packed into one output)",
        "the standard formula, written out in `ops/maths.py`",
    ),
    "cross_entropy": (
        "`F.cross_entropy`, `nn.CrossEntropyLoss` on plain class indices or probabilities",
        "softmax(z)·Σ_c y_c − y per row (÷ N for the mean)",
    ),
    "binary_cross_entropy": ("`F.binary_cross_entropy`, `nn.BCELoss`", "(p − y)/(p(1 − p))"),
    "binary_cross_entropy_with_logits": (
        "`F.binary_cross_entropy_with_logits`, `nn.BCEWithLogitsLoss`",
        "sigmoid(z) − y",
    ),
    "mse_loss": ("`F.mse_loss`, `nn.MSELoss`", "2(p − y)/n"),
    "unfold": ("`F.unfold`", "fold (unfold's adjoint)"),
    "fold": ("`F.fold`, `F.conv_transpose2d` (a product, then fold)", "unfold (fold's adjoint)"),
    "conv": ("`F.conv1d/conv2d`, `nn.Conv1d/Conv2d`", "Wᵀ G folded back for x, G colsᵀ for W"),
    "max_pool": ("`F.max_pool1d/2d`, `nn.MaxPool*`", "g at each window's first maximum"),
    "avg_pool": ("`F.avg_pool1d/2d`, `nn.AvgPool2d`", "g/divisor over each window, folded back"),
}


def markdown_table() -> str:
    """The op table of docs/autograd.md: one row per registered op, in registration order."""
    missing = [name for name in OPS if name not in OP_DOCS]
    if missing:
        raise KeyError(f"ops without an entry in tinygrad_mlp/_op_docs.py: {missing}")
    stale = [name for name in OP_DOCS if name not in OPS]
    if stale:
        raise KeyError(f"tinygrad_mlp/_op_docs.py describes ops that are not registered: {stale}")
    lines = ["| op | called by | derivative |", "| --- | --- | --- |"]
    for name in OPS:
        called_by, derivative = OP_DOCS[name]
        lines.append(f"| `{name}` | {called_by} | {derivative} |")
    return "\n".join(lines) + "\n"
