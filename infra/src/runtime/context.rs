//! The client context of stage consumers: librdkafka's statistics (every
//! [`STATISTICS_INTERVAL_MS`]) feed the consumer-lag gauge of each assigned partition, so lag
//! costs no extra broker requests.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

use crate::metrics::PipelineMetrics;

/// How often librdkafka reports statistics to a stage consumer.
pub const STATISTICS_INTERVAL_MS: &str = "10000";

/// Context of one stage's consumer.
pub struct StageConsumerContext {
    pub stage: &'static str,
    pub metrics: PipelineMetrics,
}

impl ClientContext for StageConsumerContext {
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

impl ConsumerContext for StageConsumerContext {}
