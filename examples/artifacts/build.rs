//! Compiles every example task to `wasm32-wasip1` (release) with a nested cargo, in a
//! target directory of its own so it never waits on the outer build's lock, and writes
//! `examples.rs` into OUT_DIR with the modules embedded as bytes. The guests are built with
//! wasm SIMD (`-Ctarget-feature=+simd128`).
//!
//! The wasm target is installed with `rustup target add wasm32-wasip1` when missing, so a
//! fresh machine needs nothing by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, const name). Keep in step with the workspace members under `examples/`.
const TASKS: &[(&str, &str)] = &[
    ("wordcount", "WORDCOUNT"),
    ("primes", "PRIMES"),
    ("sha256-chain", "SHA256_CHAIN"),
    ("mandelbrot", "MANDELBROT"),
    ("matmul", "MATMUL"),
];

const TARGET: &str = "wasm32-wasip1";

/// Rust flags of the guest build (`CARGO_ENCODED_RUSTFLAGS`: one flag per 0x1f-separated
/// field).
const GUEST_RUSTFLAGS: &str = "-Ctarget-feature=+simd128";

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let examples = manifest.parent().unwrap().to_path_buf();
    let workspace = examples.parent().unwrap().to_path_buf();
    for (pkg, _) in TASKS {
        println!("cargo:rerun-if-changed={}", examples.join(pkg).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("guest-sdk").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=SMARTNODES_GUEST_TARGET_DIR");

    ensure_target();

    let target_dir = std::env::var_os("SMARTNODES_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"))
                .join("guests")
        });
    // A relative CARGO_TARGET_DIR (`target`) is relative to where cargo was started, which
    // a build script cannot see; the workspace root is where our scripts start it. (The
    // nested build runs there, and the copy below runs in this package's directory.)
    let target_dir = workspace.join(target_dir);

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for (pkg, _) in TASKS {
        cmd.args(["-p", pkg]);
    }
    // The outer build's settings must not leak into the guest build: flags meant for the
    // host (or clippy's wrapper) would change or break the wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    // Guests use wasm SIMD (`simd128`): the engine enables it, and a task built without it
    // leaves the vector units unused where the native build auto-vectorises (matmul's
    // inner loop). Nothing else: relaxed SIMD is left off (its results are made
    // deterministic by the engine, but the plain instructions need no such help).
    cmd.env("CARGO_ENCODED_RUSTFLAGS", GUEST_RUSTFLAGS);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not start cargo to build the example tasks: {e}"));
    assert!(
        status.success(),
        "building the example tasks for {TARGET} failed ({status}); see the output above"
    );

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let mut code = String::new();
    code.push_str("/// Every example task: (package name, wasm module).\n");
    code.push_str("pub const ALL: &[(&str, &[u8])] = &[\n");
    for (pkg, konst) in TASKS {
        code.push_str(&format!("    (\"{pkg}\", {konst}),\n"));
    }
    code.push_str("];\n");
    for (pkg, konst) in TASKS {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{pkg}.wasm"));
        // Copy into OUT_DIR so the embedded bytes cannot change under a finished build.
        let copy = out_dir.join(format!("{pkg}.wasm"));
        std::fs::copy(&wasm, &copy)
            .unwrap_or_else(|e| panic!("copying {} failed: {e}", wasm.display()));
        code.push_str(&format!(
            "/// The `{pkg}` task module (wasm32-wasip1, release).\npub const {konst}: &[u8] = include_bytes!({:?});\n",
            copy.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("examples.rs"), code).unwrap();
}

/// Installs the wasm target through rustup when the toolchain lacks it.
fn ensure_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = |root: &Path| root.join("lib/rustlib").join(TARGET).join("lib").is_dir();
    if sysroot.as_deref().is_some_and(installed) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (first build only)");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .unwrap_or_else(|e| {
            panic!("the {TARGET} target is missing and rustup could not be started: {e}")
        });
    assert!(status.success(), "`rustup target add {TARGET}` failed");
}
