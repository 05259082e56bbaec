//! Leases: how any number of evaluate processes, on one machine or on a shared file system, share the pending
//! candidates of a run so that each is evaluated once.
//!
//! A worker claims a candidate by creating `leases/cNNNNN.toml` exclusively (write to a private temporary file,
//! then `link(2)`, which fails when the name exists, also on NFS). While it trains, a thread renews the lease
//! by setting its modification time. A lease is expired when it was not renewed within the lease timeout, or
//! when it names a process of this host that no longer exists (a killed worker's lease is free at once). An
//! expired lease is taken over by the one worker that creates the takeover marker of that stale claim
//! (exclusively); it removes the stale claim, if still there, and claims afresh. Results are written exclusively as
//! well, so even two workers that both believed they held a candidate (a lease stolen from a worker stalled
//! past the timeout) leave exactly one result; training is deterministic, so it does not matter whose.

use anyhow::{anyhow, Result};
use space::{io, LeaseFile, RunDir, ARTIFACT_VERSION};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static CLAIMS: AtomicU64 = AtomicU64::new(0);

/// This machine's host name (read once).
pub fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".into())
    })
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

use space::io::process_alive;

/// Whether a lease last renewed `age_s` seconds ago has expired: older than its holder's timeout, or held by
/// a process of this host that no longer exists.
pub fn expired(l: &LeaseFile, age_s: f64) -> bool {
    age_s > l.timeout_s || (l.host == host_name() && !process_alive(l.pid))
}

/// A claim held by this process.
#[derive(Debug)]
pub struct Lease {
    /// The candidate.
    pub id: u64,
    path: PathBuf,
    token: String,
}

fn age_of(path: &Path) -> Option<f64> {
    let m = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(m.elapsed().map_or(0.0, |d| d.as_secs_f64()))
}

fn read_lease(path: &Path) -> Option<LeaseFile> {
    io::read_artifact(path, "nas.lease", space::ARTIFACTS_READ).ok()
}

/// Tries to claim candidate `id` under a lease of `timeout_s` (also how long an unreadable lease file must be
/// left alone): `None` when another live worker holds it.
pub fn try_claim(run: &RunDir, id: u64, timeout_s: f64) -> Result<Option<Lease>> {
    let path = run.lease(id);
    let host = host_name().to_string();
    let token = format!(
        "{host}-{}-{:.6}-{}",
        std::process::id(),
        now_s(),
        CLAIMS.fetch_add(1, Ordering::Relaxed)
    );
    let file = LeaseFile {
        version: ARTIFACT_VERSION,
        kind: "nas.lease".into(),
        id,
        host,
        pid: std::process::id(),
        token: token.clone(),
        since: (now_s() * 1000.0).round() / 1000.0,
        timeout_s,
    };
    let text = toml::to_string(&file)?;
    std::fs::create_dir_all(run.leases())
        .map_err(|e| anyhow!("{}: cannot create directory: {e}", run.leases().display()))?;
    if io::atomic_create_new(&path, text.as_bytes())? {
        return Ok(Some(Lease { id, path, token }));
    }
    // Held: take it over only if expired.
    let (Some(held), Some(age)) = (read_lease(&path), age_of(&path)) else {
        // Unreadable: being written or replaced right now, or damaged (the timeout then frees it).
        return match age_of(&path) {
            Some(age) if age > timeout_s => take_over(run, id, &path, None, timeout_s, text, token),
            _ => Ok(None),
        };
    };
    if !expired(&held, age) {
        return Ok(None);
    }
    take_over(run, id, &path, Some(held.token), timeout_s, text, token)
}

fn take_over(
    run: &RunDir,
    id: u64,
    path: &Path,
    stale_token: Option<String>,
    timeout_s: f64,
    text: String,
    token: String,
) -> Result<Option<Lease>> {
    // One marker per stale claim, created exclusively: of several workers racing to replace the same stale
    // claim, only the one that creates the marker goes on.
    let stale = stale_token.clone().unwrap_or_else(|| "unreadable".into());
    let marker = run.leases().join(format!(
        ".c{id:05}.takeover.{:016x}",
        space::rng::fnv1a(stale.as_bytes())
    ));
    let mark = format!("{} {}\n", host_name(), std::process::id());
    if !io::atomic_create_new(&marker, mark.as_bytes())? {
        // A marker left by a worker that died mid-takeover would block this claim for ever: one whose
        // process is gone from this host, or older than the timeout, is removed and the race run again.
        let abandoned =
            marker_holder_gone(&marker) || age_of(&marker).is_some_and(|a| a > timeout_s);
        if !abandoned {
            return Ok(None);
        }
        let _ = std::fs::remove_file(&marker);
        if !io::atomic_create_new(&marker, mark.as_bytes())? {
            return Ok(None);
        }
    }
    let still_stale = match (read_lease(path), &stale_token) {
        (Some(l), Some(t)) => &l.token == t,
        (None, None) => age_of(path).is_some_and(|a| a > timeout_s),
        _ => false,
    };
    if still_stale {
        let _ = std::fs::remove_file(path);
    }
    let won = io::atomic_create_new(path, text.as_bytes());
    let _ = std::fs::remove_file(&marker);
    Ok(won?.then(|| Lease {
        id,
        path: path.to_path_buf(),
        token,
    }))
}

/// Whether the takeover marker at `path` (text `HOST PID`) was made by a process of this host that is gone.
fn marker_holder_gone(path: &Path) -> bool {
    std::fs::read_to_string(path).ok().is_some_and(|m| {
        let mut it = m.split_whitespace();
        let (h, p) = (it.next(), it.next().and_then(|p| p.parse::<u32>().ok()));
        h == Some(host_name()) && p.is_some_and(|p| !process_alive(p))
    })
}

/// Deletes takeover markers left by workers that died mid-takeover (their process gone from this host, or
/// older than an hour), once older than a minute; returns how many.
pub fn sweep_markers(run: &RunDir) -> usize {
    let Ok(rd) = std::fs::read_dir(run.leases()) else {
        return 0;
    };
    let mut n = 0;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(".c") && name.contains(".takeover.")) || name.contains(".new.") {
            continue;
        }
        let path = ent.path();
        let age = age_of(&path).unwrap_or(0.0);
        let dead = marker_holder_gone(&path);
        if age > 60.0 && (dead || age > 3600.0) && std::fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    n
}

impl Lease {
    /// Whether the lease file is still this claim.
    fn held(&self) -> bool {
        read_lease(&self.path).is_some_and(|l| l.token == self.token)
    }

    /// Renews the lease (sets its modification time); false when it was taken over.
    pub fn renew(&self) -> bool {
        if !self.held() {
            return false;
        }
        std::fs::File::options()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .is_ok()
    }

    /// Gives the candidate up (removes the lease file if it is still this claim).
    pub fn release(self) {
        if self.held() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Renews `leases` every `timeout_s / 4` until `stop` is set; run on its own thread while training.
pub fn renew_until(
    leases: &std::sync::Mutex<Vec<Lease>>,
    stop: &std::sync::atomic::AtomicBool,
    timeout_s: f64,
) {
    let every = Duration::from_secs_f64((timeout_s / 4.0).clamp(0.05, 30.0));
    let mut last = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20).min(every));
        if last.elapsed() >= every {
            for l in leases.lock().unwrap().iter() {
                l.renew();
            }
            last = std::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str) -> RunDir {
        let d = std::env::temp_dir().join(format!("nas-lease-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let r = RunDir::new(&d);
        r.create().unwrap();
        r
    }

    #[test]
    fn a_live_claim_excludes_others_and_release_frees_it() {
        let r = run("live");
        let a = try_claim(&r, 1, 60.0).unwrap().expect("free");
        assert!(
            try_claim(&r, 1, 60.0).unwrap().is_none(),
            "held by a live process"
        );
        assert!(a.renew());
        a.release();
        assert!(try_claim(&r, 1, 60.0).unwrap().is_some());
        std::fs::remove_dir_all(&r.root).unwrap();
    }

    #[test]
    fn expired_and_dead_claims_are_taken_over_once() {
        let r = run("expired");
        // A claim by a process of another host that stopped renewing 10 s ago.
        let foreign = LeaseFile {
            version: ARTIFACT_VERSION,
            kind: "nas.lease".into(),
            id: 2,
            host: "elsewhere".into(),
            pid: 1,
            token: "elsewhere-1-0-0".into(),
            since: 0.0,
            timeout_s: 60.0,
        };
        let write_aged = |l: &LeaseFile| {
            io::write_toml(&r.lease(2), l).unwrap();
            let old = SystemTime::now() - Duration::from_secs(10);
            std::fs::File::options()
                .write(true)
                .open(r.lease(2))
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        write_aged(&foreign);
        let none = try_claim(&r, 2, 1.0).unwrap();
        assert!(none.is_none(), "10 s < its holder's 60 s timeout");
        write_aged(&LeaseFile {
            timeout_s: 5.0,
            ..foreign.clone()
        });
        let got = try_claim(&r, 2, 60.0)
            .unwrap()
            .expect("expired after its 5 s");
        assert!(try_claim(&r, 2, 60.0).unwrap().is_none(), "now held by us");
        got.release();
        // A claim by a process of this host that no longer exists is free at once.
        let dead = LeaseFile {
            host: host_name().to_string(),
            pid: u32::MAX - 1,
            token: "dead".into(),
            ..foreign
        };
        io::write_toml(&r.lease(2), &dead).unwrap();
        // … even when a worker died half-way through taking it over, leaving its takeover marker.
        let marker = r.leases().join(format!(
            ".c00002.takeover.{:016x}",
            space::rng::fnv1a(b"dead")
        ));
        std::fs::write(&marker, format!("{} {}\n", host_name(), u32::MAX - 3)).unwrap();
        assert!(try_claim(&r, 2, 3600.0).unwrap().is_some());
        assert!(!marker.exists());
        std::fs::remove_dir_all(&r.root).unwrap();
    }

    #[test]
    fn abandoned_takeover_markers_are_swept_once_old() {
        let r = run("markers");
        let dead = format!("{} {}\n", host_name(), u32::MAX - 3);
        let alive = format!("{} {}\n", host_name(), std::process::id());
        let old = SystemTime::now() - Duration::from_secs(120);
        let make = |name: &str, text: &str, aged: bool| {
            let p = r.leases().join(name);
            std::fs::write(&p, text).unwrap();
            if aged {
                let f = std::fs::File::options().write(true).open(&p).unwrap();
                f.set_modified(old).unwrap();
            }
        };
        make(".c00001.takeover.01", &dead, true); // swept
        make(".c00002.takeover.02", &dead, false); // too young: a takeover may be under way
        make(".c00003.takeover.03", &alive, true); // its worker is alive
        assert_eq!(sweep_markers(&r), 1);
        assert!(!r.leases().join(".c00001.takeover.01").exists());
        assert!(r.leases().join(".c00002.takeover.02").exists());
        std::fs::remove_dir_all(&r.root).unwrap();
    }

    #[test]
    fn racing_takeovers_leave_one_holder() {
        let r = run("race");
        let dead = LeaseFile {
            version: ARTIFACT_VERSION,
            kind: "nas.lease".into(),
            id: 3,
            host: host_name().to_string(),
            pid: u32::MAX - 1,
            token: "dead".into(),
            since: 0.0,
            timeout_s: 3600.0,
        };
        for round in 0..20 {
            io::write_toml(&r.lease(3), &dead).unwrap();
            let got: Vec<Lease> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| try_claim(&r, 3, 3600.0).unwrap()))
                    .collect();
                hs.into_iter().filter_map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(got.len(), 1, "round {round}: {got:?}");
            assert!(got[0].held());
            got.into_iter().for_each(Lease::release);
        }
        std::fs::remove_dir_all(&r.root).unwrap();
    }
}
