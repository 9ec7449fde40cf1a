//! The network's tests: one binary, one module per subject.
//!
//! - `discovery`: nodes told one peer find the validators; `peers`; metrics;
//! - `inprocess`: validators, workers and a user in one tokio runtime;
//! - `multiprocess`: real `smartnodes` processes on loopback;
//! - `blobs`: large transfers and corrupted chunks;
//! - `fuzz`: garbage and oversized messages against the decoders and a live node;
//! - `verify`: cheaters caught, proven and blacklisted; honest workers never accused;
//! - `evidence`: a caught cheat's evidence bundle re-judged offline by the binary;
//! - `scale`: 5 validators and 32 new workers: no honest peer dropped, checks within budget.

mod blobs;
mod common;
mod discovery;
mod evidence;
mod fuzz;
mod inprocess;
mod multiprocess;
mod scale;
mod verify;
