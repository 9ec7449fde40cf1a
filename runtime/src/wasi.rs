//! A deterministic WASI preview1, written for the sandbox.
//!
//! Why not `wasmtime-wasi`: its preview1 is an adapter over preview2 that runs on a tokio
//! runtime, reads real clocks, sleeps in real time in `poll_oneoff`, and exposes host
//! metadata through preopens. Every one of those would have to be overridden, and each
//! override is a place where determinism could leak. This module implements the whole
//! `wasi_snapshot_preview1` import surface (so any wasip1 program links) with exactly the
//! behaviour a task may observe:
//!
//! - stdin is the task input; stdout is the output (bounded: one byte too many ends the
//!   task as `output_too_large`); stderr is a bounded log (the excess is dropped); the
//!   size `fd_filestat_get` reports for stdin is the input not read yet, so that a task
//!   can read it into one buffer of the right size (`smartnodes_guest::input` does);
//! - args and environment come from the caller (empty environment by default);
//! - the monotonic clock reads the fuel used so far as nanoseconds, plus any time the task
//!   "slept"; the wall clock is a fixed epoch plus the same; so every clock is a pure
//!   function of the execution;
//! - `poll_oneoff` never blocks: a sleep advances the virtual clock and returns at once;
//! - `random_get` is a ChaCha20 stream keyed by the caller's 32-byte seed;
//! - no sockets, and no preopened directory unless the task is given input files: then
//!   they are a flat, read-only, in-memory directory preopened as `/input` (see `vfs`);
//!   without files every path call fails with `EBADF` (no such descriptor).
//!
//! Host calls are not charged fuel beyond the call instruction itself; the work they can
//! do is bounded by the guest's memory, the output limit and `MAX_IOVS`.

use crate::metering;
use crate::sandbox::State;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use wasmtime::{Caller, Extern, Linker};

mod vfs;
pub(crate) use vfs::valid_name;

/// The wall clock reads this (2024-01-01T00:00:00Z in ns) plus the monotonic clock.
pub const REALTIME_EPOCH_NS: u64 = 1_704_067_200_000_000_000;

/// Most iovecs or subscriptions one call may pass (Linux's IOV_MAX).
const MAX_IOVS: u32 = 1024;

type Errno = i32;
const SUCCESS: Errno = 0;
const E2BIG: Errno = 1;
const EBADF: Errno = 8;
const EFAULT: Errno = 21;
const EINVAL: Errno = 28;
const ENOSYS: Errno = 52;
const ENOTSUP: Errno = 58;
const ESPIPE: Errno = 70;
const EROFS: Errno = 69;

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;

const MODULE: &str = "wasi_snapshot_preview1";

/// The task ended with `proc_exit(code)`.
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proc_exit({})", self.0)
    }
}
impl std::error::Error for Exit {}

/// The task wrote more than its output limit.
#[derive(Debug)]
pub(crate) struct OutputOverflow;

impl std::fmt::Display for OutputOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the task's output exceeded its limit")
    }
}
impl std::error::Error for OutputOverflow {}

/// What one task's WASI sees.
pub(crate) struct Wasi {
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    stdin: std::sync::Arc<[u8]>,
    stdin_pos: usize,
    pub(crate) stdout: Vec<u8>,
    max_stdout: usize,
    pub(crate) stdout_overflow: bool,
    pub(crate) stderr: Vec<u8>,
    max_stderr: usize,
    rng: ChaCha20Rng,
    slept_ns: u64,
    vfs: vfs::Vfs,
}

impl Wasi {
    pub(crate) fn new(input: &crate::TaskInput, max_stdout: usize, max_stderr: usize) -> Wasi {
        Wasi {
            args: input.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            env: input
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}").into_bytes())
                .collect(),
            stdin: input.stdin.clone(),
            stdin_pos: 0,
            stdout: Vec::new(),
            max_stdout,
            stdout_overflow: false,
            stderr: Vec::new(),
            max_stderr,
            rng: ChaCha20Rng::from_seed(input.seed),
            slept_ns: 0,
            vfs: vfs::Vfs::new(&input.files),
        }
    }
}

/// The guest memory as bytes plus the store state, or `EFAULT` when there is no memory.
fn memory<'a>(caller: &'a mut Caller<'_, State>) -> Result<(&'a mut [u8], &'a mut State), Errno> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m.data_and_store_mut(caller)),
        _ => Err(EFAULT),
    }
}

fn range(mem: &[u8], ptr: i32, len: u64) -> Result<std::ops::Range<usize>, Errno> {
    let start = ptr as u32 as u64;
    let end = start.checked_add(len).ok_or(EFAULT)?;
    if end > mem.len() as u64 {
        return Err(EFAULT);
    }
    Ok(start as usize..end as usize)
}

fn read_u32(mem: &[u8], ptr: i32) -> Result<u32, Errno> {
    let r = range(mem, ptr, 4)?;
    Ok(u32::from_le_bytes(mem[r].try_into().expect("4 bytes")))
}

fn read_u64(mem: &[u8], ptr: i32) -> Result<u64, Errno> {
    let r = range(mem, ptr, 8)?;
    Ok(u64::from_le_bytes(mem[r].try_into().expect("8 bytes")))
}

fn write_bytes(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), Errno> {
    let r = range(mem, ptr, bytes.len() as u64)?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

fn write_u32(mem: &mut [u8], ptr: i32, v: u32) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}

fn write_u64(mem: &mut [u8], ptr: i32, v: u64) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}

/// The iovec list `(ptr, len)` pairs at `iovs`.
fn iovecs(mem: &[u8], iovs: i32, count: i32) -> Result<Vec<(i32, u32)>, Errno> {
    let count = count as u32;
    if count > MAX_IOVS {
        return Err(EINVAL);
    }
    (0..count)
        .map(|i| {
            let at = (iovs as u32).checked_add(i * 8).ok_or(EFAULT)? as i32;
            Ok((
                read_u32(mem, at)? as i32,
                read_u32(mem, at.wrapping_add(4))?,
            ))
        })
        .collect()
}

/// Nanoseconds on the virtual monotonic clock.
fn monotonic_ns(caller: &mut Caller<'_, State>) -> u64 {
    metering::fuel_used_in_host(caller).saturating_add(caller.data().wasi.slept_ns)
}

/// Runs a host function body that reports failures as an errno.
fn errno(r: Result<(), Errno>) -> wasmtime::Result<i32> {
    Ok(match r {
        Ok(()) => SUCCESS,
        Err(e) => e,
    })
}

/// Writes a list of NUL-terminated strings and their pointers (`args_get`, `environ_get`).
fn write_string_list(mem: &mut [u8], list: &[Vec<u8>], ptrs: i32, buf: i32) -> Result<(), Errno> {
    let mut at = buf as u32;
    for (i, s) in list.iter().enumerate() {
        write_u32(mem, (ptrs as u32).wrapping_add(4 * i as u32) as i32, at)?;
        write_bytes(mem, at as i32, s)?;
        write_bytes(mem, at.wrapping_add(s.len() as u32) as i32, &[0])?;
        at = at.wrapping_add(s.len() as u32 + 1);
    }
    Ok(())
}

fn sizes(list: &[Vec<u8>]) -> (u32, u32) {
    let bytes: usize = list.iter().map(|s| s.len() + 1).sum();
    (list.len() as u32, bytes as u32)
}

/// Registers every `wasi_snapshot_preview1` function.
pub(crate) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut c: Caller<'_, State>, argc: i32, size: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                let (n, bytes) = sizes(&st.wasi.args);
                write_u32(mem, argc, n)?;
                write_u32(mem, size, bytes)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_get",
        |mut c: Caller<'_, State>, argv: i32, buf: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                write_string_list(mem, &st.wasi.args, argv, buf)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut c: Caller<'_, State>, count: i32, size: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                let (n, bytes) = sizes(&st.wasi.env);
                write_u32(mem, count, n)?;
                write_u32(mem, size, bytes)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_get",
        |mut c: Caller<'_, State>, env: i32, buf: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                write_string_list(mem, &st.wasi.env, env, buf)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, State>, id: i32, out: i32| {
            errno((|| {
                if !(0..=3).contains(&id) {
                    return Err(EINVAL);
                }
                let (mem, _) = memory(&mut c)?;
                write_u64(mem, out, 1)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, State>, id: i32, _precision: i64, out: i32| {
            errno((|| {
                let mono = monotonic_ns(&mut c);
                let t = match id {
                    0 => REALTIME_EPOCH_NS.saturating_add(mono),
                    1..=3 => mono,
                    _ => return Err(EINVAL),
                };
                let (mem, _) = memory(&mut c)?;
                write_u64(mem, out, t)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, State>, fd: i32, iovs: i32, iovs_len: i32, nread: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                if fd != 0 {
                    return st.wasi.vfs.read(fd, mem, iovs, iovs_len, nread);
                }
                let mut total = 0u32;
                for (ptr, len) in iovecs(mem, iovs, iovs_len)? {
                    let w = &mut st.wasi;
                    let n = (len as usize).min(w.stdin.len() - w.stdin_pos);
                    write_bytes(mem, ptr, &w.stdin[w.stdin_pos..w.stdin_pos + n])?;
                    w.stdin_pos += n;
                    total += n as u32;
                    if n < len as usize {
                        break;
                    }
                }
                write_u32(mem, nread, total)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, State>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nwritten: i32|
         -> wasmtime::Result<i32> {
            let (mem, st) = match memory(&mut c) {
                Ok(x) => x,
                Err(e) => return Ok(e),
            };
            let list = match iovecs(mem, iovs, iovs_len) {
                Ok(l) => l,
                Err(e) => return Ok(e),
            };
            let w = &mut st.wasi;
            let mut total = 0u32;
            for (ptr, len) in list {
                let r = match range(mem, ptr, u64::from(len)) {
                    Ok(r) => r,
                    Err(e) => return Ok(e),
                };
                match fd {
                    1 => {
                        if w.stdout.len() + r.len() > w.max_stdout {
                            w.stdout_overflow = true;
                            return Err(wasmtime::Error::new(OutputOverflow));
                        }
                        w.stdout.extend_from_slice(&mem[r]);
                    }
                    2 => {
                        let room = w.max_stderr - w.stderr.len().min(w.max_stderr);
                        let keep = r.len().min(room);
                        w.stderr.extend_from_slice(&mem[r.start..r.start + keep]);
                    }
                    _ => return Ok(w.vfs.write(fd)),
                }
                total += len;
            }
            errno(write_u32(mem, nwritten, total))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                let rights = match fd {
                    0 => RIGHT_FD_READ | RIGHT_POLL_FD_READWRITE,
                    1 | 2 => RIGHT_FD_WRITE | RIGHT_POLL_FD_READWRITE,
                    _ => return st.wasi.vfs.fdstat(fd, mem, out),
                };
                let mut stat = [0u8; 24];
                stat[0] = FILETYPE_CHARACTER_DEVICE;
                stat[8..16].copy_from_slice(&rights.to_le_bytes());
                write_bytes(mem, out, &stat)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                if !(0..=2).contains(&fd) {
                    return st.wasi.vfs.filestat(fd, mem, out);
                }
                let mut stat = [0u8; 64];
                stat[16] = FILETYPE_CHARACTER_DEVICE;
                if fd == 0 {
                    let left = (st.wasi.stdin.len() - st.wasi.stdin_pos) as u64;
                    stat[32..40].copy_from_slice(&left.to_le_bytes());
                }
                write_bytes(mem, out, &stat)
            })())
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |mut c: Caller<'_, State>, fd: i32| {
        Ok(if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            c.data_mut().wasi.vfs.close(fd)
        })
    })?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |mut c: Caller<'_, State>, fd: i32, off: i64, whence: i32, out: i32| {
            if (0..=2).contains(&fd) {
                return Ok(ESPIPE);
            }
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.seek(fd, off, whence, mem, out)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_tell",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            if (0..=2).contains(&fd) {
                return Ok(ESPIPE);
            }
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.tell(fd, mem, out)
            })())
        },
    )?;
    linker.func_wrap(MODULE, "fd_sync", |_c: Caller<'_, State>, fd: i32| {
        Ok(stdio_or_badf(fd, SUCCESS))
    })?;
    linker.func_wrap(MODULE, "fd_datasync", |_c: Caller<'_, State>, fd: i32| {
        Ok(stdio_or_badf(fd, SUCCESS))
    })?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |_c: Caller<'_, State>, fd: i32, _f: i32| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_rights",
        |_c: Caller<'_, State>, fd: i32, _b: i64, _i: i64| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_advise",
        |_c: Caller<'_, State>, fd: i32, _o: i64, _l: i64, _a: i32| Ok(stdio_or_badf(fd, ESPIPE)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        |_c: Caller<'_, State>, fd: i32, _o: i64, _l: i64| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |_c: Caller<'_, State>, fd: i32, _s: i64| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_times",
        |_c: Caller<'_, State>, fd: i32, _a: i64, _m: i64, _f: i32| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pread",
        |_c: Caller<'_, State>, fd: i32, _iovs: i32, _n: i32, _off: i64, _out: i32| {
            Ok(stdio_or_badf(fd, ESPIPE))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        |_c: Caller<'_, State>, fd: i32, _iovs: i32, _n: i32, _off: i64, _out: i32| {
            Ok(stdio_or_badf(fd, ESPIPE))
        },
    )?;
    // The read-only input directory (descriptor 3 when the task has files).
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.prestat_get(fd, mem, out)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, State>, fd: i32, path: i32, len: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.prestat_dir_name(fd, mem, path, len)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |mut c: Caller<'_, State>, fd: i32, buf: i32, len: i32, cookie: i64, out: i32| {
            if (0..=2).contains(&fd) {
                return Ok(ENOTSUP);
            }
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.readdir(fd, mem, buf, len, cookie, out)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        |_c: Caller<'_, State>, fd: i32, to: i32| {
            Ok(if (0..=2).contains(&fd) && (0..=2).contains(&to) {
                ENOTSUP
            } else {
                EBADF
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_create_directory",
        |c: Caller<'_, State>, fd: i32, _p: i32, _l: i32| Ok(read_only(&c, fd)),
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut c: Caller<'_, State>, fd: i32, _flags: i32, path: i32, len: i32, out: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.path_filestat(fd, mem, (path, len), out)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |c: Caller<'_, State>, fd: i32, _fl: i32, _p: i32, _l: i32, _a: i64, _m: i64, _f: i32| {
            Ok(read_only(&c, fd))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_link",
        |c: Caller<'_, State>,
         fd: i32,
         _fl: i32,
         _p: i32,
         _l: i32,
         _fd2: i32,
         _p2: i32,
         _l2: i32| Ok(read_only(&c, fd)),
    )?;
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut c: Caller<'_, State>,
         fd: i32,
         _dirflags: i32,
         path: i32,
         len: i32,
         oflags: i32,
         _base: i64,
         _inh: i64,
         _fdflags: i32,
         out: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                st.wasi.vfs.path_open(fd, mem, (path, len), oflags, out)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_readlink",
        |_c: Caller<'_, State>, _fd: i32, _p: i32, _l: i32, _buf: i32, _len: i32, _out: i32| {
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_remove_directory",
        |c: Caller<'_, State>, fd: i32, _p: i32, _l: i32| Ok(read_only(&c, fd)),
    )?;
    linker.func_wrap(
        MODULE,
        "path_rename",
        |c: Caller<'_, State>, fd: i32, _p: i32, _l: i32, _fd2: i32, _p2: i32, _l2: i32| {
            Ok(read_only(&c, fd))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |c: Caller<'_, State>, _p: i32, _l: i32, fd: i32, _p2: i32, _l2: i32| Ok(read_only(&c, fd)),
    )?;
    linker.func_wrap(
        MODULE,
        "path_unlink_file",
        |c: Caller<'_, State>, fd: i32, _p: i32, _l: i32| Ok(read_only(&c, fd)),
    )?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: Caller<'_, State>, subs: i32, events: i32, n: i32, nevents: i32| {
            errno(poll_oneoff(&mut c, subs, events, n, nevents))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_c: Caller<'_, State>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(Exit(code)))
        },
    )?;
    linker.func_wrap(MODULE, "proc_raise", |_c: Caller<'_, State>, _sig: i32| {
        Ok(ENOSYS)
    })?;
    linker.func_wrap(MODULE, "sched_yield", |_c: Caller<'_, State>| Ok(SUCCESS))?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, State>, buf: i32, len: i32| {
            errno((|| {
                let (mem, st) = memory(&mut c)?;
                let r = range(mem, buf, u64::from(len as u32))?;
                st.wasi.rng.fill_bytes(&mut mem[r]);
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "sock_accept",
        |_c: Caller<'_, State>, fd: i32, _f: i32, _out: i32| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    linker.func_wrap(
        MODULE,
        "sock_recv",
        |_c: Caller<'_, State>, fd: i32, _d: i32, _l: i32, _f: i32, _o1: i32, _o2: i32| {
            Ok(stdio_or_badf(fd, ENOTSUP))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "sock_send",
        |_c: Caller<'_, State>, fd: i32, _d: i32, _l: i32, _f: i32, _o: i32| {
            Ok(stdio_or_badf(fd, ENOTSUP))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "sock_shutdown",
        |_c: Caller<'_, State>, fd: i32, _how: i32| Ok(stdio_or_badf(fd, ENOTSUP)),
    )?;
    Ok(())
}

/// A mutating path call: `EROFS` on the input directory, `EBADF` on anything else.
fn read_only(c: &Caller<'_, State>, fd: i32) -> Errno {
    if c.data().wasi.vfs.owns(fd) {
        EROFS
    } else {
        EBADF
    }
}

fn stdio_or_badf(fd: i32, stdio: Errno) -> Errno {
    if (0..=2).contains(&fd) {
        stdio
    } else {
        EBADF
    }
}

/// `poll_oneoff` without blocking: descriptors are always ready; clocks are virtual, so a
/// sleep moves the virtual clock to the earliest deadline and returns.
fn poll_oneoff(
    c: &mut Caller<'_, State>,
    subs: i32,
    events: i32,
    n: i32,
    nevents: i32,
) -> Result<(), Errno> {
    const SUB: u32 = 48;
    const EVENT: u32 = 32;
    let n = n as u32;
    if n == 0 {
        return Err(EINVAL);
    }
    if n > MAX_IOVS {
        return Err(E2BIG);
    }
    let now = monotonic_ns(c);
    let (mem, st) = memory(c)?;
    // (userdata, type, error, nbytes)
    let mut ready: Vec<(u64, u8, u16, u64)> = Vec::new();
    let mut clocks: Vec<(u64, u64)> = Vec::new(); // (userdata, deadline)
    for i in 0..n {
        let at = (subs as u32).checked_add(i * SUB).ok_or(EFAULT)? as i32;
        let userdata = read_u64(mem, at)?;
        let r = range(mem, at.wrapping_add(8), 1)?;
        let tag = mem[r.start];
        match tag {
            0 => {
                let id = read_u32(mem, at.wrapping_add(16))?;
                let timeout = read_u64(mem, at.wrapping_add(24))?;
                let r = range(mem, at.wrapping_add(40), 2)?;
                let flags = u16::from_le_bytes([mem[r.start], mem[r.start + 1]]);
                let deadline = if flags & 1 == 1 {
                    match id {
                        0 => timeout.saturating_sub(REALTIME_EPOCH_NS),
                        1..=3 => timeout,
                        _ => return Err(EINVAL),
                    }
                } else {
                    if id > 3 {
                        return Err(EINVAL);
                    }
                    now.saturating_add(timeout)
                };
                clocks.push((userdata, deadline));
            }
            1 | 2 => {
                let fd = read_u32(mem, at.wrapping_add(16))? as i32;
                let ok = if tag == 1 {
                    fd == 0
                } else {
                    fd == 1 || fd == 2
                };
                let nbytes = if tag == 1 && ok {
                    (st.wasi.stdin.len() - st.wasi.stdin_pos) as u64
                } else {
                    0
                };
                ready.push((userdata, tag, if ok { 0 } else { EBADF as u16 }, nbytes));
            }
            _ => return Err(EINVAL),
        }
    }
    if ready.is_empty() {
        let earliest = clocks.iter().map(|(_, d)| *d).min().unwrap_or(now);
        if earliest > now {
            st.wasi.slept_ns = st.wasi.slept_ns.saturating_add(earliest - now);
        }
        for (userdata, deadline) in clocks {
            if deadline <= earliest.max(now) {
                ready.push((userdata, 0, 0, 0));
            }
        }
    }
    for (i, (userdata, kind, error, nbytes)) in ready.iter().enumerate() {
        let mut ev = [0u8; EVENT as usize];
        ev[0..8].copy_from_slice(&userdata.to_le_bytes());
        ev[8..10].copy_from_slice(&error.to_le_bytes());
        ev[10] = *kind;
        ev[16..24].copy_from_slice(&nbytes.to_le_bytes());
        let at = (events as u32)
            .checked_add(i as u32 * EVENT)
            .ok_or(EFAULT)? as i32;
        write_bytes(mem, at, &ev)?;
    }
    write_u32(mem, nevents, ready.len() as u32)
}
