//! A Smartnodes task: reads its input on stdin, writes `<lines> <words> <bytes>\n` on stdout.
//!
//! Build: `cargo build --release --target wasm32-wasip1`
//! Run:   `smartnodes run target/wasm32-wasip1/release/{{name}}.wasm --input FILE`
//! (`cargo run` runs the same code natively, reading stdin.)

fn task(input: Vec<u8>) -> Result<String, String> {
    // An `Err` ends the task with exit code 1 and its message on stderr.
    if input.is_empty() {
        return Err("no input".into());
    }
    let lines = input.iter().filter(|&&b| b == b'\n').count();
    let words = input
        .split(|b| matches!(b, b' ' | b'\t'..=b'\r'))
        .filter(|w| !w.is_empty())
        .count();
    Ok(format!("{lines} {words} {}\n", input.len()))
}

smartnodes_guest::main!(task);
