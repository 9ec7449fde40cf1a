//! The example tasks compiled to `wasm32-wasip1`, embedded as bytes.
//!
//! The build script compiles `examples/{wordcount,primes,sha256-chain,mandelbrot,matmul}`
//! with a nested `cargo build --release --target wasm32-wasip1` (into `target/guests`), so
//! tests, benchmarks and the node always run the current sources.

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// The module of the example task `name` (its package name), if there is one.
pub fn module(name: &str) -> Option<&'static [u8]> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, wasm)| *wasm)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_module_is_wasm() {
        assert_eq!(super::ALL.len(), 5);
        for (name, wasm) in super::ALL {
            assert_eq!(&wasm[..4], b"\0asm", "{name}");
        }
        assert!(super::module("primes").is_some());
        assert!(super::module("nope").is_none());
    }
}
