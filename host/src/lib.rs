//! # smartnodes (the node and the CLI)
//!
//! The binary `smartnodes` is glue: it parses arguments ([`cli`]), sets up logging and
//! calls the command modules here. Each command is a library function so that tests and
//! other commands (the devnet) can call it without spawning a process.
//!
//! ## Layout
//! - [`cli`]: the command-line interface (clap);
//! - [`commands`]: one module per subcommand (`devnet`, `run`, `node`, `submit`, `status`, `keys`);
//! - [`identity`]: a node's libp2p and Ethereum keys, kept in its data dir;
//! - [`net`]: the libp2p swarm (one event loop, a cloneable client), the wire types
//!   ([`net::proto`]) and their size-limited codec;
//! - [`store`]: the node's state in sled (typed trees, big-endian keys);
//! - [`roles`]: validator, worker and user logic, and [`roles::start_node`];
//! - [`epoch`]: epoch summaries, proposals, votes and reward claims on the contracts;
//! - [`evidence`]: evidence bundles (a claim and all it needs to be re-checked offline);
//! - [`harness`]: an in-process network (tests, benchmarks, the devnet);
//! - [`devnet`]: `smartnodes devnet`, the whole network on one machine;
//! - [`metrics`]: a node's Prometheus metrics (ours and libp2p's) and their endpoint.
//!
//! ## A job's path
//! The user stores its blobs, sends the `JobSpec` (small blobs inline) to a validator; the
//! validator stores the job and its tasks in sled, fetches missing blobs from the user, and
//! assigns tasks to registered workers under leases; a worker fetches the module and input
//! by hash, runs the task off the async threads, signs a receipt
//! `(job_id, index, verdict, output_hash, fuel_used, engine)` and delivers it with the
//! output; the validator checks signature and output hash, records the first valid result
//! per task and pushes it to the user, who checks it again.

pub mod cli;
pub mod commands;
pub mod devnet;
pub mod epoch;
pub mod evidence;
pub mod harness;
pub mod identity;
pub mod metrics;
pub mod net;
pub mod roles;
pub mod store;
