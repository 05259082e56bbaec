//! Tidy tests (as rust-analyzer has): they read the source tree and pin what ARCHITECTURE.md promises, so an
//! invariant that breaks fails `cargo test` instead of going stale in prose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tests::repo;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every crate directory under `crates/`.
fn crates() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The non-test code of a source file: everything before its `#[cfg(test)]` module (kept at the end by
/// convention), without comment lines.
fn product_code(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The workspace crates a crate depends on (normal dependencies only).
fn workspace_deps(krate: &str) -> BTreeSet<String> {
    let toml: toml::Table = read(&repo().join("crates").join(krate).join("Cargo.toml"))
        .parse()
        .unwrap();
    let all = crates();
    toml.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| {
            d.keys()
                .filter(|k| all.contains(k))
                .cloned()
                .collect::<BTreeSet<_>>()
        })
        .unwrap_or_default()
}

#[test]
fn crates_depend_only_on_what_architecture_md_allows() {
    // crate → the workspace crates it may depend on.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("space", &[][..]),
        ("data", &["space"][..]),
        ("nn", &["space"][..]),
        ("generate", &["space"][..]),
        ("evaluate", &["space", "data", "nn"][..]),
        ("select", &["space"][..]),
        ("export", &["space", "data", "nn"][..]),
        (
            "nas-cli",
            &[
                "space", "data", "nn", "generate", "evaluate", "select", "export",
            ][..],
        ),
        ("tests", &["nas-cli"][..]),
    ]);
    for krate in crates() {
        let Some(ok) = allowed.get(krate.as_str()) else {
            panic!("crates/{krate}: a new crate; add it to this test and to ARCHITECTURE.md");
        };
        for dep in workspace_deps(&krate) {
            assert!(
                ok.contains(&dep.as_str()),
                "crates/{krate} depends on {dep}: ARCHITECTURE.md forbids it"
            );
        }
    }
    let space = read(&repo().join("crates/space/Cargo.toml"));
    assert!(!space.contains("candle"), "space must not depend on candle");
}

#[test]
fn every_crate_is_on_the_architecture_map() {
    let arch = read(&repo().join("ARCHITECTURE.md"));
    for krate in crates() {
        assert!(
            arch.contains(&format!("| `{krate}` |")),
            "ARCHITECTURE.md: the crate table has no row for `{krate}`"
        );
    }
}

/// Files that write to disk by hand, and why that is safe.
const WRITE_ALLOWED: &[(&str, &str)] = &[(
    "crates/space/src/io.rs",
    "the one place that writes: atomic writes, exclusive creates, moves, sweeps",
)];

#[test]
fn every_write_goes_through_space_io() {
    let forbidden = [
        "fs::write",
        "File::create",
        "fs::rename",
        "OpenOptions",
        ".create_new(",
        "safetensors::save",
        "serialize_to_file",
    ];
    let root = repo();
    for f in rust_files(&root.join("crates")) {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !rel.contains("/src/") || WRITE_ALLOWED.iter().any(|(p, _)| *p == rel) {
            continue;
        }
        let code = product_code(&read(&f));
        for pat in forbidden {
            assert!(
                !code.contains(pat),
                "{rel}: `{pat}` outside space::io (write through space::io, or allow-list it with a reason)"
            );
        }
    }
}

#[test]
fn every_artifact_kind_is_documented() {
    let docs = read(&repo().join("docs/artifacts.md"));
    let mut kinds = BTreeSet::new();
    for f in rust_files(&repo().join("crates")) {
        let text = read(&f);
        for part in text.split("\"nas.").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if part[name.len()..].starts_with('"') && !name.is_empty() {
                kinds.insert(format!("nas.{name}"));
            }
        }
    }
    assert!(kinds.contains("nas.result"), "found kinds: {kinds:?}");
    for k in kinds {
        assert!(
            docs.contains(&format!("(kind `{k}`)")),
            "docs/artifacts.md: no section for kind `{k}`"
        );
    }
}

#[test]
fn nn_knows_nothing_of_runs() {
    let run_types = [
        "RunDir",
        "ResultFile",
        "CandidateFile",
        "SpaceFile",
        "LeaseFile",
        "SelectionFile",
        "ModelFile",
        "Entry",
        "results/",
        "candidates/",
    ];
    for f in rust_files(&repo().join("crates/nn")) {
        let text = read(&f);
        for t in run_types {
            let named = text.match_indices(t).any(|(i, _)| {
                let before = text[..i].chars().next_back();
                let after = text[i + t.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            assert!(!named, "{}: names the run type `{t}`", f.display());
        }
    }
}

#[test]
fn source_files_stay_small() {
    let root = repo();
    for f in rust_files(&root.join("crates")) {
        let n = read(&f).lines().count();
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        assert!(
            n < 800,
            "{rel}: {n} lines; split it by job (every file under 800)"
        );
    }
    let n = read(&root.join("crates/evaluate/src/lib.rs"))
        .lines()
        .count();
    assert!(
        n < 600,
        "crates/evaluate/src/lib.rs: {n} lines (the stage's root stays under 600)"
    );
}

/// The sibling modules a module's product code names through `crate::` or `super::`.
fn named_modules(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["crate::", "super::"] {
        for part in code.split(prefix).skip(1) {
            let names: Vec<String> = if let Some(list) = part.strip_prefix('{') {
                list[..list.find('}').unwrap_or(list.len())]
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").to_string())
                    .collect()
            } else {
                vec![part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()]
            };
            out.extend(names.into_iter().filter(|n| modules.contains(n)));
        }
    }
    out
}

#[test]
fn no_two_modules_import_each_other() {
    for krate in crates() {
        let src = repo().join("crates").join(&krate).join("src");
        let files: Vec<PathBuf> = rust_files(&src)
            .into_iter()
            .filter(|f| {
                let name = f.file_name().unwrap();
                name != "lib.rs" && name != "main.rs"
            })
            .collect();
        let module = |f: &Path| -> String {
            if f.file_name().unwrap() == "mod.rs" {
                f.parent().unwrap().file_name().unwrap()
            } else {
                f.file_stem().unwrap()
            }
            .to_string_lossy()
            .into_owned()
        };
        let modules: BTreeSet<String> = files.iter().map(|f| module(f)).collect();
        let uses: BTreeMap<String, BTreeSet<String>> = files
            .iter()
            .map(|f| (module(f), named_modules(&product_code(&read(f)), &modules)))
            .collect();
        for (a, names) in &uses {
            for b in names.iter().filter(|b| *b != a) {
                assert!(
                    !uses.get(b).is_some_and(|n| n.contains(a)),
                    "crates/{krate}: modules `{a}` and `{b}` import each other"
                );
            }
        }
    }
}

#[test]
fn ci_runs_clippy_and_the_readme_test_command() {
    let ci = read(&repo().join(".ci/run"));
    assert!(
        ci.contains("cargo clippy --workspace --all-targets -- -D warnings"),
        ".ci/run must run clippy with warnings as errors"
    );
    let readme = read(&repo().join("README.md"));
    let test_cmd = "cargo test --workspace";
    assert!(readme.contains(test_cmd) && ci.contains(test_cmd));
}

/// The names in `Enum::Variant => "name"` match arms of a source file.
fn named_variants(code: &str, enum_name: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{enum_name}::")))
        .filter_map(|l| {
            l.split_once("=> \"")?
                .1
                .split_once('"')
                .map(|(n, _)| n.to_string())
        })
        .collect()
}

#[test]
fn every_op_the_spaces_name_is_in_model_py_and_the_export_check() {
    let chain = read(&repo().join("crates/space/src/arch/chain.rs"));
    let cell = read(&repo().join("crates/space/src/arch/cell.rs"));
    let names: Vec<String> = ["Act", "Pool"]
        .iter()
        .flat_map(|e| named_variants(&chain, e))
        .chain(named_variants(&cell, "CellOp"))
        .collect();
    assert!(names.len() >= 12, "{names:?}");
    let model_py = read(&repo().join("crates/export/src/model.py"));
    let check = read(&repo().join("scripts/check_export.py"));
    let ci = read(&repo().join(".ci/run"));
    assert!(
        ci.contains("scripts/check-export.sh"),
        ".ci/run must check the exports"
    );
    for n in names.iter().filter(|n| *n != "none") {
        assert!(
            model_py.contains(&format!("\"{n}\"")),
            "crates/export/src/model.py does not build `{n}`"
        );
    }
    for n in &names {
        assert!(
            check.contains(&format!("\"{n}\"")),
            "scripts/check_export.py never exports an architecture with `{n}`"
        );
    }
}
