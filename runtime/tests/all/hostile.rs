//! Hostile guests: each gets the right verdict, quickly, one after another in one process,
//! and the host stays healthy.

use crate::common::{fixture, run, runtime, test_limits};
use smartnodes_runtime::{Limits, TaskInput, TrapCode, Verdict};
use std::time::{Duration, Instant};

#[test]
fn every_hostile_guest_gets_its_verdict_quickly() {
    let limits = test_limits();
    let cases: Vec<(&str, Vec<u8>, Verdict)> = vec![
        (
            "infinite_loop",
            fixture("infinite_loop"),
            Verdict::OutOfFuel,
        ),
        (
            "memory_bomb",
            fixture("memory_bomb"),
            Verdict::MemoryExceeded,
        ),
        (
            "huge_initial_memory",
            fixture("huge_initial_memory"),
            Verdict::MemoryExceeded,
        ),
        (
            "infinite_recursion",
            fixture("infinite_recursion"),
            Verdict::Trapped(TrapCode::StackOverflow),
        ),
        (
            "unreachable",
            fixture("unreachable"),
            Verdict::Trapped(TrapCode::Unreachable),
        ),
        (
            "divide_by_zero",
            fixture("divide_by_zero"),
            Verdict::Trapped(TrapCode::IntegerDivisionByZero),
        ),
        (
            "out_of_bounds",
            fixture("out_of_bounds"),
            Verdict::Trapped(TrapCode::MemoryOutOfBounds),
        ),
        (
            "exit_code",
            fixture("exit_code"),
            Verdict::Trapped(TrapCode::Exit(3)),
        ),
        (
            "unknown_import",
            fixture("unknown_import"),
            Verdict::InvalidModule,
        ),
        ("no_start", fixture("no_start"), Verdict::InvalidModule),
        (
            "shared_memory",
            fixture("shared_memory"),
            Verdict::InvalidModule,
        ),
        (
            "garbage",
            b"\0asm\x01\0\0\0garbage follows \xff\xfe".to_vec(),
            Verdict::InvalidModule,
        ),
        (
            "not_wasm",
            b"#!/bin/sh\nrm -rf /\n".to_vec(),
            Verdict::InvalidModule,
        ),
        ("empty_file", Vec::new(), Verdict::InvalidModule),
        (
            "output_flood",
            fixture("output_flood"),
            Verdict::OutputTooLarge,
        ),
        ("stderr_flood", fixture("stderr_flood"), Verdict::Completed),
        ("sleep", fixture("sleep"), Verdict::Completed),
        ("open_file", fixture("open_file"), Verdict::Completed),
        ("clock_random", fixture("clock_random"), Verdict::Completed),
        ("nan", fixture("nan"), Verdict::Completed),
    ];
    for (name, wasm, expected) in cases {
        let started = Instant::now();
        let o = runtime()
            .run(&wasm, &TaskInput::new(&b"input"[..]), &limits)
            .unwrap_or_else(|e| panic!("{name}: host error {e}"));
        let took = started.elapsed();
        assert_eq!(o.verdict, expected, "{name}: {}", o.detail);
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        match o.verdict {
            Verdict::Completed => assert!(o.output_hash.is_some()),
            Verdict::InvalidModule => {
                assert_eq!(o.fuel_used, 0, "{name}");
                assert!(!o.detail.is_empty(), "{name}: an invalid module says why");
            }
            _ => assert!(o.output.is_empty() && o.output_hash.is_none(), "{name}"),
        }
    }
    // The host is still healthy: a real task runs and gives the right answer.
    let o = run(smartnodes_examples::PRIMES, b"100");
    assert_eq!(o.output, b"25 97\n");
}

#[test]
fn out_of_fuel_reports_the_whole_budget() {
    for fuel in [1, 1_000, 123_457] {
        let limits = Limits {
            fuel,
            ..test_limits()
        };
        let o = runtime()
            .run(
                &fixture("infinite_loop"),
                &TaskInput::new(Vec::new()),
                &limits,
            )
            .unwrap();
        assert_eq!((o.verdict, o.fuel_used), (Verdict::OutOfFuel, fuel));
    }
}

#[test]
fn a_budget_just_below_the_need_runs_out_and_exactly_the_need_completes() {
    let wasm = smartnodes_examples::PRIMES;
    let full = run(wasm, b"1000");
    assert_eq!(full.verdict, Verdict::Completed);
    let exact = Limits {
        fuel: full.fuel_used,
        ..test_limits()
    };
    let o = runtime()
        .run(wasm, &TaskInput::new(&b"1000"[..]), &exact)
        .unwrap();
    assert_eq!(
        (o.verdict, o.fuel_used),
        (Verdict::Completed, full.fuel_used)
    );
    let short = Limits {
        fuel: full.fuel_used - 1,
        ..test_limits()
    };
    let o = runtime()
        .run(wasm, &TaskInput::new(&b"1000"[..]), &short)
        .unwrap();
    assert_eq!(o.verdict, Verdict::OutOfFuel);
}

#[test]
fn output_limit_is_exact() {
    // echo.wat copies its input: an output of exactly the limit completes, one more byte
    // does not.
    let wasm = fixture("echo");
    let limits = Limits {
        max_output_bytes: 1000,
        ..test_limits()
    };
    let o = runtime()
        .run(&wasm, &TaskInput::new(vec![b'x'; 1000]), &limits)
        .unwrap();
    assert_eq!((o.verdict, o.output.len()), (Verdict::Completed, 1000));
    let o = runtime()
        .run(&wasm, &TaskInput::new(vec![b'x'; 1001]), &limits)
        .unwrap();
    assert_eq!(o.verdict, Verdict::OutputTooLarge);
}

#[test]
fn stderr_is_a_bounded_log() {
    let o = run(&fixture("stderr_flood"), b"");
    assert_eq!(o.output, b"done");
    assert_eq!(o.stderr.len() as u64, test_limits().max_stderr_bytes);
}

#[test]
fn module_size_limit() {
    let wasm = smartnodes_examples::WORDCOUNT;
    let limits = Limits {
        max_module_bytes: wasm.len() as u64 - 1,
        ..test_limits()
    };
    let o = runtime()
        .run(wasm, &TaskInput::new(Vec::new()), &limits)
        .unwrap();
    assert_eq!(o.verdict, Verdict::InvalidModule);
    assert!(o.detail.contains("limit"), "{}", o.detail);
}

#[test]
fn memory_limit_is_enforced_on_real_tasks() {
    // matmul of n=512 needs 3 * 512^2 * 8 bytes = 6 MiB; 4 MiB is not enough.
    let limits = Limits {
        memory_bytes: 4 << 20,
        ..test_limits()
    };
    let o = runtime()
        .run(
            smartnodes_examples::MATMUL,
            &TaskInput::new(&b"512 1"[..]),
            &limits,
        )
        .unwrap();
    assert_eq!(o.verdict, Verdict::MemoryExceeded, "{}", o.detail);
}

#[test]
fn limits_above_the_runtime_ceiling_are_a_host_error() {
    let limits = Limits {
        memory_bytes: 8 << 30,
        ..test_limits()
    };
    let err = runtime()
        .run(&fixture("empty"), &TaskInput::new(Vec::new()), &limits)
        .unwrap_err();
    assert!(matches!(err, smartnodes_runtime::Error::Limit(_)), "{err}");
}

/// An enormous budget and a short deadline: the task is stopped near the deadline (by the
/// meter's interrupt byte under the default metering, by the epoch under wasmtime's), as a
/// host error, and the runtime carries on with the next task. The stop comes at a refill
/// of the fuel counter, so "near" is within one slice of fuel (tens of ms) of the deadline.
#[test]
fn wall_clock_backstop_is_an_error_not_a_verdict() {
    let limits = Limits {
        fuel: u64::MAX / 2,
        wall_clock_backstop: Duration::from_millis(300),
        ..test_limits()
    };
    let wasmtime = smartnodes_runtime::Runtime::new(smartnodes_runtime::RuntimeConfig {
        metering: smartnodes_runtime::Metering::Wasmtime,
        ..smartnodes_runtime::RuntimeConfig::default()
    })
    .unwrap();
    for rt in [runtime(), &wasmtime] {
        let started = Instant::now();
        let err = rt
            .run(
                &fixture("infinite_loop"),
                &TaskInput::new(Vec::new()),
                &limits,
            )
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, smartnodes_runtime::Error::WallClockBackstop(_)),
            "{err}"
        );
        assert!(
            // (A few ms of slack below the 300 ms deadline: the engine's deadline can
            // start a moment before this test's clock does; once seen at 299.4 ms.)
            took >= Duration::from_millis(290) && took < Duration::from_millis(1500),
            "{:?}: stopped after {took:?}",
            rt.config().metering
        );
        // The runtime carries on.
        let o = rt
            .run(
                &fixture("echo"),
                &TaskInput::new(&b"still here"[..]),
                &test_limits(),
            )
            .unwrap();
        assert_eq!(
            (o.verdict, &o.output[..]),
            (Verdict::Completed, &b"still here"[..])
        );
    }
}

/// Several tasks past their deadlines at once, on their own threads, each stopped: the
/// watchdog serves every armed task.
#[test]
fn the_backstop_stops_concurrent_tasks() {
    let limits = Limits {
        fuel: u64::MAX / 2,
        wall_clock_backstop: Duration::from_millis(200),
        ..test_limits()
    };
    let started = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let limits = limits.clone();
            std::thread::spawn(move || {
                runtime().run(
                    &fixture("infinite_loop"),
                    &TaskInput::new(Vec::new()),
                    &limits,
                )
            })
        })
        .collect();
    for h in handles {
        let err = h.join().unwrap().unwrap_err();
        assert!(
            matches!(err, smartnodes_runtime::Error::WallClockBackstop(_)),
            "{err}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}
