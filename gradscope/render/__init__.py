"""Renderers: TensorBoard, HTML report, terminal."""
