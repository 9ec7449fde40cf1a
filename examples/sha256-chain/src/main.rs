//! The `sha256-chain` task: see the crate's library docs and README.md for the format.

fn task(input: Vec<u8>) -> Result<Vec<u8>, String> {
    sha256_chain::run(&input)
}

smartnodes_guest::main!(task);
