//! Rows of the alerting tables (`alerts`, `alert_actions`, `notifications`) and of the
//! release decisions (`approvals`). Their events'
//! field names are the column names, so rows go through serde and arrow-json's decoder
//! rather than column by column.

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use trackiq_schemas::AnyEvent;

use super::rows::Located;

fn event_json(table: &str, event: &AnyEvent) -> Option<Result<serde_json::Value, serde_json::Error>> {
    match (table, event) {
        ("alerts", AnyEvent::Alert(a)) => Some(serde_json::to_value(a.as_ref())),
        ("alert_actions", AnyEvent::AlertAction(a)) => Some(serde_json::to_value(a)),
        ("notifications", AnyEvent::Notification(n)) => Some(serde_json::to_value(n)),
        ("approvals", AnyEvent::ReleaseDecision(d)) => Some(serde_json::to_value(d)),
        _ => None,
    }
}

/// Rows of `table` (one of the alerting tables) from the events that belong to it.
pub fn alerting_batch(table: &str, events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let schema = trackiq_schemas::arrow::table_schema(table).ok_or_else(|| ArrowError::InvalidArgumentError(format!("unknown table {table}")))?;
    let mut rows = Vec::with_capacity(events.len());
    for l in events {
        let Some(v) = event_json(table, l.event) else { continue };
        let mut v = v.map_err(|e| ArrowError::JsonError(e.to_string()))?;
        v["kafka_partition"] = l.partition.into();
        v["kafka_offset"] = l.offset.into();
        rows.push(v);
    }
    let mut decoder = ReaderBuilder::new(schema.clone()).with_strict_mode(true).build_decoder()?;
    decoder.serialize(&rows)?;
    Ok(decoder.flush()?.unwrap_or_else(|| RecordBatch::new_empty(schema)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use trackiq_schemas::*;

    use super::*;

    #[test]
    fn an_alert_and_a_notification_become_rows_with_their_values() {
        let alert = Alert {
            alert_id: "a1".into(), series_id: "s".into(), subject: "latency_ms".into(), kind: AlertKind::Regression, state: AlertState::Firing,
            severity: Severity::Block, run_id: "r".into(), value: Some(12.0), baseline: Some(10.0), change_pct: Some(20.0), change_ci_low: None,
            change_ci_high: None, pvalue: Some(0.001), message: "m".into(), workload: "w".into(), hardware: "h".into(), version_tag: None,
            git_commit: Some("abc".into()), labels: BTreeMap::from([("team".into(), "infra".into())]), fired_at: 5, updated_at: 6, notified_at: Some(6), notified_change_pct: Some(20.0),
            notify: NotifyReason::Firing, silenced_by: None, acked_by: None, ok_runs: 0, series_firing: 1, group_key: "g".into(), group_size: 1, group_index: 0,
        };
        let n = Notification {
            notification_id: "g/slack".into(), group_key: "g".into(), channel: "slack".into(), channel_kind: ChannelKind::Slack, series_id: "s".into(),
            run_id: "r".into(), alert_ids: vec!["a1".into()], reason: NotifyReason::Firing, severity: Severity::Block, status: NotificationStatus::Sent,
            attempts: 2, error: None, at: 7, external_ref: Some("12".into()), title: "t".into(),
        };
        let (a, b) = (AnyEvent::Alert(Box::new(alert)), AnyEvent::Notification(n));
        let located = [Located { partition: 1, offset: 9, event: &a }, Located { partition: 0, offset: 3, event: &b }];
        let rows = alerting_batch("alerts", &located).unwrap();
        assert_eq!(rows.num_rows(), 1);
        assert_eq!(rows.column_by_name("severity").unwrap().as_string::<i32>().value(0), "block");
        assert_eq!(rows.column_by_name("notified_at").unwrap().as_primitive::<TimestampMicrosecondType>().value(0), 6);
        assert_eq!(rows.column_by_name("kafka_offset").unwrap().as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0), 9);
        assert!(rows.column_by_name("acked_by").unwrap().is_null(0));
        let rows = alerting_batch("notifications", &located).unwrap();
        assert_eq!(rows.num_rows(), 1);
        assert_eq!(rows.column_by_name("status").unwrap().as_string::<i32>().value(0), "sent");
        assert_eq!(rows.column_by_name("alert_ids").unwrap().as_list::<i32>().value(0).as_string::<i32>().value(0), "a1");
    }
}
