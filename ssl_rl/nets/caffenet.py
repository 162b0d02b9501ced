"""CaffeNet trunk up to pool5 with batch norm after every convolution (the paper's shared trunk)."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

CONV_LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5")
POOL_LAYERS: tuple[str, ...] = ("pool1", "pool2", "pool5")
# Execution order of the trunk; every name is a submodule and a valid `forward_layers` key.
LAYER_ORDER: tuple[str, ...] = (
    "conv1",
    "pool1",
    "conv2",
    "pool2",
    "conv3",
    "conv4",
    "conv5",
    "pool5",
)

_POOL_KERNEL, _POOL_STRIDE = 3, 2
_CONV1_KERNEL = 11


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _ceil_pool_output_size(size: int) -> int:
    """PyTorch's (= Caffe's) ceil-mode pooling size; the last window must start inside the input."""
    out = -(-(size - _POOL_KERNEL) // _POOL_STRIDE) + 1
    if (out - 1) * _POOL_STRIDE >= size:
        out -= 1
    return out


class ConvBNReLU(nn.Sequential):
    """Convolution (no bias: the batch norm supplies it) → BatchNorm2d → ReLU."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, groups: int
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)


class CaffeNetTrunk(nn.Module):
    """CaffeNet conv1..pool5 with BN (Noroozi & Favaro's BN variant); input (N, C, H, W).

    `width` scales every channel count (the demo runs narrow trunks); `conv1_stride` is 2 for
    64–75 px tiles and 4 for 227 px transfer inputs; `groups` > 1 restores the grouped conv2/4/5
    of the original CaffeNet. Pooling uses Caffe's ceil mode, so 64 px tiles with stride 2 give
    pool5 = 256×3×3 = 2304 and 227 px inputs with stride 4 give 256×6×6 = 9216.
    """

    def __init__(
        self,
        width: float = 1.0,
        conv1_stride: int = 2,
        in_channels: int = 3,
        groups: int = 1,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"CaffeNetTrunk: width must be > 0, got {width}")
        if conv1_stride < 1 or in_channels < 1 or groups < 1:
            raise ValueError(
                "CaffeNetTrunk: conv1_stride, in_channels and groups must be >= 1, got "
                f"{conv1_stride}, {in_channels}, {groups}"
            )
        self.width = width
        self.conv1_stride = conv1_stride
        self.in_channels = in_channels
        self.groups = groups

        def scaled(channels: int) -> int:
            # A multiple of `groups`, so grouped convolutions stay valid at any width.
            return max(groups, groups * round(channels * width / groups))

        c1, c2, c3, c4, c5 = (scaled(c) for c in (96, 256, 384, 384, 256))
        self.channels: tuple[int, ...] = (c1, c2, c3, c4, c5)
        self.out_channels = c5

        self.conv1 = ConvBNReLU(in_channels, c1, _CONV1_KERNEL, conv1_stride, 0, groups=1)
        self.pool1 = self._pool()
        self.conv2 = ConvBNReLU(c1, c2, 5, 1, 2, groups=groups)
        self.pool2 = self._pool()
        self.conv3 = ConvBNReLU(c2, c3, 3, 1, 1, groups=1)
        self.conv4 = ConvBNReLU(c3, c4, 3, 1, 1, groups=groups)
        self.conv5 = ConvBNReLU(c4, c5, 3, 1, 1, groups=groups)
        self.pool5 = self._pool()
        self.reset_parameters()

    @staticmethod
    def _pool() -> nn.MaxPool2d:
        return nn.MaxPool2d(_POOL_KERNEL, _POOL_STRIDE, ceil_mode=True)

    def reset_parameters(self) -> None:
        """Kaiming-normal convolutions; batch norm weight 1, bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _propagate_sizes(self, height: int, width: int) -> tuple[dict[str, tuple[int, int]], str]:
        """Sizes after each layer, up to and including the first empty one (named, or "")."""
        size = (height, width)
        sizes: dict[str, tuple[int, int]] = {}
        for name in LAYER_ORDER:
            if name == "conv1":
                stride = self.conv1_stride
                size = (
                    _conv_output_size(size[0], _CONV1_KERNEL, stride, 0),
                    _conv_output_size(size[1], _CONV1_KERNEL, stride, 0),
                )
            elif name in POOL_LAYERS:
                size = (_ceil_pool_output_size(size[0]), _ceil_pool_output_size(size[1]))
            sizes[name] = size
            if min(size) < 1:
                return sizes, name
        return sizes, ""

    def layer_sizes(self, height: int, width: int | None = None) -> dict[str, tuple[int, int]]:
        """Spatial (h, w) after every layer of `LAYER_ORDER` for an input of the given size.

        Raises ValueError if any layer would have no output pixel.
        """
        width = height if width is None else width
        sizes, empty_layer = self._propagate_sizes(height, width)
        if empty_layer:
            raise ValueError(
                f"CaffeNetTrunk: a {height}x{width} px input is too small for conv1 stride "
                f"{self.conv1_stride} ({empty_layer} would be empty); use inputs of at least "
                f"{self.min_input_size()} px"
            )
        return sizes

    def min_input_size(self) -> int:
        """Smallest square input size that still yields a pool5 of at least 1×1."""
        size = 1
        while self._propagate_sizes(size, size)[1]:
            size += 1
        return size

    def output_dim(self, input_size: int) -> int:
        """Flattened pool5 size for a square `input_size` input."""
        h, w = self.layer_sizes(input_size)["pool5"]
        return self.out_channels * h * w

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"CaffeNetTrunk expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}"
            )
        self.layer_sizes(x.shape[-2], x.shape[-1])

    def forward_layers(self, x: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        """Activations of the requested layers (conv* after BN+ReLU, pool* after pooling).

        Stops after the deepest requested layer.
        """
        wanted = set(layers)
        unknown = wanted - set(LAYER_ORDER)
        if unknown:
            raise ValueError(f"CaffeNetTrunk: unknown layers {sorted(unknown)}; use {LAYER_ORDER}")
        self._check_input(x)
        out: dict[str, Tensor] = {}
        for name in LAYER_ORDER:
            if len(out) == len(wanted):
                break
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x
        return out

    def forward_until(self, x: Tensor, layer: str) -> Tensor:
        """Activation of one layer (see `forward_layers`)."""
        return self.forward_layers(x, [layer])[layer]

    def forward(self, x: Tensor) -> Tensor:
        """pool5 features (N, C5, s, s)."""
        return self.forward_until(x, "pool5")

    def forward_parts(self, parts: Tensor) -> Tensor:
        """Run every part (tile or frame) through the trunk: (B, n, C, H, W) → (B, n, D)."""
        if parts.dim() != 5:
            raise ValueError(
                f"CaffeNetTrunk.forward_parts expects (B, n, C, H, W), got {tuple(parts.shape)}"
            )
        batch, num_parts = parts.shape[:2]
        pool5: Tensor = self(parts.flatten(0, 1))
        return pool5.reshape(batch, num_parts, -1)
