//! A Smartnodes task: reads its input on stdin, writes `<lines> <words> <bytes>\n` on stdout.
//!
//! Build: python3 -m ziglang build-exe -target wasm32-wasi -O ReleaseSmall -fstrip -femit-bin={{name}}.wasm main.zig
//! Run:   smartnodes run {{name}}.wasm --input FILE
//!
//! Any WASI preview1 program is a task: stdin is the input, stdout the output, stderr a
//! bounded log, a non-zero exit code a failed task. This one calls WASI directly.

const std = @import("std");
const wasi = std.os.wasi;

fn write(fd: wasi.fd_t, bytes: []const u8) void {
    var rest = bytes;
    while (rest.len > 0) {
        const iov = [1]wasi.ciovec_t{.{ .base = rest.ptr, .len = rest.len }};
        var n: usize = 0;
        if (wasi.fd_write(fd, &iov, 1, &n) != .SUCCESS or n == 0) wasi.proc_exit(2);
        rest = rest[n..];
    }
}

pub fn main() void {
    var lines: u64 = 0;
    var words: u64 = 0;
    var bytes: u64 = 0;
    var in_word = false;
    var buf: [4096]u8 = undefined;
    while (true) {
        const iov = [1]wasi.iovec_t{.{ .base = &buf, .len = buf.len }};
        var n: usize = 0;
        if (wasi.fd_read(0, &iov, 1, &n) != .SUCCESS) wasi.proc_exit(2);
        if (n == 0) break;
        for (buf[0..n]) |c| {
            if (c == '\n') lines += 1;
            const space = std.ascii.isWhitespace(c);
            if (!space and !in_word) words += 1;
            in_word = !space;
        }
        bytes += n;
    }
    if (bytes == 0) {
        write(2, "no input\n");
        wasi.proc_exit(1); // exit code 1: the task failed
    }
    var out: [64]u8 = undefined;
    write(1, std.fmt.bufPrint(&out, "{d} {d} {d}\n", .{ lines, words, bytes }) catch unreachable);
}
