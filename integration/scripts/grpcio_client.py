"""A gRPC C-core client (grpcio) for Crimson's integration tests.

Calls arrive on stdin, one JSON object per line:
  {"path": "/runtime.v1.RuntimeService/Version", "stream": false,
   "request": "<base64 of the encoded request>", "timeout": 10}
and each answer goes to stdout as one line:
  {"code": "OK", "details": "", "responses": ["<base64>", ...]}

The channel is made the way a C-core user makes it, with no authority override, so the
:authority sent for the unix socket is C-core's own (the percent-encoded socket path).
"""

import base64
import json
import sys

import grpc


def identity(data):
    return data


def call(channel, order):
    request = base64.b64decode(order["request"])
    timeout = order.get("timeout", 30)
    responses = []
    try:
        if order.get("stream"):
            method = channel.unary_stream(order["path"], identity, identity)
            for response in method(request, timeout=timeout):
                responses.append(response)
        else:
            method = channel.unary_unary(order["path"], identity, identity)
            responses.append(method(request, timeout=timeout))
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    return {
        "code": code.name,
        "details": details,
        "responses": [base64.b64encode(r).decode() for r in responses],
    }


def main():
    channel = grpc.insecure_channel("unix://" + sys.argv[1])
    for line in sys.stdin:
        answer = call(channel, json.loads(line))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
