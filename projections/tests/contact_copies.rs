//! Large lists reach their campaign through deferred copies: attaching them
//! copies nothing at once, the copier moves a range of lines per step until
//! every contact is in place (the first list winning a shared phone), and a
//! replay that meets an assignment or a launch right behind the attachment
//! finishes the copy first.

#[macro_use]
mod common;

use common::phone;

use textbank_domain::campaign::{self, CampaignEvent};
use textbank_domain::list::{self};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::{Actor, CampaignId, DomainEvent, EventMetadata, ListId, MemberId, OrgId};
use textbank_projections::campaign_metrics::CampaignMetrics;
use textbank_projections::campaigns::Campaigns;
use textbank_projections::catch_up;
use textbank_projections::contact_copies::{
    self, COPY_CHUNK_LINES, ContactCopyProgress, CopyStep, INLINE_COPY_LINES,
};
use textbank_projections::lists::Lists;
use textbank_store::{Database, EventStore, ExpectedVersion, NewEvent, SqlEventStore, on_reader};
use textbank_testkit::ScratchDb;
use uuid::Uuid;

on_both_backends!(
    a_large_attachment_is_copied_a_range_at_a_time_first_list_winning,
    a_replay_finishes_the_copy_before_an_assignment_or_a_launch,
    a_small_attachment_is_copied_at_once,
);

/// List A: phones 0..3000; list B: phones 2000..6000 (1,000 shared). Lines
/// start at 2, after the header, so their last lines add up to 7,002.
const A: std::ops::Range<usize> = 0..3_000;
const B: std::ops::Range<usize> = 2_000..6_000;
const UNION: i64 = 6_000;
// The fixture must be over the inline limit.
const _: () = assert!(7_002 > INLINE_COPY_LINES);

struct Fixture {
    store: SqlEventStore,
    org: OrgId,
    lists: [ListId; 2],
    campaign: CampaignId,
}

impl Fixture {
    async fn new(db: &ScratchDb, phones: [std::ops::Range<usize>; 2]) -> Self {
        let store = SqlEventStore::on_database(db.database.clone())
            .await
            .unwrap();
        let org = OrgId::new();
        let lists = [ListId::new(), ListId::new()];
        for (list, phones) in lists.iter().zip(phones) {
            let events = common::list_events(*list, org, phones, 1_000);
            append(&store, org, &list::stream_id(*list), &events).await;
        }
        Self {
            store,
            org,
            lists,
            campaign: CampaignId::new(),
        }
    }

    async fn campaign(&self, events: &[CampaignEvent]) {
        let mut all = common::created(self.campaign, self.org, "Big");
        all.push(CampaignEvent::ListsAttached {
            list_ids: self.lists.to_vec(),
        });
        all.extend_from_slice(events);
        append(
            &self.store,
            self.org,
            &campaign::stream_id(self.campaign),
            &all,
        )
        .await;
        catch_up(&self.store, &Lists).await.unwrap();
        catch_up(&self.store, &Campaigns).await.unwrap();
        catch_up(&self.store, &CampaignMetrics::live())
            .await
            .unwrap();
    }

    fn db(&self) -> &Database {
        self.store.database()
    }

    async fn contacts(&self) -> i64 {
        count(
            self.db(),
            "SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = $1",
            self.campaign,
        )
        .await
    }

    async fn metrics_contacts(&self) -> i64 {
        count(
            self.db(),
            "SELECT contacts FROM campaign_metrics_campaigns WHERE campaign_id = $1",
            self.campaign,
        )
        .await
    }

    async fn progress(&self) -> Option<ContactCopyProgress> {
        contact_copies::progress(self.db(), self.campaign)
            .await
            .unwrap()
    }

    /// The list whose row the campaign kept for `phone`, and its texter.
    async fn row(&self, phone: &PhoneNumber) -> (Uuid, Option<Uuid>) {
        on_reader!(self.db(), |pool| {
            sqlx::query_as(
                "SELECT list_id, texter_id FROM campaign_contacts WHERE campaign_id = $1 AND phone = $2",
            )
            .bind(Uuid::from(self.campaign))
            .bind(phone.as_str())
            .fetch_one(pool)
            .await
            .unwrap()
        })
    }
}

async fn a_large_attachment_is_copied_a_range_at_a_time_first_list_winning(db: ScratchDb) {
    let fixture = Fixture::new(&db, [A, B]).await;
    fixture.campaign(&[]).await;
    assert_eq!(
        fixture.contacts().await,
        0,
        "nothing is copied while the event applies"
    );
    assert_eq!(
        fixture.progress().await,
        Some(ContactCopyProgress {
            lines_copied: 0,
            lines_total: 7_002
        })
    );

    // The first step stops at list A's end: B waits until A is complete.
    let step = contact_copies::copy_next(&fixture.store, fixture.db())
        .await
        .unwrap();
    assert_eq!(
        step,
        CopyStep::Copied {
            campaign: fixture.campaign,
            lines: 3_001
        }
    );
    assert_eq!(fixture.contacts().await, 3_000);
    assert_eq!(
        fixture.progress().await,
        Some(ContactCopyProgress {
            lines_copied: 3_001,
            lines_total: 7_002
        })
    );
    let mut steps = 1;
    while contact_copies::copy_next(&fixture.store, fixture.db())
        .await
        .unwrap()
        != CopyStep::Idle
    {
        steps += 1;
        assert!(steps < 10, "the copy must end");
    }
    assert!(steps as i64 >= 7_002 / COPY_CHUNK_LINES, "{steps} steps");
    assert_eq!(fixture.progress().await, None, "every contact is in place");
    assert_eq!(fixture.contacts().await, UNION);
    let (list, _) = fixture.row(&phone(2_500)).await;
    assert_eq!(
        list,
        Uuid::from(fixture.lists[0]),
        "the first list wins a shared phone"
    );
    let (list, _) = fixture.row(&phone(5_999)).await;
    assert_eq!(list, Uuid::from(fixture.lists[1]));
    assert_eq!(
        fixture.metrics_contacts().await,
        UNION,
        "the metrics count the whole campaign"
    );
    assert!(!contact_copies::any_pending(fixture.db()).await.unwrap());
    db.cleanup().await;
}

async fn a_replay_finishes_the_copy_before_an_assignment_or_a_launch(db: ScratchDb) {
    let fixture = Fixture::new(&db, [A, B]).await;
    let texter = MemberId::new();
    // Phones from the end of list B, the last lines the copier would reach.
    let late = vec![phone(5_999), phone(5_998)];
    fixture
        .campaign(&[
            CampaignEvent::ContactsAssigned {
                texter_id: texter,
                phones: late.clone(),
            },
            CampaignEvent::CampaignLaunched {},
        ])
        .await;
    assert_eq!(fixture.progress().await, None);
    assert_eq!(fixture.contacts().await, UNION);
    for phone in &late {
        assert_eq!(
            fixture.row(phone).await.1,
            Some(Uuid::from(texter)),
            "{phone} kept its texter"
        );
    }
    assert_eq!(
        contact_copies::copy_next(&fixture.store, fixture.db())
            .await
            .unwrap(),
        CopyStep::Idle
    );
    db.cleanup().await;
}

async fn a_small_attachment_is_copied_at_once(db: ScratchDb) {
    let fixture = Fixture::new(&db, [0..100, 50..150]).await;
    fixture.campaign(&[]).await;
    assert_eq!(fixture.progress().await, None);
    assert_eq!(fixture.contacts().await, 150);
    assert_eq!(fixture.metrics_contacts().await, 150);
    db.cleanup().await;
}

async fn count(db: &Database, sql: &'static str, campaign: CampaignId) -> i64 {
    on_reader!(db, |pool| {
        sqlx::query_scalar(sql)
            .bind(Uuid::from(campaign))
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

async fn append<E: DomainEvent>(
    store: &SqlEventStore,
    org: OrgId,
    stream: &textbank_domain::StreamId,
    events: &[E],
) {
    let metadata = EventMetadata::new(Some(org), Actor::System);
    let events = events
        .iter()
        .map(|event| {
            let (event_type, data) = event.to_parts().unwrap();
            NewEvent::new(event_type, data, metadata.clone())
        })
        .collect();
    store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}
