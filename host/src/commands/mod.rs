//! One module per subcommand.

pub mod chain;
pub mod devnet;
pub mod economics;
pub mod evidence;
pub mod keys;
pub mod new;
pub mod node;
pub mod peers;
pub mod results;
pub mod run;
pub mod status;
pub mod submit;
pub mod verify;
