//! Durable storage: one interface, one implementation per database.
//!
//! `Store` is an enum over the two databases. Where the SQL is the same for both (lowercase, `$n`
//! parameters, types both drivers map the same way), one body serves both through
//! [`on_pool!`](crate::on_pool); where it differs (claiming, locking), a method matches on the
//! variant and each arm holds its own SQL.
//!
//! SQLite admits one writer at a time, and a writer that finds the lock taken sleeps in SQLite's
//! busy handler (1, 2, 5 … 100 ms), which turned a few concurrent progress writes into hundreds
//! of milliseconds of stalls. So SQLite gets two pools: every write goes through a pool of one
//! connection, where writers queue without sleeping, and reads (`on_pool!(read …)`) use a pool of
//! several, which WAL lets run beside the writer. Migrations live in `migrations/sqlite` and
//! `migrations/postgres`, numbered the same way, and run at start-up.

/// Stores `$checkpoint` on `$writer`'s job inside the transaction `$tx`, if the writer still
/// holds the job; `true` when it does. Last in every connector write, so that when the job has
/// moved on, the whole transaction is dropped.
macro_rules! hold_lease {
    ($tx:expr, $writer:expr, $checkpoint:expr) => {
        sqlx::query(
            "update jobs set checkpoint = $1 \
             where id = $2 and state = 'running' and attempt = $3 and lease_owner = $4",
        )
        .bind($checkpoint)
        .bind($writer.job_id)
        .bind(i64::from($writer.attempt))
        .bind($writer.owner)
        .execute($tx)
        .await?
        .rows_affected()
            == 1
    };
}

mod audit;
mod drafts;
mod entities;
mod instances;
mod jobs;
mod leases;
mod people;
mod records;
mod schedules;
mod sessions;
mod smart;
mod target;

pub use sessions::{
    AppliedOps, NewSession, NewStatus, SessionOp, SessionRow, SessionSnapshot, StepRow,
};

pub use entities::{changed_fields, ExportRecord, ExportSelection, PulledRecord, Writer};

pub use audit::{AuditFilter, NewAudit};
pub use drafts::{draft_key, DraftData, DraftRow, DRAFT_ENTITY};
pub use instances::InstanceRow;
pub use jobs::{JobFilter, JobRow, LiveWork, NewJob, Outcome, ProgressRow, TypeFacts};
pub use leases::{ClaimScope, Hold, Renewed, TransitionWrite};
pub use people::{NewAuthSession, SessionUser, TokenRow, UserRow};
pub use schedules::{FireClaim, FireRow, Fired, ScheduleRow};
pub use target::{redact_url, DatabaseTarget};

use std::{str::FromStr, time::Duration};

use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Handle to the database; cheap to clone (pools inside).
#[derive(Clone, Debug)]
pub enum Store {
    /// The embedded default: one file, WAL mode.
    Sqlite(SqlitePools),
    /// For several instances sharing one database.
    Postgres(PgPools),
}

/// The two pools of a Postgres store.
#[derive(Clone, Debug)]
pub struct PgPools {
    /// Everything but the leases: requests, tasks' writes, sessions (`max_connections`).
    pub main: PgPool,
    /// The engine's lease traffic alone (claims, renewals, rescues, ends of attempts), so that
    /// request load on `main` can never make a lease lapse.
    pub lease: PgPool,
}

/// Connections of the lease pool: the dispatcher's claim, the lease keeper, the batch writer.
const LEASE_CONNECTIONS: u32 = 3;

/// The two pools of a SQLite store.
#[derive(Clone, Debug)]
pub struct SqlitePools {
    /// One connection: every write, in turn.
    pub write: SqlitePool,
    /// Several connections for reads.
    pub read: SqlitePool,
}

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// Postgres.
    Postgres,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The driver reported an error (connection, constraint, SQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The directory for the SQLite file could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why not.
        source: std::io::Error,
    },
}

/// Runs `$body` with `$pool` bound to the pool of `$store` for SQL both databases share: the
/// writer by default, the read pool with `on_pool!(read store, pool => …)` (SQLite; Postgres has
/// one main pool), and the lease pool with `on_pool!(lease store, pool => …)` (Postgres; SQLite
/// has one writer, which leases share).
#[macro_export]
#[doc(hidden)]
macro_rules! on_pool {
    (read $store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::server::store::Store::Sqlite(pools) => {
                let $pool = &pools.read;
                $body
            }
            $crate::server::store::Store::Postgres(pools) => {
                let $pool = &pools.main;
                $body
            }
        }
    };
    (lease $store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::server::store::Store::Sqlite(pools) => {
                let $pool = &pools.write;
                $body
            }
            $crate::server::store::Store::Postgres(pools) => {
                let $pool = &pools.lease;
                $body
            }
        }
    };
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::server::store::Store::Sqlite(pools) => {
                let $pool = &pools.write;
                $body
            }
            $crate::server::store::Store::Postgres(pools) => {
                let $pool = &pools.main;
                $body
            }
        }
    };
}

impl Store {
    /// Opens (and for SQLite creates) the database. Does not migrate: call [`Store::migrate`].
    pub async fn connect(
        target: &DatabaseTarget,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Ok(Store::Sqlite(SqlitePools { write, read }))
            }
            DatabaseTarget::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?;
                let main = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options.clone())
                    .await?;
                let lease = PgPoolOptions::new()
                    .max_connections(LEASE_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy_with(options);
                Ok(Store::Postgres(PgPools { main, lease }))
            }
        }
    }

    /// Applies every migration not yet applied; safe to run on every start and from several
    /// processes at once (sqlx takes a lock on Postgres; SQLite serialises writers).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pools) => SQLITE_MIGRATOR.run(&pools.write).await?,
            Store::Postgres(pools) => POSTGRES_MIGRATOR.run(&pools.main).await?,
        }
        Ok(())
    }

    /// The versions of the migrations applied to this database, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let sql = "select version from _sqlx_migrations where success order by version";
        Ok(on_pool!(read self, pool => sqlx::query_scalar(sql).fetch_all(pool).await?))
    }

    /// One round trip: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(read self, pool => {
            sqlx::query("select 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Tells every process listening on `channel` (Postgres NOTIFY; SQLite has one process and
    /// nothing to tell). Best effort: a lost signal costs the next poll or lease renewal.
    pub async fn notify(&self, channel: &str, payload: &str) {
        if let Store::Postgres(pools) = self {
            let sent = sqlx::query("select pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&pools.main)
                .await;
            if let Err(err) = sent {
                tracing::debug!(error = %err, channel, "could not signal the other processes");
            }
        }
    }

    /// A connection listening on `channels` (Postgres), or `None` (SQLite). It is a connection of
    /// its own, beside the pools, so it never takes one that requests or leases need.
    pub async fn listener(
        &self,
        channels: &[&str],
    ) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(pools) => {
                let own = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with((*pools.main.connect_options()).clone());
                let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
                listener.listen_all(channels.iter().copied()).await?;
                Ok(Some(listener))
            }
        }
    }

    /// Each pool's name, busy and idle connections, and the most all may open.
    pub fn pool_use(&self) -> (Vec<(&'static str, i64, i64)>, i64) {
        fn one(name: &'static str, size: u32, idle: usize) -> (&'static str, i64, i64) {
            (name, i64::from(size) - idle as i64, idle as i64)
        }
        match self {
            Store::Sqlite(p) => (
                vec![
                    one("write", p.write.size(), p.write.num_idle()),
                    one("read", p.read.size(), p.read.num_idle()),
                ],
                i64::from(p.write.options().get_max_connections())
                    + i64::from(p.read.options().get_max_connections()),
            ),
            Store::Postgres(p) => (
                vec![
                    one("main", p.main.size(), p.main.num_idle()),
                    one("lease", p.lease.size(), p.lease.num_idle()),
                ],
                i64::from(p.main.options().get_max_connections())
                    + i64::from(p.lease.options().get_max_connections()),
            ),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Waits for checked-out connections to return, then closes the pool.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(pools) => {
                pools.read.close().await;
                pools.write.close().await;
            }
            Store::Postgres(pools) => {
                pools.lease.close().await;
                pools.main.close().await;
            }
        }
    }
}
