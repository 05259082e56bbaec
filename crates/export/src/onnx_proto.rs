//! The messages of the official `onnx.proto` (onnx/onnx, IR version 8) that a model of ours uses, as prost
//! messages: the field numbers and types are those of onnx.proto, so prost encodes standard ONNX. Fields we
//! never set are left out (protobuf readers treat them as absent).

/// `ModelProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// Field 1.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// Field 8.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// Field 3.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// Field 6.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// Field 7.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Field 14.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Field 1 (empty: the default `ai.onnx` domain).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Field 2.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Field 5.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Field 10.
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// Field 11.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Field 12.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Field 1.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Field 2.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// Field 3.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Field 4.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Field 5.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto.AttributeType` values used here.
pub mod attribute_type {
    /// `FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `INT`.
    pub const INT: i32 = 2;
    /// `STRING`.
    pub const STRING: i32 = 3;
    /// `TENSOR`.
    pub const TENSOR: i32 = 4;
    /// `INTS`.
    pub const INTS: i32 = 7;
}

/// `AttributeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 20: one of [`attribute_type`].
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// Field 2.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// Field 3.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// Field 4.
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// Field 5.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// Field 8.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// `TensorProto.DataType` values used here.
pub mod data_type {
    /// `FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `INT64`.
    pub const INT64: i32 = 7;
}

/// `TensorProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Field 1.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// Field 2: one of [`data_type`].
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Field 4 (packed).
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// Field 8.
    #[prost(string, tag = "8")]
    pub name: String,
}

/// `ValueInfoProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// Field 3.
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// `TypeProto` (only its `tensor_type` case, field 1 of the `value` oneof).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// Field 1.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// Field 1: one of [`data_type`].
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// Field 2.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a fixed size (field 1) or a named one (field 2) of the `value` oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// Field 1 or 2.
    #[prost(oneof = "DimValue", tags = "1, 2")]
    pub value: Option<DimValue>,
}

/// The `value` oneof of [`Dimension`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum DimValue {
    /// `dim_value`.
    #[prost(int64, tag = "1")]
    Value(i64),
    /// `dim_param`.
    #[prost(string, tag = "2")]
    Param(String),
}
