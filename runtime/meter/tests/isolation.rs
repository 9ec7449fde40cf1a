//! A guest cannot reach the meter's state: the new globals are appended where its code
//! cannot name them, reserved names are refused in exports and imports, and features the
//! rewrite does not handle are refused.

mod common;

use common::*;
use smartnodes_meter::{instrument, MeterConfig, MeterError, FUEL_EXPORT, STATUS_EXPORT};

fn err(wat: &str) -> MeterError {
    let wasm = wat::parse_str(wat).unwrap();
    instrument(&wasm, &MeterConfig::default()).expect_err("must be refused")
}

#[test]
fn reserved_export_names_are_refused() {
    for name in [FUEL_EXPORT, STATUS_EXPORT, "__smartnodes_meter_anything"] {
        let e = err(&format!(
            r#"(module (global (export "{name}") (mut i64) (i64.const 5)))"#
        ));
        assert!(
            matches!(e, MeterError::ReservedName(ref n) if n == name),
            "{e}"
        );
        let e = err(&format!(r#"(module (func (export "{name}")))"#));
        assert!(matches!(e, MeterError::ReservedName(_)), "{e}");
    }
}

#[test]
fn reserved_import_names_are_refused() {
    let e = err(&format!(
        r#"(module (import "env" "{FUEL_EXPORT}" (global (mut i64))))"#
    ));
    assert!(matches!(e, MeterError::ReservedName(_)), "{e}");
    let e = err(r#"(module (import "__smartnodes_meter" "fuel" (func)))"#);
    assert!(matches!(e, MeterError::ReservedName(_)), "{e}");
}

/// Code that names a global beyond its own is invalid before the rewrite, so it can never
/// name the globals the rewrite appends.
#[test]
fn guest_code_cannot_name_the_meter_globals() {
    // The text parser does not resolve numeric indices: this is global 1 of a module
    // with one global, the index the fuel counter would get.
    let wasm = wat::parse_str(
        r#"(module (global (mut i64) (i64.const 0))
             (func (export "steal") (global.set 1 (i64.const 1000000))))"#,
    )
    .unwrap();
    let e = instrument(&wasm, &MeterConfig::default()).unwrap_err();
    assert!(matches!(e, MeterError::Invalid(_)), "{e}");
}

/// The guest's own globals, exported or not, are not the meter's: a guest that overwrites
/// all of them still runs out of fuel.
#[test]
fn guest_globals_are_not_the_counter() {
    let wasm = wat::parse_str(
        r#"(module
             (global $a (export "fuel") (mut i64) (i64.const 0))
             (global $b (mut i64) (i64.const 0))
             (global $c (mut i32) (i32.const 0))
             (func (export "cheat")
               (loop $l
                 (global.set $a (i64.const 0x7fffffffffffffff))
                 (global.set $b (i64.const 0x7fffffffffffffff))
                 (global.set $c (i32.const 0))
                 (br $l))))"#,
    )
    .unwrap();
    let metered = meter(&wasm, &MeterConfig::default());
    // The meter's globals come after the guest's three.
    let globals: Vec<_> = wasmparser::Parser::new(0)
        .parse_all(&metered.wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::ExportSection(r) => Some(
                r.into_iter()
                    .map(|e| {
                        let e = e.unwrap();
                        (e.name.to_string(), e.index)
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        globals.contains(&(FUEL_EXPORT.to_string(), 3)),
        "{globals:?}"
    );
    let plain = engine(EngineKind::Plain);
    assert_eq!(
        run_metered(&plain, &metered, "cheat", 10_000).outcome,
        Outcome::OutOfFuel
    );
}

/// A function reached only by direct calls carries the counter in an extra last
/// parameter; the guest's own locals move up by one, so code that writes its first
/// declared local (the index the counter takes) still writes its own local, and an
/// infinite loop behind such a call still runs out of fuel.
#[test]
fn guest_locals_are_not_the_counter_parameter() {
    let wasm = wat::parse_str(
        r#"(module
             (func $inner (param $p i32) (result i32) (local $mine i64)
               (loop $l
                 (local.set $mine (i64.const 0x7fffffffffffffff))
                 (br_if $l (local.get $p)))
               (i32.wrap_i64 (local.get $mine)))
             (func (export "returns") (result i32) (call $inner (i32.const 0)))
             (func (export "cheat") (result i32) (call $inner (i32.const 1))))"#,
    )
    .unwrap();
    let metered = meter(&wasm, &MeterConfig::default());
    assert_eq!(
        metered.stats.fuel_passing_functions, 1,
        "{:?}",
        metered.stats
    );
    let plain = engine(EngineKind::Plain);
    let fuel = engine(EngineKind::Fuel);
    let ok = run_metered(&plain, &metered, "returns", 10_000);
    assert_eq!(ok.outcome, Outcome::Returned(vec![V::I32(-1)]));
    assert_eq!(ok.fuel, run_reference(&fuel, &wasm, "returns", 10_000).fuel);
    for budget in [0, 100, 10_000, 1_000_000] {
        let run = run_metered(&plain, &metered, "cheat", budget);
        assert_eq!(run.outcome, Outcome::OutOfFuel, "budget {budget}");
    }
}

/// The rewrite adds no import: nothing the host links can alias the counter.
#[test]
fn rewrite_adds_no_imports() {
    let wasm = wat::parse_str(
        r#"(module (import "env" "f" (func)) (import "env" "g" (global i32))
             (func (export "run") (call 0)))"#,
    )
    .unwrap();
    let imports = |wasm: &[u8]| -> Vec<(String, String)> {
        wasmparser::Parser::new(0)
            .parse_all(wasm)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::ImportSection(r) => Some(
                    r.into_imports()
                        .map(|i| {
                            let i = i.unwrap();
                            (i.module.to_string(), i.name.to_string())
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let metered = meter(&wasm, &MeterConfig::default());
    assert_eq!(imports(&wasm), imports(&metered.wasm));
}

#[test]
fn unsupported_features_are_refused() {
    for (what, wat) in [
        ("tail calls", r#"(module (func $f (return_call $f)))"#),
        ("memory64", r#"(module (memory i64 1))"#),
        ("threads", r#"(module (memory 1 1 shared))"#),
        ("exceptions", r#"(module (tag $t) (func (throw $t)))"#),
        (
            "function references",
            r#"(module (type $t (func)) (func (param (ref null $t)) (call_ref $t (local.get 0))))"#,
        ),
        ("gc", r#"(module (type (struct (field i32))))"#),
    ] {
        let e = err(wat);
        assert!(matches!(e, MeterError::Unsupported(_)), "{what}: {e}");
    }
    let e = instrument(b"\0asm\x0d\0\x01\0", &MeterConfig::default()).unwrap_err();
    assert!(
        matches!(e, MeterError::Unsupported(_) | MeterError::Invalid(_)),
        "{e}"
    );
    let e = instrument(b"not wasm", &MeterConfig::default()).unwrap_err();
    assert!(matches!(e, MeterError::Invalid(_)), "{e}");
}
