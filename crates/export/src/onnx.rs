//! The ONNX form of an exported network (opset 17, IR version 8): one `input` (`[N, C, H, W]` images or
//! `[N, features]` tables, the encoded features before normalisation, named in the metadata `features`), one
//! `logits` output `[N, classes]`; an ensemble's graph holds every member and averages their class
//! probabilities (see `lower`).

use crate::lower::{tensor, Lowered};
use crate::onnx_proto::{
    data_type, DimValue, Dimension, GraphProto, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use prost::Message;
use space::ModelFile;

/// The opset the graph is written for.
pub const OPSET: i64 = 17;

fn value_info(name: &str, dims: &[usize], doc: String) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        value: Some(DimValue::Param("N".into())),
    }];
    dim.extend(dims.iter().map(|&d| Dimension {
        value: Some(DimValue::Value(d as i64)),
    }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: doc,
    }
}

/// The serialised ONNX model.
pub(crate) fn model_bytes(file: &ModelFile, l: Lowered) -> Vec<u8> {
    let mut initializer: Vec<_> = l
        .params
        .into_iter()
        .map(|p| tensor(&p.name, &p.dims, p.data))
        .collect();
    initializer.extend(l.constants);
    let input_doc = match file.input.shape {
        Some(_) => "images [N, C, H, W], raw pixel values as in the training data".to_string(),
        None => format!(
            "encoded features [N, {}] before normalisation, named in the metadata `features`",
            file.input.features
        ),
    };
    let nets = file.networks();
    let (name, doc, output) = if nets.len() == 1 {
        (
            format!("c{:05}", file.id),
            format!("nas candidate c{:05}: {}", file.id, file.arch),
            "class logits",
        )
    } else {
        let ids: Vec<String> = nets.iter().map(|n| format!("c{:05}", n.id)).collect();
        (
            format!("ensemble of {}", ids.join(", ")),
            format!("nas ensemble of {} (metadata `members`)", ids.join(", ")),
            "log of the members' averaged class probabilities",
        )
    };
    let graph = GraphProto {
        node: l.nodes,
        name,
        initializer,
        doc_string: doc.clone(),
        input: vec![value_info("input", &l.input_dims, input_doc)],
        output: vec![value_info(
            "logits",
            &[file.input.classes],
            format!("{output}; the classes are the metadata `classes`, one per line"),
        )],
    };
    let meta = |k: &str, v: String| StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    let mut metadata_props = vec![
        meta("arch", file.arch.clone()),
        meta("classes", file.class_names.join("\n")),
    ];
    if nets.len() > 1 {
        let lines: Vec<String> = (nets.iter())
            .map(|n| format!("c{:05} {} {}", n.id, n.weight as f32, n.arch))
            .collect();
        metadata_props.push(meta("members", lines.join("\n")));
    }
    if file.input.shape.is_none() {
        metadata_props.push(meta(
            "features",
            space::encoding::feature_names(&file.columns).join("\n"),
        ));
    }
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "nas".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc,
        graph: Some(graph),
        metadata_props,
    }
    .encode_to_vec()
}
