"""Where a training step's time goes, and whether another formulation of Kim's
convolution would be faster: one batch of MR's shape (50 sentences padded to
64 tokens, 50-d vectors, 100 maps of widths 3, 4, 5), forward and backward,
one thread, milliseconds per batch (mean of 100 after 5 warm-up), three ways:

* conv: `conv1d` per width, as kimcnn and the reference both run it
  (oneDNN's direct convolution on CPU);
* gemm: the windows unfolded (im2col) and one matrix product per width
  (MKL's sgemm);
* shift: one product of the tokens with every width's filter taps at once,
  then the shifted slices summed.

With and without a gradient for the input (CNN-static needs none). Run it
under kimcnn's reproducible pins (ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2,STRICT MKL_ENABLE_INSTRUCTIONS=AVX2)
and without them to see what capping the kernels at AVX2 costs.

Usage: $TORCH_PY bench/conv_kernels.py [--len 64]
"""
import argparse
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--len", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    B, L, D, M, widths = 50, a.len, 50, 100, [3, 4, 5]
    x = torch.randn(B, L, D)
    W = [torch.randn(M, D, w, requires_grad=True) for w in widths]
    bs = [torch.zeros(M, requires_grad=True) for _ in widths]
    taps = torch.cat([w.detach().permute(1, 2, 0).reshape(D, w.shape[2] * M) for w in W], 1).requires_grad_(True)

    def conv(x):
        e = x.transpose(1, 2)
        return torch.cat([torch.conv1d(e, w, b).relu().amax(2) for w, b in zip(W, bs)], 1)

    def gemm(x):
        outs = []
        for w, b in zip(W, bs):
            k = w.shape[2]
            cols = x.unfold(1, k, 1).reshape(B * (L - k + 1), D * k)
            outs.append(torch.addmm(b, cols, w.reshape(M, D * k).t()).view(B, L - k + 1, M).relu().amax(1))
        return torch.cat(outs, 1)

    def shift(x):
        z = (x.reshape(B * L, D) @ taps).view(B, L, -1)
        outs, off = [], 0
        for w, b in zip(W, bs):
            k = w.shape[2]
            y = b
            for j in range(k):
                y = y + z[:, j:j + L - k + 1, off + j * M:off + (j + 1) * M]
            off += k * M
            outs.append(y.relu().amax(1))
        return torch.cat(outs, 1)

    with torch.no_grad():
        ref = conv(x)
        for name, f in [("gemm", gemm), ("shift", shift)]:
            print(f"{name}: largest difference from conv {(f(x) - ref).abs().max().item():.2e}")
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels")
    print("| way | input grad | ms per batch |")
    print("|---|---|---|")
    for grad in [True, False]:
        x.requires_grad_(grad)
        for name, f in [("conv", conv), ("gemm", gemm), ("shift", shift)]:
            for _ in range(5):
                f(x).sum().backward()
            t = time.perf_counter()
            for _ in range(100):
                f(x).sum().backward()
            print(f"| {name} | {'yes' if grad else 'no'} | {(time.perf_counter() - t) * 10:.2f} |")


if __name__ == "__main__":
    main()
