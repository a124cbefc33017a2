"""The graph stage: a model's op graph (ONNX ops as exported and with fixed shapes, an onnxruntime CPU session
check, LiteRT builtins of the really converted model), made once into a saved, cached OpGraph artifact that the
compatibility report reads instead of exporting."""

from .make import TFLITE_MODES, cache_root, graph_files, graph_key, load_graph, make_graph

__all__ = ["TFLITE_MODES", "cache_root", "graph_files", "graph_key", "load_graph", "make_graph"]
