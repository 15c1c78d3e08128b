"""Model runtimes behind one interface: `load_model(path)` returns a `Model`
whatever the file format, so a stage never imports a runtime itself.
"""

from services.inference.base import Model, ModelLoadError, TensorInfo
from services.inference.loader import load_model

__all__ = ["Model", "ModelLoadError", "TensorInfo", "load_model"]
