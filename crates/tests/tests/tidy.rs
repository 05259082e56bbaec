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

/// The non-test code of a source file: everything before its test module (`#[cfg(test)] mod tests`, kept at
/// the end by convention; a `#[cfg(test)]` on anything else does not end it), without comment lines.
fn product_code(text: &str) -> String {
    text[..test_module_start(text)]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the test module of a source file starts (its length when it has none).
fn test_module_start(text: &str) -> usize {
    text.match_indices("#[cfg(test)]")
        .find(|(i, m)| text[i + m.len()..].trim_start().starts_with("mod tests"))
        .map_or(text.len(), |(i, _)| i)
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

/// The product source files: every `.rs` file of a crate's `src/` and `examples/` (not the end-to-end tests).
fn product_files() -> Vec<(String, String)> {
    let root = repo();
    rust_files(&root.join("crates"))
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&root).unwrap().display().to_string();
            (rel, read(&f))
        })
        .filter(|(rel, _)| rel.contains("/src/") || rel.contains("/examples/"))
        .collect()
}

#[test]
fn source_files_stay_small() {
    for (rel, text) in product_files() {
        let n = text[..test_module_start(&text)].lines().count();
        assert!(
            n <= 600,
            "{rel}: {n} lines before its tests; split it by job (every file at most 600)"
        );
    }
}

/// Files whose long functions are single kernels (one loop nest that reads best whole), and why. Empty now.
const LONG_FUNCTIONS_ALLOWED: &[(&str, &str)] = &[];

/// The functions of `code` (name, first line, lines), found by `fn` lines and their braces.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut opened) = (0i64, false);
        for (j, l) in lines.iter().enumerate().skip(i) {
            if j == i && l.trim_end().ends_with(';') {
                break; // a declaration without a body
            }
            depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
            opened |= l.contains('{');
            if opened && depth <= 0 {
                out.push((name.clone(), i + 1, j - i + 1));
                break;
            }
        }
    }
    out
}

#[test]
fn functions_stay_short() {
    for (rel, text) in product_files() {
        if LONG_FUNCTIONS_ALLOWED.iter().any(|(p, _)| *p == rel) {
            continue;
        }
        for (name, line, n) in functions(&text[..test_module_start(&text)]) {
            assert!(
                n <= 120,
                "{rel}:{line}: fn {name} is {n} lines; split it (at most 120 outside tests)"
            );
        }
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    for f in rust_files(&repo().join("crates")) {
        let text = read(&f);
        assert!(
            text.starts_with("//!"),
            "{}: the first line is not a `//!` line saying what the file is for",
            f.display()
        );
    }
}

/// The files that turn the spelling of a `[space]` value or a data source into its type, and may compare
/// it as a string: the typed settings and the architecture notation of each family.
const SPACE_PARSERS: &[&str] = &[
    "crates/space/src/choices.rs",
    "crates/space/src/spec_space.rs",
    "crates/space/src/spec_data.rs",
    "crates/space/src/arch/chain.rs",
    "crates/space/src/arch/cell.rs",
];

#[test]
fn no_space_value_is_compared_as_a_string_outside_its_parser() {
    let values = [
        "chain",
        "cell",
        "conv",
        "dense",
        "relu",
        "gelu",
        "tanh",
        "silu",
        "none",
        "max",
        "avg",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "builtin:",
    ];
    for (rel, text) in product_files() {
        if SPACE_PARSERS.contains(&rel.as_str()) {
            continue;
        }
        let code = product_code(&text);
        for v in values {
            let lit = if v.ends_with(':') {
                format!("\"{v}")
            } else {
                format!("\"{v}\"")
            };
            for pat in [
                format!("== {lit}"),
                format!("!= {lit}"),
                format!("{lit} =>"),
                format!("starts_with({lit}"),
                format!("strip_prefix({lit}"),
                format!("Some({lit})"),
            ] {
                assert!(
                    !code.contains(&pat),
                    "{rel}: `{pat}` compares a [space] value or data source as a string; use its type (space::SpaceFamily, BlockKind, Act, Pool, CellOp, DataSource)"
                );
            }
        }
    }
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

/// What `crate::NAME` refers to, for the names the crate root `lib` re-exports (`pub use m::{A, B}`: A and B
/// are m's) or defines itself (they are `lib`'s).
fn root_names(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let code = product_code(lib);
    for stmt in code.split(';') {
        let s = stmt.trim();
        if let Some(rest) = s.strip_prefix("pub use ") {
            let Some((m, names)) = rest.split_once("::") else {
                continue;
            };
            if !modules.contains(m) {
                continue;
            }
            let names = names.trim_start_matches('{').trim_end_matches('}');
            for n in names.split(',') {
                let n = n.trim().rsplit("::").next().unwrap_or("").trim();
                if !n.is_empty() && n != "self" && n != "*" {
                    out.insert(n.to_string(), m.to_string());
                }
            }
        }
    }
    for l in code.lines() {
        let t = l
            .trim_start()
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        for kw in [
            "fn ", "struct ", "enum ", "trait ", "type ", "const ", "static ",
        ] {
            if let Some(rest) = t.strip_prefix(kw) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name, "lib".into());
            }
        }
    }
    out
}

/// The modules the crate root's own code names (its `mod` and `pub use` lines are not uses).
fn root_uses(lib: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = product_code(lib)
        .split(';')
        .filter(|s| {
            let s = s.trim();
            !(s.starts_with("pub use ")
                || s.starts_with("mod ")
                || s.starts_with("pub mod ")
                || s.starts_with("pub(crate) mod "))
        })
        .collect::<Vec<_>>()
        .join(";");
    modules
        .iter()
        .filter(|m| {
            code.match_indices(&format!("{m}::")).any(|(i, _)| {
                !code[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .cloned()
        .collect()
}

#[test]
fn no_two_modules_import_each_other() {
    for krate in crates() {
        let src = repo().join("crates").join(&krate).join("src");
        let all = rust_files(&src);
        let root = all
            .iter()
            .find(|f| f.file_name().unwrap() == "lib.rs")
            .map(|f| read(f));
        let files: Vec<PathBuf> = all
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
        let exported = root
            .as_deref()
            .map(|l| root_names(l, &modules))
            .unwrap_or_default();
        let mut uses: BTreeMap<String, BTreeSet<String>> = files
            .iter()
            .map(|f| {
                let code = product_code(&read(f));
                let mut named = named_modules(&code, &modules);
                for part in code.split("crate::").skip(1) {
                    let items: Vec<&str> = match part.strip_prefix('{') {
                        Some(list) => list[..list.find('}').unwrap_or(list.len())]
                            .split(',')
                            .collect(),
                        None => vec![part],
                    };
                    for item in items {
                        let name: String = item
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if let Some(m) = exported.get(&name) {
                            named.insert(m.clone());
                        }
                    }
                }
                (module(f), named)
            })
            .collect();
        if let Some(l) = &root {
            uses.insert("lib".into(), root_uses(l, &modules));
        }
        for (a, names) in &uses {
            for b in names.iter().filter(|b| *b != a) {
                assert!(
                    !uses.get(b).is_some_and(|n| n.contains(a)),
                    "crates/{krate}: modules `{a}` and `{b}` import each other (through `crate::` re-exports too; `lib` is the crate root)"
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
    let choices = read(&repo().join("crates/space/src/choices.rs"));
    let names: Vec<String> = ["Act", "Pool", "CellOp"]
        .iter()
        .flat_map(|e| named_variants(&choices, e))
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
