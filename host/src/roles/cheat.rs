//! Deliberately dishonest workers, for tests and demos only: `smartnodes node --role worker
//! --cheat MODE[:RATE]`. Without a [`Cheat`] in the worker's config no code path lies.
//!
//! Which tasks a cheater lies about is decided by `sha256("cheat" ‖ job id ‖ index)`, so
//! a cheat is reproducible across runs (tests do not depend on luck beyond the sampling
//! validators do, which the worker cannot predict).

use crate::net::proto::Hash;
use smartnodes_runtime::sha256;
use std::fmt;
use std::str::FromStr;

/// How a cheater lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheatMode {
    /// Runs the task, then flips bytes of the output (and signs the wrong output's hash).
    WrongOutput,
    /// Does not run the task: returns a made-up output with a made-up fuel count.
    Lazy,
    /// Runs the task honestly but reports a different fuel count.
    Fuel,
    /// Does not run the task: replays the output and fuel of another task it ran.
    Copy,
    /// Runs the task honestly but signs the receipt with an engine fingerprint that is not
    /// the network's ([`FOREIGN_ENGINE`]).
    Engine,
    /// Runs the task, then claims it trapped with a stack overflow (no output, the whole
    /// budget as fuel), whatever it did.
    Overflow,
    /// Honest output, fuel claimed ×50.
    Inflate,
}

/// The engine fingerprint an `engine` cheater signs with: sha256 of this text.
pub const FOREIGN_ENGINE: &[u8] = b"smartnodes cheat: a foreign engine";

impl CheatMode {
    /// Every mode.
    pub const ALL: [CheatMode; 7] = [
        CheatMode::WrongOutput,
        CheatMode::Lazy,
        CheatMode::Fuel,
        CheatMode::Copy,
        CheatMode::Engine,
        CheatMode::Overflow,
        CheatMode::Inflate,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CheatMode::WrongOutput => "wrong-output",
            CheatMode::Lazy => "lazy",
            CheatMode::Fuel => "fuel",
            CheatMode::Copy => "copy",
            CheatMode::Engine => "engine",
            CheatMode::Overflow => "overflow",
            CheatMode::Inflate => "inflate",
        }
    }
}

/// A cheating policy: lie in `mode` about a fraction `rate` (0 < rate ≤ 1) of tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cheat {
    /// How.
    pub mode: CheatMode,
    /// How often.
    pub rate: f64,
}

impl Cheat {
    /// Whether to lie about task `index` of `job`.
    pub fn applies(&self, job: &Hash, index: u32) -> bool {
        let mut bytes = Vec::with_capacity(5 + 32 + 4);
        bytes.extend_from_slice(b"cheat");
        bytes.extend_from_slice(job);
        bytes.extend_from_slice(&index.to_be_bytes());
        let h = sha256(&bytes);
        let draw = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
        (draw as f64) < self.rate * (u64::MAX as f64)
    }
}

impl fmt::Display for Cheat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.mode.name(), self.rate)
    }
}

impl FromStr for Cheat {
    type Err = String;

    /// `MODE[:RATE]`; RATE is a fraction (`0.1`) or a percentage (`10%`), 1 by default.
    fn from_str(s: &str) -> Result<Cheat, String> {
        let (mode, rate) = match s.split_once(':') {
            Some((m, r)) => (m, Some(r)),
            None => (s, None),
        };
        let mode = CheatMode::ALL
            .into_iter()
            .find(|m| m.name() == mode)
            .ok_or_else(|| {
                let names: Vec<&str> = CheatMode::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown cheat mode {mode:?} (expected one of {})",
                    names.join(", ")
                )
            })?;
        let rate = match rate {
            None => 1.0,
            Some(r) => {
                let (num, scale) = match r.strip_suffix('%') {
                    Some(p) => (p, 100.0),
                    None => (r, 1.0),
                };
                let v: f64 = num
                    .parse()
                    .map_err(|_| format!("the cheat rate {r:?} is not a number"))?;
                v / scale
            }
        };
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(format!("the cheat rate must be in (0, 1], not {rate}"));
        }
        Ok(Cheat { mode, rate })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes_and_rates() {
        let c: Cheat = "wrong-output:0.1".parse().unwrap();
        assert_eq!(c.mode, CheatMode::WrongOutput);
        assert_eq!(c.rate, 0.1);
        assert_eq!("lazy".parse::<Cheat>().unwrap().rate, 1.0);
        assert_eq!("copy:10%".parse::<Cheat>().unwrap().rate, 0.1);
        for mode in CheatMode::ALL {
            assert_eq!(mode.name().parse::<Cheat>().unwrap().mode, mode);
        }
        assert!("fuel:0".parse::<Cheat>().is_err());
        assert!("fuel:2".parse::<Cheat>().is_err());
        assert!("steal".parse::<Cheat>().is_err());
        assert!("lazy:x".parse::<Cheat>().is_err());
    }

    #[test]
    fn applies_to_about_rate_of_tasks() {
        let c: Cheat = "fuel:0.1".parse().unwrap();
        let n = (0..10_000).filter(|i| c.applies(&[7; 32], *i)).count();
        assert!((800..1200).contains(&n), "{n}");
        let all: Cheat = "fuel".parse().unwrap();
        assert!((0..100).all(|i| all.applies(&[1; 32], i)));
    }
}
