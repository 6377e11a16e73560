//! The campaign results export (`GET /v1/campaigns/{id}/export.csv`): one
//! row per contact of the campaign, with its list columns, its texter, the
//! initial message's click and final delivery status, whether it replied or
//! opted out, and its latest answer to each survey question. The file a
//! campaign loads back into its CRM; streamed page by page, so memory stays
//! flat however many contacts there are.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use textbank_domain::{CampaignId, Permission};
use textbank_projections::campaign_export::{self, ExportRow};
use textbank_projections::campaign_metrics::CampaignMetrics;
use textbank_projections::campaigns::Campaigns;
use textbank_projections::conversations::Conversations;
use textbank_projections::opt_outs::OptOuts;
use textbank_store::{Database, StoreResult};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::audit::{EXPORT_BUFFER, Line, csv_body};
use crate::{App, AppError, Caller};

/// Contacts read per page.
const PAGE: u32 = 1_000;

/// The fixed columns before the lists' custom fields, and after them.
const LEADING: &str = "phone,first_name,last_name,zip,external_id,list_id";
const TRAILING: &str = "texter_id,texter_name,conversation_id,initial_clicked_at,\
                        delivery_status,error_code,replied,opted_out,opted_out_at";

/// A page of rows with what their line needs beyond the row.
struct Page {
    rows: Vec<ExportRow>,
    answers: HashMap<Uuid, HashMap<String, String>>,
    fields: std::sync::Arc<[String]>,
    questions: std::sync::Arc<[String]>,
}

impl App {
    /// The campaign's results as CSV: a header line, then one line per
    /// contact in phone order. Waits until the read models it joins have
    /// every event written before the request.
    pub async fn campaign_export(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
    ) -> Result<impl Stream<Item = Result<Bytes, AppError>> + Send + 'static, AppError> {
        caller.require(Permission::ReadLists)?;
        caller.require(Permission::ReadCampaigns)?;
        let campaign = self.sending_campaign(caller, campaign_id, None).await?;
        let head = self.events().head_position().await?;
        self.wait_for_projection(&Campaigns, head).await?;
        self.wait_for_projection(&Conversations, head).await?;
        self.wait_for_projection(&OptOuts, head).await?;
        self.wait_for_projection(&CampaignMetrics::live(), head)
            .await?;
        let fields: std::sync::Arc<[String]> =
            campaign_export::custom_fields(self.database(), campaign_id)
                .await?
                .into();
        let questions: std::sync::Arc<[String]> = campaign
            .questions
            .iter()
            .map(|question| question.id.clone())
            .collect();
        let header = order_header(&fields, &questions);
        let (sender, receiver) = mpsc::channel(EXPORT_BUFFER);
        let database = self.database().clone();
        tokio::spawn(async move {
            if let Err(err) = pages(&database, campaign_id, fields, questions, &sender).await {
                let _ = sender.send(Err(err)).await;
            }
        });
        Ok(csv_body(header, receiver, push_page))
    }
}

/// The header: the list's columns, its custom fields, ours, then one
/// column per survey question (names defused like any cell).
fn order_header(fields: &[String], questions: &[String]) -> String {
    let mut header = String::from(LEADING);
    for name in fields {
        header.push(',');
        crate::audit::push_cell(&mut header, name);
    }
    header.push(',');
    header.push_str(TRAILING);
    for question in questions {
        header.push(',');
        crate::audit::push_cell(&mut header, question);
    }
    header.push('\n');
    header
}

/// Sends the campaign's contacts page by page until the last, or until
/// the receiver is gone.
async fn pages(
    database: &Database,
    campaign: CampaignId,
    fields: std::sync::Arc<[String]>,
    questions: std::sync::Arc<[String]>,
    sender: &mpsc::Sender<StoreResult<Vec<Page>>>,
) -> StoreResult<()> {
    let mut after = String::new();
    loop {
        let rows = campaign_export::page(database, campaign, &after, PAGE).await?;
        let Some(last) = rows.last().map(|row| row.phone.clone()) else {
            return Ok(());
        };
        let answers = if questions.is_empty() {
            HashMap::new()
        } else {
            campaign_export::answers(database, campaign, &after, &last).await?
        };
        let full = rows.len() == PAGE as usize;
        let page = Page {
            rows,
            answers,
            fields: fields.clone(),
            questions: questions.clone(),
        };
        if sender.send(Ok(vec![page])).await.is_err() || !full {
            return Ok(());
        }
        after = last;
    }
}

/// Appends a page's rows as CSV lines, in the header's order.
fn push_page(out: &mut String, page: &Page) {
    for row in &page.rows {
        let custom: HashMap<String, Value> = serde_json::from_str(&row.fields).unwrap_or_default();
        let answers = row
            .conversation_id
            .and_then(|conversation| page.answers.get(&conversation));
        let mut line = Line::new(out);
        line.text(Some(&row.phone));
        line.text(Some(&row.first_name));
        line.text(Some(&row.last_name));
        line.text(Some(&row.zip));
        line.text(Some(&row.external_id));
        line.plain(Some(row.list_id));
        for name in page.fields.iter() {
            line.text(custom.get(name).and_then(Value::as_str));
        }
        line.plain(row.texter_id);
        line.text(row.texter_name.as_deref());
        line.plain(row.conversation_id);
        line.time(row.initial_clicked_at);
        line.plain(row.delivery_status.as_deref());
        line.text(row.error_code.as_deref());
        line.plain(Some(row.replied));
        line.plain(Some(row.opted_out_at.is_some()));
        line.time(row.opted_out_at);
        for question in page.questions.iter() {
            line.text(
                answers
                    .and_then(|answers| answers.get(question))
                    .map(String::as_str),
            );
        }
        line.out.push('\n');
    }
}
