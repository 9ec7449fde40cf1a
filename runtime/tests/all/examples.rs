//! Every example task against its spec, and against its own native build.

use crate::common::{example_input, native, run};
use smartnodes_runtime::{TrapCode, Verdict};

fn wasm(name: &str) -> &'static [u8] {
    smartnodes_examples::module(name).expect("example module")
}

/// Runs the wasm task and returns its output, asserting it completed.
fn output(name: &str, input: &[u8]) -> Vec<u8> {
    let o = run(wasm(name), input);
    assert_eq!(
        o.verdict,
        Verdict::Completed,
        "{name}: {} {}",
        o.detail,
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.output_hash, Some(smartnodes_runtime::sha256(&o.output)));
    o.output
}

#[test]
fn wasm_equals_native_on_every_example() {
    for (name, _) in smartnodes_examples::ALL {
        let input = example_input(name);
        assert_eq!(
            output(name, &input),
            native(name, &input).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn wordcount_spec() {
    assert_eq!(output("wordcount", b""), b"");
    assert_eq!(output("wordcount", b"  ,.\n"), b"");
    assert_eq!(output("wordcount", b"b a B c a b"), b"b\t3\na\t2\nc\t1\n");
    assert_eq!(
        output("wordcount", "Ünïcode über x1 X1".as_bytes()),
        b"x1\t2\nber\t1\ncode\t1\nn\t1\n"
    );
}

#[test]
fn primes_spec() {
    assert_eq!(output("primes", b"0"), b"0 0\n");
    assert_eq!(output("primes", b"1"), b"0 0\n");
    assert_eq!(output("primes", b"2"), b"1 2\n");
    assert_eq!(output("primes", b" 10 \n"), b"4 7\n");
    assert_eq!(output("primes", b"1000000"), b"78498 999983\n");
    // Bad input: the SDK exits with code 1 and says why on stderr.
    let o = run(wasm("primes"), b"many");
    assert_eq!(o.verdict, Verdict::Trapped(TrapCode::Exit(1)));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a decimal N"));
}

#[test]
fn sha256_chain_spec() {
    assert_eq!(
        output("sha256-chain", b"1\nabc"),
        b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
    assert_eq!(
        output("sha256-chain", b"2\nabc"),
        b"4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358\n"
    );
    // Binary data after the first line, including newlines.
    let mut input = b"3\n".to_vec();
    input.extend((0..=255u8).cycle().take(5000));
    assert_eq!(
        output("sha256-chain", &input),
        native("sha256-chain", &input).unwrap()
    );
    assert_eq!(
        run(wasm("sha256-chain"), b"0\nabc").verdict,
        Verdict::Trapped(TrapCode::Exit(1))
    );
}

#[test]
fn mandelbrot_spec() {
    assert_eq!(
        output("mandelbrot", b"1 1 10 0 0 1 1"),
        b"P5\n1 1\n255\n\xff"
    );
    assert_eq!(
        output("mandelbrot", b"1 1 10 3 3 4 4"),
        b"P5\n1 1\n255\n\x19"
    );
    let out = output("mandelbrot", b"64 48 100 -2 -1.2 1 1.2");
    assert!(out.starts_with(b"P5\n64 48\n255\n"));
    assert_eq!(out.len(), b"P5\n64 48\n255\n".len() + 64 * 48);
    // An independent reference for a few pixels, computed here from the spec's formulas.
    let header = b"P5\n64 48\n255\n".len();
    for (px, py) in [(0u32, 0u32), (40, 24), (63, 47), (10, 30)] {
        let cx = -2.0 + (1.0f64 - -2.0) * f64::from(px) / 64.0;
        let cy = -1.2 + (1.2f64 - -1.2) * f64::from(py) / 48.0;
        let (mut zx, mut zy, mut n) = (0.0f64, 0.0f64, 0u32);
        while n < 100 && zx * zx + zy * zy <= 4.0 {
            let t = zx * zx - zy * zy + cx;
            zy = 2.0 * zx * zy + cy;
            zx = t;
            n += 1;
        }
        assert_eq!(
            u32::from(out[header + (py * 64 + px) as usize]),
            n * 255 / 100,
            "pixel {px},{py}"
        );
    }
}

#[test]
fn matmul_spec() {
    let out = String::from_utf8(output("matmul", b"16 42")).unwrap();
    let sum = matmul::checksum(16, 42);
    assert_eq!(out, format!("n=16 sum={sum} bits={:016x}\n", sum.to_bits()));
}

/// Many threads loading the same new module at once compile it once: the others wait for
/// that compile and take it from the cache (fifty workers sharing a runtime used to compile
/// each new module fifty times).
#[test]
fn concurrent_loads_of_a_new_module_compile_it_once() {
    let runtime =
        smartnodes_runtime::Runtime::new(smartnodes_runtime::RuntimeConfig::default()).unwrap();
    let module = wasm("mandelbrot");
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                let loaded = runtime
                    .load(module, &smartnodes_runtime::Limits::DEFAULT)
                    .unwrap();
                assert!(loaded.is_ok());
            });
        }
    });
    assert_eq!(runtime.compiles(), 1);
    // Another module is another compile; a loaded one is none.
    runtime
        .load(wasm("wordcount"), &smartnodes_runtime::Limits::DEFAULT)
        .unwrap()
        .unwrap();
    runtime
        .load(module, &smartnodes_runtime::Limits::DEFAULT)
        .unwrap()
        .unwrap();
    assert_eq!(runtime.compiles(), 2);
}
