"""The emotion classifier: the same ONNX file DeepFace's emotion client loads, run in batches."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

BATCH_SIZE = 256


class EmotionModel:
    def __init__(self, model_path: str, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(n, 48, 48, 1) float32 -> (n, 7) probabilities, each row summing to 1."""
        if len(batch) == 0:
            return np.zeros((0, 7), np.float32)
        outputs = [
            self._session.run(None, {self._input: batch[i : i + BATCH_SIZE]})[0]
            for i in range(0, len(batch), BATCH_SIZE)
        ]
        probs: np.ndarray = np.concatenate(outputs).astype(np.float64)
        normalised: np.ndarray = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
        return normalised
