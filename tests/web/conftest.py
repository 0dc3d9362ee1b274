"""Fixtures for the studio tests: untrained debug-size models for each of the three roles."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def studio_models():
    """{"generate": debug, "groove": debug + humanize, "drumify": debug + tapify} TrainedModels."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    configs = {
        "generate": get_config("debug"),
        "groove": get_config("debug", "humanize=True"),
        "drumify": get_config("debug", "tapify=True,fixed_velocities=True"),
    }
    return {
        role: TrainedModel(build_model(c), c, source=f"test-{role}") for role, c in configs.items()
    }


# The 16-bar melody model's tiny stand-in: hierdec-mel_16bar's layout at debug sizes.
LONG_MELODY_OVERRIDES = "z_size=8,enc_rnn_size=[16,16],dec_rnn_size=[16,16],batch_size=4"


@pytest.fixture(scope="session")
def melody_models():
    """{"melody": debug-mel_2bar, "long_melody": a tiny hierdec-mel_16bar} TrainedModels."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    configs = {
        "melody": get_config("debug-mel_2bar"),
        "long_melody": get_config("hierdec-mel_16bar", LONG_MELODY_OVERRIDES),
    }
    return {
        role: TrainedModel(build_model(c), c, source=f"test-{role}") for role, c in configs.items()
    }


# A trio model's tiny stand-in: hierdec-trio_16bar's layout at debug sizes.
TRIO_OVERRIDES = "z_size=8,enc_rnn_size=[16,16],dec_rnn_size=[16,16],batch_size=4"


@pytest.fixture(scope="session")
def trio_model():
    """An untrained tiny hierdec-trio_16bar TrainedModel (melody, bass and drums)."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    config = get_config("hierdec-trio_16bar", TRIO_OVERRIDES)
    return TrainedModel(build_model(config), config, source="test-trio")
