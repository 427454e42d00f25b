// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=pgsql`: log in with `login`/`passwd` to `database`, run
//! `request` (a SELECT); the real is up when it returns at least one row
//! (for a statement that is not a SELECT: when it affected at least one,
//! which is what DBI's `rows` counts). `receive` is unused, as in
//! ldirectord's `check_sql`; `login` and `request` are required.
//!
//! The client is `tokio-postgres` (maintained, pure Rust, speaks md5 and
//! SCRAM-SHA-256), over a TCP stream the check opens itself so that connect,
//! startup, authentication and the query all sit under one timeout;
//! ldirectord's DBD::Pg check has none. No TLS: ldirectord does not ask for
//! it either, and a server that requires it answers the startup with an
//! error the check reports.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio_postgres::config::SslMode;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// What the server sees as `application_name` (pg_stat_activity, logs).
pub const APPLICATION_NAME: &str = "ldirectord";

/// Why a PostgreSQL check failed at the protocol level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgsqlError {
    /// An ErrorResponse from the server: its message and SQLSTATE.
    #[error("PostgreSQL: {message} (SQLSTATE {code})")]
    Server { code: String, message: String },
    /// Any other client error (protocol, closed connection, ...).
    #[error("PostgreSQL: {0}")]
    Client(String),
    #[error("PostgreSQL: query returned 0 rows")]
    NoRows,
    #[error("PostgreSQL check needs login and request")]
    MissingLoginOrRequest,
}

impl From<PgsqlError> for CheckError {
    fn from(error: PgsqlError) -> Self {
        CheckError::Protocol(error.to_string())
    }
}

impl From<tokio_postgres::Error> for PgsqlError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db_error) => PgsqlError::Server {
                code: db_error.code().code().to_owned(),
                message: db_error.message().to_owned(),
            },
            None => PgsqlError::Client(error.to_string()),
        }
    }
}

/// `service=pgsql`.
#[derive(Debug, Clone)]
pub struct PgsqlChecker {
    timeout: Duration,
    login: String,
    passwd: String,
    database: String,
    query: String,
}

impl PgsqlChecker {
    /// The check a spec describes: `login`, `passwd`, `database` and
    /// `request` (the SQL), bounded by negotiatetimeout (ldirectord's
    /// DBI check had no timeout at all).
    pub fn new(spec: &CheckSpec) -> Self {
        Self::with_params(
            spec.negotiate_timeout,
            spec.login.as_deref().unwrap_or_default(),
            spec.passwd.as_deref().unwrap_or_default(),
            spec.database.as_deref().unwrap_or_default(),
            &spec.request,
        )
    }

    /// `request` may carry ldirectord's leading `/`, which `check_sql`
    /// strips; an empty `database` means the server's default (the login's
    /// name).
    pub fn with_params(
        timeout: Duration,
        login: &str,
        passwd: &str,
        database: &str,
        request: &str,
    ) -> Self {
        Self {
            timeout,
            login: login.to_owned(),
            passwd: passwd.to_owned(),
            database: database.to_owned(),
            query: request.strip_prefix('/').unwrap_or(request).to_owned(),
        }
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        if self.login.is_empty() || self.query.is_empty() {
            return Err(PgsqlError::MissingLoginOrRequest.into());
        }
        let stream = TcpStream::connect(target.addr)
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::ConnectionRefused => CheckError::Refused,
                _ => CheckError::Io(error.to_string()),
            })?;
        let _ = stream.set_nodelay(true);

        let mut config = tokio_postgres::Config::new();
        config
            .user(&self.login)
            .application_name(APPLICATION_NAME)
            .ssl_mode(SslMode::Disable);
        if !self.passwd.is_empty() {
            config.password(&self.passwd);
        }
        if !self.database.is_empty() {
            config.dbname(&self.database);
        }
        let (client, connection) = config
            .connect_raw(stream, NoTls)
            .await
            .map_err(PgsqlError::from)?;

        // The connection object does the socket I/O; it must be polled for
        // the query to reach the server. Driving it here, not in a spawned
        // task, means a timed-out check leaves nothing running behind.
        let mut connection = std::pin::pin!(connection);
        let verdict = tokio::select! {
            verdict = first_row(&client, &self.query) => verdict,
            ended = &mut connection => Err(match ended {
                Ok(()) => PgsqlError::Client("server closed the connection".into()),
                Err(error) => PgsqlError::from(error),
            }),
        };
        // Dropping the client makes the connection send Terminate and end:
        // a clean logout rather than an abrupt close in the server's log.
        drop(client);
        let _ = connection.await;
        verdict.map_err(CheckError::from)
    }
}

/// Runs `query` with the simple protocol (so it may be any SQL text, as
/// DBI's `prepare`/`execute` allowed) and stops at the first row.
async fn first_row(client: &tokio_postgres::Client, query: &str) -> Result<(), PgsqlError> {
    let messages = client.simple_query_raw(query).await?;
    let mut messages = std::pin::pin!(messages);
    while let Some(message) = messages.next().await {
        match message? {
            SimpleQueryMessage::Row(_) => return Ok(()),
            // Not a SELECT: DBI's `rows` is then the affected-row count,
            // and ldirectord's rule is the same "more than zero".
            SimpleQueryMessage::CommandComplete(rows) if rows > 0 => return Ok(()),
            _ => {}
        }
    }
    Err(PgsqlError::NoRows)
}

impl Checker for PgsqlChecker {
    fn name(&self) -> &'static str {
        "pgsql"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.probe(target)).await {
                Ok(result) => result,
                Err(_) => Err(CheckError::Timeout(self.timeout)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_leading_slash_from_request() {
        let checker = PgsqlChecker::with_params(Duration::from_secs(1), "u", "p", "", "/SELECT 1");
        assert_eq!(checker.query, "SELECT 1");
    }

    #[tokio::test]
    async fn missing_login_is_down_without_connecting() {
        let checker = PgsqlChecker::with_params(Duration::from_secs(1), "", "p", "", "SELECT 1");
        let target = CheckTarget {
            // Nothing listens on port 1; the check must not get that far.
            addr: "127.0.3.1:1".parse().expect("literal address"),
            virtual_addr: None,
            virtual_port: 5432,
            real_port: 5432,
        };
        assert_eq!(
            checker.check(&target).await,
            Err(CheckError::Protocol(
                "PostgreSQL check needs login and request".into()
            ))
        );
    }
}
