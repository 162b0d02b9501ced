"""Shared CaffeNet-BN trunk and the spatial/temporal ordering heads with all-order scoring."""

from ssl_rl.nets.caffenet import CONV_LAYERS, LAYER_ORDER, CaffeNetTrunk
from ssl_rl.nets.order_head import OrderHead, lexicographic_order
from ssl_rl.nets.spatial_head import SpatialOrderHead
from ssl_rl.nets.temporal_head import TemporalOrderHead

__all__ = [
    "CONV_LAYERS",
    "LAYER_ORDER",
    "CaffeNetTrunk",
    "OrderHead",
    "SpatialOrderHead",
    "TemporalOrderHead",
    "lexicographic_order",
]
