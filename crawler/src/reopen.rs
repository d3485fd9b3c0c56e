//! A redb database that survives a full disk without a restart.
//!
//! redb latches the first I/O error it meets (a full disk, say): from then on every
//! transaction fails with `PreviousIo` until the database is closed and opened again. A peer
//! that keeps one `Database` open for its lifetime would therefore stop storing links, crawl
//! states and anchor records for good the first time the disk filled, even after space
//! returned. [`Reopening`] closes the database after any failed operation and opens it again
//! at the next one, so the store recovers by itself once the disk has room. The crawl store
//! (`crawl.redb`) and the node's own stores (`node.redb`, `anchors.redb`) all go through it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::Database;

use crate::util::lock;

type Opener = Box<dyn Fn() -> Result<Database, redb::Error> + Send + Sync>;

/// A redb database that is closed after a failed operation and reopened by the next.
///
/// Operations take a mutex for their duration: call [`Reopening::run`] from blocking
/// threads only, and never from inside another `run` on the same value.
pub struct Reopening {
    open: Opener,
    db: Mutex<Option<Database>>,
}

impl std::fmt::Debug for Reopening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reopening")
            .field("open", &lock(&self.db).is_some())
            .finish_non_exhaustive()
    }
}

impl Reopening {
    /// Open (or create) the database file at `path` and run `init` on it (create its tables,
    /// say), now and after every reopen.
    pub fn create(
        path: &Path,
        init: fn(&Database) -> Result<(), redb::Error>,
    ) -> Result<Reopening, redb::Error> {
        let path: PathBuf = path.to_path_buf();
        Reopening::with_opener(move || {
            let db = Database::create(&path)?;
            init(&db)?;
            Ok(db)
        })
    }

    /// A database opened by `open`, now and after every failure (tests hand in a backend
    /// that fails on demand).
    pub fn with_opener(
        open: impl Fn() -> Result<Database, redb::Error> + Send + Sync + 'static,
    ) -> Result<Reopening, redb::Error> {
        let db = open()?;
        Ok(Reopening {
            open: Box::new(open),
            db: Mutex::new(Some(db)),
        })
    }

    /// Run `f` on the database (blocking), opening it first if the last operation failed.
    /// When `f` fails the database is closed (its file lock released) and the next call
    /// opens it again; a failed reopen is returned and tried again by the next call.
    pub fn run<T, E: From<redb::Error>>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = lock(&self.db);
        if guard.is_none() {
            *guard = Some((self.open)()?);
            tracing::info!("reopened a store after a failed operation");
        }
        let Some(db) = guard.as_ref() else {
            unreachable!("opened above")
        };
        let result = f(db);
        if result.is_err() {
            *guard = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::backends::InMemoryBackend;
    use redb::{ReadableDatabase, StorageBackend, TableDefinition};
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    /// An in-memory file that fails every write and resize while `full` is set, like a full
    /// disk; the bytes outlive the database that has them open, as a file's would.
    #[derive(Debug, Clone)]
    struct Disk {
        bytes: Arc<InMemoryBackend>,
        full: Arc<AtomicBool>,
    }

    impl Disk {
        fn check(&self) -> io::Result<()> {
            if self.full.load(Ordering::SeqCst) {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            } else {
                Ok(())
            }
        }
    }

    impl StorageBackend for Disk {
        fn len(&self) -> io::Result<u64> {
            self.bytes.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
            self.bytes.read(offset, out)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.check()?;
            self.bytes.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.check()?;
            self.bytes.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.check()?;
            self.bytes.write(offset, data)
        }
    }

    fn put(db: &Database, k: u64) -> Result<(), redb::Error> {
        let w = db.begin_write()?;
        w.open_table(T)?.insert(k, k * 10)?;
        w.commit()?;
        Ok(())
    }

    fn get(db: &Database, k: u64) -> Result<Option<u64>, redb::Error> {
        Ok(db.begin_read()?.open_table(T)?.get(k)?.map(|v| v.value()))
    }

    fn disk() -> Disk {
        Disk {
            bytes: Arc::new(InMemoryBackend::new()),
            full: Arc::new(AtomicBool::new(false)),
        }
    }

    fn open_on(disk: &Disk) -> Result<Database, redb::Error> {
        let db = Database::builder().create_with_backend(disk.clone())?;
        let w = db.begin_write()?;
        w.open_table(T)?;
        w.commit()?;
        Ok(db)
    }

    /// The failure this type exists for: without a reopen, one I/O error fails every later
    /// transaction, even once the disk has room again. (If redb ever stops latching, this
    /// test says so, and `Reopening` can go.)
    #[test]
    fn redb_latches_an_io_error_until_reopened() {
        let d = disk();
        let db = open_on(&d).unwrap();
        put(&db, 1).unwrap();
        d.full.store(true, Ordering::SeqCst);
        assert!(put(&db, 2).is_err(), "a write on a full disk fails");
        d.full.store(false, Ordering::SeqCst);
        let again = put(&db, 3);
        assert!(again.is_err(), "redb keeps failing after the disk has room");
    }

    #[test]
    fn a_failed_write_is_followed_by_a_working_store_once_space_returns() {
        let d = disk();
        let opener = d.clone();
        let store = Reopening::with_opener(move || open_on(&opener)).unwrap();
        store.run(|db| put(db, 1)).unwrap();

        d.full.store(true, Ordering::SeqCst);
        assert!(store.run(|db| put(db, 2)).is_err(), "full: the write fails");
        // Still full: the reopen itself may fail, and is tried again next time.
        let _ = store.run(|db| put(db, 2));

        d.full.store(false, Ordering::SeqCst);
        store.run(|db| put(db, 3)).unwrap();
        assert_eq!(store.run(|db| get(db, 1)).unwrap(), Some(10), "kept");
        assert_eq!(store.run(|db| get(db, 3)).unwrap(), Some(30), "stored");
        assert_eq!(
            store.run(|db| get(db, 2)).unwrap(),
            None,
            "what failed is not half there"
        );
    }

    #[test]
    fn a_real_file_reopens_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.redb");
        let init: fn(&Database) -> Result<(), redb::Error> = |db| {
            let w = db.begin_write()?;
            w.open_table(T)?;
            w.commit()?;
            Ok(())
        };
        let store = Reopening::create(&path, init).unwrap();
        store.run(|db| put(db, 7)).unwrap();
        // Any failed operation closes the file; the next one opens it again.
        let failed: Result<(), redb::Error> =
            store.run(|_| Err(redb::Error::from(redb::StorageError::PreviousIo)));
        assert!(failed.is_err());
        assert!(format!("{store:?}").contains("open: false"));
        assert_eq!(store.run(|db| get(db, 7)).unwrap(), Some(70));
        assert!(format!("{store:?}").contains("open: true"));
    }
}
