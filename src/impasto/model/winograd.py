"""3x3 convolutions as Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016), for the float32 network on a CPU.

A stride-1, padding-1 3x3 convolution over ``C`` channels into ``K`` costs ``9·C·K``
multiply-adds per output pixel. Winograd's transform computes each 4x4 block of output from
a 6x6 block of input with 36 products per channel pair, ``2.25·C·K`` per pixel: 4x fewer.
The products are 36 matrix products ``(tiles, C) @ (C, K)``; the transforms of input
(``Bᵀ d B``) and output (``Aᵀ m A``) are a product by a fixed 36x36 (16x36) matrix, which
costs memory traffic rather than arithmetic. On a core without fast bfloat16 that makes
VGG's convolutions from 256 channels up about 1.6–2x as fast as oneDNN's direct ones, and
the network's forward and backward about 0.72–0.84x the time (``docs/performance.md``).
Below 256 output channels the transforms' traffic eats the gain, so those stay direct.

The weights are fixed, so only the gradient to the input is needed, and that is itself a
3x3 convolution (the kernel turned by 180° with in and out swapped): the backward runs the
same transform with its own transformed weights. The transform is exact in exact arithmetic;
in float32 a layer's output differs from the direct convolution's by about 1e-5 of its
largest value (the interpolation points 0, ±1, ±2 keep it small), and a whole step's
gradient by about 4e-4 of its norm: far below bfloat16's rounding, which the same steps
take on CPUs that have it. Every product runs in the same order whatever the thread count
(tiles and channels are split among threads, never a sum), so the same bytes come out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Output block side and input tile side of F(4x4, 3x3).
BLOCK = 4
TILE = BLOCK + 2

# Interpolation points 0, 1, -1, 2, -2 and infinity (Lavin & Gray's F(4, 3)).
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)

#: Convolutions with fewer output channels than this stay direct (see the module's docstring).
MIN_CHANNELS = 256


def transformed_weight(weight: Tensor) -> Tensor:
    """``(K, C, 3, 3)`` -> ``(36, C, K)``: ``G w Gᵀ`` for each channel pair, computed in
    float64 and handed back as float32."""
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ai,kcij,bj->abck", g, weight.double(), g)
    return u.reshape(TILE * TILE, weight.shape[1], weight.shape[0]).float().contiguous()


def _transforms(device: torch.device) -> tuple[Tensor, Tensor]:
    """``Bᵀ ⊗ Bᵀ`` (36x36) and ``Aᵀ ⊗ Aᵀ`` (16x36): a whole tile's transform in one product."""
    bt = torch.tensor(_BT, dtype=torch.float32, device=device)
    at = torch.tensor(_AT, dtype=torch.float32, device=device)
    return torch.kron(bt, bt).contiguous(), torch.kron(at, at).contiguous()


def winograd_conv(x: Tensor, weight: Tensor, input_transform: Tensor, output_transform: Tensor) -> Tensor:
    """A stride-1, padding-1 3x3 convolution without bias of ``x`` ``(N, H, W, C)``
    (channels last, contiguous) with ``weight`` from :func:`transformed_weight`;
    returns ``(N, H', W', K)`` with ``H' >= H``, ``W' >= W`` (whole 4x4 blocks: crop it)."""
    n, h, w, c = x.shape
    rows, cols = -(-h // BLOCK), -(-w // BLOCK)
    padded = F.pad(x, (0, 0, 1, cols * BLOCK - w + 1, 1, rows * BLOCK - h + 1))  # C, then W, then H
    # (6, 6, N, rows, cols, C): every tile's pixel (i, j) side by side, then one product.
    tiles = padded.unfold(1, TILE, BLOCK).unfold(2, TILE, BLOCK).permute(4, 5, 0, 1, 2, 3)
    spectra = torch.mm(input_transform, tiles.reshape(TILE * TILE, -1)).view(TILE * TILE, n * rows * cols, c)
    products = torch.bmm(spectra, weight)
    k = weight.shape[-1]
    blocks = torch.mm(output_transform, products.view(TILE * TILE, -1))
    blocks = blocks.view(BLOCK, BLOCK, n, rows, cols, k).permute(2, 3, 0, 4, 1, 5)
    return blocks.reshape(n, rows * BLOCK, cols * BLOCK, k)


class _Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, conv: WinogradConv) -> Tensor:  # type: ignore[override]
        ctx.conv = conv  # type: ignore[attr-defined]
        return conv.convolve(x, conv.forward_weight, conv.bias)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        conv: WinogradConv = ctx.conv  # type: ignore[attr-defined]
        return conv.convolve(grad, conv.backward_weight, None), None


class WinogradConv(nn.Module):
    """A frozen stride-1, padding-1 3x3 ``nn.Conv2d`` computed as F(4x4, 3x3), forward
    and backward to the input; takes and returns ``(N, C, H, W)`` float32 in channels-last
    layout."""

    forward_weight: Tensor
    backward_weight: Tensor
    bias: Tensor
    input_transform: Tensor
    output_transform: Tensor

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1:
            raise ValueError(f"Winograd F(4x4, 3x3) needs a stride-1, padding-1 3x3 convolution, not {conv}")
        weight = conv.weight.detach()
        self.out_channels = conv.out_channels
        self.register_buffer("forward_weight", transformed_weight(weight))
        # The input's gradient: the kernel turned by 180°, in and out channels swapped.
        self.register_buffer("backward_weight", transformed_weight(weight.flip(2, 3).transpose(0, 1)))
        bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("bias", bias.clone())
        input_transform, output_transform = _transforms(weight.device)
        self.register_buffer("input_transform", input_transform)
        self.register_buffer("output_transform", output_transform)

    def convolve(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """``x`` convolved with one of the transformed weights, as a new channels-last tensor."""
        n, _, h, w = x.shape
        source = x.permute(0, 2, 3, 1)
        if not source.is_contiguous():
            source = source.contiguous()
        blocks = winograd_conv(source, weight, self.input_transform, self.output_transform)[:, :h, :w]
        out = torch.empty(
            (n, weight.shape[-1], h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last
        )
        target = out.permute(0, 2, 3, 1)
        if bias is None:
            target.copy_(blocks)
        else:
            torch.add(blocks, bias, out=target)
        return out

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = _Function.apply(x, self)
        return out
