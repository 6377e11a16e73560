//! The projector's SQL: what a batch loads from earlier batches (one query
//! per kind, `IN (…)`), the campaign lifecycle facts, and the folded batch
//! written with a few multi-row upserts. Every statement on this read
//! model's own tables names them through [`Tables`], so a rebuild can fill
//! the `_next` copies.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, Encode, FromRow, Type};
use textbank_domain::campaign::CampaignStatus;
use textbank_store::{StoreResult, StoreTx, on_tx};
use uuid::Uuid;

use super::fold::{COUNTERS, Conversation, Counts, EarlyReport, EarlyState, Fold, SurveyRow};
use crate::batch::Tables;
use textbank_store::sql::{for_engine, placeholders};

/// Rows per multi-row statement. A batch's rows are written in chunks of
/// these sizes (largest first), so each table has only a few statement
/// texts, which stay prepared in the connection's statement cache instead
/// of being parsed anew for every batch size. Even 128 rows of 15 values
/// stay far below SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const SHAPES: [usize; 4] = [128, 32, 8, 1];

/// Ids per lookup: a list is padded (repeating its last id, which `IN`
/// ignores) to the next of these sizes, for the same reason.
const LOOKUP_SHAPES: [usize; 4] = [8, 32, 128, 512];

/// `n` rows as chunk sizes from [`SHAPES`], largest first.
fn shape_sizes(n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut rest = n;
    for size in SHAPES {
        sizes.extend(std::iter::repeat_n(size, rest / size));
        rest %= size;
    }
    sizes
}

/// Splits `items` into chunks of [`SHAPES`] sizes.
fn shaped<T>(items: &[T]) -> Vec<&[T]> {
    let mut rest = items;
    shape_sizes(items.len())
        .into_iter()
        .map(|size| {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            chunk
        })
        .collect()
}

/// Splits `ids` into lookup lists of [`LOOKUP_SHAPES`] sizes, padded.
fn lookup_lists<T: Clone>(ids: &[T]) -> Vec<Vec<T>> {
    let largest = LOOKUP_SHAPES[LOOKUP_SHAPES.len() - 1];
    ids.chunks(largest)
        .map(|chunk| {
            let size = LOOKUP_SHAPES
                .iter()
                .copied()
                .find(|size| *size >= chunk.len())
                .unwrap_or(largest);
            let mut list = chunk.to_vec();
            if let Some(last) = chunk.last() {
                list.resize(size, last.clone());
            }
            list
        })
        .collect()
}

/// A value bound into a statement.
enum Bind {
    Uuid(Uuid),
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    Time(DateTime<Utc>),
}

fn bind_all<'q, DB>(
    mut query: Query<'q, DB, <DB as Database>::Arguments>,
    values: Vec<Bind>,
) -> Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    Uuid: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
    Option<i64>: for<'t> Encode<'t, DB> + Type<DB>,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    Option<String>: for<'t> Encode<'t, DB> + Type<DB>,
    bool: for<'t> Encode<'t, DB> + Type<DB>,
    DateTime<Utc>: for<'t> Encode<'t, DB> + Type<DB>,
{
    for value in values {
        query = match value {
            Bind::Uuid(value) => query.bind(value),
            Bind::Int(value) => query.bind(value),
            Bind::OptInt(value) => query.bind(value),
            Bind::Text(value) => query.bind(value),
            Bind::OptText(value) => query.bind(value),
            Bind::Bool(value) => query.bind(value),
            Bind::Time(value) => query.bind(value),
        };
    }
    query
}

async fn execute(tx: &mut StoreTx, sql: String, values: Vec<Bind>) -> StoreResult<()> {
    let sql = for_engine(tx, sql);
    on_tx!(tx, |conn| {
        bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), values)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

async fn fetch<O>(tx: &mut StoreTx, sql: String, values: Vec<Bind>) -> StoreResult<Vec<O>>
where
    O: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let sql = for_engine(tx, sql);
    Ok(on_tx!(tx, |conn| {
        let query = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), values);
        query
            .fetch_all(conn)
            .await?
            .iter()
            .map(|row| O::from_row(row))
            .collect::<Result<Vec<O>, sqlx::Error>>()?
    }))
}

/// `$1, $2, …, $n`
fn list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn campaign_created(
    tx: &mut StoreTx,
    tables: Tables,
    campaign: Uuid,
    org: Uuid,
    name: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_campaigns");
    execute(
        tx,
        format!(
            "INSERT INTO {table} (campaign_id, org_id, name, status, created_at)
             VALUES ($1, $2, $3, 'draft', $4)
             ON CONFLICT (campaign_id) DO UPDATE
                SET org_id = excluded.org_id, name = excluded.name, status = excluded.status,
                    created_at = excluded.created_at"
        ),
        vec![
            Bind::Uuid(campaign),
            Bind::Uuid(org),
            Bind::Text(name.to_owned()),
            Bind::Time(at),
        ],
    )
    .await
}

pub(super) async fn campaign_status(
    tx: &mut StoreTx,
    tables: Tables,
    campaign: Uuid,
    status: CampaignStatus,
) -> StoreResult<()> {
    set_campaign_text(tx, tables, campaign, "status", status.as_str()).await
}

pub(super) async fn campaign_renamed(
    tx: &mut StoreTx,
    tables: Tables,
    campaign: Uuid,
    name: &str,
) -> StoreResult<()> {
    set_campaign_text(tx, tables, campaign, "name", name).await
}

/// Sets one text column (a constant of this module) of a campaign's row.
async fn set_campaign_text(
    tx: &mut StoreTx,
    tables: Tables,
    campaign: Uuid,
    column: &str,
    value: &str,
) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_campaigns");
    execute(
        tx,
        format!("UPDATE {table} SET {column} = $1 WHERE campaign_id = $2"),
        vec![Bind::Text(value.to_owned()), Bind::Uuid(campaign)],
    )
    .await
}

/// The campaign's contacts as the campaigns read model holds them, once it
/// has applied the campaign's stream up to `version`; `None` before.
pub(super) async fn attached_contacts(
    tx: &mut StoreTx,
    campaign: Uuid,
    version: u64,
) -> StoreResult<Option<i64>> {
    let applied: Vec<(Option<i64>,)> = fetch(
        tx,
        "SELECT stream_version FROM campaigns WHERE campaign_id = $1".to_owned(),
        vec![Bind::Uuid(campaign)],
    )
    .await?;
    let applied = applied
        .first()
        .and_then(|(version,)| *version)
        .and_then(|version| u64::try_from(version).ok());
    if applied.is_none_or(|applied| applied < version) {
        return Ok(None);
    }
    let count: Vec<(i64,)> = fetch(
        tx,
        "SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = $1".to_owned(),
        vec![Bind::Uuid(campaign)],
    )
    .await?;
    Ok(Some(count.first().map_or(0, |(count,)| *count)))
}

pub(super) async fn campaign_contacts(
    tx: &mut StoreTx,
    tables: Tables,
    campaign: Uuid,
    org: Uuid,
    contacts: i64,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_campaigns");
    execute(
        tx,
        format!(
            "INSERT INTO {table} (campaign_id, org_id, name, status, created_at, contacts)
             VALUES ($1, $2, '', '', $3, $4)
             ON CONFLICT (campaign_id) DO UPDATE SET contacts = excluded.contacts"
        ),
        vec![
            Bind::Uuid(campaign),
            Bind::Uuid(org),
            Bind::Time(at),
            Bind::Int(contacts),
        ],
    )
    .await
}

const CONVERSATION_COLUMNS: &str = "message_id, conversation_id, campaign_id, texter_id, started_us, \
     display_ms, final_status, error_code, submit_failure, outcome_hour, first_reply_ms, opted_out";

/// The conversations whose `column` (message_id or conversation_id) is one
/// of `ids`.
pub(super) async fn load_conversations(
    tx: &mut StoreTx,
    tables: Tables,
    column: &'static str,
    ids: &[Uuid],
) -> StoreResult<Vec<Conversation>> {
    let table = tables.name("campaign_metrics_conversations");
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in lookup_lists(ids) {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM {table} WHERE {column} IN ({})",
            list(chunk.len())
        );
        let values = chunk.into_iter().map(Bind::Uuid).collect();
        rows.extend(fetch::<Conversation>(tx, sql, values).await?);
    }
    Ok(rows)
}

/// Every current answer in these conversations.
pub(super) async fn load_answers(
    tx: &mut StoreTx,
    tables: Tables,
    conversations: &[Uuid],
) -> StoreResult<Vec<SurveyRow>> {
    let table = tables.name("campaign_metrics_survey");
    let mut rows = Vec::new();
    for chunk in lookup_lists(conversations) {
        let sql = format!(
            "SELECT conversation_id, question_id, campaign_id, answer FROM {table}
              WHERE conversation_id IN ({})",
            list(chunk.len())
        );
        let values = chunk.into_iter().map(Bind::Uuid).collect();
        rows.extend(fetch::<SurveyRow>(tx, sql, values).await?);
    }
    Ok(rows)
}

/// The stored early reports for these carrier ids.
pub(super) async fn load_early_reports(
    tx: &mut StoreTx,
    tables: Tables,
    carriers: &[String],
) -> StoreResult<Vec<EarlyReport>> {
    let table = tables.name("campaign_metrics_early_reports");
    // Almost always empty: one cheap look saves binding every submission
    // of the batch.
    let any: Vec<(String,)> = fetch(
        tx,
        format!("SELECT carrier_message_id FROM {table} LIMIT 1"),
        Vec::new(),
    )
    .await?;
    if any.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    for chunk in lookup_lists(carriers) {
        let sql = format!(
            "SELECT carrier_message_id, org_id, status, error_code, recorded_hour FROM {table}
              WHERE carrier_message_id IN ({})",
            list(chunk.len())
        );
        let values = chunk.into_iter().map(Bind::Text).collect();
        rows.extend(fetch::<EarlyReport>(tx, sql, values).await?);
    }
    Ok(rows)
}

/// Writes the folded batch.
pub(super) async fn store(tx: &mut StoreTx, tables: Tables, fold: Fold) -> StoreResult<()> {
    store_conversations(tx, tables, &fold).await?;
    store_campaign_counts(tx, tables, &fold).await?;
    let texters: Vec<(Vec<Bind>, Counts)> = fold
        .texters
        .iter()
        .filter(|(_, counts)| !counts.is_zero())
        .map(|((campaign, texter), counts)| {
            (vec![Bind::Uuid(*campaign), Bind::Uuid(*texter)], *counts)
        })
        .collect();
    store_counts(
        tx,
        &tables.name("campaign_metrics_texters"),
        &["campaign_id", "texter_id"],
        texters,
    )
    .await?;
    let hours: Vec<(Vec<Bind>, Counts)> = fold
        .hours
        .iter()
        .filter(|(_, counts)| !counts.is_zero())
        .map(|((campaign, hour), counts)| (vec![Bind::Uuid(*campaign), Bind::Int(*hour)], *counts))
        .collect();
    store_counts(
        tx,
        &tables.name("campaign_metrics_hours"),
        &["campaign_id", "hour"],
        hours,
    )
    .await?;
    let failures = fold
        .failures
        .iter()
        .filter(|(_, by)| **by != 0)
        .map(|((campaign, code), by)| (vec![Bind::Uuid(*campaign), Bind::Text(code.clone())], *by))
        .collect();
    store_tally(
        tx,
        &tables.name("campaign_metrics_failures"),
        &["campaign_id", "code"],
        "messages",
        failures,
    )
    .await?;
    let blocked = fold
        .blocked
        .iter()
        .map(|((campaign, reason), by)| {
            (vec![Bind::Uuid(*campaign), Bind::Text(reason.clone())], *by)
        })
        .collect();
    store_tally(
        tx,
        &tables.name("campaign_metrics_blocked"),
        &["campaign_id", "reason"],
        "attempts",
        blocked,
    )
    .await?;
    let answers = fold
        .answers
        .iter()
        .filter(|(_, by)| **by != 0)
        .map(|((campaign, question, answer), by)| {
            (
                vec![
                    Bind::Uuid(*campaign),
                    Bind::Text(question.clone()),
                    Bind::Text(answer.clone()),
                ],
                *by,
            )
        })
        .collect();
    store_tally(
        tx,
        &tables.name("campaign_metrics_answers"),
        &["campaign_id", "question_id", "answer"],
        "conversations",
        answers,
    )
    .await?;
    let seconds = fold
        .display_seconds
        .iter()
        .map(|((campaign, texter, second), by)| {
            (
                vec![
                    Bind::Uuid(*campaign),
                    Bind::Uuid(*texter),
                    Bind::Int(*second),
                ],
                *by,
            )
        })
        .collect();
    store_tally(
        tx,
        &tables.name("campaign_metrics_display_seconds"),
        &["campaign_id", "texter_id", "second"],
        "clicks",
        seconds,
    )
    .await?;
    store_survey(tx, tables, &fold).await?;
    store_early_reports(tx, tables, &fold).await
}

async fn store_conversations(tx: &mut StoreTx, tables: Tables, fold: &Fold) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_conversations");
    let mut rows: Vec<&Conversation> = fold
        .changed
        .iter()
        .filter_map(|id| fold.conversation(id))
        .collect();
    // In key order: neighbouring rows land on the same pages.
    rows.sort_unstable_by_key(|row| row.message_id);
    for chunk in shaped(&rows) {
        let sql = format!(
            "INSERT INTO {table} ({CONVERSATION_COLUMNS}) VALUES {}
             ON CONFLICT (message_id) DO UPDATE
                SET final_status = excluded.final_status, error_code = excluded.error_code,
                    submit_failure = excluded.submit_failure, outcome_hour = excluded.outcome_hour,
                    first_reply_ms = excluded.first_reply_ms, opted_out = excluded.opted_out",
            placeholders(chunk.len(), 12)
        );
        let mut values = Vec::with_capacity(chunk.len() * 12);
        for row in chunk {
            values.extend([
                Bind::Uuid(row.message_id),
                Bind::Uuid(row.conversation_id),
                Bind::Uuid(row.campaign_id),
                Bind::Uuid(row.texter_id),
                Bind::Int(row.started_us),
                Bind::OptInt(row.display_ms),
                Bind::OptText(row.final_status.clone()),
                Bind::OptText(row.error_code.clone()),
                Bind::OptText(row.submit_failure.clone()),
                Bind::OptInt(row.outcome_hour),
                Bind::OptInt(row.first_reply_ms),
                Bind::Bool(row.opted_out),
            ]);
        }
        execute(tx, sql, values).await?;
    }
    Ok(())
}

/// `c = {table}.c + excluded.c` for every counter.
fn add_counters(table: &str) -> String {
    COUNTERS
        .iter()
        .map(|column| format!("{column} = {table}.{column} + excluded.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn store_campaign_counts(tx: &mut StoreTx, tables: Tables, fold: &Fold) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_campaigns");
    let rows: Vec<_> = fold
        .campaigns
        .iter()
        .filter(|(_, delta)| !delta.counts.is_zero())
        .collect();
    let columns = 5 + COUNTERS.len();
    for chunk in shaped(&rows) {
        // A campaign first seen through its messages gets a row without a
        // name or status; CampaignCreated fills them in.
        let sql = format!(
            "INSERT INTO {table} (campaign_id, org_id, name, status, created_at, {})
             VALUES {}
             ON CONFLICT (campaign_id) DO UPDATE SET {}",
            COUNTERS.join(", "),
            placeholders(chunk.len(), columns),
            add_counters(&table)
        );
        let mut values = Vec::with_capacity(chunk.len() * columns);
        for (campaign, delta) in chunk {
            values.extend([
                Bind::Uuid(**campaign),
                Bind::Uuid(delta.org),
                Bind::Text(String::new()),
                Bind::Text(String::new()),
                Bind::Time(delta.first_at),
            ]);
            values.extend(delta.counts.values().map(Bind::Int));
        }
        execute(tx, sql, values).await?;
    }
    Ok(())
}

/// Adds `Counts` to the rows with these keys.
async fn store_counts(
    tx: &mut StoreTx,
    table: &str,
    keys: &[&str],
    rows: Vec<(Vec<Bind>, Counts)>,
) -> StoreResult<()> {
    let columns = keys.len() + COUNTERS.len();
    let mut rows = rows.into_iter();
    for size in shape_sizes(rows.len()) {
        let chunk: Vec<_> = rows.by_ref().take(size).collect();
        let sql = format!(
            "INSERT INTO {table} ({}, {}) VALUES {}
             ON CONFLICT ({}) DO UPDATE SET {}",
            keys.join(", "),
            COUNTERS.join(", "),
            placeholders(chunk.len(), columns),
            keys.join(", "),
            add_counters(table)
        );
        let mut values = Vec::with_capacity(chunk.len() * columns);
        for (key, counts) in chunk {
            values.extend(key);
            values.extend(counts.values().map(Bind::Int));
        }
        execute(tx, sql, values).await?;
    }
    Ok(())
}

/// Adds to one count column of the rows with these keys.
async fn store_tally(
    tx: &mut StoreTx,
    table: &str,
    keys: &[&str],
    count: &str,
    rows: Vec<(Vec<Bind>, i64)>,
) -> StoreResult<()> {
    let columns = keys.len() + 1;
    let mut rows = rows.into_iter();
    for size in shape_sizes(rows.len()) {
        let chunk: Vec<_> = rows.by_ref().take(size).collect();
        let sql = format!(
            "INSERT INTO {table} ({}, {count}) VALUES {}
             ON CONFLICT ({}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}",
            keys.join(", "),
            placeholders(chunk.len(), columns),
            keys.join(", "),
        );
        let mut values = Vec::with_capacity(chunk.len() * columns);
        for (key, by) in chunk {
            values.extend(key);
            values.push(Bind::Int(by));
        }
        execute(tx, sql, values).await?;
    }
    Ok(())
}

async fn store_survey(tx: &mut StoreTx, tables: Tables, fold: &Fold) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_survey");
    let rows: Vec<_> = fold
        .survey_changed
        .iter()
        .filter_map(|key| fold.answer(key).map(|current| (key, current)))
        .collect();
    for chunk in shaped(&rows) {
        let sql = format!(
            "INSERT INTO {table} (conversation_id, question_id, campaign_id, answer) VALUES {}
             ON CONFLICT (conversation_id, question_id) DO UPDATE SET answer = excluded.answer",
            placeholders(chunk.len(), 4)
        );
        let mut values = Vec::with_capacity(chunk.len() * 4);
        for ((conversation, question), (campaign, answer)) in chunk {
            values.extend([
                Bind::Uuid(*conversation),
                Bind::Text(question.clone()),
                Bind::Uuid(*campaign),
                Bind::Text(answer.clone()),
            ]);
        }
        execute(tx, sql, values).await?;
    }
    Ok(())
}

async fn store_early_reports(tx: &mut StoreTx, tables: Tables, fold: &Fold) -> StoreResult<()> {
    let table = tables.name("campaign_metrics_early_reports");
    for (report, state) in fold.early.values() {
        match state {
            EarlyState::New => {
                execute(
                    tx,
                    format!(
                        "INSERT INTO {table} (carrier_message_id, org_id, status, error_code, recorded_hour)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                    ),
                    vec![
                        Bind::Text(report.carrier_message_id.clone()),
                        Bind::Uuid(report.org_id),
                        Bind::Text(report.status.clone()),
                        Bind::OptText(report.error_code.clone()),
                        Bind::Int(report.recorded_hour),
                    ],
                )
                .await?
            }
            EarlyState::Applied { stored: true } => {
                execute(
                    tx,
                    format!(
                        "DELETE FROM {table} WHERE carrier_message_id = $1 AND org_id = $2"
                    ),
                    vec![
                        Bind::Text(report.carrier_message_id.clone()),
                        Bind::Uuid(report.org_id),
                    ],
                )
                .await?
            }
            EarlyState::Stored | EarlyState::Applied { stored: false } => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_in_a_few_statement_shapes() {
        assert_eq!(shape_sizes(0), Vec::<usize>::new());
        assert_eq!(shape_sizes(1), [1]);
        assert_eq!(shape_sizes(170), [128, 32, 8, 1, 1]);
        assert_eq!(shape_sizes(300), [128, 128, 32, 8, 1, 1, 1, 1]);
        let items: Vec<u32> = (0..41).collect();
        let chunks = shaped(&items);
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [32, 8, 1]
        );
        assert_eq!(chunks.concat(), items);
    }

    #[test]
    fn lookups_are_padded_with_their_last_id() {
        assert_eq!(lookup_lists::<u32>(&[]), Vec::<Vec<u32>>::new());
        assert_eq!(lookup_lists(&[1, 2, 3]), [vec![1, 2, 3, 3, 3, 3, 3, 3]]);
        let many: Vec<u32> = (0..600).collect();
        let lists = lookup_lists(&many);
        assert_eq!(lists.iter().map(Vec::len).collect::<Vec<_>>(), [512, 128]);
        assert_eq!(lists[1][87], 599);
        assert_eq!(lists[1][88], 599);
    }
}
