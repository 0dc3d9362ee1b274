"""MusicVAE Studio: a local web page and JSON API for GrooVAE's drum tools.

``create_app(models)`` builds the FastAPI app; ``musicvae studio`` serves it on 127.0.0.1.
"""

from musicvae.web.app import create_app

__all__ = ["create_app"]
