//! What the projection runner's integration tests share.
// Each test binary uses a part of what is here.
#![allow(dead_code, unused_macros)]

/// Runs each listed `async fn(ScratchDb)` once per backend, as
/// `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(textbank_testkit::ScratchDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = textbank_testkit::ScratchDb::postgres(stringify!($name)).await;
                    let Some(db) = db else { return };
                    super::$name(db).await;
                }
            )*
        }
    };
}

use std::collections::BTreeMap;

use chrono::NaiveTime;
use serde_json::json;
use textbank_domain::campaign::{CampaignEvent, Question};
use textbank_domain::list::{Contact, ListEvent, Provenance};
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::texting_hours::TextingWindow;
use textbank_domain::timezone::ContactZone;
use textbank_domain::{Actor, CampaignId, EventMetadata, ListId, OrgId, StreamId};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, SqlEventStore};

/// Appends `n` events of `event_type`, numbered in their data, to `stream`.
pub async fn append(store: &SqlEventStore, stream: &str, event_type: &str, n: u64) {
    let events = (0..n)
        .map(|i| {
            let metadata = EventMetadata::new(None, Actor::System);
            NewEvent::new(event_type, json!({"i": i}), metadata)
        })
        .collect();
    let stream = StreamId::parse(stream).expect("a stream id");
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("append");
}

/// Checks `done` every 20 ms, `tries` times at most; whether it came true.
pub async fn eventually(tries: u32, mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..tries {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// The `i`th test phone number, +1 555-201-iiii.
pub fn phone(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1555201{i:04}"), Region::US).unwrap()
}

/// A list's complete import: one contact per phone number index, on lines
/// 2 onwards, `per_event` contacts per `ContactsImported`.
pub fn list_events(
    list: ListId,
    org: OrgId,
    phones: impl IntoIterator<Item = usize>,
    per_event: usize,
) -> Vec<ListEvent> {
    let contacts: Vec<Contact> = phones
        .into_iter()
        .enumerate()
        .map(|(row, i)| Contact {
            line: row as u64 + 2,
            phone: phone(i).as_str().to_owned(),
            first_name: format!("Voter{i}"),
            last_name: String::new(),
            zip: String::new(),
            external_id: String::new(),
            zone: ContactZone::UNKNOWN,
            fields: BTreeMap::new(),
        })
        .collect();
    let mut events = vec![ListEvent::ListUploadStarted {
        list_id: list,
        org_id: org,
        provenance: Box::new(Provenance {
            name: "Precinct".into(),
            source: "voter file".into(),
            consent_basis: "opted in".into(),
            uploaded_by: Actor::System,
            file_sha256: "0".repeat(64),
            file_bytes: 1,
        }),
        columns: vec!["cell".into()],
        phone_column: "cell".into(),
        custom_fields: Vec::new(),
    }];
    events.extend(
        contacts
            .chunks(per_event)
            .map(|chunk| ListEvent::ContactsImported {
                contacts: chunk.to_vec(),
            }),
    );
    events.push(ListEvent::ListImportCompleted {
        rows: contacts.len() as u64,
        imported: contacts.len() as u64,
        rejected: BTreeMap::new(),
    });
    events
}

pub fn created(campaign: CampaignId, org: OrgId, name: &str) -> Vec<CampaignEvent> {
    vec![
        CampaignEvent::CampaignCreated {
            campaign_id: campaign,
            org_id: org,
            name: name.into(),
            questions: vec![Question {
                id: "support".into(),
                text: "Supports?".into(),
                answers: vec!["yes".into(), "no".into(), "maybe".into()],
            }],
            texting_hours: TextingWindow::new(
                NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            )
            .unwrap(),
            assignment_batch_size: 100,
            batch_rules: Default::default(),
            copied_from: None,
        },
        CampaignEvent::ScriptRevised {
            version: 1,
            initial_message: "Hi {first_name}".into(),
            canned_responses: Vec::new(),
        },
    ]
}
