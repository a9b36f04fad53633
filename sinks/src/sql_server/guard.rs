//! What a client may run, and for how long: statements are checked before
//! `datafusion-postgres` plans them (read-only), and every answer is streamed through a
//! deadline and a row cap.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::results::FieldInfo;
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response};
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, ErrorHandler, PgWireServerHandlers};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{DfSessionService, Parser};
use futures::{Sink, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::auth::{Login, Startup};

/// The server's limits on one statement.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub max_rows: usize,
}

/// SQLSTATE of a refused write (`read_only_sql_transaction`).
const READ_ONLY: &str = "25006";
/// SQLSTATE of a statement stopped by its time limit (`query_canceled`).
const CANCELED: &str = "57014";
/// SQLSTATE of an answer over the row cap (`program_limit_exceeded`).
const TOO_MANY_ROWS: &str = "54000";

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

/// Why `statement` may not run here, if it may not: the history is read-only.
pub fn refusal(statement: &Statement) -> Option<String> {
    match statement {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::Set(_)
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowSchemas { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Declare { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Discard { .. }
        | Statement::Deallocate { .. } => match statement {
            Statement::Explain { statement, .. } => refusal(statement),
            _ => None,
        },
        other => refusal_of_text(&other.to_string()),
    }
}

/// The refusal of a statement, named by its first two words.
fn refusal_of_text(text: &str) -> Option<String> {
    let verb: String = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    Some(format!(
        "trackiq's SQL endpoint is read-only: `{verb} …` is refused (queries, EXPLAIN, SET/SHOW, transactions and cursors only; the pipeline alone writes the history)"
    ))
}

/// Checks every statement of `sql`. What PostgreSQL's grammar cannot read may still be one of
/// DataFusion's own statements (`CREATE EXTERNAL TABLE`, `COPY ... TO`): those are refused by
/// name too; any other parse error is left for the planner to report.
fn check(parser: &PostgresCompatibilityParser, sql: &str) -> PgWireResult<()> {
    use datafusion::sql::parser::{DFParser, Statement as DfStatement};
    let why = match parser.parse(sql) {
        Ok(statements) => statements.iter().find_map(refusal),
        Err(_) => DFParser::parse_sql(sql).ok().and_then(|statements| {
            statements.iter().find_map(|s| match s {
                DfStatement::Statement(s) => refusal(s),
                other => refusal_of_text(&other.to_string()),
            })
        }),
    };
    match why {
        Some(why) => Err(user_error(READ_ONLY, why)),
        None => Ok(()),
    }
}

/// `response` with the deadline and the row cap applied to its rows.
fn limited(response: Response, deadline: Instant, limits: Limits) -> Response {
    let Response::Query(mut query) = response else { return response };
    let tag = query.command_tag().to_string();
    let fields = query.row_schema();
    let rows = std::mem::replace(query.data_rows(), Box::pin(futures::stream::empty()));
    let stream = futures::stream::unfold((rows, 0usize, false), move |(mut rows, sent, done)| async move {
        if done {
            return None;
        }
        let stop = |e| Some((Err(e), (Box::pin(futures::stream::empty()) as _, sent, true)));
        match tokio::time::timeout_at(deadline, rows.next()).await {
            Err(_) => stop(timed_out(limits)),
            Ok(None) => None,
            Ok(Some(Ok(_))) if sent >= limits.max_rows => stop(user_error(
                TOO_MANY_ROWS,
                format!("the answer has more than {} rows ([sql_server] max_rows): aggregate, or add a LIMIT", limits.max_rows),
            )),
            Ok(Some(row)) => Some((row, (rows, sent + 1, false))),
        }
    });
    let mut out = QueryResponse::new(fields, stream);
    out.set_command_tag(&tag);
    Response::Query(out)
}

fn timed_out(limits: Limits) -> PgWireError {
    user_error(CANCELED, format!("canceling statement due to statement timeout ([sql_server] query_timeout_secs = {})", limits.timeout.as_secs()))
}

/// One connection's handlers: `datafusion-postgres`'s over the connection's own session,
/// behind the checks.
pub struct Connection {
    inner: Arc<DfSessionService>,
    parser: Arc<GuardedParser>,
    limits: Limits,
    startup: Arc<Startup>,
}

impl Connection {
    pub fn new(ctx: Arc<SessionContext>, limits: Limits, login: Login) -> Connection {
        let inner = Arc::new(DfSessionService::new(ctx));
        let parser = Arc::new(GuardedParser { inner: inner.query_parser(), check: PostgresCompatibilityParser::new() });
        Connection { inner, parser, limits, startup: Arc::new(Startup::new(login)) }
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        check(&self.parser.check, query)?;
        let rewritten = super::pg_types::rewrite(query);
        let query = rewritten.as_deref().unwrap_or(query);
        let deadline = Instant::now() + self.limits.timeout;
        let answers = tokio::time::timeout_at(deadline, SimpleQueryHandler::do_query(self.inner.as_ref(), client, query)).await.map_err(|_| timed_out(self.limits))??;
        Ok(answers.into_iter().map(|r| limited(r, deadline, self.limits)).collect())
    }
}

type DfStatement = <DfSessionService as ExtendedQueryHandler>::Statement;

/// `datafusion-postgres`'s parser behind the read-only check: a prepared statement that
/// writes is refused at `Parse`, by name, as in the simple protocol.
pub struct GuardedParser {
    inner: Arc<Parser>,
    check: PostgresCompatibilityParser,
}

#[async_trait]
impl QueryParser for GuardedParser {
    type Statement = DfStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<DfStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check(&self.check, sql)?;
        let rewritten = super::pg_types::rewrite(sql);
        self.inner.parse_sql(client, rewritten.as_deref().unwrap_or(sql), types).await
    }

    fn get_parameter_types(&self, stmt: &DfStatement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(stmt)
    }

    fn get_result_schema(&self, stmt: &DfStatement, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(stmt, column_format)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = DfStatement;
    type QueryParser = GuardedParser;

    fn query_parser(&self) -> Arc<GuardedParser> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Self::Statement>, max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let (_, Some((statement, _))) = &portal.statement.statement
            && let Some(why) = refusal(statement)
        {
            return Err(user_error(READ_ONLY, why));
        }
        let deadline = Instant::now() + self.limits.timeout;
        let answer = tokio::time::timeout_at(deadline, ExtendedQueryHandler::do_query(self.inner.as_ref(), client, portal, max_rows)).await.map_err(|_| timed_out(self.limits))??;
        Ok(limited(answer, deadline, self.limits))
    }
}

/// Errors go to the client only; the log says which kind without the statement text (it
/// may hold literals a user would rather not see in logs).
struct LogKind;

impl ErrorHandler for LogKind {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        let code = match error {
            PgWireError::UserError(info) => info.code.clone(),
            _ => "internal".into(),
        };
        tracing::debug!(peer = %client.socket_addr(), code, "PostgreSQL statement failed");
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(self.clone_handlers())
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(self.clone_handlers())
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogKind)
    }
}

impl Connection {
    fn clone_handlers(&self) -> Connection {
        Connection { inner: self.inner.clone(), parser: self.parser.clone(), limits: self.limits, startup: self.startup.clone() }
    }
}

/// Tells a client over the connection limit why it is refused (`too_many_connections`), as
/// PostgreSQL does, and closes.
pub async fn refuse_busy(mut socket: tokio::net::TcpStream, max: usize) {
    let fields = [("S", "FATAL".to_string()), ("C", "53300".to_string()), ("M", format!("sorry, too many clients already ([sql_server] max_connections = {max})"))];
    let mut body = Vec::new();
    for (tag, value) in fields {
        body.extend_from_slice(tag.as_bytes());
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    message.extend_from_slice(&body);
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.write_all(&message)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(sql: &str) -> Result<(), String> {
        check(&PostgresCompatibilityParser::new(), sql).map_err(|e| match e {
            PgWireError::UserError(info) => format!("{} {}", info.code, info.message),
            other => other.to_string(),
        })
    }

    #[test]
    fn reads_run_and_every_kind_of_write_is_refused_by_name() {
        for ok in [
            "SELECT metric, count(*) FROM samples GROUP BY metric",
            "WITH r AS (SELECT * FROM runs) SELECT count(*) FROM r",
            "EXPLAIN SELECT 1",
            "SET statement_timeout = '5s'",
            "SHOW search_path",
            "BEGIN",
            "COMMIT",
            "DECLARE c CURSOR FOR SELECT 1",
            "-- ping",
            "",
        ] {
            assert_eq!(verdict(ok), Ok(()), "{ok}");
        }
        for (bad, named) in [
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("INSERT INTO runs SELECT * FROM runs", "INSERT INTO"),
            ("DELETE FROM samples", "DELETE FROM"),
            ("DROP TABLE samples", "DROP TABLE"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'", "CREATE EXTERNAL"),
            ("SELECT 1; DROP TABLE runs", "DROP TABLE"),
            ("EXPLAIN ANALYZE INSERT INTO runs SELECT * FROM runs", "INSERT INTO"),
        ] {
            let e = verdict(bad).expect_err(bad);
            assert!(e.starts_with(READ_ONLY) && e.contains(named) && e.contains("read-only"), "{bad}: {e}");
        }
    }
}
