//! Random counted and bounded loops: the shapes the rewrite emits differently (unrolled
//! with folded pointers, prepaid bounded copies), which wasm-smith's modules never contain
//! (its 4,000-module run has no counted or bounded loop at all).
//!
//! Each module is one loop of a random straight-line body (integer and float loads and
//! stores through pointer locals, pointer increments, reads of the counter, `f64x2`
//! arithmetic, and, in bounded loops, exits) over memory seeded with random bytes, NaNs
//! among them. Pointers start anywhere, including near the end of memory (traps part-way)
//! and just below 2^32 (they wrap round). Against the original module on wasmtime with
//! engine fuel and NaN canonicalisation (loads of stored floats make NaN bits part of the
//! results): the same outcome, the same fuel when it completes (and out of fuel one unit
//! below it), the same memory and globals.
//!
//! `METER_LOOPS_SEEDS` (default 400) modules; the seed is in every failure message.

mod common;

use common::*;

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// One random statement of a loop body. `counter` is the loop's counter local; `exits`
/// allows `br_if $out`.
fn statement(rng: &mut Rng, counter: &str, exits: bool) -> String {
    let p = rng.pick(&["$p", "$q"]);
    let q = rng.pick(&["$p", "$q"]);
    let off = rng.pick(&[0, 0, 4, 8, 16, 24]);
    let step = rng.pick(&[1, 4, 8, 16]);
    match rng.below(if exits { 10 } else { 9 }) {
        0 => format!("(local.set $a (i32.add (local.get $a) (i32.load offset={off} (local.get {p}))))"),
        1 => format!("(i32.store offset={off} (local.get {p}) (local.get $a))"),
        2 | 3 => format!("(local.set {p} (i32.add (local.get {p}) (i32.const {step})))"),
        4 => format!("(global.set $acc (i32.xor (i32.mul (global.get $acc) (i32.const 31)) (local.get {counter})))"),
        5 => format!("(local.set $x (f64.add (local.get $x) (f64.load offset={off} (local.get {p}))))"),
        6 => format!("(f64.store offset={off} (local.get {p}) (f64.mul (local.get $x) (f64.load (local.get {q}))))"),
        7 => format!(
            "(v128.store offset={off} (local.get {p}) \
             (f64x2.add (v128.load (local.get {q})) (v128.load offset={off} (local.get {p}))))"
        ),
        8 => format!("(i32.store8 offset={off} (local.get {p}) (local.get {counter}))"),
        _ => "(br_if $out (i32.eq (i32.and (local.get $a) (i32.const 7)) (i32.const 3)))"
            .to_string(),
    }
}

/// A random module, its text, and whether its loop never ends (a distance the step does
/// not divide).
fn module(rng: &mut Rng) -> (Vec<u8>, String, bool) {
    let bounded = rng.below(2) == 0;
    let shift = *rng.pick(&[0u32, 0, 1, 2, 3, 28]);
    let step = 1i64 << shift;
    // Iterations: a few, or 0 for a counter that wraps round (2^32 / step: only when
    // that is few).
    let iterations = match rng.below(8) {
        0 if shift >= 28 => 0,
        _ => 1 + rng.below(24) as i64,
    };
    // Sometimes a distance the step does not divide: the loop never ends.
    let skew = if shift > 0 && rng.below(10) == 0 {
        1
    } else {
        0
    };
    let start = |rng: &mut Rng| -> i64 {
        match rng.below(6) {
            0 => 65536 - 8 * (1 + rng.below(12) as i64), // leaves memory part-way
            1 => -(4 * (1 + rng.below(4) as i64)),       // wraps round 2^32
            _ => rng.below(4096) as i64,
        }
    };
    let (p0, q0) = (start(rng), start(rng));
    let body: Vec<String> = (0..1 + rng.below(7))
        .map(|_| statement(rng, if bounded { "$i" } else { "$k" }, bounded))
        .collect();
    let body = body.join("\n          ");
    let data: String = (0..512)
        .map(|_| match rng.below(8) {
            // NaNs with payloads, and both signs.
            0 => "\\00\\00\\00\\00\\01\\00\\f8\\7f".to_string(),
            1 => "\\01\\00\\00\\00\\00\\00\\f0\\ff".to_string(),
            _ => format!("\\{:02x}", rng.below(256)),
        })
        .collect();
    let (setup, lp) = if bounded {
        let i0 = rng.below(1000) as i64;
        let n = i0 + iterations * step + skew;
        let bound = if rng.below(2) == 0 {
            "(local.get $n)".to_string()
        } else {
            format!("(i32.const {})", n as i32)
        };
        let tail = if rng.below(2) == 0 {
            format!("(i32.ne {bound} (local.tee $i (i32.add (local.get $i) (i32.const {step}))))")
        } else {
            format!("(i32.ne (local.tee $i (i32.add (local.get $i) (i32.const {step}))) {bound})")
        };
        (
            format!(
                "(local.set $i (i32.const {i0})) (local.set $n (i32.const {}))",
                n as i32
            ),
            format!("(block $out (loop $l\n          {body}\n          (br_if $l {tail})))"),
        )
    } else {
        let k0 = (iterations * step + skew) as i32;
        (
            format!("(local.set $k (i32.const {k0}))"),
            format!(
                "(block $out (loop $l\n          {body}\n          \
                 (br_if $l (local.tee $k (i32.add (local.get $k) (i32.const {}))))))",
                -step
            ),
        )
    };
    let wat = format!(
        r#"(module
      (memory (export "mem") 1)
      (data (i32.const 0) "{data}")
      (global $acc (export "acc") (mut i32) (i32.const 0))
      (global $fx (export "fx") (mut f64) (f64.const 0))
      (func (export "run") (result i32)
        (local $k i32) (local $i i32) (local $n i32) (local $p i32) (local $q i32)
        (local $a i32) (local $x f64)
        (local.set $p (i32.const {p0})) (local.set $q (i32.const {q0}))
        {setup}
        {lp}
        (global.set $fx (local.get $x))
        (i32.add (local.get $a) (i32.add (local.get $p) (local.get $q)))))"#,
        p0 = p0 as i32,
        q0 = q0 as i32,
    );
    let wasm = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"));
    (wasm, wat, skew != 0)
}

#[test]
fn random_counted_and_bounded_loops_match_the_original() {
    let reference = engine(EngineKind::FuelCanon);
    let plain = engine(EngineKind::Plain);
    let seeds: u64 = std::env::var("METER_LOOPS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    const BUDGET: u64 = 2_000_000;
    let mut shaped = [0u32; 4]; // counted, unrolled, folded pointers, bounded
    let mut outcomes = [0u32; 3]; // completed, trapped, out of fuel
    for seed in 0..seeds {
        let mut rng = Rng(seed);
        let (wasm, wat, endless) = module(&mut rng);
        let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
        let s = metered.stats;
        shaped[0] += s.counted_loops;
        shaped[1] += s.unrolled_loops;
        shaped[2] += s.folded_pointers;
        shaped[3] += s.bounded_loops;
        let want = run_reference(&reference, &wasm, "run", BUDGET);
        let got = run_metered(&plain, &metered, "run", BUDGET);
        let label = format!("seed {seed} ({s:?})\n{wat}");
        if endless && s.counted_loops > 0 {
            // A counted loop whose counter never reaches 0 is out of fuel on entry; the
            // original runs until it is out of fuel or leaves memory (documented).
            assert_eq!(got.outcome, Outcome::OutOfFuel, "{label}");
            assert!(
                matches!(want.outcome, Outcome::OutOfFuel | Outcome::Trap(_)),
                "{label}"
            );
            outcomes[2] += 1;
            continue;
        }
        assert_eq!(want.outcome, got.outcome, "{label}");
        match want.outcome {
            Outcome::Returned(_) => {
                assert_eq!(want.fuel, got.fuel, "fuel: {label}");
                assert_eq!(want.state, got.state, "memory and globals: {label}");
                let short = run_metered(&plain, &metered, "run", want.fuel - 1);
                assert_eq!(short.outcome, Outcome::OutOfFuel, "one unit short: {label}");
                outcomes[0] += 1;
            }
            Outcome::Trap(_) => {
                assert_eq!(want.state, got.state, "memory and globals: {label}");
                outcomes[1] += 1;
            }
            _ => outcomes[2] += 1,
        }
    }
    eprintln!(
        "{seeds} loops: {} counted ({} unrolled, {} pointers folded), {} bounded; \
         {} completed, {} trapped, {} out of fuel",
        shaped[0], shaped[1], shaped[2], shaped[3], outcomes[0], outcomes[1], outcomes[2]
    );
    // Every shape and every outcome occurs.
    let n = seeds as u32;
    assert!(
        shaped[1] > n / 8 && shaped[2] > n / 8 && shaped[3] > n / 8,
        "{shaped:?}"
    );
    assert!(outcomes.iter().all(|&c| c > n / 50), "{outcomes:?}");
}
