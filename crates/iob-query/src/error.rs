//! Errors of SQL queries.

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is not valid, names an unknown column or function, or is not a query.
    #[error("sql: {0}")]
    Sql(String),
    /// The query names a table iob does not offer.
    #[error("unknown table `{0}`: queries read `events`, `persons` and `consents`")]
    UnknownTable(String),
    /// The query could not run to the end (memory limit, a damaged file...).
    #[error("query failed: {0}")]
    Execution(String),
    #[error("output format `{0}` is not one of table, csv, json, jsonl, parquet")]
    Format(String),
    /// An analysis request is invalid (`field` names the member), or its source failed.
    #[error(transparent)]
    Analysis(#[from] iob_analyses::AnalysisError),
    #[error(transparent)]
    Columnar(#[from] iob_columnar::ColumnarError),
    #[error(transparent)]
    Engine(#[from] iob_engine::EngineError),
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        match e {
            D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) => {
                QueryError::Sql(e.strip_backtrace().to_string())
            }
            other => QueryError::Execution(other.strip_backtrace().to_string()),
        }
    }
}
