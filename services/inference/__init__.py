"""Model runtimes behind one interface: `load_model(path)` returns an `InferenceModel`
whatever the file format, so a stage never imports a runtime itself.
"""

from services.inference.base import InferenceModel, ModelLoadError, TensorInfo
from services.inference.loader import load_model

__all__ = ["InferenceModel", "ModelLoadError", "TensorInfo", "load_model"]
