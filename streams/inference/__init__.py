"""ONNX Runtime inference: sessions with provider fallback, batch preprocessing, task runners."""
