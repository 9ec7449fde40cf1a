//! `primes`: how many primes are there up to N, and which is the largest.
//!
//! Input: an ASCII decimal `N` (surrounding whitespace allowed). Output:
//! `<count of primes <= N> <largest prime <= N, or 0>\n`. A segmented sieve of
//! Eratosthenes over odd numbers keeps memory at O(sqrt N).

/// Runs the task; see the crate docs for the format.
pub fn run(input: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(input).map_err(|_| "input is not ASCII".to_string())?;
    let text = text.trim();
    let n: u64 = text
        .parse()
        .map_err(|e| format!("expected a decimal N, got {text:?}: {e}"))?;
    let (count, largest) = count_primes(n);
    Ok(format!("{count} {largest}\n").into_bytes())
}

/// `(number of primes <= n, largest prime <= n or 0)`.
pub fn count_primes(n: u64) -> (u64, u64) {
    if n < 2 {
        return (0, 0);
    }
    if n == 2 {
        return (1, 2);
    }
    let root = isqrt(n);
    // Odd base primes up to sqrt(n), by a small plain sieve.
    let small: Vec<u64> = {
        let limit = root as usize;
        let mut composite = vec![false; limit + 1];
        let mut out = Vec::new();
        let mut i = 3;
        while i <= limit {
            if !composite[i] {
                out.push(i as u64);
                let mut j = i * i;
                while j <= limit {
                    composite[j] = true;
                    j += 2 * i;
                }
            }
            i += 2;
        }
        out
    };
    // Segments of odd numbers [lo, lo + 2*SEG).
    const SEG: u64 = 1 << 15;
    let mut count = 1; // the prime 2
    let mut largest = 2;
    let mut sieve = vec![false; SEG as usize];
    let mut lo = 3;
    while lo <= n {
        let hi = (lo + 2 * SEG - 1).min(n); // inclusive
        let len = ((hi - lo) / 2 + 1) as usize;
        sieve[..len].fill(false);
        for &p in &small {
            if p * p > hi {
                break;
            }
            // First odd multiple of p that is >= max(p*p, lo).
            let mut m = (p * p).max(lo.div_ceil(p) * p);
            if m % 2 == 0 {
                m += p;
            }
            while m <= hi {
                sieve[((m - lo) / 2) as usize] = true;
                m += 2 * p;
            }
        }
        for (i, &c) in sieve[..len].iter().enumerate() {
            if !c {
                count += 1;
                largest = lo + 2 * i as u64;
            }
        }
        lo = hi + 1;
        if lo % 2 == 0 {
            lo += 1;
        }
    }
    (count, largest)
}

fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(n: u64) -> (u64, u64) {
        let mut count = 0;
        let mut largest = 0;
        for k in 2..=n {
            if (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0) {
                count += 1;
                largest = k;
            }
        }
        (count, largest)
    }

    #[test]
    fn matches_a_naive_count() {
        for n in 0..2_000 {
            assert_eq!(count_primes(n), naive(n), "n = {n}");
        }
        // Across several segments.
        assert_eq!(count_primes(1_000_000), (78_498, 999_983));
    }

    #[test]
    fn parses_whitespace_and_rejects_garbage() {
        assert_eq!(run(b"  10\n").unwrap(), b"4 7\n");
        assert_eq!(run(b"1").unwrap(), b"0 0\n");
        assert_eq!(run(b"0").unwrap(), b"0 0\n");
        assert!(run(b"-3").is_err());
        assert!(run(b"").is_err());
        assert!(run(b"12 13").is_err());
    }
}
