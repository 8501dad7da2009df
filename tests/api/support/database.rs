//! The PostgreSQL server every test database lives on: DATABASE_URL's when set, else a throwaway
//! private cluster started once for the whole test binary, and a migrated template that each
//! test's database copies.

use std::sync::OnceLock;

use feedwatch::devdb::{Durability, LocalPostgres};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};

/// The PostgreSQL server the tests use, and the migrated template each test database copies.
struct Server {
    /// A URL of the server's maintenance database (it carries the password).
    url: String,
    maintenance: PgConnectOptions,
    template: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        // A thread of its own owns the server: it outlives every test's runtime and, when the
        // test process exits, its end of the supervisor's pipe closes and the cluster stops.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let (url, _cluster) = match std::env::var("DATABASE_URL") {
                    Ok(url) => (url, None),
                    Err(_) => {
                        let dir = std::env::temp_dir().join(format!("feedwatch-test-{}", std::process::id()));
                        let cluster = LocalPostgres::start(&dir.join("data"), Durability::Throwaway)
                            .await
                            .expect("starting a throwaway PostgreSQL for the tests");
                        (cluster.url().to_owned(), Some(cluster))
                    }
                };
                let options: PgConnectOptions = url.parse().expect("DATABASE_URL parses");
                let maintenance = options.database("postgres");
                let template = prepare_template(&maintenance).await;
                let url = with_database(&url, "postgres");
                sender.send(Server { url, maintenance, template }).unwrap();
                std::future::pending::<()>().await;
            });
        });
        receiver.recv().expect("the test database server started")
    })
}

/// Creates (once per migration set) a migrated database to copy for each test.
async fn prepare_template(maintenance: &PgConnectOptions) -> String {
    let fingerprint: u64 = feedwatch::database::MIGRATOR
        .iter()
        .flat_map(|migration| migration.checksum.iter().copied())
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3));
    let name = format!("feedwatch_template_{fingerprint:016x}");
    let mut conn = PgConnection::connect_with(maintenance).await.unwrap();
    // Several test processes may share one server: only one builds the template.
    conn.execute("select pg_advisory_lock(7262)").await.unwrap();
    let exists: bool = sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if !exists {
        conn.execute(format!("create database {name}").as_str()).await.unwrap();
        let pool = PgPool::connect_with(maintenance.clone().database(&name)).await.unwrap();
        feedwatch::database::migrate(&pool).await.unwrap();
        pool.close().await;
    }
    conn.execute("select pg_advisory_unlock(7262)").await.unwrap();
    name
}

/// A fresh database for one test: its connection options, name and URL.
pub async fn fresh_database() -> (PgConnectOptions, String, String) {
    let server = server();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect_with(&server.maintenance).await.unwrap();
    conn.execute(format!("create database {name} template {}", server.template).as_str()).await.unwrap();
    (server.maintenance.clone().database(&name), name.clone(), with_database(&server.url, &name))
}

/// The maintenance database's options, for tests that administer the server.
pub fn maintenance() -> PgConnectOptions {
    server().maintenance.clone()
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_end = base.find("://").map_or(0, |index| index + 3);
    let host_part = match base[authority_end..].find('/') {
        Some(index) => &base[..authority_end + index],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{database}?{query}"),
        None => format!("{host_part}/{database}"),
    }
}
