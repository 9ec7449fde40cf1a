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

/// Runs the example task `name` natively (the same library code the wasm module is built
/// from). `None` when there is no such example.
pub fn native(name: &str, input: &[u8]) -> Option<Result<Vec<u8>, String>> {
    Some(match name {
        "wordcount" => wordcount::run(input),
        "primes" => primes::run(input),
        "sha256-chain" => sha256_chain::run(input),
        "mandelbrot" => mandelbrot::run(input),
        "matmul" => matmul::run(input),
        _ => return None,
    })
}

/// A benchmark input for the example task `name`: a fraction of a second of native work.
/// `None` when there is no such example.
pub fn workload(name: &str) -> Option<Vec<u8>> {
    Some(match name {
        "wordcount" => {
            // 4 MiB of pseudo-random text over a small vocabulary plus rarer words.
            let words = [
                "lorem",
                "ipsum",
                "dolor",
                "sit",
                "amet",
                "consectetur",
                "adipiscing",
                "elit",
                "sed",
                "do",
            ];
            let mut text = Vec::with_capacity(4 << 20);
            let mut x: u64 = 1;
            while text.len() < 4 << 20 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.extend_from_slice(words[(x >> 33) as usize % words.len()].as_bytes());
                text.extend_from_slice(if x.is_multiple_of(7) { b".\n" } else { b" " });
                if x.is_multiple_of(13) {
                    text.extend_from_slice(format!("w{} ", x % 5000).as_bytes());
                }
            }
            text
        }
        "primes" => b"20000000".to_vec(),
        "sha256-chain" => b"300000\nsmartnodes".to_vec(),
        "mandelbrot" => b"400 300 500 -2.0 -1.2 1.0 1.2".to_vec(),
        "matmul" => b"200 7".to_vec(),
        _ => return None,
    })
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
        assert_eq!(super::native("primes", b"10"), Some(Ok(b"4 7\n".to_vec())));
        assert!(super::native("nope", b"").is_none());
        for (name, _) in super::ALL {
            assert!(super::workload(name).is_some(), "{name}");
        }
    }
}
