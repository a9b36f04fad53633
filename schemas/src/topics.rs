//! Topic names and message keys.

/// Default prefix of every topic name.
pub const DEFAULT_PREFIX: &str = "trackiq";

/// The topics of the pipeline. Ordering comes from keys: a run's `RunStarted`, sample batches
/// and `RunFinished` all go to `runs` under its series_id (one partition: the run in order,
/// and the series' runs in the order they ran); a series' summaries and baseline pins share
/// `summaries` under its series_id. `verdicts` and `trends`
/// are keyed by series_id, `detections` by run_id, `dlq` by the original key. `samples` and
/// `baselines` are still read: producers written before sent samples and pins there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub runs: String,
    pub samples: String,
    pub summaries: String,
    pub verdicts: String,
    pub trends: String,
    pub baselines: String,
    pub dlq: String,
    /// Cluster-health detections (straggler, failed worker, ...), key run_id.
    pub detections: String,
    /// Alert changes and on-call actions (ack, silence), key series_id.
    pub alerts: String,
    /// Notification outcomes per channel, key group_key.
    pub notifications: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Topics {
            runs: format!("{prefix}.runs"),
            samples: format!("{prefix}.samples"),
            summaries: format!("{prefix}.summaries"),
            verdicts: format!("{prefix}.verdicts"),
            trends: format!("{prefix}.trends"),
            baselines: format!("{prefix}.baselines"),
            dlq: format!("{prefix}.dlq"),
            detections: format!("{prefix}.detections"),
            alerts: format!("{prefix}.alerts"),
            notifications: format!("{prefix}.notifications"),
        }
    }

    pub fn all(&self) -> [&str; 10] {
        [&self.runs, &self.samples, &self.summaries, &self.verdicts, &self.trends, &self.baselines, &self.dlq, &self.detections, &self.alerts, &self.notifications]
    }

    /// Parquet table a topic is archived to.
    pub fn table_of(&self, topic: &str) -> Option<&'static str> {
        match topic {
            t if t == self.runs => Some("runs"),
            t if t == self.samples => Some("samples"),
            t if t == self.summaries => Some("summaries"),
            t if t == self.verdicts => Some("verdicts"),
            t if t == self.trends => Some("trends"),
            t if t == self.baselines => Some("baselines"),
            t if t == self.dlq => Some("dlq"),
            t if t == self.detections => Some("detections"),
            // Actions share the topic and go to `alert_actions` (see the archiver's table_for).
            t if t == self.alerts => Some("alerts"),
            t if t == self.notifications => Some("notifications"),
            _ => None,
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new(DEFAULT_PREFIX)
    }
}
