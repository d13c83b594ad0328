"""One LiteRT model file, run with one interpreter per thread.

LiteRT interpreters are not thread-safe, and an API worker runs analyses on several threads; an
interpreter is cheap beside the model bytes, which are read once and shared.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np


class LiteRTModel:
    def __init__(self, model_path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter  # only the LiteRT models need it

        self._model = model_path.read_bytes()
        self._interpreter_class = Interpreter
        self._local = threading.local()

    def _interpreter(self) -> tuple[Any, int, list[int]]:  # LiteRT's Interpreter ships no type hints
        """This thread's interpreter, its input's index and its outputs' indices, widest last axis first
        (so callers name outputs by shape, not by the exporter's tensor names); looked up once per thread."""
        built = getattr(self._local, "built", None)
        if built is None:
            interpreter = self._interpreter_class(model_content=self._model, num_threads=1)
            interpreter.allocate_tensors()
            outputs = sorted(interpreter.get_output_details(), key=lambda d: -d["shape"][-1])
            built = (interpreter, interpreter.get_input_details()[0]["index"], [o["index"] for o in outputs])
            self._local.built = built
        return built

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for one input tensor, widest last axis first."""
        interpreter, input_index, output_indices = self._interpreter()
        interpreter.set_tensor(input_index, tensor)
        interpreter.invoke()
        return [interpreter.get_tensor(index) for index in output_indices]
