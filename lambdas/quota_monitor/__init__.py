"""API Gateway usage-plan quota monitor: the Lambda runtime package.

The flow reads in one direction: read API Gateway (``apigateway``, ``usage_pages``),
compute usage per key (``periods``, ``usage``), publish metrics (``metrics``),
evaluate and deliver alerts. ``scan`` and ``monitor`` compose the steps; ``handler``
is the Lambda entry point and only wires them together.
"""
