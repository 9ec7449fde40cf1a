// A Smartnodes task: reads its input on stdin, writes `<lines> <words> <bytes>\n` on stdout.
//
// Build: npm install && npm run build
// Run:   smartnodes run {{name}}.wasm --input FILE
//
// Any WASI preview1 program is a task: stdin is the input, stdout the output, stderr a
// bounded log, a non-zero exit code a failed task. `process` comes from
// @assemblyscript/wasi-shim.

let lines: u64 = 0, words: u64 = 0, bytes: u64 = 0;
let inWord = false;
const buf = new ArrayBuffer(4096);
const view = Uint8Array.wrap(buf);
while (true) {
  const n = process.stdin.read(buf);
  if (n <= 0) break;
  for (let i = 0; i < n; i++) {
    const c = view[i];
    if (c == 0x0a) lines++;
    const space = c == 0x20 || (c >= 0x09 && c <= 0x0d);
    if (!space && !inWord) words++;
    inWord = !space;
  }
  bytes += <u64>n;
}
if (bytes == 0) {
  process.stderr.write("no input\n");
  process.exit(1); // exit code 1: the task failed
}
process.stdout.write(lines.toString() + " " + words.toString() + " " + bytes.toString() + "\n");
