//! Crash-safe writes and reads that name the file and the place when something is wrong.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` whole or not at all: a temporary file in the same directory, fsync, rename,
/// then fsync of the directory. A crash leaves either the old file or the new one, never a mix.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        bail!("{}: cannot write: {e}", path.display());
    }
    Ok(())
}

/// Moves the file `from` to `to` (same file system: atomic), then fsyncs `to`'s directory; the error names
/// both.
pub fn move_file(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to)
        .map_err(|e| anyhow!("{}: cannot move to {}: {e}", from.display(), to.display()))?;
    if let Some(Ok(d)) = to.parent().map(fs::File::open) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `path` with `bytes` only if it does not exist yet (atomic: link of a complete temporary file).
/// Returns `false` when another writer got there first.
pub fn atomic_create_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.new.{}.{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = write {
        let _ = fs::remove_file(&tmp);
        bail!("{}: cannot write: {e}", path.display());
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => bail!("{}: cannot create: {e}", path.display()),
    }
}

/// Serialises `value` as TOML and writes it atomically.
pub fn write_toml<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        toml::to_string(value).with_context(|| format!("{}: cannot serialise", path.display()))?;
    atomic_write(path, text.as_bytes())
}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, col)
}

/// Parses TOML text into `T`, with a one-line error `file:line:col: message`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str::<T>(text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let (l, c) = line_col(text, span.start);
                anyhow!("{}:{l}:{c}: {msg}", path.display())
            }
            None => anyhow!("{}: {msg}", path.display()),
        }
    })
}

/// Reads a versioned artifact: checks `kind` and `version` before the full parse, so a foreign or newer
/// file is named as such rather than reported as a confusing field error.
pub fn read_artifact<T: DeserializeOwned>(
    path: &Path,
    kind: &str,
    versions: std::ops::RangeInclusive<u32>,
) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{}: not UTF-8 text (damaged?)", path.display()))?;
    if text.trim().is_empty() {
        bail!("{}: empty file (truncated?)", path.display());
    }
    let head: toml::Table = parse_toml(path, &text)?;
    match head.get("kind").and_then(|k| k.as_str()) {
        Some(k) if k == kind => {}
        Some(k) => bail!("{}: kind is \"{k}\", expected \"{kind}\"", path.display()),
        None => bail!(
            "{}: no `kind` key: not a nas artifact (expected kind = \"{kind}\")",
            path.display()
        ),
    }
    match head.get("version").and_then(|v| v.as_integer()) {
        Some(v) if u32::try_from(v).is_ok_and(|v| versions.contains(&v)) => {}
        Some(v) => bail!(
            "{}: version {v} is not supported (this nas reads {})",
            path.display(),
            match (versions.start(), versions.end()) {
                (a, b) if a == b => format!("version {a}"),
                (a, b) => format!("versions {a} to {b}"),
            }
        ),
        None => bail!("{}: no integer `version` key", path.display()),
    }
    parse_toml(path, &text)
}

/// Whether a process with this pid exists on this machine (Linux: `/proc/PID`); elsewhere assumed alive.
pub fn process_alive(pid: u32) -> bool {
    !cfg!(target_os = "linux") || Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes the temporaries (`.NAME.tmp.PID.N`, `.NAME.new.PID.N`) that writes interrupted by a crash left in
/// `dir`: only those older than `min_age_s` whose process no longer exists on this machine (Linux), so a write
/// in progress — here, or on another host sharing the directory — is never touched. Returns how many.
pub fn sweep_temporaries(dir: &Path, min_age_s: f64) -> usize {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            continue;
        }
        let parts: Vec<&str> = name.rsplitn(3, '.').collect();
        let (Some(pid), Some(rest)) = (parts.get(1), parts.get(2)) else {
            continue;
        };
        if !(rest.ends_with(".tmp") || rest.ends_with(".new")) {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let alive = process_alive(pid);
        let old = ent
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|a| a.as_secs_f64() > min_age_s);
        if !alive && old && fs::remove_file(ent.path()).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_old_temporaries_of_dead_processes() {
        let d = std::env::temp_dir().join(format!("nas-sweep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let dead = u32::MAX - 2;
        let me = std::process::id();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let make = |name: &str, aged: bool| {
            let p = d.join(name);
            fs::write(&p, b"partial").unwrap();
            if aged {
                fs::File::options()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
            }
        };
        make(&format!(".c00001.toml.tmp.{dead}.0"), true); // swept
        make(&format!(".c00002.toml.new.{dead}.3"), true); // swept
        make(&format!(".c00003.toml.tmp.{dead}.0"), false); // too young
        make(&format!(".c00004.toml.tmp.{me}.0"), true); // its writer is alive
        make(".c00005.takeover.00ff", true); // not a temporary
        make("c00006.toml", true); // an artifact
        assert_eq!(sweep_temporaries(&d, 60.0), 2);
        let mut left: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(left
            .iter()
            .all(|n| !n.contains("c00001") && !n.contains("c00002")));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = std::env::temp_dir().join(format!("nas-io-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("a.toml");
        atomic_write(&p, b"x = 1").unwrap();
        atomic_write(&p, b"x = 2").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "x = 2");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        assert!(!atomic_create_new(&p, b"x = 3").unwrap());
        assert!(atomic_create_new(&d.join("b"), b"y").unwrap());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn parse_errors_are_one_line_with_position() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            a: u32,
        }
        let e = parse_toml::<S>(Path::new("f.toml"), "a = 1\nb = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:2:1: unknown field `b`"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_toml::<S>(Path::new("f.toml"), "a = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:1:5:"), "{e}");
    }
}
