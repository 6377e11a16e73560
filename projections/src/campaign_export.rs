//! The campaign results export's reads: one row per contact of a campaign,
//! put together from the read models that hold each part (the campaign's
//! contacts and their list rows, assignments, conversations, the metrics'
//! delivery outcomes, opt-outs and survey answers), page by page in phone
//! order so memory stays flat however large the campaign.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use textbank_domain::CampaignId;
use textbank_store::{Database, StoreResult, on_reader};
use uuid::Uuid;

/// One contact of the campaign and what became of it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExportRow {
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
    pub zip: String,
    pub external_id: String,
    /// The list row's custom fields, as a JSON object.
    pub fields: String,
    pub list_id: Uuid,
    pub texter_id: Option<Uuid>,
    pub texter_name: Option<String>,
    pub conversation_id: Option<Uuid>,
    pub initial_clicked_at: Option<DateTime<Utc>>,
    pub delivery_status: Option<String>,
    pub error_code: Option<String>,
    pub replied: bool,
    pub opted_out_at: Option<DateTime<Utc>>,
}

const PAGE: &str =
    "SELECT cc.phone, ct.first_name, ct.last_name, ct.zip, ct.external_id, ct.fields,
        cc.list_id, cc.texter_id, m.name AS texter_name, cv.conversation_id,
        cv.started_at AS initial_clicked_at, mc.final_status AS delivery_status,
        COALESCE(mc.error_code, mc.submit_failure) AS error_code,
        mc.first_reply_ms IS NOT NULL AS replied, o.opted_out_at
   FROM campaign_contacts cc
   JOIN contacts ct ON ct.list_id = cc.list_id AND ct.line = cc.line
   LEFT JOIN members m ON m.member_id = cc.texter_id
   LEFT JOIN conversations cv ON cv.campaign_id = cc.campaign_id AND cv.phone = cc.phone
   LEFT JOIN campaign_metrics_conversations mc ON mc.conversation_id = cv.conversation_id
   LEFT JOIN opt_outs o ON o.org_id = cc.org_id AND o.phone = cc.phone
  WHERE cc.campaign_id = $1 AND cc.phone > $2
  ORDER BY cc.phone
  LIMIT $3";

/// Up to `limit` contacts of `campaign` whose phone sorts after `after`.
pub async fn page(
    db: &Database,
    campaign: CampaignId,
    after: &str,
    limit: u32,
) -> StoreResult<Vec<ExportRow>> {
    Ok(on_reader!(db, |pool| {
        sqlx::query_as(PAGE)
            .bind(Uuid::from(campaign))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    }))
}

/// The current survey answers of the campaign's conversations with phones
/// in `(after, through]`: conversation → question → answer.
pub async fn answers(
    db: &Database,
    campaign: CampaignId,
    after: &str,
    through: &str,
) -> StoreResult<HashMap<Uuid, HashMap<String, String>>> {
    let rows: Vec<(Uuid, String, String)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT s.conversation_id, s.question_id, s.answer
               FROM campaign_metrics_survey s
               JOIN conversations cv ON cv.conversation_id = s.conversation_id
              WHERE cv.campaign_id = $1 AND cv.phone > $2 AND cv.phone <= $3",
        )
        .bind(Uuid::from(campaign))
        .bind(after)
        .bind(through)
        .fetch_all(pool)
        .await?
    });
    let mut answers: HashMap<Uuid, HashMap<String, String>> = HashMap::new();
    for (conversation, question, answer) in rows {
        answers
            .entry(conversation)
            .or_default()
            .insert(question, answer);
    }
    Ok(answers)
}

/// The custom field names of the campaign's lists, in name order.
pub async fn custom_fields(db: &Database, campaign: CampaignId) -> StoreResult<Vec<String>> {
    let lists: Vec<String> = on_reader!(db, |pool| {
        sqlx::query_scalar(
            "SELECT l.custom_fields FROM lists l
              WHERE l.list_id IN (SELECT DISTINCT cc.list_id FROM campaign_contacts cc
                                   WHERE cc.campaign_id = $1)",
        )
        .bind(Uuid::from(campaign))
        .fetch_all(pool)
        .await?
    });
    let mut names = BTreeSet::new();
    for list in lists {
        let fields: Vec<String> = serde_json::from_str(&list).map_err(|err| {
            textbank_store::StoreError::Corrupt(format!("a list's custom fields: {err}"))
        })?;
        names.extend(fields);
    }
    Ok(names.into_iter().collect())
}
