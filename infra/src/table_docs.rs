//! What each table, view and column of the history means: `trackiq tables` prints it, and a
//! test keeps it complete (a column added to a table without a meaning here fails it).
//! Times are UTC timestamps with microseconds; a value's unit is in its row's `unit` (samples,
//! summaries) or the metric catalog (`trackiq metrics`).

/// Each table and view: what one row is.
pub const TABLES: [(&str, &str); 13] = [
    ("runs", "a run's start or end (`event` = started / finished); see run_overview for one row per run"),
    ("run_overview", "a run (view): identity, times, status, sample count, severity"),
    ("samples", "a measurement of a run"),
    ("summaries", "a run and metric (kind = samples) or derived figure (kind = derived)"),
    ("verdicts", "a run and metric judged against its baseline (kind = metric), or a finding (kind = finding)"),
    ("trends", "a series' trend of a metric, recomputed after a run"),
    ("baselines", "a run pinned as a series' baseline, per metric"),
    ("dlq", "a record that failed (dead letter), with the reason"),
    ("detections", "a cluster-health detection (straggler, all-reduce spike, ...)"),
    ("alerts", "a change of an alert (fired, worse, resolved, ...)"),
    ("alert_actions", "an acknowledgement, silence or unsilence"),
    ("notifications", "a delivery of an alert group to a channel"),
    ("approvals", "a release approver's decision on a release candidate, with what its review showed"),
];

/// Columns whose meaning depends on the table: (table, column, meaning).
const BY_TABLE: &[(&str, &str, &str)] = &[
    ("samples", "value", "the measured value, in `unit`"),
    ("verdicts", "value", "the run's figure of the metric (its median, or the derived value), in the metric's unit"),
    ("baselines", "value", "the pinned run's figure of the metric"),
    ("detections", "value", "the figure that crossed the threshold"),
    ("alerts", "value", "the run's figure that the alert is about"),
    ("verdicts", "kind", "metric (one verdict per metric) or finding (a change point, trend or consistency finding)"),
    ("summaries", "kind", "samples (statistics of the run's samples) or derived (a figure computed from them)"),
    ("alerts", "kind", "what fired: a metric regression, a detection, ..."),
    ("runs", "status", "how the run ended: completed, failed, ... (finished events)"),
    ("summaries", "status", "how the run ended"),
    ("run_overview", "status", "how the run ended; running until its end arrives"),
    ("notifications", "status", "sent or failed"),
    ("alerts", "severity", "warn or block"),
    ("verdicts", "severity", "the metric's verdict: pass, warn, block, improved, insufficient_data"),
    ("notifications", "severity", "the group's worst severity"),
    ("run_overview", "severity", "the run's severity from its latest verdict"),
    ("dlq", "reason", "why the record failed, naming the field or stage"),
    ("baselines", "reason", "why the baseline was pinned"),
    ("alert_actions", "reason", "why (given with the action)"),
    ("approvals", "reason", "why the candidate was approved or rejected"),
    ("approvals", "at", "when the decision was made"),
    ("approvals", "by", "who decided, as the dashboard knew them"),
    ("approvals", "series", "series judged for the candidate at the decision"),
    ("notifications", "reason", "why it was sent: firing, worse, repeat, resolved"),
    ("notifications", "error", "the last delivery error (secrets redacted)"),
    ("runs", "error", "why the run failed, if it did"),
    ("run_overview", "error", "why the run failed, if it did"),
    ("alert_actions", "at", "when the action was taken"),
    ("notifications", "at", "when the delivery ended"),
    ("samples", "rank", "the worker's rank in a cluster run"),
    ("detections", "rank", "the rank the detection names"),
    ("samples", "step", "the training step in a cluster run"),
    ("detections", "step", "the step at which it was detected"),
    ("verdicts", "message", "the finding in words"),
    ("detections", "message", "the detection in words"),
    ("alerts", "message", "the alert in words"),
    ("runs", "labels", "the run's labels (map)"),
    ("alerts", "labels", "the run's labels (map), for routing"),
];

/// Columns that mean the same in every table that has them.
const BY_NAME: &[(&str, &str)] = &[
    ("run_id", "the run (UUID v7, time-ordered)"),
    ("series_id", "the series: runs with the same tool, workload, hardware, batch size, precision and environment"),
    ("tool", "the tool that produced the run (trackiq bench, an importer, ...)"),
    ("started_at", "when the run started"),
    ("ended_at", "when the run ended"),
    ("hardware_name", "the hardware it ran on"),
    ("hardware", "the hardware it ran on"),
    ("workload", "what ran"),
    ("workload_type", "the kind of workload (inference, training, cli, ...)"),
    ("batch_size", "batch size"),
    ("precision", "numeric precision (fp32, bf16, ...)"),
    ("git_commit", "the commit measured"),
    ("version_tag", "the version measured"),
    ("run_group", "a label grouping runs (a sweep, a CI job)"),
    ("env_hash", "hash of the run's environment (OS, driver, framework versions)"),
    ("event", "started or finished"),
    ("tool_version", "the producing tool's version"),
    ("os", "operating system"),
    ("kernel", "kernel version"),
    ("cpu", "CPU model"),
    ("gpus", "GPU models"),
    ("driver", "GPU driver version"),
    ("framework", "ML framework"),
    ("framework_version", "ML framework version"),
    ("sequence_length", "sequence length (LLM workloads)"),
    ("backend", "inference backend"),
    ("steps", "training steps"),
    ("sample_count", "samples the run recorded"),
    ("batch_seq", "the sample batch's sequence number within the run"),
    ("ts", "when the sample was taken"),
    ("metric", "the metric's name (see `trackiq metrics` for its unit, direction and kind)"),
    ("unit", "the value's unit"),
    ("count", "number of samples"),
    ("mean", "arithmetic mean"),
    ("stdev", "sample standard deviation"),
    ("min", "smallest sample"),
    ("p50", "median"),
    ("p90", "90th percentile"),
    ("p95", "95th percentile"),
    ("p99", "99th percentile"),
    ("max", "largest sample"),
    ("evaluated_at", "when the verdict was computed"),
    ("run_severity", "the run's overall severity (its worst gating verdict)"),
    ("direction", "which way is better: lower_is_better or higher_is_better"),
    ("baseline", "the baseline's figure (median of the baseline runs)"),
    ("baseline_count", "runs in the baseline"),
    ("model", "the statistical model that judged it (or the finding's detector)"),
    ("lower_limit", "the lower limit of the baseline's band"),
    ("upper_limit", "the upper limit of the baseline's band"),
    ("change_pct", "change against the baseline, in percent"),
    ("change_ci_low", "95 % interval of change_pct: low end, percent"),
    ("change_ci_high", "95 % interval of change_pct: high end, percent"),
    ("pvalue", "p-value of the change"),
    ("pvalue_adjusted", "p-value adjusted for the run's many metrics (Holm)"),
    ("metric_kind", "the catalog's kind of metric (latency, throughput, power, telemetry, ...)"),
    ("gates", "whether the metric can fail a run"),
    ("direction_guessed", "whether the direction was guessed (metric not in the catalog)"),
    ("computed_at", "when the trend was computed"),
    ("points", "runs in the trend"),
    ("class", "improving, degrading, stable or noisy"),
    ("slope", "least-squares slope, unit per run"),
    ("r_squared", "R² of the least-squares fit"),
    ("theil_sen_slope", "Theil-Sen slope, unit per run"),
    ("mann_kendall_p", "Mann-Kendall trend test p-value"),
    ("total_change_pct", "change over the trend's runs, percent"),
    ("cv", "coefficient of variation"),
    ("confidence", "confidence in the class, 0 to 1"),
    ("change_points", "change points found (E-divisive means)"),
    ("last_change_run_id", "the run at the latest change point"),
    ("last_change_pct", "the latest change point's change, percent"),
    ("set_at", "when it was pinned"),
    ("source_topic", "the topic the record came from"),
    ("source_partition", "its partition"),
    ("source_offset", "its offset"),
    ("stage", "the stage that failed it"),
    ("failed_at", "when it failed"),
    ("payload", "the record's bytes"),
    ("detector", "the detector: straggler, slow_link, failed_worker, stalled_worker, loss_divergence, allreduce_spike"),
    ("event_ts", "when the event detected happened"),
    ("detected_at", "when it was detected"),
    ("threshold", "the threshold crossed"),
    ("alert_id", "the alert"),
    ("subject", "what the alert is about (a metric, a detector)"),
    ("state", "firing, resolved, ..."),
    ("fired_at", "when it first fired"),
    ("updated_at", "when it last changed"),
    ("notified_at", "when people were last told"),
    ("notified_change_pct", "the change people were last told, percent"),
    ("notify", "what this change sent: firing, worse, repeat, resolved or none"),
    ("silenced_by", "the silence that held it back"),
    ("acked_by", "who acknowledged it"),
    ("ok_runs", "good runs since it fired (it resolves after enough)"),
    ("series_firing", "alerts firing in the series"),
    ("group_key", "the notification group"),
    ("group_size", "alerts in the group"),
    ("group_index", "this alert's place in the group"),
    ("action", "ack, silence or unsilence"),
    ("id", "the alert or silence acted on"),
    ("until", "when the silence ends"),
    ("by", "who acted"),
    ("notification_id", "the delivery"),
    ("channel", "the channel's name"),
    ("channel_kind", "log, webhook, slack, email or github"),
    ("alert_ids", "the alerts delivered"),
    ("attempts", "delivery attempts"),
    ("external_ref", "where it landed: an issue number, a Message-ID"),
    ("title", "the message's title"),
    ("kafka_partition", "the Kafka partition the row came from"),
    ("kafka_offset", "the Kafka offset the row came from"),
    ("date", "the day partition (YYYY-MM-DD, UTC)"),
    ("decision_id", "the decision (UUID v7)"),
    ("candidate_kind", "what the candidate names: version (a version tag) or commit"),
    ("candidate", "the release candidate: a version tag or a commit (prefix)"),
    ("decision", "approve or reject"),
    ("blocking", "series whose latest verdict for the candidate was block"),
    ("warning", "series whose latest verdict for the candidate was warn"),
    ("open_alerts", "alerts firing on the candidate's series"),
];

/// What `column` of `table` means.
pub fn column(table: &str, column: &str) -> Option<&'static str> {
    BY_TABLE.iter().find(|(t, c, _)| *t == table && *c == column).map(|(_, _, d)| *d).or_else(|| BY_NAME.iter().find(|(c, _)| *c == column).map(|(_, d)| *d))
}

/// What one row of `table` is.
pub fn table(table: &str) -> Option<&'static str> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, d)| *d)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn every_table_view_and_column_has_a_meaning() {
        let dir = std::env::temp_dir().join(format!("trackiq-table-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::DataStore::open(&format!("file://{}", dir.display())).unwrap();
        let rows = crate::tables::query_rows(&store, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'").await.unwrap();
        let mut missing = Vec::new();
        let mut tables = std::collections::BTreeSet::new();
        for r in &rows {
            let (t, c) = (r["table_name"].as_str().unwrap(), r["column_name"].as_str().unwrap());
            tables.insert(t.to_string());
            if super::column(t, c).is_none() {
                missing.push(format!("{t}.{c}"));
            }
        }
        assert!(missing.is_empty(), "columns without a meaning in table_docs.rs: {missing:?}");
        let documented: std::collections::BTreeSet<String> = super::TABLES.iter().map(|(t, _)| t.to_string()).collect();
        assert_eq!(tables, documented, "every table and view, and only those");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
