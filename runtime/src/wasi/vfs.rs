//! Read-only input files: a flat, in-memory directory preopened as `/input` (descriptor 3)
//! when the task is given files, and absent otherwise.
//!
//! Why in memory instead of a host directory through cap-std: a host directory exposes
//! metadata that differs between machines (inode numbers, timestamps, directory order) and
//! can change while the task runs. Here every file is bytes the caller passed (on the network
//! a content-addressed blob), the directory lists them in name order, inode numbers are
//! indices, every timestamp is 0, and nothing can be written.

use super::{iovecs, range, write_bytes, write_u32, write_u64, Errno};
use super::{EBADF, EINVAL, SUCCESS};
use std::sync::Arc;

const EISDIR: Errno = 31;
const EMFILE: Errno = 33;
const ENAMETOOLONG: Errno = 37;
const ENOENT: Errno = 44;
const ENOTDIR: Errno = 54;
const EROFS: Errno = 69;
const ENOTCAPABLE: Errno = 76;

const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR: u8 = 4;

/// The preopened directory's descriptor and name.
pub(crate) const DIR_FD: i32 = 3;
const DIR_NAME: &[u8] = b"/input";
/// Descriptors from here on are opened files or directory handles.
const FIRST_FD: i32 = 4;
/// Most descriptors a task may have open at once.
const MAX_OPEN: usize = 64;
/// Longest path accepted.
const MAX_PATH: u32 = 4096;

const OFLAGS_CREAT: i32 = 1;
const OFLAGS_DIRECTORY: i32 = 2;
const OFLAGS_EXCL: i32 = 4;
const OFLAGS_TRUNC: i32 = 8;

const RIGHTS_FILE: u64 = (1 << 1) | (1 << 2) | (1 << 5) | (1 << 21); // read, seek, tell, filestat_get
const RIGHTS_DIR: u64 = (1 << 13) | (1 << 14) | (1 << 18) | (1 << 21); // path_open, readdir, path_filestat_get, filestat_get

#[derive(Debug, Clone, Copy)]
enum Open {
    Dir,
    File { index: usize, pos: u64 },
}

/// The task's input files and its open descriptors on them.
pub(crate) struct Vfs {
    /// Sorted by name.
    files: Vec<(Vec<u8>, Arc<[u8]>)>,
    open: Vec<Option<Open>>,
}

/// Whether `name` may be an input file's name: non-empty, no `/`, no NUL, not `.`/`..`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

impl Vfs {
    pub(crate) fn new(files: &[(String, Arc<[u8]>)]) -> Vfs {
        let mut files: Vec<(Vec<u8>, Arc<[u8]>)> = files
            .iter()
            .map(|(n, b)| (n.as_bytes().to_vec(), b.clone()))
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Vfs {
            files,
            open: Vec::new(),
        }
    }

    fn mounted(&self) -> bool {
        !self.files.is_empty()
    }

    /// What `fd` is, if it is one of ours.
    fn get(&self, fd: i32) -> Result<Open, Errno> {
        if fd == DIR_FD && self.mounted() {
            return Ok(Open::Dir);
        }
        let slot = fd.checked_sub(FIRST_FD).ok_or(EBADF)?;
        self.open
            .get(usize::try_from(slot).map_err(|_| EBADF)?)
            .copied()
            .flatten()
            .ok_or(EBADF)
    }

    /// Whether `fd` belongs to the file system (as opposed to stdio or nothing).
    pub(crate) fn owns(&self, fd: i32) -> bool {
        self.get(fd).is_ok()
    }

    pub(crate) fn prestat_get(&self, fd: i32, mem: &mut [u8], out: i32) -> Result<(), Errno> {
        if fd != DIR_FD || !self.mounted() {
            return Err(EBADF);
        }
        let mut prestat = [0u8; 8]; // tag 0 = directory, then the name length
        prestat[4..8].copy_from_slice(&(DIR_NAME.len() as u32).to_le_bytes());
        write_bytes(mem, out, &prestat)
    }

    pub(crate) fn prestat_dir_name(
        &self,
        fd: i32,
        mem: &mut [u8],
        path: i32,
        len: i32,
    ) -> Result<(), Errno> {
        if fd != DIR_FD || !self.mounted() {
            return Err(EBADF);
        }
        let n = (len as u32 as usize).min(DIR_NAME.len());
        write_bytes(mem, path, &DIR_NAME[..n])
    }

    /// Resolves a path relative to the directory: `Some(index)` for a file, `None` for the
    /// directory itself.
    fn resolve(&self, mem: &[u8], path: i32, len: i32) -> Result<Option<usize>, Errno> {
        let len = len as u32;
        if len > MAX_PATH {
            return Err(ENAMETOOLONG);
        }
        let r = range(mem, path, u64::from(len))?;
        let mut name: &[u8] = &mem[r];
        while let Some(rest) = name.strip_prefix(b"./") {
            name = rest;
        }
        let name = name.strip_suffix(b"/").unwrap_or(name);
        if name.is_empty() || name == b"." {
            return Ok(None);
        }
        self.files
            .binary_search_by(|(n, _)| n.as_slice().cmp(name))
            .map(Some)
            .map_err(|_| ENOENT)
    }

    pub(crate) fn path_open(
        &mut self,
        dirfd: i32,
        mem: &mut [u8],
        path: (i32, i32),
        oflags: i32,
        out: i32,
    ) -> Result<(), Errno> {
        match self.get(dirfd)? {
            Open::Dir => {}
            Open::File { .. } => return Err(ENOTDIR),
        }
        if oflags & (OFLAGS_CREAT | OFLAGS_EXCL | OFLAGS_TRUNC) != 0 {
            return Err(match self.resolve(mem, path.0, path.1) {
                Err(ENOENT) | Ok(_) => EROFS,
                Err(e) => e,
            });
        }
        let open = match self.resolve(mem, path.0, path.1)? {
            None => Open::Dir,
            Some(_) if oflags & OFLAGS_DIRECTORY != 0 => return Err(ENOTDIR),
            Some(index) => Open::File { index, pos: 0 },
        };
        let slot = match self.open.iter().position(Option::is_none) {
            Some(s) => s,
            None if self.open.len() < MAX_OPEN => {
                self.open.push(None);
                self.open.len() - 1
            }
            None => return Err(EMFILE),
        };
        let fd = FIRST_FD + slot as i32;
        write_u32(mem, out, fd as u32)?;
        self.open[slot] = Some(open);
        Ok(())
    }

    pub(crate) fn close(&mut self, fd: i32) -> Errno {
        match self.get(fd) {
            Ok(_) if fd == DIR_FD => SUCCESS, // the preopen stays; closing it is harmless
            Ok(_) => {
                self.open[(fd - FIRST_FD) as usize] = None;
                SUCCESS
            }
            Err(e) => e,
        }
    }

    pub(crate) fn read(
        &mut self,
        fd: i32,
        mem: &mut [u8],
        iovs: i32,
        iovs_len: i32,
        nread: i32,
    ) -> Result<(), Errno> {
        let (index, mut pos) = match self.get(fd)? {
            Open::File { index, pos } => (index, pos),
            Open::Dir => return Err(EISDIR),
        };
        let data = self.files[index].1.clone();
        let mut total = 0u32;
        for (ptr, len) in iovecs(mem, iovs, iovs_len)? {
            let start = pos.min(data.len() as u64) as usize;
            let n = (len as usize).min(data.len() - start);
            write_bytes(mem, ptr, &data[start..start + n])?;
            pos += n as u64;
            total += n as u32;
            if n < len as usize {
                break;
            }
        }
        self.open[(fd - FIRST_FD) as usize] = Some(Open::File { index, pos });
        write_u32(mem, nread, total)
    }

    pub(crate) fn seek(
        &mut self,
        fd: i32,
        offset: i64,
        whence: i32,
        mem: &mut [u8],
        out: i32,
    ) -> Result<(), Errno> {
        let (index, pos) = match self.get(fd)? {
            Open::File { index, pos } => (index, pos),
            Open::Dir => return Err(EISDIR),
        };
        let base = match whence {
            0 => 0i128,
            1 => i128::from(pos),
            2 => self.files[index].1.len() as i128,
            _ => return Err(EINVAL),
        };
        let new = base + i128::from(offset);
        if !(0..=i128::from(i64::MAX)).contains(&new) {
            return Err(EINVAL);
        }
        write_u64(mem, out, new as u64)?;
        self.open[(fd - FIRST_FD) as usize] = Some(Open::File {
            index,
            pos: new as u64,
        });
        Ok(())
    }

    pub(crate) fn tell(&self, fd: i32, mem: &mut [u8], out: i32) -> Result<(), Errno> {
        match self.get(fd)? {
            Open::File { pos, .. } => write_u64(mem, out, pos),
            Open::Dir => Err(EISDIR),
        }
    }

    pub(crate) fn fdstat(&self, fd: i32, mem: &mut [u8], out: i32) -> Result<(), Errno> {
        let (filetype, rights, inheriting) = match self.get(fd)? {
            Open::Dir => (FILETYPE_DIRECTORY, RIGHTS_DIR, RIGHTS_FILE | RIGHTS_DIR),
            Open::File { .. } => (FILETYPE_REGULAR, RIGHTS_FILE, 0),
        };
        let mut stat = [0u8; 24];
        stat[0] = filetype;
        stat[8..16].copy_from_slice(&rights.to_le_bytes());
        stat[16..24].copy_from_slice(&inheriting.to_le_bytes());
        write_bytes(mem, out, &stat)
    }

    fn write_filestat(&self, file: Option<usize>, mem: &mut [u8], out: i32) -> Result<(), Errno> {
        let mut stat = [0u8; 64]; // dev, ino, filetype, nlink, size, atim, mtim, ctim: all fixed
        let (ino, filetype, size) = match file {
            None => (0u64, FILETYPE_DIRECTORY, 0u64),
            Some(i) => (i as u64 + 1, FILETYPE_REGULAR, self.files[i].1.len() as u64),
        };
        stat[8..16].copy_from_slice(&ino.to_le_bytes());
        stat[16] = filetype;
        stat[24..32].copy_from_slice(&1u64.to_le_bytes());
        stat[32..40].copy_from_slice(&size.to_le_bytes());
        write_bytes(mem, out, &stat)
    }

    pub(crate) fn filestat(&self, fd: i32, mem: &mut [u8], out: i32) -> Result<(), Errno> {
        match self.get(fd)? {
            Open::Dir => self.write_filestat(None, mem, out),
            Open::File { index, .. } => self.write_filestat(Some(index), mem, out),
        }
    }

    pub(crate) fn path_filestat(
        &self,
        fd: i32,
        mem: &mut [u8],
        path: (i32, i32),
        out: i32,
    ) -> Result<(), Errno> {
        match self.get(fd)? {
            Open::Dir => {}
            Open::File { .. } => return Err(ENOTDIR),
        }
        let file = self.resolve(mem, path.0, path.1)?;
        self.write_filestat(file, mem, out)
    }

    /// `fd_readdir`: `.`, `..`, then the files in name order; the cookie is the index of
    /// the next entry. Like every WASI implementation, the last entry may be cut short when
    /// the buffer is full (the caller sees `bufused == buf_len` and asks again).
    pub(crate) fn readdir(
        &self,
        fd: i32,
        mem: &mut [u8],
        buf: i32,
        buf_len: i32,
        cookie: i64,
        out: i32,
    ) -> Result<(), Errno> {
        match self.get(fd)? {
            Open::Dir => {}
            Open::File { .. } => return Err(ENOTDIR),
        }
        let buf_len = buf_len as u32 as usize;
        range(mem, buf, buf_len as u64)?;
        let mut bytes = Vec::new();
        let count = self.files.len() + 2;
        let mut next = usize::try_from(cookie as u64).unwrap_or(usize::MAX);
        while next < count && bytes.len() < buf_len {
            let (name, ino, filetype): (&[u8], u64, u8) = match next {
                0 => (b".", 0, FILETYPE_DIRECTORY),
                1 => (b"..", 0, FILETYPE_DIRECTORY),
                i => (&self.files[i - 2].0, (i - 2) as u64 + 1, FILETYPE_REGULAR),
            };
            let mut entry = [0u8; 24];
            entry[0..8].copy_from_slice(&(next as u64 + 1).to_le_bytes());
            entry[8..16].copy_from_slice(&ino.to_le_bytes());
            entry[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            entry[20] = filetype;
            bytes.extend_from_slice(&entry);
            bytes.extend_from_slice(name);
            next += 1;
        }
        bytes.truncate(buf_len);
        write_bytes(mem, buf, &bytes)?;
        write_u32(mem, out, bytes.len() as u32)
    }

    /// Writes to input files are refused.
    pub(crate) fn write(&self, fd: i32) -> Errno {
        match self.get(fd) {
            Ok(Open::File { .. }) => ENOTCAPABLE,
            Ok(Open::Dir) => EISDIR,
            Err(e) => e,
        }
    }
}
