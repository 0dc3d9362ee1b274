"""MusicVAE / GrooVAE models in PyTorch, numerically equal to Magenta's TensorFlow graphs."""

from musicvae.models.base import Decoder
from musicvae.models.decoder import DecoderOutput, GrooveLstmDecoder, LstmDecoder, groove_loss
from musicvae.models.encoder import BidirectionalLstmEncoder
from musicvae.models.hierarchical import HierarchicalLstmDecoder
from musicvae.models.vae import MusicVAE, build_model, kl_divergence

__all__ = [
    "BidirectionalLstmEncoder",
    "Decoder",
    "DecoderOutput",
    "GrooveLstmDecoder",
    "HierarchicalLstmDecoder",
    "LstmDecoder",
    "MusicVAE",
    "build_model",
    "groove_loss",
    "kl_divergence",
]
