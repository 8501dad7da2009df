//! Refreshes through the queue at scale: two worker pools over ten thousand connections, each
//! refreshed exactly once, never two refreshes of one connection at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use feedwatch::jobs::worker::{PoolConfig, Registration, WorkerPool};

use crate::support::TestApp;

/// A provider that answers at once with one account and one transaction, and notices if two
/// refreshes of one connection ever overlap.
struct FakeBank {
    active: std::sync::Mutex<std::collections::HashSet<String>>,
    overlaps: AtomicUsize,
}

impl feedwatch::provider::FeedProvider for FakeBank {
    async fn fetch(
        &self,
        request: &feedwatch::provider::FetchRequest<'_>,
    ) -> Result<feedwatch::provider::FeedData, feedwatch::provider::ProviderError> {
        use feedwatch::provider::{AccountFeed, AccountKind, FeedAccount, FeedData, FeedTransaction};
        let who = request.credentials.user_id.clone();
        if !self.active.lock().unwrap().insert(who.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        tokio::task::yield_now().await;
        self.active.lock().unwrap().remove(&who);
        let account = FeedAccount {
            id: "1".into(),
            kind: AccountKind::Checking,
            name: "Checking".into(),
            description: None,
            masked_number: "1".into(),
            currency: Some("USD".into()),
            ledger_balance: None,
            available_balance: None,
        };
        let transaction = FeedTransaction {
            fitid: "t1".into(),
            posted: request.now,
            amount: "1.00".parse().unwrap(),
            name: None,
            memo: None,
            check_number: None,
            currency: None,
            pending: false,
            replaces_fitid: None,
        };
        Ok(FeedData { accounts: vec![AccountFeed { account, transactions: vec![transaction], error: None }] })
    }
}

#[tokio::test]
async fn two_worker_pools_refresh_ten_thousand_connections_each_exactly_once() {
    use feedwatch::refresh::{self, RefreshHandler, Refresher};
    const CONNECTIONS: usize = 10_000;
    let app = TestApp::spawn().await;
    let institution = app.institution("fake-bank").await;
    let sealer = crate::support::sealer();
    let tenant = uuid::Uuid::new_v4();
    let mut ids = Vec::with_capacity(CONNECTIONS);
    let mut blobs = Vec::with_capacity(CONNECTIONS);
    for index in 0..CONNECTIONS {
        let id = uuid::Uuid::new_v4();
        let credentials = feedwatch::connection::Credentials {
            user_id: format!("user{index}"),
            password: "p".into(),
            extra: Default::default(),
        };
        blobs.push(sealer.seal(id, &credentials).unwrap().0);
        ids.push(id);
    }
    sqlx::query(
        "insert into connection (id, tenant_id, institution_id, display_name, credentials_sealed, credentials_key_id)
         select id, $2, $3, 'fake', blob, 'test' from unnest($1::uuid[], $4::bytea[]) as t(id, blob)",
    )
    .bind(&ids)
    .bind(tenant)
    .bind(institution)
    .bind(&blobs)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("update institution set ofx_url = 'http://fake.invalid/ofx', provider = 'ofx' where id = $1")
        .bind(institution)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    for id in &ids {
        refresh::enqueue(&mut tx, *id, refresh::Trigger::Bulk).await.unwrap();
    }
    tx.commit().await.unwrap();

    let bank = Arc::new(FakeBank { active: Default::default(), overlaps: AtomicUsize::new(0) });
    let make_pool = |name: &str| {
        let refresher = Refresher {
            pool: app.pool.clone(),
            sealer: Arc::new(crate::support::sealer()),
            provider: SharedBank(bank.clone()),
            catalog: app.instance().catalog.clone(),
            sandbox_url: None,
            incidents: feedwatch::incident::Rules::default(),
            metrics: feedwatch::telemetry::Metrics::new(),
            bulkheads: feedwatch::refresh::bulkhead::Bulkheads::new(8),
            stalls: feedwatch::feed::stall::Rules::default(),
            reader: refresh::Reader::default(),
            writer: refresh::Writer::default(),
        };
        let registration = Registration {
            handler: Arc::new(RefreshHandler(Arc::new(refresher))),
            timeout: Duration::from_secs(30),
            backoff: refresh::BACKOFF,
        };
        let mut config = PoolConfig::new(8);
        config.worker_id = name.to_owned();
        Arc::new(WorkerPool::new(app.pool.clone(), config).register(refresh::KIND, registration))
    };
    let (first, second) = (make_pool("pool-a"), make_pool("pool-b"));
    let (ran_a, ran_b) = tokio::join!(first.run_until_idle(), second.run_until_idle());
    assert_eq!(ran_a + ran_b, CONNECTIONS, "each job claimed once across both pools");
    assert!(ran_a > 0 && ran_b > 0, "both pools worked: {ran_a} + {ran_b}");
    assert_eq!(bank.overlaps.load(Ordering::SeqCst), 0, "no connection refreshed twice at once");
    let (succeeded, attempts): (i64, i64) =
        sqlx::query_as("select count(*) filter (where state = 'succeeded'), sum(attempt) from job")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (succeeded, attempts),
        (CONNECTIONS as i64, CONNECTIONS as i64),
        "every job succeeded on its first attempt"
    );
    let per_connection: Vec<i64> = sqlx::query_scalar(
        "select count(*) from connection_event where kind = 'refresh.succeeded' group by connection_id having count(*) <> 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(per_connection.is_empty(), "exactly one recorded success per connection");
}

/// The pools share one fake bank, so overlaps across pools are seen too.
struct SharedBank(Arc<FakeBank>);

impl feedwatch::provider::FeedProvider for SharedBank {
    async fn fetch(
        &self,
        request: &feedwatch::provider::FetchRequest<'_>,
    ) -> Result<feedwatch::provider::FeedData, feedwatch::provider::ProviderError> {
        self.0.fetch(request).await
    }
}
