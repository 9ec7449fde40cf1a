//! `primes` in Zig, to the same spec as examples/primes (Rust), byte for byte.
//!
//! Input: an ASCII decimal `N` (surrounding ASCII whitespace allowed, an optional `+`).
//! Output: `<count of primes <= N> <largest prime <= N, or 0>\n`. A segmented sieve of
//! Eratosthenes over odd numbers keeps memory at O(sqrt N). A bad input is a message on
//! stderr and exit code 1. Input and output go straight through WASI (`std.os.wasi`).
//! Arithmetic wraps where the Rust version's (a release build) would.

const std = @import("std");
const wasi = std.os.wasi;
const allocator = std.heap.wasm_allocator;

fn writeAll(fd: wasi.fd_t, bytes: []const u8) void {
    var rest = bytes;
    while (rest.len > 0) {
        const iov = [1]wasi.ciovec_t{.{ .base = rest.ptr, .len = rest.len }};
        var n: usize = 0;
        if (wasi.fd_write(fd, &iov, 1, &n) != .SUCCESS or n == 0) wasi.proc_exit(2);
        rest = rest[n..];
    }
}

fn fail(message: []const u8) noreturn {
    writeAll(2, message);
    writeAll(2, "\n");
    wasi.proc_exit(1);
}

/// All of stdin (the input is a number: a small buffer that grows is plenty).
fn readStdin() []u8 {
    var buf = allocator.alloc(u8, 256) catch fail("out of memory");
    var len: usize = 0;
    while (true) {
        if (len == buf.len) buf = allocator.realloc(buf, 2 * buf.len) catch fail("out of memory");
        const iov = [1]wasi.iovec_t{.{ .base = buf[len..].ptr, .len = buf.len - len }};
        var n: usize = 0;
        if (wasi.fd_read(0, &iov, 1, &n) != .SUCCESS) fail("reading the input failed");
        if (n == 0) return buf[0..len];
        len += n;
    }
}

/// Rust's `char::is_whitespace` on ASCII.
fn isSpace(c: u8) bool {
    return c == ' ' or (c >= 0x09 and c <= 0x0d);
}

/// Rust's `u64::from_str` on the trimmed input: an optional `+`, then one or more digits.
fn parse(input: []const u8) u64 {
    var text = std.mem.trim(u8, input, " \t\n\x0b\x0c\r");
    if (text.len > 0 and text[0] == '+') text = text[1..];
    if (text.len == 0) fail("expected a decimal N");
    var n: u64 = 0;
    for (text) |c| {
        if (c < '0' or c > '9') fail("expected a decimal N: invalid digit");
        const mul = @mulWithOverflow(n, 10);
        const add = @addWithOverflow(mul[0], c - '0');
        if (mul[1] != 0 or add[1] != 0) fail("expected a decimal N: too large for 64 bits");
        n = add[0];
    }
    return n;
}

fn isqrt(n: u64) u64 {
    var r: u64 = @intFromFloat(@sqrt(@as(f64, @floatFromInt(n))));
    while (r *% r > n) r -= 1;
    while ((r +% 1) *% (r +% 1) <= n) r += 1;
    return r;
}

const SEG: u64 = 1 << 15;

/// `(number of primes <= n, largest prime <= n or 0)`.
fn countPrimes(n: u64) [2]u64 {
    if (n < 2) return .{ 0, 0 };
    if (n == 2) return .{ 1, 2 };
    const limit: usize = @intCast(isqrt(n));
    // Odd base primes up to sqrt(n), by a small plain sieve.
    const composite = allocator.alloc(bool, limit + 1) catch fail("out of memory");
    @memset(composite, false);
    var small: std.ArrayList(u64) = .empty;
    var i: usize = 3;
    while (i <= limit) : (i += 2) {
        if (composite[i]) continue;
        small.append(allocator, i) catch fail("out of memory");
        var j = i * i;
        while (j <= limit) : (j += 2 * i) composite[j] = true;
    }
    // Segments of odd numbers [lo, lo + 2*SEG).
    var count: u64 = 1; // the prime 2
    var largest: u64 = 2;
    const sieve = allocator.alloc(bool, SEG) catch fail("out of memory");
    var lo: u64 = 3;
    while (lo <= n) {
        const hi = @min(lo +% (2 * SEG - 1), n); // inclusive
        const len: usize = @intCast((hi - lo) / 2 + 1);
        @memset(sieve[0..len], false);
        for (small.items) |p| {
            if (p * p > hi) break;
            // First odd multiple of p that is >= max(p*p, lo).
            var m = @max(p * p, (lo + p - 1) / p * p);
            if (m % 2 == 0) m += p;
            while (m <= hi) : (m += 2 * p) sieve[@intCast((m - lo) / 2)] = true;
        }
        for (sieve[0..len], 0..) |c, k| {
            if (!c) {
                count += 1;
                largest = lo + 2 * @as(u64, k);
            }
        }
        lo = hi +% 1;
        if (lo % 2 == 0) lo +%= 1;
    }
    return .{ count, largest };
}

pub fn main() void {
    const result = countPrimes(parse(readStdin()));
    var out: [48]u8 = undefined;
    writeAll(1, std.fmt.bufPrint(&out, "{d} {d}\n", .{ result[0], result[1] }) catch unreachable);
}
