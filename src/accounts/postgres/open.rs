//! Opening the PostgreSQL store: the connection as the config says, a refused certificate
//! explained with the setting to look at, and the migrations.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use tokio_rustls::rustls;

use super::{MIGRATIONS, PostgresStore, db};
use crate::accounts::AccountError;
use crate::config::{PgSslMode, Postgres as PostgresConfig};

/// Advisory lock key held while migrating, so that replicas starting together apply each
/// migration once: the bytes of "deskgate".
const MIGRATION_LOCK: i64 = 0x6465_736b_6761_7465;

/// Time allowed for the first connection at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a request may wait for a pooled connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("cannot connect to PostgreSQL at {at}")]
    Connect {
        at: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the TLS certificate of PostgreSQL at {at} is not trusted: {advice}")]
    Untrusted {
        at: String,
        advice: String,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "the TLS certificate of PostgreSQL at {at} is not valid for the name `{host}`, which {mode} checks: \
         connect by a name the certificate holds, or give the server a certificate for `{host}`"
    )]
    NameMismatch {
        at: String,
        host: String,
        mode: String,
        #[source]
        source: rustls::Error,
    },
    #[error("the TLS certificate of PostgreSQL at {at} is refused")]
    Certificate {
        at: String,
        #[source]
        source: rustls::Error,
    },
    #[error("PostgreSQL at {at} did not answer within {} s", CONNECT_TIMEOUT.as_secs())]
    NoAnswer { at: String },
    #[error("cannot bring the PostgreSQL schema up to date")]
    Migrate(#[source] sqlx::Error),
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) and brings its schema up to date.
    /// A database that cannot be reached is an error here, not at the first sign-in.
    pub async fn open(url: &str) -> Result<PostgresStore, AccountError> {
        PostgresStore::open_with(PgConnectOptions::from_str(url).map_err(db)?).await
    }

    /// As [`PostgresStore::open`], as the config says: URL, TLS, client certificate and
    /// password. A certificate refused at start names the setting to look at.
    pub async fn connect(config: &PostgresConfig) -> Result<PostgresStore, AccountError> {
        let mut options = PgConnectOptions::from_str(config.url.expose())
            .map_err(db)?
            // Set always, so that the config alone decides (not PGSSLMODE).
            .ssl_mode(match config.ssl_mode {
                PgSslMode::Disable => sqlx::postgres::PgSslMode::Disable,
                PgSslMode::Prefer => sqlx::postgres::PgSslMode::Prefer,
                PgSslMode::Require => sqlx::postgres::PgSslMode::Require,
                PgSslMode::VerifyFull => sqlx::postgres::PgSslMode::VerifyFull,
            });
        if let Some(ca) = &config.ca_file {
            options = options.ssl_root_cert(ca);
        }
        if let Some(files) = &config.client_cert {
            options = options.ssl_client_cert(&files.cert_file).ssl_client_key(&files.key_file);
        }
        if let Some(password) = &config.password {
            options = options.password(&password.0);
        }
        let refusal = Refusal { mode: config.ssl_mode_setting(), ca_file: config.ca_file.clone() };
        PostgresStore::open_explained(options, &refusal).await
    }

    /// As [`PostgresStore::open`], with options already parsed.
    pub async fn open_with(options: PgConnectOptions) -> Result<PostgresStore, AccountError> {
        let refusal = Refusal { mode: "sslmode verify-full".into(), ca_file: None };
        PostgresStore::open_explained(options, &refusal).await
    }

    async fn open_explained(
        options: PgConnectOptions,
        refusal: &Refusal,
    ) -> Result<PostgresStore, AccountError> {
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("deskgate"),
        };
        let at = match options.get_database() {
            Some(name) => format!("{}:{}/{name}", options.get_host(), options.get_port()),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => return Err(db(refusal.explain(at, options.get_host(), source))),
            Err(_) => return Err(db(OpenError::NoAnswer { at })),
        };
        migrate(&mut conn).await.map_err(|e| db(OpenError::Migrate(e)))?;
        // Closing politely only spares the server a log line; the schema is committed.
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PostgresStore { pool })
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The TLS settings a refused certificate is explained by.
struct Refusal {
    /// The setting that chose the TLS mode, as written.
    mode: String,
    /// `storage.postgres_ca_file`.
    ca_file: Option<PathBuf>,
}

impl Refusal {
    /// Tells a certificate refused by the handshake apart from other connection failures.
    fn explain(&self, at: String, host: &str, source: sqlx::Error) -> OpenError {
        use crate::tls::CertificateRefusal as R;
        let Some(refused) = crate::tls::certificate_refusal(&source) else {
            return OpenError::Connect { at, source };
        };
        match refused {
            R::Untrusted(source) => {
                let advice = match &self.ca_file {
                    Some(path) => format!(
                        "no CA in storage.postgres_ca_file (`{}`) nor any public web CA signed it",
                        path.display()
                    ),
                    None => {
                        "no public web CA signed it: set storage.postgres_ca_file to the CA that did".into()
                    }
                };
                OpenError::Untrusted { at, advice, source }
            }
            R::NameMismatch(source) => {
                OpenError::NameMismatch { at, host: host.to_owned(), mode: self.mode.clone(), source }
            }
            R::Other(source) => OpenError::Certificate { at, source },
        }
    }
}

/// Applies the migrations not yet recorded, all in one transaction under a transaction-level
/// advisory lock: a replica starting alongside waits, then finds them recorded, and a failure
/// leaves neither a half-applied migration nor a lock behind.
async fn migrate(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS deskgate_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM deskgate_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO deskgate_migrations (version, applied_at) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
        )
        .bind(version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
