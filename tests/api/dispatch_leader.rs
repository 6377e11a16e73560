//! Two servers on one PostgreSQL database, their connections ended by the
//! server under load: one dispatcher leads at a time, a former leader's late
//! start is refused, nothing is marked "maybe sent" falsely and the
//! per-number send rate holds.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Connection;
use textbank_domain::DomainEvent;
use textbank_domain::recipient::RecipientEvent;
use textbank_store::{Database, EventStore};

use crate::helpers::{On, TestApp, click_tokens, spawn_send_app};

/// As many as one queue request hands out.
const CONTACTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_whose_connections_are_cut_under_load_dispatch_under_one_leader() {
    let Some(first) = spawn_send_app(On::Postgres, "two_dispatchers").await else {
        return;
    };
    let fixture = first.send_fixture(CONTACTS).await;
    // Both servers open the database from its URL under names of their own.
    let first = first_named(first).await;
    let second = first.another_server("tb_dispatch_b").await;
    // The fixed clock walks on in real time: starts get their own times.
    let ticking = {
        let clock = first.clock.clone().expect("a fixed clock");
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                clock.advance(chrono::Duration::milliseconds(50));
            }
        })
    };
    let tokens = click_tokens(&first.queue(&fixture, CONTACTS as u32).await);
    assert_eq!(tokens.len(), CONTACTS);
    let mut acknowledged = 0;
    for (n, token) in tokens.iter().enumerate() {
        if n == CONTACTS / 3 || n == 2 * CONTACTS / 3 {
            end_connections(&first).await;
        }
        // Alternate servers, as a load balancer would.
        let address = if n % 2 == 0 {
            first.address.clone()
        } else {
            format!("http://{}", second.address())
        };
        let response = first
            .client
            .post(format!("{address}/v1/messages"))
            .bearer_auth(&fixture.texter)
            .header("idempotency-key", format!("click-{n}"))
            .json(&serde_json::json!({"click_token": token, "clicked_at": first.now()}))
            .send()
            .await
            .expect("request");
        // 202: the click is recorded; a refusal or an outage is not.
        match response.status().as_u16() {
            202 => acknowledged += 1,
            422 => panic!("a click refused: {}", response.text().await.unwrap()),
            _ => {}
        }
    }
    assert!(acknowledged >= CONTACTS / 2, "{acknowledged} acknowledged");
    let events = settled(first.app.events(), acknowledged).await;

    let mut starts = Vec::new();
    let mut starts_by_number: HashMap<String, Vec<_>> = HashMap::new();
    let mut outcomes: HashMap<_, Vec<&str>> = HashMap::new();
    for (position, at, event) in &events {
        match event {
            RecipientEvent::MessageDispatchStarted {
                message_id,
                leader_term,
                from,
                ..
            } => {
                starts.push((*position, *at, leader_term.expect("a term")));
                starts_by_number
                    .entry(from.clone().unwrap_or_default())
                    .or_default()
                    .push(*at);
                outcomes.entry(*message_id).or_default().push("started");
            }
            RecipientEvent::MessageSubmitted { message_id, .. } => {
                outcomes.entry(*message_id).or_default().push("submitted");
            }
            RecipientEvent::MessageSubmitUnknown { message_id, .. } => {
                outcomes.entry(*message_id).or_default().push("unknown");
            }
            _ => {}
        }
    }
    assert_eq!(outcomes.len(), acknowledged);
    for (message, steps) in &outcomes {
        assert_eq!(steps, &["started", "submitted"], "{message}");
    }
    // One leader at a time: in log order, a start never comes from an
    // older term than one before it.
    assert!(
        starts.windows(2).all(|pair| pair[0].2 <= pair[1].2),
        "terms out of order: {:?}",
        starts.iter().map(|start| start.2).collect::<Vec<_>>()
    );
    assert!(
        starts.last().expect("starts").2 > starts[0].2,
        "the cut connections handed the lead to a new term"
    );
    // The per-number rate (10 a second, a burst of 1) held: no two-second
    // window saw more than 2 × 10 + 1 starts, with one of slack for commit
    // timing.
    for (number, times) in &starts_by_number {
        for (i, at) in times.iter().enumerate() {
            let within = times[i..]
                .iter()
                .take_while(|later| **later - *at < chrono::Duration::seconds(2))
                .count();
            assert!(within <= 22, "{number}: {within} starts within 2 s of {at}");
        }
    }
    ticking.abort();
    second.shutdown().await.expect("the second server stops");
    first.stop().await;
}

/// The first server restarted on its database's URL under a name of its own.
async fn first_named(app: TestApp) -> TestApp {
    app.restart_named("tb_dispatch_a").await
}

/// Ends every connection both servers hold, as a database failover or
/// `pg_terminate_backend` by an operator would (the dispatch lock's too).
async fn end_connections(app: &TestApp) {
    let Database::Postgres(pool) = app.app.database() else {
        unreachable!("a PostgreSQL test")
    };
    let mut admin = sqlx::postgres::PgConnection::connect_with(&pool.connect_options())
        .await
        .expect("an admin connection");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name IN ('tb_dispatch_a', 'tb_dispatch_b')
            AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert!(!ended.is_empty(), "the servers' connections were found");
}

/// The recipient events of the log once every acknowledged click has an
/// outcome, with their positions and recorded times.
async fn settled(store: &dyn EventStore, acknowledged: usize) -> Vec<RecipientRecord> {
    for _ in 0..300 {
        let finished = recipient_events(store)
            .await
            .iter()
            .filter(|(_, _, event)| {
                matches!(
                    event,
                    RecipientEvent::MessageSubmitted { .. }
                        | RecipientEvent::MessageSubmitUnknown { .. }
                )
            })
            .count();
        if finished >= acknowledged {
            // A little longer, so that a second outcome would show too.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return recipient_events(store).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the acknowledged clicks were never all dispatched");
}

type RecipientRecord = (u64, chrono::DateTime<chrono::Utc>, RecipientEvent);

async fn recipient_events(store: &dyn EventStore) -> Vec<RecipientRecord> {
    let mut events = Vec::new();
    let mut from = 1;
    loop {
        let page = store.read_all(from, 1000).await.expect("read the log");
        let Some(end) = page.last().map(|event| event.position) else {
            return events;
        };
        for event in page {
            if let Ok(Some(parsed)) = RecipientEvent::from_parts(&event.event_type, &event.data) {
                events.push((event.position, event.recorded_at, parsed));
            }
        }
        from = end + 1;
    }
}
