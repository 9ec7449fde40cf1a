//! `matmul`: an f64 matrix multiply, a float-heavy kernel for benchmarks.
//!
//! Input: ASCII `n seed` (whitespace-separated decimals, `1 <= n <= 2048`). A and B are
//! `n x n` matrices with entries uniform in `[-1, 1)` from
//! `smartnodes_guest::Rng::seed_from_u64(seed)` (A row-major first, then B). `C = A * B`
//! computed in i-k-j order. Output: `n=<n> sum=<sum of C, row-major, as f64> bits=<the sum's
//! IEEE-754 bits as 16 lowercase hex digits>\n`.

use smartnodes_guest::Rng;

/// Largest accepted `n`.
pub const MAX_N: usize = 2048;

/// Runs the task; see the crate docs for the format.
pub fn run(input: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(input).map_err(|_| "input is not ASCII")?;
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let [n, seed] = fields[..] else {
        return Err(format!("expected `n seed`, got {} fields", fields.len()));
    };
    let n: usize = n.parse().map_err(|e| format!("n {n:?}: {e}"))?;
    let seed: u64 = seed.parse().map_err(|e| format!("seed {seed:?}: {e}"))?;
    if !(1..=MAX_N).contains(&n) {
        return Err(format!("n must be in 1..={MAX_N}"));
    }
    let sum = checksum(n, seed);
    Ok(format!("n={n} sum={sum} bits={:016x}\n", sum.to_bits()).into_bytes())
}

/// The sum of the entries of `A * B` for the matrices of `seed`.
pub fn checksum(n: usize, seed: u64) -> f64 {
    let mut rng = Rng::seed_from_u64(seed);
    let mut gen =
        |len: usize| -> Vec<f64> { (0..len).map(|_| rng.next_f64() * 2.0 - 1.0).collect() };
    let a = gen(n * n);
    let b = gen(n * n);
    let mut c = vec![0.0f64; n * n];
    for i in 0..n {
        let row = &mut c[i * n..(i + 1) * n];
        for k in 0..n {
            let aik = a[i * n + k];
            let brow = &b[k * n..(k + 1) * n];
            for (cij, bkj) in row.iter_mut().zip(brow) {
                *cij += aik * bkj;
            }
        }
    }
    c.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_like_cases_and_determinism() {
        let one = checksum(1, 7);
        let mut rng = Rng::seed_from_u64(7);
        let a = rng.next_f64() * 2.0 - 1.0;
        let b = rng.next_f64() * 2.0 - 1.0;
        assert_eq!(one, a * b);
        assert_eq!(checksum(16, 3).to_bits(), checksum(16, 3).to_bits());
        assert_ne!(checksum(16, 3).to_bits(), checksum(16, 4).to_bits());
    }

    #[test]
    fn parses_and_rejects() {
        let out = String::from_utf8(run(b"4 1\n").unwrap()).unwrap();
        assert!(out.starts_with("n=4 sum=") && out.ends_with('\n'), "{out}");
        assert!(run(b"0 1").is_err());
        assert!(run(b"4").is_err());
        assert!(run(b"4 -1").is_err());
        assert!(run(b"5000 1").is_err());
    }
}
