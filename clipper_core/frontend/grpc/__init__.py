"""The Open Inference Protocol (KServe V2) over gRPC: ``inference.GRPCInferenceService`` as a third adapter
over the query path, on its own port (``CLIPPER_GRPC_PORT``, off unless set; grpcio is the ``grpc`` extra).

``grpc_predict_v2.proto`` is the published protocol, field for field; ``grpc_predict_v2_pb2`` and
``grpc_predict_v2_pb2_grpc`` are generated from it when the package is built (``setup.py``), so a client can use
them (``GRPCInferenceServiceStub``). ``tensors`` decodes ModelInfer's tensors and encodes its answer, ``service``
holds the RPCs, ``server`` starts and stops the endpoint. Importing this package imports neither grpcio nor the
generated modules.
"""
