//! The run directory: where each artifact lives, and reading the run's state (its plan, the history of
//! candidates and results, the leases) with every file checked and named in errors.

use crate::arch::{Arch, InputInfo, SpaceDef};
use crate::files::{CandidateFile, LeaseFile, ResultFile, SpaceFile, ARTIFACTS_READ};
use crate::io::read_artifact;
use crate::plan::Plan;
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// Paths inside a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The run directory.
    pub root: PathBuf,
}

impl RunDir {
    /// A run directory at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }
    /// `space.toml`
    pub fn space(&self) -> PathBuf {
        self.root.join("space.toml")
    }
    /// `candidates/`
    pub fn candidates(&self) -> PathBuf {
        self.root.join("candidates")
    }
    /// `results/`
    pub fn results(&self) -> PathBuf {
        self.root.join("results")
    }
    /// `candidates/c00001.toml`
    pub fn candidate(&self, id: u64) -> PathBuf {
        self.candidates().join(format!("c{id:05}.toml"))
    }
    /// `results/c00001.toml`
    pub fn result(&self, id: u64) -> PathBuf {
        self.results().join(format!("c{id:05}.toml"))
    }
    /// `leases/`
    pub fn leases(&self) -> PathBuf {
        self.root.join("leases")
    }
    /// `leases/c00001.toml`: a worker's claim on a candidate while it evaluates it.
    pub fn lease(&self, id: u64) -> PathBuf {
        self.leases().join(format!("c{id:05}.toml"))
    }
    /// `retried/`: results of failed candidates set aside by `nas evaluate --retry-failed`.
    pub fn retried(&self) -> PathBuf {
        self.root.join("retried")
    }
    /// `selection.toml`
    pub fn selection(&self) -> PathBuf {
        self.root.join("selection.toml")
    }
    /// `results/cNNNNN.oof`: candidate `id`'s out-of-fold predictions ([`crate::Oof`]).
    pub fn oof(&self, id: u64) -> PathBuf {
        self.results().join(format!("c{id:05}.oof"))
    }
    /// `baseline.toml`
    pub fn baseline(&self) -> PathBuf {
        self.root.join("baseline.toml")
    }
    /// `model/`
    pub fn model(&self) -> PathBuf {
        self.root.join("model")
    }

    /// Creates the directory tree.
    pub fn create(&self) -> Result<()> {
        for d in [
            self.root.clone(),
            self.candidates(),
            self.results(),
            self.leases(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| anyhow!("{}: cannot create directory: {e}", d.display()))?;
        }
        Ok(())
    }

    /// Deletes temporaries left by writes a crash interrupted (see [`crate::io::sweep_temporaries`]); returns
    /// how many.
    pub fn sweep_temporaries(&self) -> usize {
        [
            self.root.clone(),
            self.candidates(),
            self.results(),
            self.leases(),
            self.model(),
        ]
        .iter()
        .map(|d| crate::io::sweep_temporaries(d, 60.0))
        .sum()
    }

    /// Loads `space.toml` as the run's [`Plan`].
    pub fn load_plan(&self) -> Result<Plan> {
        let p = self.space();
        if !p.exists() {
            bail!(
                "{}: not found: is {} a run directory? (create one with `nas space`)",
                p.display(),
                self.root.display()
            );
        }
        let mut f: SpaceFile = read_artifact(&p, "nas.space", ARTIFACTS_READ)?;
        // Keys added since a stored plan was written mean what that run did: no racing, no class weights.
        let e = &mut f.experiment.evaluate;
        e.race.get_or_insert(false);
        e.class_weight
            .get_or_insert(crate::metrics::ClassWeight::Uniform);
        Plan::from_file(f).map_err(|e| anyhow!("{}: experiment: {e}", p.display()))
    }

    /// Every candidate with its result (if any), in id order; every file checked against the space.
    pub fn history(&self, space: &SpaceDef, input: &InputInfo) -> Result<Vec<Entry>> {
        let mut out = self.candidate_entries(space, input)?;
        for (id, path) in list_ids(&self.results())? {
            // A result that cannot be read (truncated, hand-edited) is an error that says how to recover.
            let r = self.read_result(&path, id, &out).map_err(|e| {
                anyhow!(
                    "{e} (to set it aside and evaluate the candidate again: nas evaluate {} --retry-failed)",
                    self.root.display()
                )
            })?;
            let e = out
                .iter_mut()
                .find(|e| e.candidate.id == id)
                .expect("read_result checked the candidate exists");
            e.result = Some(r);
        }
        Ok(out)
    }

    /// Every candidate, checked, without results (a damaged candidate file is an error: nothing can be
    /// scored without knowing what it is).
    fn candidate_entries(&self, space: &SpaceDef, input: &InputInfo) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for (id, path) in list_ids(&self.candidates())? {
            out.push(read_candidate(&path, id, space, input)?);
        }
        Ok(out)
    }

    /// [`RunDir::history`] that goes on past result files it cannot read: those candidates have no result,
    /// and each such file is listed with why (for `select` and `report`, which name them). A damaged
    /// candidate is still an error: what it was cannot be ranked.
    pub fn history_readable(
        &self,
        space: &SpaceDef,
        input: &InputInfo,
    ) -> Result<(Vec<Entry>, Vec<Damaged>)> {
        let (out, damaged) = self.history_salvaged(space, input)?;
        if let Some((_, why)) = damaged
            .iter()
            .find(|(p, _)| p.starts_with(self.candidates()))
        {
            bail!("{why}");
        }
        Ok((out, damaged))
    }

    /// [`RunDir::history_readable`] that also goes on past candidate files it cannot read: those are left
    /// out (with their results) and listed too (for `status`, which shows what it can).
    pub fn history_salvaged(
        &self,
        space: &SpaceDef,
        input: &InputInfo,
    ) -> Result<(Vec<Entry>, Vec<Damaged>)> {
        let (mut out, mut damaged) = (Vec::new(), Vec::new());
        let mut unknown = Vec::new();
        for (id, path) in list_ids(&self.candidates())? {
            match read_candidate(&path, id, space, input) {
                Ok(e) => out.push(e),
                Err(e) => {
                    damaged.push((path, e.to_string()));
                    unknown.push(id);
                }
            }
        }
        for (id, path) in list_ids(&self.results())?
            .into_iter()
            .filter(|(id, _)| !unknown.contains(id))
        {
            match self.read_result(&path, id, &out) {
                Ok(r) => {
                    if let Some(e) = out.iter_mut().find(|e| e.candidate.id == id) {
                        e.result = Some(r);
                    }
                }
                Err(e) => damaged.push((path.clone(), e.to_string())),
            }
        }
        Ok((out, damaged))
    }

    /// One result file, checked against its name and its candidate.
    fn read_result(&self, path: &Path, id: u64, entries: &[Entry]) -> Result<ResultFile> {
        let r: ResultFile = read_artifact(path, "nas.result", ARTIFACTS_READ)?;
        check_id(path, r.id, id)?;
        let e = entries
            .iter()
            .find(|e| e.candidate.id == id)
            .ok_or_else(|| {
                anyhow!(
                    "{}: result for candidate {id}, which has no candidate file",
                    path.display()
                )
            })?;
        if r.arch != e.candidate.arch {
            bail!(
                "{}: arch differs from {}",
                path.display(),
                self.candidate(id).display()
            );
        }
        r.check().map_err(|m| anyhow!("{}: {m}", path.display()))?;
        Ok(r)
    }
}

/// A file's `id` must be the one its name gives.
fn check_id(path: &Path, stored: u64, named: u64) -> Result<()> {
    if stored != named {
        bail!(
            "{}: id {stored} does not match the file name",
            path.display()
        );
    }
    Ok(())
}

/// A candidate or result file that cannot be read, and why (the message names the file).
pub type Damaged = (PathBuf, String);

/// One candidate file (`id` by its name), checked against its name and against its architecture.
fn read_candidate(path: &Path, id: u64, space: &SpaceDef, input: &InputInfo) -> Result<Entry> {
    let c: CandidateFile = read_artifact(path, "nas.candidate", ARTIFACTS_READ)?;
    check_id(path, c.id, id)?;
    let arch = space
        .parse(&c.arch)
        .map_err(|e| anyhow!("{}: arch: {e}", path.display()))?;
    // What the file claims about its architecture must be what the architecture is (a hand edit that
    // changed one and not the others would make rankings and the Pareto front lie).
    let (params, flops) = space.cost(&arch, input);
    let key = space.key(&arch, input);
    for (field, stored, actual) in [
        ("params", c.params.to_string(), params.to_string()),
        ("flops", c.flops.to_string(), flops.to_string()),
        ("key", c.key.clone(), key),
    ] {
        if stored != actual {
            bail!(
                "{}: {field} is {stored}, but arch `{}` has {actual} (was the file edited? restore it, or delete it and its result to generate again)",
                path.display(),
                c.arch
            );
        }
    }
    Ok(Entry {
        candidate: c,
        arch,
        result: None,
    })
}

impl RunDir {
    /// Every lease file, with its age in seconds (from its modification time); unreadable ones are skipped
    /// (a lease being replaced), a damaged one is an error naming it.
    pub fn read_leases(&self) -> Result<Vec<(LeaseFile, f64)>> {
        let mut out = Vec::new();
        for (_, path) in list_ids(&self.leases())? {
            let age = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(t) => t.elapsed().map_or(0.0, |d| d.as_secs_f64()),
                Err(_) => continue,
            };
            match read_artifact::<LeaseFile>(&path, "nas.lease", ARTIFACTS_READ) {
                Ok(l) => out.push((l, age)),
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl SpaceFile {
    /// Writes `space.toml` atomically.
    pub fn write(&self, run: &RunDir) -> Result<()> {
        crate::io::write_toml(&run.space(), self)
    }
}

/// Files named `c<digits>.toml` in `dir`, by id. Temporary files (dot-prefixed) and others are ignored.
fn list_ids(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => bail!("{}: cannot list: {e}", dir.display()),
    };
    for ent in rd {
        let ent = ent.map_err(|e| anyhow!("{}: cannot list: {e}", dir.display()))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_prefix('c')
            .and_then(|s| s.strip_suffix(".toml"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((id, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A candidate with its parsed architecture and its result, if evaluated.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The candidate file.
    pub candidate: CandidateFile,
    /// Its parsed architecture.
    pub arch: Arch,
    /// The result file, once evaluated.
    pub result: Option<ResultFile>,
}
