//! The wall-clock backstop of the in-wasm meter: one watchdog thread per runtime that, at a
//! running task's deadline, sets the task's interrupt byte
//! ([`smartnodes_meter::INTERRUPT_EXPORT`]). The task sees it at its next refill of the
//! fuel counter from the bank (at least once per [`smartnodes_meter::INTERRUPT_SLICE`]
//! fuel) and traps with the meter's `Interrupted` status, which the sandbox reports as
//! [`crate::Error::WallClockBackstop`], never as a verdict.
//!
//! Nothing here runs on the task's thread except arming (a lock and a map insert) and
//! disarming; the checks' fast path in wasm is unchanged (see `smartnodes-meter`'s
//! `Emitter::fuel_below`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// The interrupt byte of a running task: byte 0 of its meter memory.
struct Flag(*const AtomicU8);

#[allow(unsafe_code)]
// SAFETY: the pointer is only dereferenced by the watchdog thread while the entry is in
// the map, under the lock; `Armed::drop` removes it (under the same lock) before the
// store that owns the memory is dropped (see `Watchdog::arm`).
unsafe impl Send for Flag {}

#[derive(Default)]
struct Deadlines {
    next: u64,
    armed: BTreeMap<(Instant, u64), Flag>,
    stop: bool,
}

type Shared = Arc<(Mutex<Deadlines>, Condvar)>;

/// The watchdog and its thread (stopped when the watchdog is dropped).
pub(crate) struct Watchdog {
    shared: Shared,
}

impl Watchdog {
    pub(crate) fn start() -> std::io::Result<Watchdog> {
        let shared: Shared = Arc::default();
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("smartnodes-backstop".into())
            .spawn(move || watch(&thread))?;
        Ok(Watchdog { shared })
    }

    /// Arms the backstop for one task until the returned guard is dropped.
    ///
    /// # Safety
    /// `flag` must point to a byte that stays valid (and is only ever accessed atomically
    /// or by wasm code) until the guard is dropped: the guard must be dropped before the
    /// store owning the memory.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn arm(&self, flag: *mut u8, deadline: Instant) -> Armed<'_> {
        let (lock, wake) = &*self.shared;
        let mut d = lock.lock().unwrap_or_else(|e| e.into_inner());
        let key = (deadline, d.next);
        d.next += 1;
        d.armed.insert(key, Flag(flag as *const AtomicU8));
        wake.notify_one();
        Armed { dog: self, key }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
    }
}

/// Disarms on drop.
pub(crate) struct Armed<'a> {
    dog: &'a Watchdog,
    key: (Instant, u64),
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let (lock, _) = &*self.dog.shared;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .armed
            .remove(&self.key);
    }
}

#[allow(unsafe_code)]
fn watch(shared: &Shared) {
    let (lock, wake) = &**shared;
    let mut d = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if d.stop {
            return;
        }
        let now = Instant::now();
        match d.armed.first_key_value().map(|(k, _)| *k) {
            Some(key) if key.0 <= now => {
                if let Some(Flag(flag)) = d.armed.remove(&key) {
                    // SAFETY: armed entries point to live memory (see `Flag`).
                    unsafe { (*flag).store(1, Ordering::Relaxed) };
                }
            }
            Some((deadline, _)) => {
                d = wake
                    .wait_timeout(d, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            None => d = wake.wait(d).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    #[allow(unsafe_code)]
    fn sets_the_flag_at_the_deadline_and_not_after_disarming() {
        let dog = Watchdog::start().unwrap();
        let mut early = 0u8;
        let mut late = 0u8;
        let start = Instant::now();
        // SAFETY: both bytes outlive their guards.
        let a = unsafe { dog.arm(&mut early, start + Duration::from_millis(30)) };
        let b = unsafe { dog.arm(&mut late, start + Duration::from_millis(60)) };
        let flag =
            |b: &u8| unsafe { (*(b as *const u8 as *const AtomicU8)).load(Ordering::Relaxed) };
        while flag(&early) == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "never fired");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
        drop(b);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(flag(&late), 0, "a disarmed flag was set");
        drop(a);
    }
}
