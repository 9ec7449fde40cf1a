//! Compiled modules, kept in memory (a small LRU) and on disk (`Module::serialize`), keyed
//! by `sha256(module)` and the engine's compile key, so a restarted worker never
//! recompiles and a warm task start is an `InstancePre::instantiate`.

use crate::error::{Error, Result};
use crate::sandbox::State;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::InstancePre;

pub(crate) type Pre = Arc<InstancePre<State>>;

pub(crate) struct MemoryCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<[u8; 32], (Pre, u64)>,
}

impl MemoryCache {
    pub(crate) fn new(capacity: usize) -> Mutex<Self> {
        Mutex::new(MemoryCache {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        })
    }

    pub(crate) fn get(&mut self, id: &[u8; 32]) -> Option<Pre> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(id).map(|(pre, used)| {
            *used = now;
            pre.clone()
        })
    }

    pub(crate) fn insert(&mut self, id: [u8; 32], pre: Pre) {
        self.clock += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&id) {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(id, (pre, self.clock));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Where the compiled form of a module lives on disk.
pub(crate) fn disk_path(dir: &Path, compile_key: &str, id: &[u8; 32]) -> PathBuf {
    dir.join(compile_key)
        .join(format!("{}.cwasm", hex::encode(id)))
}

/// Loads a compiled module from disk, or `None` when it is not there or unusable (then it
/// is removed so that it is rebuilt).
pub(crate) fn load(engine: &wasmtime::Engine, path: &Path) -> Option<wasmtime::Module> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: `Module::deserialize_file` trusts the file to be wasmtime's own output for
    // this engine. The files are written only by `store` below, into the node's own cache
    // directory, and named by the engine's compatibility key; wasmtime also checks the
    // header and the engine compatibility. Anyone who can write into the node's data
    // directory already controls the node.
    #[allow(unsafe_code)]
    let loaded = unsafe { wasmtime::Module::deserialize_file(engine, path) };
    match loaded {
        Ok(m) => Some(m),
        Err(_) => {
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// Writes a compiled module atomically (temporary file, then rename).
pub(crate) fn store(module: &wasmtime::Module, path: &Path) -> Result<()> {
    let io = |source| Error::Cache {
        path: path.to_path_buf(),
        source,
    };
    let bytes = module
        .serialize()
        .map_err(|e| Error::Engine(format!("serialize: {e:#}")))?;
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MemoryCache;

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, b"\0asm\x01\0\0\0").unwrap();
        let linker = wasmtime::Linker::new(&engine);
        let pre = std::sync::Arc::new(linker.instantiate_pre(&module).unwrap());
        let cache = MemoryCache::new(2);
        let mut c = cache.lock().unwrap();
        c.insert([1; 32], pre.clone());
        c.insert([2; 32], pre.clone());
        assert!(c.get(&[1; 32]).is_some()); // 1 is now more recent than 2
        c.insert([3; 32], pre.clone());
        assert_eq!(c.len(), 2);
        assert!(c.get(&[2; 32]).is_none(), "2 was the least recently used");
        assert!(c.get(&[1; 32]).is_some() && c.get(&[3; 32]).is_some());
        c.insert([3; 32], pre); // re-inserting a present key evicts nothing
        assert_eq!(c.len(), 2);
    }
}
