"""ModelInfer's tensors to and from the query path: the decoding and encoding of the V2 REST adapter
(:mod:`clipper_core.frontend.v2`, :mod:`~clipper_core.frontend.v2_binary`) applied to the protobuf messages.

The request holds one input tensor whose first dimension is the batch; each row becomes one query, as over REST.
Its elements come either in ``raw_input_contents[0]`` (what ``tritonclient.grpc`` sends: a numeric tensor's rows
are read-only numpy views of those bytes, no copy; BYTES elements length-prefixed) or in the typed field of
``inputs[0].contents`` (``fp32_contents``, ``fp64_contents``, ``int_contents``, ``int64_contents``,
``bytes_contents``). The datatype is the app's (``v2.DATATYPES``: FP32, FP64, INT32, BYTES); an integers app
also takes INT64 (numpy's default integer), whose values must fit its 32 bits. Errors are those of the REST
adapter, with the same messages where the two protocols' fields are the same.

The answer has the REST answer's one output tensor ``output`` (FP64 when every output is a number, else BYTES
holding each output's JSON): in ``raw_output_contents`` when the request came raw (as Triton answers; what
``InferResult.as_numpy`` reads), else in the output's ``contents``. Its ``parameters`` hold what the REST
output's parameters hold (``default``, ``default_explanation``, ``query_id``: one entry per row), each as a JSON
array in a ``string_param``, since an InferParameter holds one scalar.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from clipper_core.errors import InvalidInput
from clipper_core.frontend.fields import read_uid
from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb
from clipper_core.frontend.v2 import DATATYPES, output_tensor
from clipper_core.frontend.v2_binary import NUMPY, binary_rows, datatype_and_shape, tensor_bytes
from clipper_core.inputs import InputType
from clipper_core.serving.prediction import Prediction

__all__ = ["ONE_TENSOR", "infer_response", "request_items", "request_uid"]

ONE_TENSOR = "a V2 inference request's 'inputs' holds exactly one tensor"
CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents", "INT64": "int64_contents",
            "BYTES": "bytes_contents"}
"""The field of ``InferTensorContents`` that holds each datatype the apps take."""
_INT64 = np.dtype("<i8")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def request_items(request: pb.ModelInferRequest, input_type: InputType) -> tuple[list[Any], bool]:
    """The query path's inputs of a ModelInfer request, and whether its tensor came in ``raw_input_contents``."""
    inputs = request.inputs
    if len(inputs) != 1:
        raise InvalidInput(ONE_TENSOR)
    tensor = inputs[0]
    expected = DATATYPES[input_type]
    datatype, shape = tensor.datatype, list(tensor.shape)
    int64 = datatype == "INT64" and input_type is InputType.INTS
    header = {"datatype": datatype, "shape": shape}
    datatype_and_shape(header, "INT64" if int64 else expected)  # the REST adapter's checks and messages
    raw = request.raw_input_contents
    if raw:
        if len(raw) != 1:
            raise InvalidInput(f"'raw_input_contents' has {len(raw)} entries; it needs one per input tensor (1)")
        if tensor.HasField("contents"):
            raise InvalidInput("'inputs[0]' has both 'contents' and raw_input_contents; send one of them")
        data = raw[0]
        if int64:
            return _int64_rows(_sized(np.frombuffer(data, _INT64) if len(data) % 8 == 0 else None, shape, data),
                               shape), True
        return binary_rows(header, memoryview(data), input_type, expected, "raw_input_contents[0] has"), True
    if datatype == "BYTES":
        return _bytes_rows(tensor.contents.bytes_contents, shape, input_type is InputType.STRINGS), False
    _feature_shape(datatype, shape)
    field = CONTENTS[datatype]
    values = getattr(tensor.contents, field)
    count = int(np.prod(shape))
    if len(values) != count:
        raise InvalidInput(f"'inputs[0]' of shape {shape} and datatype {datatype} needs {count} values but its "
                           f"contents.{field} has {len(values)}")
    if int64:
        return _int64_rows(np.array(values, dtype=_INT64), shape), False
    return list(np.array(values, dtype=NUMPY[datatype]).reshape(shape[0], -1)), False


def _feature_shape(datatype: str, shape: list[int]) -> None:
    if len(shape) < 2:
        raise InvalidInput(f"'inputs[0].shape' must be [batch, features, ...] for a {datatype} app, got {shape}")


def _sized(values: np.ndarray[Any, Any] | None, shape: list[int], data: bytes) -> np.ndarray[Any, Any]:
    """Raw INT64 elements, once their byte count matches the shape."""
    _feature_shape("INT64", shape)
    count = int(np.prod(shape))
    if values is None or values.size != count:
        raise InvalidInput(f"'inputs[0]' of shape {shape} and datatype INT64 needs {count} x 8 = {count * 8} bytes "
                           f"but raw_input_contents[0] has {len(data)}")
    return values


def _int64_rows(values: np.ndarray[Any, Any], shape: list[int]) -> list[Any]:
    """An integers app's rows from INT64 elements (a copy: the model takes int32)."""
    if values.size and (values.max() > _INT32_MAX or values.min() < _INT32_MIN):
        raise InvalidInput("'inputs[0]' of INT64 has values outside the signed 32-bit range that this app's "
                           "integers take (INT32)")
    return list(values.astype(NUMPY["INT32"]).reshape(shape[0], -1))


def _bytes_rows(elements: Any, shape: list[int], text: bool) -> list[Any]:
    """A BYTES tensor's elements from ``contents.bytes_contents``: ``str`` for a strings app, else ``bytes``."""
    if len(shape) != 1:
        raise InvalidInput(f"'inputs[0]' of BYTES must have shape [batch], got {shape}")
    if len(elements) != shape[0]:
        raise InvalidInput(f"'inputs[0]' has shape {shape} but its contents.bytes_contents holds {len(elements)} "
                           f"BYTES elements")
    out: list[Any] = []
    for i, element in enumerate(elements):
        if not element:
            raise InvalidInput(f"BYTES element {i} of 'inputs[0]' is empty")
        if text:
            try:
                out.append(element.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"BYTES element {i} of 'inputs[0]' is not valid UTF-8: {exc}") from None
        else:
            out.append(element)
    return out


def request_uid(request: pb.ModelInferRequest) -> int:
    """The request's ``parameters["uid"]`` (an ``int64_param``), else 0: the REST request's ``parameters.uid``."""
    params = request.parameters
    if "uid" not in params:
        return 0
    value = params["uid"]
    which = value.WhichOneof("parameter_choice")
    return read_uid(getattr(value, which) if which is not None else None)


def infer_response(request: pb.ModelInferRequest, predictions: list[Prediction], version: str | None,
                   raw: bool) -> pb.ModelInferResponse:
    """The answer to ``request``: the REST adapter's output tensor, raw when the request was."""
    tensor = output_tensor(predictions)
    datatype, data = tensor["datatype"], tensor["data"]
    parameters = {key: pb.InferParameter(string_param=orjson.dumps(value).decode())
                  for key, value in tensor["parameters"].items()}
    output = pb.ModelInferResponse.InferOutputTensor(name="output", datatype=datatype, shape=tensor["shape"],
                                                     parameters=parameters)
    answer = pb.ModelInferResponse(model_name=request.model_name, model_version=version or "", id=request.id)
    if raw:
        answer.raw_output_contents.append(tensor_bytes(datatype, data))
    elif datatype == "BYTES":
        output.contents.bytes_contents.extend(text.encode() for text in data)
    else:
        output.contents.fp64_contents.extend(data)
    answer.outputs.append(output)
    return answer

