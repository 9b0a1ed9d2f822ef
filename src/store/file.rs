//! The file backend: a private directory that the processes of one host share.
//!
//! - The directory is created `0700` and refused if other users may enter it; files are
//!   created `0600`. Values are sealed (see `seal`) all the same.
//! - An entry `<name>.entry` is `"TWF1" ‖ expiry ‖ value`: the expiry is a reading of
//!   `CLOCK_BOOTTIME` in nanoseconds, the one clock every process of a host shares (it keeps
//!   counting through suspend, as a token's lifetime does). It is replaced atomically: the
//!   new value is written to a temporary file that is then renamed over it.
//! - Writers and compare-and-delete serialise on a short `flock` of `<name>.guard`; the fetch
//!   lock is a `flock` of `<name>.lock`, held for the whole fetch and released by the kernel
//!   when its owner dies.
//! - `flock` locks belong to open files, which a forked child shares: every lock file this
//!   process has open is registered, released with `LOCK_UN` (not merely closed), and closed
//!   in a child, so a parent's lock neither outlives the parent in its children nor is freed
//!   by them.

// flock(2), clock_gettime(2) and close(2) are libc calls.
#![allow(unsafe_code)]

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{HeldLock, Store, StoreError, StoreLock, StoreResult, Stored};
use crate::sync::{ForkLock, Mutex};

const MAGIC: &[u8; 4] = b"TWF1";
const HEADER_LEN: usize = MAGIC.len() + 8;
/// Far above any token; a larger file is not ours.
const MAX_ENTRY: u64 = 256 * 1024;

mod sys {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        fn flock(fd: i32, operation: i32) -> i32;
        fn close(fd: i32) -> i32;
    }

    const CLOCK_BOOTTIME: i32 = 7;
    pub(super) const LOCK_EX: i32 = 2;
    pub(super) const LOCK_NB: i32 = 4;
    pub(super) const LOCK_UN: i32 = 8;

    /// `CLOCK_BOOTTIME` in nanoseconds.
    pub(super) fn boottime() -> std::io::Result<u64> {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        if unsafe { clock_gettime(CLOCK_BOOTTIME, &mut ts) } != 0 || ts.tv_sec < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }

    /// `flock(fd, operation)`, retried on EINTR.
    pub(super) fn lock(fd: i32, operation: i32) -> std::io::Result<()> {
        loop {
            // SAFETY: flock only reads its integer arguments; a bad fd is an EBADF error.
            if unsafe { flock(fd, operation) } == 0 {
                return Ok(());
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    /// Close `fd` without an owner: only for descriptors whose owner will never run again
    /// (a forked child's copies of the parent's lock files).
    pub(super) fn close_orphan(fd: i32) {
        // SAFETY: the caller guarantees no live object owns `fd` in this process, so closing
        // it cannot invalidate a descriptor in use.
        unsafe { close(fd) };
    }
}

pub(crate) struct FileStore {
    dir: PathBuf,
    timeout: Duration,
    files: Arc<LockFiles>,
    temp_serial: AtomicU64,
}

/// Every lock file this process has open (see the module docs). The lock is held only
/// across an open or a close, never across a wait.
struct LockFiles {
    open: Mutex<Vec<RawFd>>,
}

/// An open lock file, registered in [`LockFiles`] for its whole life.
struct LockFile {
    file: Option<File>,
    locked: bool,
    files: Arc<LockFiles>,
}

impl LockFiles {
    fn open(self: &Arc<Self>, path: &Path) -> std::io::Result<LockFile> {
        let mut open = self.open.lock();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        open.push(file.as_raw_fd());
        Ok(LockFile {
            file: Some(file),
            locked: false,
            files: Arc::clone(self),
        })
    }
}

impl LockFile {
    /// Take the lock if it is free; `false` if another open file holds it.
    fn try_lock(&mut self) -> std::io::Result<bool> {
        let fd = self.file.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        match sys::lock(fd, sys::LOCK_EX | sys::LOCK_NB) {
            Ok(()) => {
                self.locked = true;
                Ok(true)
            }
            Err(e) if e.kind() == IoKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else { return };
        let fd = file.as_raw_fd();
        if self.locked {
            // Explicitly: a forked child may share this open file, and closing ours would
            // then leave the lock held.
            let _ = sys::lock(fd, sys::LOCK_UN);
        }
        let mut open = self.files.open.lock();
        open.retain(|&f| f != fd);
        drop(file);
    }
}

impl HeldLock for LockFile {
    fn release(self: Box<Self>) -> StoreResult<()> {
        drop(self);
        Ok(())
    }

    fn abandon(self: Box<Self>) {
        // Releasing is local: no reason to leave the lock held.
        drop(self);
    }
}

impl FileStore {
    pub(crate) fn new(dir: PathBuf, timeout: Duration) -> FileStore {
        FileStore {
            dir,
            timeout,
            files: Arc::new(LockFiles {
                open: Mutex::new(Vec::new()),
            }),
            temp_serial: AtomicU64::new(0),
        }
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError(format!(
            "The shared cache directory {} {what}: {e}.",
            self.dir.display()
        ))
    }

    /// The directory, created `0700` if missing; refused if other users may use it.
    fn dir(&self) -> StoreResult<&Path> {
        if let Err(e) = DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
        {
            return Err(self.error("cannot be created", e));
        }
        let meta = std::fs::metadata(&self.dir).map_err(|e| self.error("cannot be read", e))?;
        if !meta.is_dir() {
            return Err(self.error("is not usable", "it is not a directory"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(self.error(
                "is not private",
                format_args!("its mode is {mode:o}; run chmod 700 on it"),
            ));
        }
        Ok(&self.dir)
    }

    fn path(&self, name: &str, suffix: &str) -> StoreResult<PathBuf> {
        Ok(self.dir()?.join(format!("{name}.{suffix}")))
    }

    /// The guard of `name`'s entry, for one update; waits at most the store timeout.
    fn guard(&self, name: &str) -> StoreResult<LockFile> {
        let path = self.path(name, "guard")?;
        let mut guard = self
            .files
            .open(&path)
            .map_err(|e| self.error("does not let a lock file be opened", e))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match guard.try_lock() {
                Ok(true) => return Ok(guard),
                Ok(false) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(false) => return Err(self.error(
                    "is busy",
                    "another process held an entry's update lock for longer than the store timeout",
                )),
                Err(e) => return Err(self.error("does not let a file be locked", e)),
            }
        }
    }

    /// The raw entry (header included), or `None`.
    fn read_entry(&self, path: &Path) -> StoreResult<Option<Vec<u8>>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("has an entry that cannot be opened", e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY)
            .read_to_end(&mut bytes)
            .map_err(|e| self.error("has an entry that cannot be read", e))?;
        Ok(Some(bytes))
    }
}

fn now() -> StoreResult<u64> {
    sys::boottime().map_err(|e| StoreError(format!("CLOCK_BOOTTIME cannot be read: {e}.")))
}

impl Store for FileStore {
    fn read(&self, name: &str) -> StoreResult<Option<Stored>> {
        let path = self.path(name, "entry")?;
        let Some(bytes) = self.read_entry(&path)? else {
            return Ok(None);
        };
        // A file that is not ours, or truncated: no entry (the next write replaces it).
        if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Ok(None);
        }
        let expires = u64::from_le_bytes(
            bytes[MAGIC.len()..HEADER_LEN]
                .try_into()
                .unwrap_or_default(),
        );
        let now = now()?;
        if expires <= now {
            return Ok(None);
        }
        Ok(Some(Stored {
            value: bytes[HEADER_LEN..].to_vec(),
            remaining: Duration::from_nanos(expires - now),
        }))
    }

    fn write(&self, name: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let _guard = self.guard(name)?;
        let expires = now()?.saturating_add(ttl.as_nanos().min(u64::MAX as u128) as u64);
        let path = self.path(name, "entry")?;
        let temp = self.path(
            name,
            &format!(
                "{}-{}.tmp",
                std::process::id(),
                self.temp_serial.fetch_add(1, Ordering::Relaxed)
            ),
        )?;
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                let mut bytes = Vec::with_capacity(HEADER_LEN + value.len());
                bytes.extend_from_slice(MAGIC);
                bytes.extend_from_slice(&expires.to_le_bytes());
                bytes.extend_from_slice(value);
                file.write_all(&bytes)
            })
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(self.error("does not accept a new entry", e));
        }
        Ok(())
    }

    fn delete_if(&self, name: &str, prefix: &[u8]) -> StoreResult<bool> {
        let _guard = self.guard(name)?;
        let path = self.path(name, "entry")?;
        let matches = self.read_entry(&path)?.is_some_and(|bytes| {
            bytes.len() >= HEADER_LEN && bytes[HEADER_LEN..].starts_with(prefix)
        });
        if matches {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == IoKind::NotFound => return Ok(false),
                Err(e) => return Err(self.error("does not let an entry be deleted", e)),
            }
        }
        Ok(matches)
    }

    fn try_lock(&self, name: &str, _ttl: Duration) -> StoreResult<Option<StoreLock>> {
        let path = self.path(name, "lock")?;
        let mut file = self
            .files
            .open(&path)
            .map_err(|e| self.error("does not let a lock file be opened", e))?;
        match file.try_lock() {
            Ok(true) => Ok(Some(StoreLock::new(Box::new(file)))),
            Ok(false) => Ok(None),
            Err(e) => Err(self.error("does not let a file be locked", e)),
        }
    }

    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.files.open);
    }

    fn forget_inherited_work(&self) {
        // The child's copies of the parent's lock files: their owners (threads of the parent)
        // never run here, so nothing else will close them.
        for fd in self.files.open.lock().drain(..) {
            sys::close_orphan(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tokenward-store-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn entries_expire_on_the_boot_clock_and_are_private() {
        let dir = temp_dir("expire");
        let store = FileStore::new(dir.join("cache"), Duration::from_millis(250));
        assert!(store.read("n").unwrap().is_none());
        store
            .write("n", b"value-1", Duration::from_secs(60))
            .unwrap();
        let stored = store.read("n").unwrap().unwrap();
        assert_eq!(stored.value, b"value-1");
        assert!(
            stored.remaining > Duration::from_secs(59)
                && stored.remaining <= Duration::from_secs(60)
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("cache")), 0o700);
        assert_eq!(mode(&dir.join("cache/n.entry")), 0o600);

        store
            .write("n", b"value-2", Duration::from_millis(30))
            .unwrap();
        assert_eq!(store.read("n").unwrap().unwrap().value, b"value-2");
        std::thread::sleep(Duration::from_millis(50));
        assert!(store.read("n").unwrap().is_none(), "expired");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn delete_if_compares_the_prefix() {
        let dir = temp_dir("cad");
        let store = FileStore::new(dir.clone(), Duration::from_millis(250));
        store
            .write("n", b"abc-token", Duration::from_secs(60))
            .unwrap();
        assert!(!store.delete_if("n", b"abd").unwrap());
        assert!(store.read("n").unwrap().is_some());
        assert!(store.delete_if("n", b"abc").unwrap());
        assert!(store.read("n").unwrap().is_none());
        assert!(!store.delete_if("n", b"abc").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_lock_at_a_time_even_within_a_process() {
        let dir = temp_dir("lock");
        let store = FileStore::new(dir.clone(), Duration::from_millis(250));
        let held = store
            .try_lock("n", Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert!(store
            .try_lock("n", Duration::from_secs(1))
            .unwrap()
            .is_none());
        assert!(store
            .try_lock("other", Duration::from_secs(1))
            .unwrap()
            .is_some());
        held.release().unwrap();
        let again = store.try_lock("n", Duration::from_secs(1)).unwrap();
        assert!(again.is_some());
        drop(again);
        assert!(
            store.files.open.lock().is_empty(),
            "every lock file is closed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_other_users_may_enter_is_refused() {
        let dir = temp_dir("open");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = FileStore::new(dir.clone(), Duration::from_millis(250));
        let e = store.read("n").unwrap_err();
        assert!(e.0.contains("not private") && e.0.contains("755"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn foreign_files_are_no_entry() {
        let dir = temp_dir("foreign");
        let store = FileStore::new(dir.clone(), Duration::from_millis(250));
        store.write("n", b"v", Duration::from_secs(60)).unwrap();
        std::fs::write(dir.join("n.entry"), b"garbage").unwrap();
        assert!(store.read("n").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
