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

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether a process with this pid exists on this machine (Linux: `/proc/PID`); elsewhere assumed alive.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Whether a lease of age `age_s` has expired under `timeout_s`.
pub fn expired(l: &LeaseFile, age_s: f64, timeout_s: f64) -> bool {
    age_s > timeout_s || (l.host == host_name() && !process_alive(l.pid))
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
    io::read_artifact(path, "nas.lease", ARTIFACT_VERSION).ok()
}

/// Tries to claim candidate `id`: `None` when another live worker holds it.
pub fn try_claim(run: &RunDir, id: u64, timeout_s: f64) -> Result<Option<Lease>> {
    let path = run.lease(id);
    let host = host_name();
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
    if !expired(&held, age, timeout_s) {
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
    if !io::atomic_create_new(&marker, token.as_bytes())? {
        return Ok(None);
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
        };
        io::write_toml(&r.lease(2), &foreign).unwrap();
        let old = SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(r.lease(2))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(
            try_claim(&r, 2, 60.0).unwrap().is_none(),
            "10 s < 60 s timeout"
        );
        let got = try_claim(&r, 2, 5.0).unwrap().expect("expired after 5 s");
        assert!(try_claim(&r, 2, 5.0).unwrap().is_none(), "now held by us");
        got.release();
        // A claim by a process of this host that no longer exists is free at once.
        let dead = LeaseFile {
            host: host_name(),
            pid: u32::MAX - 1,
            token: "dead".into(),
            ..foreign
        };
        io::write_toml(&r.lease(2), &dead).unwrap();
        assert!(try_claim(&r, 2, 3600.0).unwrap().is_some());
        std::fs::remove_dir_all(&r.root).unwrap();
    }

    #[test]
    fn racing_takeovers_leave_one_holder() {
        let r = run("race");
        let dead = LeaseFile {
            version: ARTIFACT_VERSION,
            kind: "nas.lease".into(),
            id: 3,
            host: host_name(),
            pid: u32::MAX - 1,
            token: "dead".into(),
            since: 0.0,
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
