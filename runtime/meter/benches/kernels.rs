//! `cargo bench -p smartnodes-meter --bench kernels`: where the time goes. Every example
//! task, side by side in one run: native, plain wasm (no metering at all), wasmtime's fuel +
//! NaN canonicalisation, and the meter's rewrite (fuel, depth and NaN canonicalisation in
//! wasm). Medians over rounds (`METER_BENCH_ROUNDS`, default 7) of each variant's best of
//! `METER_BENCH_BEST_OF` runs in the round (default 3); a round runs every variant of every
//! example. A minimal WASI shim (stdin, with its size reported as the runtime reports it,
//! stdout, exit, empty environment, zero random bytes) stands in for the runtime's, so the
//! columns differ only in metering. Instantiation and `_start` are timed; compilation is
//! not.
//!
//! The native columns come from two helper processes that time themselves
//! (`smartnodes_examples::portable::NativeTimer`, built on first use into
//! `target/native-timer-*`): "native" is the plain release build, "native, portable" the
//! same code without the CPU-specific paths that wasm cannot use (sha2's SHA extensions).
//! The meter's cost is judged against the portable one (`meter / native, portable`); the
//! plain native column is kept. The in-process native run checks every output.

use smartnodes_examples::stats::{
    best_of, best_of_from_env, geomean, loadavg, median, rounds_from_env, worst,
};
use std::time::{Duration, Instant};

use smartnodes_meter::{MeterConfig, StartMode, BANK_EXPORT, FUEL_EXPORT};
use wasmtime::{Caller, Config, Engine, Extern, Linker, Module, Store, Val};

/// What the runtime uses (`Metering::Instrumented`).
fn meter_config() -> MeterConfig {
    MeterConfig {
        max_call_depth: 2000,
        start: StartMode::CallFrom("_start".into()),
        ..MeterConfig::default()
    }
}

struct Io {
    stdin: Vec<u8>,
    pos: usize,
    stdout: Vec<u8>,
}

fn memory(caller: &mut Caller<'_, Io>) -> wasmtime::Memory {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m,
        _ => panic!("no memory export"),
    }
}

fn u32_at(data: &[u8], at: usize) -> usize {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize
}

fn linker(engine: &Engine) -> Linker<Io> {
    let mut l = Linker::new(engine);
    let w = "wasi_snapshot_preview1";
    l.func_wrap(
        w,
        "fd_read",
        |mut c: Caller<'_, Io>, fd: i32, iovs: i32, n: i32, nread: i32| -> i32 {
            assert_eq!(fd, 0);
            let mem = memory(&mut c);
            let (data, io) = mem.data_and_store_mut(&mut c);
            let mut total = 0;
            for k in 0..n as usize {
                let at = iovs as usize + 8 * k;
                let (ptr, len) = (u32_at(data, at), u32_at(data, at + 4));
                let take = len.min(io.stdin.len() - io.pos);
                data[ptr..ptr + take].copy_from_slice(&io.stdin[io.pos..io.pos + take]);
                io.pos += take;
                total += take;
            }
            data[nread as usize..nread as usize + 4].copy_from_slice(&(total as u32).to_le_bytes());
            0
        },
    )
    .unwrap();
    l.func_wrap(
        w,
        "fd_write",
        |mut c: Caller<'_, Io>, fd: i32, iovs: i32, n: i32, nwritten: i32| -> i32 {
            let mem = memory(&mut c);
            let (data, io) = mem.data_and_store_mut(&mut c);
            let mut total = 0;
            for k in 0..n as usize {
                let at = iovs as usize + 8 * k;
                let (ptr, len) = (u32_at(data, at), u32_at(data, at + 4));
                if fd == 1 {
                    io.stdout.extend_from_slice(&data[ptr..ptr + len]);
                }
                total += len;
            }
            data[nwritten as usize..nwritten as usize + 4]
                .copy_from_slice(&(total as u32).to_le_bytes());
            0
        },
    )
    .unwrap();
    l.func_wrap(w, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("exit {code}")))
    })
    .unwrap();
    l.func_wrap(
        w,
        "environ_sizes_get",
        |mut c: Caller<'_, Io>, count: i32, size: i32| -> i32 {
            let mem = memory(&mut c);
            let data = mem.data_mut(&mut c);
            data[count as usize..count as usize + 4].fill(0);
            data[size as usize..size as usize + 4].fill(0);
            0
        },
    )
    .unwrap();
    // stdin's size is the input not read yet, as the runtime reports it (the guest sizes
    // its input buffer from it); other descriptors report 0.
    l.func_wrap(
        w,
        "fd_filestat_get",
        |mut c: Caller<'_, Io>, fd: i32, out: i32| -> i32 {
            const FILETYPE_CHARACTER_DEVICE: u8 = 2;
            let mem = memory(&mut c);
            let (data, io) = mem.data_and_store_mut(&mut c);
            let stat = &mut data[out as usize..out as usize + 64];
            stat.fill(0);
            stat[16] = FILETYPE_CHARACTER_DEVICE;
            if fd == 0 {
                let left = (io.stdin.len() - io.pos) as u64;
                stat[32..40].copy_from_slice(&left.to_le_bytes());
            }
            0
        },
    )
    .unwrap();
    l.func_wrap(w, "environ_get", |_: i32, _: i32| -> i32 { 0 })
        .unwrap();
    l.func_wrap(
        w,
        "random_get",
        |mut c: Caller<'_, Io>, ptr: i32, len: i32| -> i32 {
            let mem = memory(&mut c);
            mem.data_mut(&mut c)[ptr as usize..(ptr + len) as usize].fill(7);
            0
        },
    )
    .unwrap();
    l
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    WasmtimeFuel,
    Meter,
    /// The meter without NaN canonicalisation (results may then differ between
    /// architectures when NaNs are stored): how much of the cost is the NaN part.
    MeterNoNan,
    /// The meter with the wall-clock backstop as the runtime runs it
    /// (`MeterConfig::interrupt`: the budget in slices from the bank, the interrupt byte
    /// consulted at each refill): the backstop's cost.
    MeterBackstop,
}

struct Prepared {
    engine: Engine,
    module: Module,
    linker: Linker<Io>,
    mode: Mode,
}

fn prepare(wasm: &[u8], mode: Mode) -> Prepared {
    let mut c = Config::new();
    c.relaxed_simd_deterministic(true);
    match mode {
        Mode::Plain | Mode::Meter | Mode::MeterNoNan => {}
        Mode::MeterBackstop => {
            c.wasm_multi_memory(true);
        }
        Mode::WasmtimeFuel => {
            c.consume_fuel(true).cranelift_nan_canonicalization(true);
        }
    }
    let engine = Engine::new(&c).unwrap();
    let bytes = match mode {
        Mode::Meter => {
            smartnodes_meter::instrument(wasm, &meter_config())
                .unwrap()
                .wasm
        }
        Mode::MeterNoNan => {
            let cfg = MeterConfig {
                nan: smartnodes_meter::NanMode::Off,
                ..meter_config()
            };
            smartnodes_meter::instrument(wasm, &cfg).unwrap().wasm
        }
        Mode::MeterBackstop => {
            let cfg = MeterConfig {
                interrupt: true,
                ..meter_config()
            };
            smartnodes_meter::instrument(wasm, &cfg).unwrap().wasm
        }
        _ => wasm.to_vec(),
    };
    let module = Module::new(&engine, &bytes).unwrap();
    let linker = linker(&engine);
    Prepared {
        engine,
        module,
        linker,
        mode,
    }
}

/// Runs `_start` once: (output, fuel used (0 for plain), time).
fn run(p: &Prepared, input: &[u8]) -> (Vec<u8>, u64, Duration) {
    const BUDGET: u64 = 1 << 60;
    let t = Instant::now();
    let io = Io {
        stdin: input.to_vec(),
        pos: 0,
        stdout: Vec::new(),
    };
    let mut store = Store::new(&p.engine, io);
    if p.mode == Mode::WasmtimeFuel {
        store.set_fuel(BUDGET).unwrap();
    }
    let instance = p.linker.instantiate(&mut store, &p.module).unwrap();
    if matches!(p.mode, Mode::Meter | Mode::MeterNoNan) {
        let g = instance.get_global(&mut store, FUEL_EXPORT).unwrap();
        g.set(&mut store, Val::I64(BUDGET as i64)).unwrap();
    }
    if p.mode == Mode::MeterBackstop {
        // As the runtime does: a slice in the counter, the rest in the bank.
        let slice = smartnodes_meter::INTERRUPT_SLICE;
        let g = instance.get_global(&mut store, FUEL_EXPORT).unwrap();
        g.set(&mut store, Val::I64(slice)).unwrap();
        let b = instance.get_global(&mut store, BANK_EXPORT).unwrap();
        b.set(&mut store, Val::I64(BUDGET as i64 - slice)).unwrap();
    }
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    if let Err(e) = start.call(&mut store, ()) {
        assert!(format!("{e:?}").contains("exit 0"), "{e:?}");
    }
    let elapsed = t.elapsed();
    let fuel = match p.mode {
        Mode::Plain => 0,
        Mode::WasmtimeFuel => BUDGET - store.get_fuel().unwrap(),
        Mode::Meter | Mode::MeterNoNan => {
            let g = instance.get_global(&mut store, FUEL_EXPORT).unwrap();
            BUDGET - g.get(&mut store).unwrap_i64() as u64
        }
        Mode::MeterBackstop => {
            let g = instance.get_global(&mut store, FUEL_EXPORT).unwrap();
            let b = instance.get_global(&mut store, BANK_EXPORT).unwrap();
            let left = g.get(&mut store).unwrap_i64() + b.get(&mut store).unwrap_i64();
            BUDGET - left as u64
        }
    };
    (std::mem::take(&mut store.data_mut().stdout), fuel, elapsed)
}

fn native(name: &str, input: &[u8]) -> Vec<u8> {
    smartnodes_examples::native(name, input)
        .expect("an example")
        .expect("native run")
}

fn main() {
    let rounds = rounds_from_env("METER_BENCH_ROUNDS");
    let runs = best_of_from_env("METER_BENCH_BEST_OF");
    let (mut native_timer, mut portable) = smartnodes_examples::portable::NativeTimer::pair(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
    );
    println!("smartnodes-meter kernels benchmark: {rounds} interleaved rounds, each variant's best of {runs} runs per round, medians over rounds, ratio = time / native");
    println!("meter: {}", meter_config().fingerprint());
    println!("load average at start: {}", loadavg());
    println!();
    println!("| example | native | native, portable | plain wasm | wasmtime fuel + NaN canon | meter (fuel + depth + NaN) | meter / plain | meter / native, portable | meter without NaN canon | fuel (both) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut rp, mut rw, mut rm, mut mp, mut mf, mut rn, mut rf) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    // Per example: plain, wasmtime fuel + NaN, meter, meter without NaN, each / portable.
    let mut fair: Vec<(&str, [f64; 4])> = Vec::new();
    // Every example's variants, compiled once.
    struct Example {
        name: &'static str,
        input: Vec<u8>,
        expected: Vec<u8>,
        modes: [Prepared; 5],
        // native, native portable, then the modes.
        times: [Vec<Duration>; 7],
        // wasmtime's and the meter's fuel.
        fuels: (u64, u64),
    }
    let mut examples: Vec<Example> = smartnodes_examples::ALL
        .iter()
        .map(|&(name, wasm)| {
            let input = smartnodes_examples::workload(name).expect("a workload");
            Example {
                name,
                expected: native(name, &input),
                input,
                modes: [
                    Mode::Plain,
                    Mode::WasmtimeFuel,
                    Mode::Meter,
                    Mode::MeterNoNan,
                    Mode::MeterBackstop,
                ]
                .map(|m| prepare(wasm, m)),
                times: Default::default(),
                fuels: (0, 0),
            }
        })
        .collect();
    // A round runs every example once, so that a disturbed stretch of time touches a
    // round of each example rather than every round of one (short kernels like matmul
    // moved by 2x between runs when their rounds were consecutive).
    for _ in 0..rounds {
        for ex in &mut examples {
            let name = ex.name;
            let hash = smartnodes_examples::portable::output_hash(&ex.expected);
            for (k, timer) in [&mut native_timer, &mut portable].into_iter().enumerate() {
                ex.times[k].push(best_of(runs, || {
                    let (d, h) = timer.run(name).expect("native-timer");
                    assert_eq!(h, hash, "{name}: native build {k} disagrees");
                    d
                }));
            }
            for (k, p) in ex.modes.iter().enumerate() {
                let mut fuel = 0;
                ex.times[k + 2].push(best_of(runs, || {
                    let (out, f, d) = run(p, &ex.input);
                    assert_eq!(out, ex.expected, "{name}: mode {k} disagrees with native");
                    fuel = f;
                    d
                }));
                match p.mode {
                    Mode::WasmtimeFuel => ex.fuels.0 = fuel,
                    Mode::Meter => ex.fuels.1 = fuel,
                    Mode::MeterBackstop => assert_eq!(fuel, ex.fuels.1, "{name}: backstop fuel"),
                    Mode::Plain | Mode::MeterNoNan => {}
                }
            }
        }
    }
    let mut backstop: Vec<(&str, Duration, Duration)> = Vec::new();
    for ex in examples {
        let (name, fuels, times) = (ex.name, ex.fuels, ex.times);
        assert_eq!(fuels.0, fuels.1, "{name}: fuel counts differ");
        let [n, f, p, w, m, nn, mb] = times.map(median);
        backstop.push((name, m, mb));
        fair.push((
            name,
            [p, w, m, nn].map(|d| d.as_secs_f64() / f.as_secs_f64()),
        ));
        let r = |d: Duration| d.as_secs_f64() / n.as_secs_f64();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        rf.push(r(f));
        rp.push(r(p));
        rw.push(r(w));
        rm.push(r(m));
        mp.push(m.as_secs_f64() / p.as_secs_f64());
        mf.push(m.as_secs_f64() / f.as_secs_f64());
        rn.push(r(nn));
        println!(
            "| {name} | {:.1} ms | {:.1} ms ({:.2}x) | {:.1} ms ({:.2}x) | {:.1} ms ({:.2}x) | {:.1} ms ({:.2}x) | {:.2}x | {:.2}x | {:.1} ms ({:.2}x) | {} |",
            ms(n),
            ms(f),
            r(f),
            ms(p),
            r(p),
            ms(w),
            r(w),
            ms(m),
            r(m),
            m.as_secs_f64() / p.as_secs_f64(),
            m.as_secs_f64() / f.as_secs_f64(),
            ms(nn),
            r(nn),
            fuels.0
        );
    }
    for (label, agg) in [
        ("**geomean**", geomean as fn(&[f64]) -> f64),
        ("worst", worst),
    ] {
        println!(
            "| {label} | | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | **{:.2}x** | {:.2}x | |",
            agg(&rf),
            agg(&rp),
            agg(&rw),
            agg(&rm),
            agg(&mp),
            agg(&mf),
            agg(&rn)
        );
    }
    println!();
    println!("Ratios to native, portable (the fair baseline):");
    println!();
    println!("| example | plain wasm | wasmtime fuel + NaN canon | meter (fuel + depth + NaN) | meter without NaN canon |");
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in &fair {
        println!(
            "| {name} | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            r[0], r[1], r[2], r[3]
        );
    }
    let column = |k: usize| fair.iter().map(|(_, r)| r[k]).collect::<Vec<_>>();
    for (label, agg) in [
        ("**geomean**", geomean as fn(&[f64]) -> f64),
        ("worst", worst),
    ] {
        println!(
            "| {label} | {:.2}x | {:.2}x | **{:.2}x** | {:.2}x |",
            agg(&column(0)),
            agg(&column(1)),
            agg(&column(2)),
            agg(&column(3))
        );
    }
    println!();
    println!("The wall-clock backstop's cost (meter with the interrupt slices / meter):");
    println!();
    println!("| example | meter | meter + backstop | ratio |");
    println!("|---|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (name, m, mb) in &backstop {
        let r = mb.as_secs_f64() / m.as_secs_f64();
        ratios.push(r);
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {r:.3}x |",
            m.as_secs_f64() * 1e3,
            mb.as_secs_f64() * 1e3
        );
    }
    println!("| **geomean** | | | **{:.3}x** |", geomean(&ratios));
    println!("| worst | | | {:.3}x |", worst(&ratios));
    println!();
    println!("load average at end: {}", loadavg());
}
