//! `nas export --format onnx|pytorch` from the command line: it retrains first when the run has no model,
//! writes the files it names, and an unknown format lists the valid ones. (Equality of the exported models'
//! outputs with nas's own is checked by scripts/check-export.sh, which needs onnxruntime and PyTorch.)

use std::path::Path;
use std::process::Command;
use tests::{ok, repo, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

/// The tensor names in a safetensors file's header.
fn safetensors_names(bytes: &[u8]) -> String {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    String::from_utf8(bytes[8..8 + n].to_vec()).unwrap()
}

#[test]
fn onnx_and_pytorch_exports_retrain_first_and_an_unknown_format_lists_the_valid_ones() {
    let d = tmp("foreign-export");
    let run = d.join("run");
    ok(
        nas()
            .args([
                "run",
                "--quiet",
                "--no-retrain",
                "--budget",
                "2",
                "--config",
            ])
            .arg(repo().join("examples/nas.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "nas run",
    );
    assert!(!run.join("model").exists());

    let export = |format: &str, out: &Path| {
        nas()
            .arg("export")
            .arg(&run)
            .args(["--format", format, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let out = export("tflite", &d.join("x"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("native, onnx, pytorch"), "{err}");
    assert!(!d.join("x").exists() && !run.join("model").exists());

    let said = ok(export("onnx", &d.join("onnx/winner.onnx")), "export onnx");
    assert!(run.join("model/model.toml").exists(), "no retrained model");
    assert!(
        said.contains("as onnx") && said.contains("winner.onnx"),
        "{said}"
    );
    let onnx = std::fs::read(d.join("onnx/winner.onnx")).unwrap();
    // ModelProto field 1 (ir_version, varint) = 8.
    assert_eq!(&onnx[..2], &[0x08, 8]);

    ok(export("pytorch", &d.join("torch")), "export pytorch");
    let sel = std::fs::read_to_string(run.join("selection.toml")).unwrap();
    let sel: toml::Table = sel.parse().unwrap();
    let arch = sel["best"]["arch"].as_str().unwrap();
    let py = std::fs::read_to_string(d.join("torch/model.py")).unwrap();
    assert!(py.contains(&format!("ARCH = \"{arch}\"")), "{py}");
    let names = safetensors_names(&std::fs::read(d.join("torch/weights.safetensors")).unwrap());
    // An ensemble's state dict holds each member's under `members.<i>.`.
    let at = if names.contains("\"members.0.mean\"") {
        "members.0."
    } else {
        ""
    };
    for n in ["mean", "std", "blocks.0.conv.weight", "head.weight"] {
        let n = format!("\"{at}{n}\"");
        assert!(names.contains(&n), "{n} not in {names}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}
