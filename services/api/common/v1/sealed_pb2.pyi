from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyConfiguration(_message.Message):
    __slots__ = ("key_id", "kem_id", "kem", "kdf_id", "kdf", "aead_id", "aead", "public_key", "not_before", "not_after")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEM_ID_FIELD_NUMBER: _ClassVar[int]
    KEM_FIELD_NUMBER: _ClassVar[int]
    KDF_ID_FIELD_NUMBER: _ClassVar[int]
    KDF_FIELD_NUMBER: _ClassVar[int]
    AEAD_ID_FIELD_NUMBER: _ClassVar[int]
    AEAD_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    kem_id: int
    kem: str
    kdf_id: int
    kdf: str
    aead_id: int
    aead: str
    public_key: bytes
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., kem_id: _Optional[int] = ..., kem: _Optional[str] = ..., kdf_id: _Optional[int] = ..., kdf: _Optional[str] = ..., aead_id: _Optional[int] = ..., aead: _Optional[str] = ..., public_key: _Optional[bytes] = ..., not_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
