//! The settings that say how a run executes and for how long, not what it computes: the device
//! (`[evaluate] device`) and the time limit (`[search] time`). Neither is part of a run's identity.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Where training runs (`[evaluate] device`, `--device`): an execution setting, never part of a run's
/// identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSetting {
    /// The CUDA GPUs when the build has CUDA and there are any, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// Every CUDA GPU.
    Cuda,
    /// One CUDA GPU.
    CudaN(usize),
}

impl std::fmt::Display for DeviceSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSetting::Auto => f.write_str("auto"),
            DeviceSetting::Cpu => f.write_str("cpu"),
            DeviceSetting::Cuda => f.write_str("cuda"),
            DeviceSetting::CudaN(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceSetting {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<DeviceSetting> {
        Ok(match s {
            "auto" => DeviceSetting::Auto,
            "cpu" => DeviceSetting::Cpu,
            "cuda" => DeviceSetting::Cuda,
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => DeviceSetting::CudaN(n),
                None => bail!("[evaluate] device: \"{s}\" (expected cpu, cuda, cuda:N or auto)"),
            },
        })
    }
}

serde_via_str!(DeviceSetting);

/// A wall-clock limit (`[search] time`, `--time`): `90s`, `10m`, `1h30m`, or plain seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeLimit(pub std::time::Duration);

impl std::str::FromStr for TimeLimit {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<TimeLimit> {
        let bad = || {
            anyhow::anyhow!(
                "[search] time: \"{text}\" (expected a duration like 90s, 10m or 1h30m)"
            )
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(bad());
        }
        let total = match t.parse::<f64>() {
            Ok(secs) => secs,
            Err(_) => {
                let (mut total, mut number) = (0f64, String::new());
                for c in t.chars() {
                    if c.is_ascii_digit() || c == '.' {
                        number.push(c);
                        continue;
                    }
                    let unit = match c {
                        's' => 1.0,
                        'm' => 60.0,
                        'h' => 3600.0,
                        _ => return Err(bad()),
                    };
                    total += number.parse::<f64>().map_err(|_| bad())? * unit;
                    number.clear();
                }
                if !number.is_empty() {
                    return Err(bad());
                }
                total
            }
        };
        if !total.is_finite() {
            return Err(bad());
        }
        if total <= 0.0 {
            bail!("[search] time: \"{text}\" is no time at all: give a limit longer than zero, or no limit and a --budget");
        }
        Ok(TimeLimit(std::time::Duration::from_secs_f64(total)))
    }
}

impl std::fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs_f64();
        if s >= 60.0 && s % 60.0 == 0.0 {
            write!(f, "{}m", s / 60.0)
        } else {
            write!(f, "{s}s")
        }
    }
}

serde_via_str!(TimeLimit);
