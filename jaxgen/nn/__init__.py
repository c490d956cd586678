"""Reusable Flax linen modules: MLPs, conv encoders/decoders, upsampling."""

from jaxgen.nn.conv import ConvDecoder, ConvEncoder, check_image_shape
from jaxgen.nn.mlp import MLP
from jaxgen.nn.upsample import PhaseConvTranspose, depth_to_space

__all__ = [
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "PhaseConvTranspose",
    "check_image_shape",
    "depth_to_space",
]
