"""Layers and models: ``Module``, ``Parameter``, the layers, the U-Net, the MLP denoiser."""

from . import functional, init
from .layers import (
    Conv2d,
    Downsample,
    Dropout,
    Embedding,
    GroupNorm,
    Linear,
    ModuleList,
    Sequential,
    SiLU,
    Upsample,
)
from .mlp import MLPDenoiser
from .module import Module
from .parameter import Parameter
from .time_embedding import SinusoidalTimeEmbedding, timestep_embedding
from .unet import AttnBlock, ResBlock, UNet

__all__ = [
    "Module", "Parameter", "Linear", "Conv2d", "GroupNorm", "SiLU", "Dropout", "Embedding",
    "Upsample", "Downsample", "Sequential", "ModuleList", "SinusoidalTimeEmbedding",
    "timestep_embedding", "ResBlock", "AttnBlock", "UNet", "MLPDenoiser", "functional", "init",
]
