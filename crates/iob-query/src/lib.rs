//! SQL over iob's data with Apache DataFusion, bound to a purpose.
//!
//! Tables: `events` (the columnar store: compacted days plus the not-yet-compacted tail),
//! `persons` (profiles) and `consents` (each person's decision per purpose). A query runs
//! under a [`Permit`]: every table holds only persons who consent to the permit's purpose
//! at the moment the query starts, merged identities are one person, erased persons are
//! gone, health readings are never in `events`. Identifiers are pseudonymized in every
//! column. JSON functions (`json_get_str(properties, 'sku')`, `properties->>'sku'`) read the
//! properties column.
//!
//! Only queries run: DDL (`CREATE EXTERNAL TABLE` would read any file), DML (`COPY` would
//! write one) and statements (`SET`) are refused, as is any table but the three above. Each
//! query is recorded in the audit log before it runs. This crate must never register a
//! table whose rows did not go through a purpose's directory.

mod analyses;
mod analytics;
mod error;
mod events_table;
mod output;
mod people;

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use iob_columnar::Columnar;
use iob_engine::{Engine, Permit};

pub use analyses::{KINDS, parse_analysis};
pub use analytics::Analytics;
pub use error::QueryError;
pub use events_table::EventsTable;
pub use iob_analyses::{Analysis, AnalysisError, Disclosure};
pub use output::{Format, render};

/// The tables a query may name.
pub const TABLES: [&str; 3] = ["events", "persons", "consents"];

/// Limits of SQL queries (`[analytics]` in the configuration).
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Memory a query may use for joins, sorts and aggregations before it fails.
    pub memory_limit_bytes: usize,
    /// Threads a query uses.
    pub threads: usize,
    /// Rows returned at most (more are cut and the result says so).
    pub max_rows: usize,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            memory_limit_bytes: 4 << 30,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_rows: 1_000_000,
        }
    }
}

/// A query's result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// More rows than `max_rows` matched; the rest were cut.
    pub truncated: bool,
    pub seconds: f64,
}

/// Runs SQL over one engine's data.
pub struct Sql {
    engine: Arc<Engine>,
    columnar: Arc<Columnar>,
    options: SqlOptions,
}

impl Sql {
    pub fn new(engine: Arc<Engine>, columnar: Arc<Columnar>, options: SqlOptions) -> Sql {
        Sql {
            engine,
            columnar,
            options,
        }
    }

    fn context(&self) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_target_partitions(self.options.threads.max(1))
            .with_information_schema(false);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.options.memory_limit_bytes, 1.0)
            .build_arc()?;
        let mut ctx = SessionContext::new_with_config_rt(config, runtime);
        datafusion_functions_json::register_all(&mut ctx)?;
        Ok(ctx)
    }

    /// The tables `sql` names, each checked against [`TABLES`].
    fn tables_named(ctx: &SessionContext, sql: &str) -> Result<Vec<&'static str>, QueryError> {
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let stmt = state.sql_to_statement(sql, &dialect)?;
        let refs = state.resolve_table_references(&stmt)?;
        let mut out = Vec::new();
        for r in refs {
            let name = r.table();
            let bare = r.schema().is_none_or(|s| s == "public")
                && r.catalog().is_none_or(|c| c == "datafusion");
            match TABLES.iter().find(|t| **t == name) {
                Some(t) if bare => {
                    if !out.contains(t) {
                        out.push(*t);
                    }
                }
                _ => return Err(QueryError::UnknownTable(r.to_string())),
            }
        }
        Ok(out)
    }

    /// Runs `sql` under `permit`.
    pub async fn query(&self, permit: &Permit, sql: &str) -> Result<QueryResult, QueryError> {
        let started = Instant::now();
        let ctx = self.context()?;
        let tables = Self::tables_named(&ctx, sql)?;
        self.engine.audit_query(permit, "sql", sql)?;
        let engine = self.engine.clone();
        let columnar = self.columnar.clone();
        let permit2 = permit.clone();
        // Directory, profiles and consents come from locks and files: off the async threads.
        let registered = tokio::task::spawn_blocking(move || -> Result<_, QueryError> {
            let mut t: Vec<(&'static str, Arc<dyn datafusion::catalog::TableProvider>)> =
                Vec::new();
            for name in tables {
                match name {
                    "events" => {
                        // The scan brings the tail up to date itself when it runs.
                        let dir = Arc::new(engine.person_directory(&permit2)?);
                        t.push((
                            name,
                            Arc::new(EventsTable::new(engine.clone(), columnar.clone(), dir)),
                        ));
                    }
                    "persons" => t.push((name, Arc::new(people::persons(&engine, &permit2)?))),
                    _ => t.push((name, Arc::new(people::consents(&engine, &permit2)?))),
                }
            }
            Ok(t)
        })
        .await
        .map_err(|e| QueryError::Execution(e.to_string()))??;
        for (name, table) in registered {
            ctx.register_table(name, table)?;
        }
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let limit = self.options.max_rows;
        // EXPLAIN must stay the root of its plan; it returns a few rows anyway.
        let explain = matches!(
            df.logical_plan(),
            datafusion::logical_expr::LogicalPlan::Explain(_)
                | datafusion::logical_expr::LogicalPlan::Analyze(_)
        );
        let df = if explain {
            df
        } else {
            df.limit(0, Some(limit + 1))?
        };
        let mut batches = df.collect().await?;
        let mut rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let truncated = rows > limit;
        if truncated {
            let mut left = limit;
            for b in &mut batches {
                let take = b.num_rows().min(left);
                *b = b.slice(0, take);
                left -= take;
            }
            batches.retain(|b| b.num_rows() > 0);
            rows = limit;
        }
        Ok(QueryResult {
            schema,
            batches,
            rows,
            truncated,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The three tables and their columns, as text (`iob query --schema`).
pub fn describe_tables() -> String {
    let all: Vec<String> = iob_columnar::schema::EVENTS
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let events = Columnar::scan_schema(&all, false).expect("the schema's own columns");
    let mut out = String::new();
    for (name, schema, note) in [
        (
            "events",
            events,
            "one row per stored event (health readings excluded); person = current person id; properties = JSON text (json_get_str(properties, 'key'), properties->>'key')",
        ),
        (
            "persons",
            people::persons_schema(),
            "one row per person: profile aggregates; JSON text columns",
        ),
        (
            "consents",
            people::consents_schema(),
            "one row per person and purpose",
        ),
    ] {
        out.push_str(&format!("{name}  -- {note}\n"));
        for f in schema.fields() {
            out.push_str(&format!(
                "  {:<22} {}{}\n",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            ));
        }
    }
    out
}
