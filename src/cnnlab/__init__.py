"""cnnlab: the landmark CNNs of the CS231n lectures, runnable, inspectable and measured."""
from .errors import CnnlabError
from .registry import ModelInfo, Paper, create_model, list_models, model_info, register_model
from .analysis.zoo import zoo_table

__version__ = "0.1.0"

__all__ = [
    "CnnlabError",
    "ModelInfo",
    "Paper",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
    "zoo_table",
    "__version__",
]
