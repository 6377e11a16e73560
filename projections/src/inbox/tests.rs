//! The inbox fold gives the same rows however the log is cut into batches
//! (a conversation's messages, reads and opt-outs often straddle two), on
//! both engines.

use chrono::Utc;
use textbank_domain::keywords::Keyword;
use textbank_domain::message::{AutoReplyKind, MessageKind};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, ConversationRef, OptOutSource, RecipientEvent};
use textbank_domain::texter::{self, TexterEvent};
use textbank_domain::{
    Actor, ApiKeyId, CampaignId, ConversationId, DomainEvent, EventMetadata, MemberId, MessageId,
    OrgId, StreamId,
};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, SqlEventStore};
use textbank_testkit::ScratchDb;

use super::*;
use crate::batch::OwnedBatch;

struct World {
    org: OrgId,
    texter: MemberId,
    campaign: CampaignId,
}

impl World {
    fn metadata(&self) -> EventMetadata {
        EventMetadata::new(
            Some(self.org),
            Actor::ApiKey {
                key_id: ApiKeyId::new(),
                member_id: Some(self.texter),
            },
        )
    }

    fn conversation(&self, id: ConversationId) -> ConversationRef {
        ConversationRef {
            conversation_id: id,
            campaign_id: self.campaign,
            texter_id: self.texter,
        }
    }

    fn click(
        &self,
        conversation: ConversationId,
        phone: &PhoneNumber,
        kind: MessageKind,
        body: &str,
    ) -> RecipientEvent {
        let mut record =
            textbank_domain::testing::click_record(self.texter, phone, kind, body, Utc::now());
        record.conversation_id = conversation;
        record.campaign_id = self.campaign;
        record.script_version = None;
        RecipientEvent::MessageSendClicked(Box::new(record))
    }

    fn reply(
        &self,
        conversation: ConversationId,
        phone: &PhoneNumber,
        body: &str,
        keyword: Option<Keyword>,
    ) -> RecipientEvent {
        RecipientEvent::ReplyReceived {
            message_id: MessageId::new(),
            carrier: "sim".into(),
            carrier_message_id: format!("SM{}", uuid::Uuid::now_v7().simple()),
            phone: phone.clone(),
            to: "+15550000000".into(),
            body: body.into(),
            conversation: Some(self.conversation(conversation)),
            keyword,
        }
    }

    fn confirmation(&self, conversation: ConversationId, phone: &PhoneNumber) -> RecipientEvent {
        RecipientEvent::AutoReplyQueued {
            message_id: MessageId::new(),
            kind: AutoReplyKind::OptOutConfirmation,
            phone: phone.clone(),
            body: "You are unsubscribed.".into(),
            in_reply_to: None,
            conversation: Some(self.conversation(conversation)),
        }
    }

    fn read(&self, conversation: ConversationId, phone: &PhoneNumber) -> TexterEvent {
        TexterEvent::ConversationRead {
            conversation: self.conversation(conversation),
            phone: phone.clone(),
        }
    }
}

async fn append<E: DomainEvent>(store: &SqlEventStore, stream: &StreamId, event: E, world: &World) {
    let (event_type, data) = event.to_parts().unwrap();
    store
        .append(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, data, world.metadata())],
        )
        .await
        .unwrap();
}

/// Three conversations: A answered, read, answered again and replied to;
/// B stopped and was read; C stopped, came back and wrote again.
async fn write_log(store: &SqlEventStore, world: &World) -> [ConversationId; 3] {
    let phones = ["+15552010001", "+15552010002", "+15552010003"]
        .map(|phone| PhoneNumber::from_e164(phone).unwrap());
    let [a, b, c] = [(); 3].map(|()| ConversationId::new());
    let stream = |phone: &PhoneNumber| recipient::stream_id(world.org, phone);
    let texter_stream = texter::stream_id(world.org, world.texter);
    let (pa, pb, pc) = (&phones[0], &phones[1], &phones[2]);
    for (id, phone) in [(a, pa), (b, pb), (c, pc)] {
        append(
            store,
            &stream(phone),
            world.click(id, phone, MessageKind::Initial, "Hi, will you vote?"),
            world,
        )
        .await;
    }
    append(store, &stream(pa), world.reply(a, pa, "hi", None), world).await;
    append(
        store,
        &stream(pa),
        world.reply(a, pa, "hello?", None),
        world,
    )
    .await;
    append(store, &texter_stream, world.read(a, pa), world).await;
    append(
        store,
        &stream(pa),
        world.reply(a, pa, "still there?", None),
        world,
    )
    .await;
    append(
        store,
        &stream(pa),
        world.click(a, pa, MessageKind::Reply, "Yes! Sorry."),
        world,
    )
    .await;

    append(
        store,
        &stream(pb),
        world.reply(b, pb, "STOP", Some(Keyword::OptOut)),
        world,
    )
    .await;
    let opt_out = RecipientEvent::OptOutRecorded {
        phone: pb.clone(),
        source: OptOutSource::KeywordReply,
        keyword: Some("STOP".into()),
        conversation: Some(world.conversation(b)),
    };
    append(store, &stream(pb), opt_out, world).await;
    append(store, &stream(pb), world.confirmation(b, pb), world).await;
    append(store, &texter_stream, world.read(b, pb), world).await;

    append(
        store,
        &stream(pc),
        world.reply(c, pc, "stop", Some(Keyword::OptOut)),
        world,
    )
    .await;
    let opt_out = RecipientEvent::OptOutRecorded {
        phone: pc.clone(),
        source: OptOutSource::KeywordReply,
        keyword: Some("STOP".into()),
        conversation: Some(world.conversation(c)),
    };
    append(store, &stream(pc), opt_out, world).await;
    let opt_in = RecipientEvent::OptInRecorded {
        phone: pc.clone(),
        source: OptOutSource::KeywordReply,
    };
    append(store, &stream(pc), opt_in, world).await;
    append(
        store,
        &stream(pc),
        world.reply(c, pc, "ok, what is it?", None),
        world,
    )
    .await;

    // B is tagged twice, loses one tag and is escalated; A goes to another
    // texter and comes back.
    let tag = |name: &str, n: u128, applied: bool| {
        let (conversation, tag_id, name) =
            (world.conversation(b), uuid::Uuid::from_u128(n), name.into());
        if applied {
            RecipientEvent::TagApplied {
                conversation,
                tag_id,
                name,
                by: None,
            }
        } else {
            RecipientEvent::TagRemoved {
                conversation,
                tag_id,
                name,
                by: None,
            }
        }
    };
    for event in [
        tag("Press", 1, true),
        tag("Callback", 2, true),
        tag("Callback", 2, false),
    ] {
        append(store, &stream(pb), event, world).await;
    }
    let escalated = RecipientEvent::ConversationEscalated {
        conversation: world.conversation(b),
        reason: "a reporter".into(),
        tag_id: None,
        by: None,
    };
    append(store, &stream(pb), escalated, world).await;
    let other = MemberId::from_uuid(uuid::Uuid::from_u128(9));
    let away = RecipientEvent::ConversationReassigned {
        conversation: ConversationRef {
            texter_id: other,
            ..world.conversation(a)
        },
        from: Some(world.texter),
        by: None,
    };
    append(store, &stream(pa), away, world).await;
    let back = RecipientEvent::ConversationReassigned {
        conversation: world.conversation(a),
        from: Some(other),
        by: None,
    };
    append(store, &stream(pa), back, world).await;
    [a, b, c]
}

/// (conversation, holder, previous texter, escalation reason, tag names)
type Handled = (
    ConversationId,
    Holder,
    Option<MemberId>,
    Option<String>,
    Vec<String>,
);

/// The first page of the world's texter's inbox.
async fn texter_rows(db: &textbank_store::Database, world: &World) -> Vec<InboxConversation> {
    let filter = InboxFilter {
        org: world.org,
        texter: Some(world.texter),
        campaign: None,
        needs_reply: false,
        holder: None,
        tag: None,
        with_lost: false,
        review: Default::default(),
    };
    page(db, &filter, None, 10).await.unwrap()
}

async fn handled(db: &textbank_store::Database, world: &World) -> Vec<Handled> {
    texter_rows(db, world)
        .await
        .into_iter()
        .map(|row| {
            (
                row.conversation_id,
                row.holder,
                row.previous_texter_id,
                row.escalation_reason,
                row.tags.into_iter().map(|tag| tag.name).collect(),
            )
        })
        .collect()
}

/// (conversation, last body, direction, needs reply, unread, opted out)
type Summary = (ConversationId, String, String, bool, u64, bool);

async fn summary(db: &textbank_store::Database, world: &World) -> Vec<Summary> {
    texter_rows(db, world)
        .await
        .into_iter()
        .map(|row| {
            (
                row.conversation_id,
                row.last_message.body,
                row.last_message.direction,
                row.needs_reply,
                row.unread_count,
                row.opted_out,
            )
        })
        .collect()
}

/// Applies the whole log to `projector` in batches of `size`.
async fn apply_in_batches(store: &SqlEventStore, projector: &Inbox, size: usize) {
    let events = store.read_all(1, 10_000).await.unwrap();
    for chunk in events.chunks(size) {
        let batch = OwnedBatch::new(chunk.to_vec());
        let mut tx = store.begin().await.unwrap();
        projector.apply(&mut tx, batch.all()).await.unwrap();
        tx.commit().await.unwrap();
    }
}

async fn same_rows_however_the_log_is_cut(db: ScratchDb) {
    let store = SqlEventStore::on_database(db.database.clone())
        .await
        .unwrap();
    let world = World {
        org: OrgId::new(),
        texter: MemberId::new(),
        campaign: CampaignId::new(),
    };
    let [a, b, c] = write_log(&store, &world).await;
    let expected: Vec<Summary> = vec![
        (
            c,
            "ok, what is it?".into(),
            "inbound".into(),
            true,
            2,
            false,
        ),
        (
            b,
            "You are unsubscribed.".into(),
            "outbound".into(),
            false,
            0,
            true,
        ),
        (a, "Yes! Sorry.".into(), "outbound".into(), false, 1, false),
    ];
    let events = store.read_all(1, 10_000).await.unwrap().len();
    for size in [1, 2, 3, 5, events] {
        let mut tx = store.begin().await.unwrap();
        textbank_store::on_tx!(&mut tx, |conn| {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {TABLE}")))
                .execute(conn)
                .await
                .map(|_| ())
                .unwrap()
        });
        tx.commit().await.unwrap();
        apply_in_batches(&store, &Inbox::live(), size).await;
        assert_eq!(
            summary(&db.database, &world).await,
            expected,
            "batches of {size}"
        );
        let other = MemberId::from_uuid(uuid::Uuid::from_u128(9));
        assert_eq!(
            handled(&db.database, &world).await,
            [
                (c, Holder::Texter, None, None, vec![]),
                (
                    b,
                    Holder::Escalated,
                    Some(world.texter),
                    Some("a reporter".into()),
                    vec!["Press".into()]
                ),
                (a, Holder::Texter, Some(other), None, vec![]),
            ],
            "batches of {size}"
        );
    }
    db.cleanup().await;
}

#[tokio::test]
async fn the_fold_is_the_same_however_the_log_is_cut_on_sqlite() {
    same_rows_however_the_log_is_cut(ScratchDb::sqlite().await).await;
}

#[tokio::test]
async fn the_fold_is_the_same_however_the_log_is_cut_on_postgres() {
    let Some(db) = ScratchDb::postgres("inbox_fold").await else {
        eprintln!("skipped: TEXTBANK_TEST_POSTGRES_URL is not set");
        return;
    };
    same_rows_however_the_log_is_cut(db).await;
}

#[test]
fn previews_cut_long_messages_at_a_character_boundary() {
    let long = "é".repeat(PREVIEW_CHARS + 5);
    assert_eq!(preview(&long).chars().count(), PREVIEW_CHARS);
    assert_eq!(preview("Hi there"), "Hi there");
}
