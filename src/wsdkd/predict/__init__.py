"""Using a trained model (``wsdkd predict`` and ``wsdkd export``): image files to scores for the student, the
teacher's whole test-time path with its proposals, output formats, TorchScript/ONNX export.

May import every step below ``distill``; only ``cli`` imports it.
"""
