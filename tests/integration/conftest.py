"""Integration tier: the real servicers and interceptors on an in-process grpc.aio server, on a real socket."""
