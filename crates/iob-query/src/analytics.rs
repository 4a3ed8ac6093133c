//! The analytics service of one data directory: the columnar store (registered with the
//! engine so erasure reaches it, compacted in the background), SQL, and the behavioral
//! analyses, each bound to a purpose. What the server and the CLI hold.

use std::sync::Arc;
use std::time::Duration;

use iob_columnar::{Columnar, CompactReport, Compactor, Options};
use iob_engine::{AnalyticsConfig, Engine, Permit};

use crate::{QueryError, QueryResult, Sql, SqlOptions};

pub struct Analytics {
    engine: Arc<Engine>,
    columnar: Arc<Columnar>,
    sql: Sql,
    config: AnalyticsConfig,
    /// Declared last: stopped (and joined) when the service goes away.
    _compactor: Option<Compactor>,
}

impl Analytics {
    /// Opens the columnar store of `engine`'s data directory and registers it for erasure;
    /// with `background`, compacts every `compact_interval_secs`.
    pub fn open(
        engine: Arc<Engine>,
        config: &AnalyticsConfig,
        background: bool,
    ) -> Result<Analytics, QueryError> {
        let columnar = Arc::new(Columnar::open(
            engine.data_dir(),
            Options {
                row_group_rows: config.row_group_rows,
                max_files_per_day: config.max_files_per_day.max(1),
                max_tail_rows: config.max_tail_rows,
                chunk_rows: config.compact_chunk_rows.max(1),
            },
        )?);
        engine.register_derived(columnar.clone());
        // Erasures made while the store was closed reach its files now.
        columnar.reconcile(&engine)?;
        let sql = Sql::new(
            engine.clone(),
            columnar.clone(),
            SqlOptions {
                memory_limit_bytes: config.query_memory_mb.max(16) << 20,
                max_rows: config.max_result_rows,
                ..SqlOptions::default()
            },
        );
        let compactor = (background && config.compact_interval_secs > 0).then(|| {
            Compactor::start(
                columnar.clone(),
                engine.clone(),
                Duration::from_secs(config.compact_interval_secs),
            )
        });
        Ok(Analytics {
            engine,
            columnar,
            sql,
            config: config.clone(),
            _compactor: compactor,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn columnar(&self) -> &Arc<Columnar> {
        &self.columnar
    }

    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }

    /// Runs SQL under `permit` (see the crate docs for what it may read).
    pub async fn sql(&self, permit: &Permit, text: &str) -> Result<QueryResult, QueryError> {
        self.sql.query(permit, text).await
    }

    /// Compacts everything logged so far (blocking).
    pub fn compact(&self) -> Result<CompactReport, QueryError> {
        Ok(self.columnar.compact(&self.engine)?)
    }
}
