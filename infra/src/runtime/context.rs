//! The client context of stage consumers: librdkafka's statistics (every
//! [`STATISTICS_INTERVAL_MS`]) feed the consumer-lag gauge of each assigned partition, so lag
//! costs no extra broker requests. Rebalances are recorded in a [`RebalanceLog`] for the
//! driver (see [`super::rebalance`]).

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;
use tracing::{info, warn};

use super::rebalance::{RebalanceLog, TopicPartition};

use crate::metrics::PipelineMetrics;

/// How often librdkafka reports statistics to a stage consumer.
pub const STATISTICS_INTERVAL_MS: &str = "10000";

/// Context of one stage's consumer.
pub struct StageConsumerContext {
    pub stage: &'static str,
    pub metrics: PipelineMetrics,
    /// Assignment changes, taken by the driver before its next stage call.
    pub rebalances: RebalanceLog,
    /// The bearer-token source with SASL/OAUTHBEARER.
    pub oauth: Option<std::sync::Arc<crate::kafka_oauth::OAuthSource>>,
}

impl ClientContext for StageConsumerContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        crate::kafka_oauth::generate(self.oauth.as_deref())
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue; lag -1 means unknown.
                if *partition >= 0 && p.consumer_lag >= 0 && p.desired {
                    self.metrics.set_lag(self.stage, topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

fn partitions(list: &rdkafka::TopicPartitionList) -> Vec<TopicPartition> {
    list.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ConsumerContext for StageConsumerContext {
    /// Runs inside the driver's `recv()` after librdkafka applied the change: a revoked
    /// partition's stored offsets were committed (they only cover durable effects) and it can
    /// no longer be stored by this consumer.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                info!(stage = self.stage, partitions = list.count(), "partitions assigned");
                self.rebalances.assigned(partitions(list));
            }
            Rebalance::Revoke(list) => {
                info!(stage = self.stage, partitions = list.count(), "partitions revoked");
                self.rebalances.revoked(partitions(list));
            }
            Rebalance::Error(e) => warn!(stage = self.stage, error = %e, "rebalance failed"),
        }
    }
}
