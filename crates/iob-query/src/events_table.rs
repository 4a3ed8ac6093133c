//! The `events` table: the columnar store as DataFusion sees it. Each scan reads only the
//! columns the query needs, maps every row's person through the query purpose's directory
//! (rows of persons without consent never reach the plan), and pushes event-time bounds
//! down to skip whole days.
//!
//! Must never return a row that did not pass through [`Columnar::scan`].

use std::fmt;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use iob_columnar::{Columnar, ScanRequest, schema};
use iob_engine::{Engine, PersonDirectory};

/// The `events` table of one query (bound to its purpose's directory).
#[derive(Clone)]
pub struct EventsTable {
    pub(crate) engine: Arc<Engine>,
    pub(crate) columnar: Arc<Columnar>,
    pub(crate) directory: Arc<PersonDirectory>,
    pub(crate) schema: SchemaRef,
}

impl fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsTable").finish_non_exhaustive()
    }
}

impl EventsTable {
    pub fn new(
        engine: Arc<Engine>,
        columnar: Arc<Columnar>,
        directory: Arc<PersonDirectory>,
    ) -> Self {
        let all: Vec<String> = schema::EVENTS
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let schema = Columnar::scan_schema(&all, false).expect("the schema's own columns");
        EventsTable {
            engine,
            columnar,
            directory,
            schema,
        }
    }
}

/// `ts OP timestamp-literal` as a millisecond bound, if the filter is one.
fn time_bound(e: &Expr) -> Option<(Operator, i64)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (col, lit, op) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, v, op.swap()?),
        _ => return None,
    };
    if col.name != "ts" {
        return None;
    }
    let ms = match lit {
        ScalarValue::TimestampMillisecond(Some(v), _) => *v,
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.div_euclid(1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.saturating_mul(1_000),
        _ => return None,
    };
    Some((op, ms))
}

/// The `[from, to)` range implied by the pushed-down filters (others are applied above).
fn range_of(filters: &[Expr]) -> Option<(i64, i64)> {
    let (mut from, mut to) = (i64::MIN, i64::MAX);
    for f in filters {
        match time_bound(f) {
            Some((Operator::Gt, v)) => from = from.max(v.saturating_add(1)),
            Some((Operator::GtEq, v)) => from = from.max(v),
            Some((Operator::Lt, v)) => to = to.min(v),
            Some((Operator::LtEq, v)) => to = to.min(v.saturating_add(1)),
            Some((Operator::Eq, v)) => {
                from = from.max(v);
                to = to.min(v.saturating_add(1));
            }
            _ => {}
        }
    }
    (from != i64::MIN || to != i64::MAX).then_some((from, to))
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Time bounds prune days; DataFusion still applies every filter above the scan.
        Ok(filters
            .iter()
            .map(|f| {
                if time_bound(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let out = Arc::new(self.schema.project(&indices)?);
        let columns: Vec<String> = indices
            .iter()
            .map(|&i| self.schema.field(i).name().clone())
            .collect();
        let part = DayStream {
            table: self.clone(),
            columns,
            range: range_of(filters),
            schema: out.clone(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            out,
            vec![Arc::new(part)],
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// One scan: days from the columnar store, decoded on a blocking thread.
struct DayStream {
    table: EventsTable,
    columns: Vec<String>,
    range: Option<(i64, i64)>,
    schema: SchemaRef,
}

impl fmt::Debug for DayStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DayStream({:?}, {:?})", self.columns, self.range)
    }
}

impl PartitionStream for DayStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<DfResult<RecordBatch>>(4);
        let table = self.table.clone();
        // A query that needs no column (`count(*)`) still needs rows: read `seq`, drop it.
        let read: Vec<String> = if self.columns.is_empty() {
            vec!["seq".into()]
        } else {
            self.columns.clone()
        };
        let range = self.range;
        let schema = self.schema.clone();
        let empty = self.columns.is_empty();
        std::thread::spawn(move || {
            let req = ScanRequest {
                columns: read,
                range,
                directory: &table.directory,
                keep_unresolved: true,
                dictionary_text: false,
            };
            let sent =
                table
                    .columnar
                    .scan::<iob_columnar::ColumnarError>(&table.engine, &req, |day| {
                        let batch = if empty {
                            RecordBatch::try_new_with_options(
                                schema.clone(),
                                vec![],
                                &RecordBatchOptions::new()
                                    .with_row_count(Some(day.batch.num_rows())),
                            )
                            .expect("an empty schema")
                        } else {
                            day.batch
                        };
                        // The query went away (LIMIT reached, cancelled): stop reading.
                        tx.blocking_send(Ok(batch))
                            .map_err(|_| iob_columnar::ColumnarError::Cancelled)
                    });
            if let Err(e) = sent
                && !tx.is_closed()
            {
                let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}
