// `sha256-chain` in AssemblyScript, to the same spec as examples/sha256-chain (Rust), byte
// for byte.
//
// Input: a first line with an ASCII decimal `K >= 1`, then `\n`, then the data (the rest of
// the input, any bytes). `h1 = sha256(data)`, `h(i+1) = sha256(h(i))` on the 32 raw bytes.
// Output: the lowercase hex of `hK` and `\n`. A bad input is a message on stderr and exit
// code 1. Standard input and output come from @assemblyscript/wasi-shim (`process`).

function fail(message: string): void {
  process.stderr.write(message + "\n");
  process.exit(1);
}

// All of stdin, read in chunks.
function readStdin(): Uint8Array {
  const chunks = new Array<ArrayBuffer>();
  const lengths = new Array<i32>();
  let total = 0;
  while (true) {
    const chunk = new ArrayBuffer(65536);
    const n = process.stdin.read(chunk);
    if (n <= 0) break;
    chunks.push(chunk);
    lengths.push(n);
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    all.set(Uint8Array.wrap(chunks[i], 0, lengths[i]), at);
    at += lengths[i];
  }
  return all;
}

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H = new StaticArray<u32>(8);
// The padded last block(s), reused: no allocation per hash.
const TAIL = new Uint8Array(128);
const W = new StaticArray<u32>(64);

// Compresses the 64-byte block at `block[at..at + 64]` into H.
function compress(block: Uint8Array, at: i32): void {
  for (let t = 0; t < 16; t++) {
    const i = at + 4 * t;
    W[t] = (<u32>block[i] << 24) | (<u32>block[i + 1] << 16) | (<u32>block[i + 2] << 8) | <u32>block[i + 3];
  }
  for (let t = 16; t < 64; t++) {
    const w15 = W[t - 15], w2 = W[t - 2];
    const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10);
    W[t] = W[t - 16] + s0 + W[t - 7] + s1;
  }
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
  for (let t = 0; t < 64; t++) {
    const s1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
    const ch = (e & f) ^ (~e & g);
    const t1 = h + s1 + ch + K[t] + W[t];
    const s0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = s0 + maj;
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
}

// sha256(data[from..]) into `digest` (32 bytes).
function sha256(data: Uint8Array, from: i32, digest: Uint8Array): void {
  H[0] = 0x6a09e667; H[1] = 0xbb67ae85; H[2] = 0x3c6ef372; H[3] = 0xa54ff53a;
  H[4] = 0x510e527f; H[5] = 0x9b05688c; H[6] = 0x1f83d9ab; H[7] = 0x5be0cd19;
  const len = data.length - from;
  let at = from;
  while (data.length - at >= 64) {
    compress(data, at);
    at += 64;
  }
  // The last block(s): the rest, 0x80, zeros, the length in bits (big-endian u64).
  const rest = data.length - at;
  const blocks = rest < 56 ? 1 : 2;
  TAIL.fill(0);
  for (let i = 0; i < rest; i++) TAIL[i] = data[at + i];
  TAIL[rest] = 0x80;
  const bits = <u64>len << 3;
  for (let i = 0; i < 8; i++) TAIL[64 * blocks - 1 - i] = <u8>(bits >>> (8 * i));
  compress(TAIL, 0);
  if (blocks == 2) compress(TAIL, 64);
  for (let i = 0; i < 8; i++) {
    digest[4 * i] = <u8>(H[i] >>> 24);
    digest[4 * i + 1] = <u8>(H[i] >>> 16);
    digest[4 * i + 2] = <u8>(H[i] >>> 8);
    digest[4 * i + 3] = <u8>H[i];
  }
}

// Rust's `char::is_whitespace` on ASCII.
function isSpace(c: u8): bool {
  return c == 0x20 || (c >= 0x09 && c <= 0x0d);
}

const input = readStdin();
const newline = input.indexOf(0x0a);
if (newline < 0) fail("expected a first line with K, ended by a newline");
// K: the first line, trimmed; an optional `+`, then decimal digits (a u64), at least 1.
let start = 0, end = newline;
while (start < end && isSpace(input[start])) start++;
while (end > start && isSpace(input[end - 1])) end--;
if (start < end && input[start] == 0x2b) start++;
if (start == end) fail("expected a decimal K >= 1 on the first line");
let k: u64 = 0;
for (let i = start; i < end; i++) {
  const c = input[i];
  if (c < 0x30 || c > 0x39) fail("expected a decimal K >= 1 on the first line");
  const digit = <u64>(c - 0x30);
  if (k > (U64.MAX_VALUE - digit) / 10) fail("K is larger than 2^64 - 1");
  k = k * 10 + digit;
}
if (k == 0) fail("K must be at least 1");

const h = new Uint8Array(32);
sha256(input, newline + 1, h);
for (let i: u64 = 1; i < k; i++) sha256(h, 0, h);
const HEX = "0123456789abcdef";
let out = "";
for (let i = 0; i < 32; i++) out += HEX.charAt(h[i] >> 4) + HEX.charAt(h[i] & 15);
process.stdout.write(out + "\n");
