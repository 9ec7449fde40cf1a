//! The `primes` task: see the crate's library docs and README.md for the format.

fn task(input: Vec<u8>) -> Result<Vec<u8>, String> {
    primes::run(&input)
}

smartnodes_guest::main!(task);
