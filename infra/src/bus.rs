//! Kafka clients (rdkafka) for producers, processors and sinks.
//!
//! Consumers run in consumer groups with `enable.auto.offset.store=false`: the stage runtime
//! ([`crate::runtime`]) stores an offset only once the effect of a record is durable, and the
//! periodic auto-commit then commits what was stored. Producers wait for acks from all
//! in-sync replicas.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};
use trackiq_schemas::Topics;

use crate::error::InfraError;
use crate::kafka_context::BusContext;
use crate::kafka_oauth::{OAuthSource, set_initial_token};

/// How long a secured client waits for its first metadata before leaving the verdict on
/// the broker's TLS/SASL answer to its own timeouts.
const ACCEPT_WAIT: Duration = Duration::from_secs(10);

/// Every producer trackiq makes: its context answers librdkafka's OAUTHBEARER token requests.
pub type Producer = FutureProducer<BusContext>;

/// How to reach Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Comma-separated `host:port` list of an external Kafka-API cluster. Empty: use the
    /// embedded broker of `trackiq up` at `listen`.
    pub brokers: String,
    /// Address of the embedded broker (used when `brokers` is empty).
    pub listen: String,
    /// Address the embedded broker tells clients to connect to, when it is not `listen`: a
    /// TLS terminator (stunnel, a load balancer) in front of it. Empty: `listen`.
    pub advertise: String,
    /// Prefix of every topic name (`<prefix>.runs`, `<prefix>.samples`, ...).
    pub topic_prefix: String,
    /// Partitions of each topic created at start-up.
    pub partitions: i32,
    /// Replication factor of topics created at start-up.
    pub replication: i32,
    /// librdkafka options passed through unchanged, e.g. `fetch.wait.max.ms`. Credentials
    /// are refused here: they go in `security`.
    pub options: BTreeMap<String, String>,
    /// TLS and SASL of every Kafka client (`[bus.security]`); plaintext by default.
    pub security: crate::kafka_security::KafkaSecurity,
    /// Users the embedded broker accepts (`[[bus.users]]`, SASL SCRAM-SHA-256/512). None:
    /// it serves every client unauthenticated, fit for loopback only.
    pub users: Vec<crate::broker::users::BrokerUser>,
    /// Static group membership: this process's consumers join their groups as
    /// `<group>-<instance_id>`, so a restarted process takes its place back at once instead
    /// of waiting for the group to notice the old member is gone (after a `kill -9`, minutes).
    /// Must differ between processes sharing a group; empty: this host's name.
    pub instance_id: String,
    /// Join consumer groups with the static instance id above (fast restarts). Off: dynamic
    /// membership, where a member that stops heartbeating is expelled after the session
    /// timeout and its partitions move to the others. Turn it off where instances of a role
    /// sharing the embedded broker (`trackiq broker`) may die for good: tansu 0.6 never
    /// expires a static member, so a dead one would keep its partitions until it came back
    /// (Kafka expires static members after the session timeout).
    pub static_membership: bool,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            brokers: String::new(),
            listen: "127.0.0.1:9092".into(),
            advertise: String::new(),
            topic_prefix: trackiq_schemas::topics::DEFAULT_PREFIX.into(),
            partitions: 6,
            replication: 1,
            options: BTreeMap::new(),
            security: Default::default(),
            users: Vec::new(),
            instance_id: String::new(),
            static_membership: true,
        }
    }
}

impl BusConfig {
    /// Whether this configuration uses the embedded broker.
    pub fn embedded(&self) -> bool {
        self.brokers.trim().is_empty()
    }

    /// The static-membership instance id of this process (see `instance_id`).
    pub fn instance(&self) -> String {
        if !self.instance_id.trim().is_empty() {
            return self.instance_id.trim().to_string();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "trackiq".into())
    }

    /// How the embedded broker is to meet clients: `advertise` and `users` (passwords read now).
    pub fn broker_options(&self) -> Result<crate::broker::BrokerOptions, InfraError> {
        let users = self
            .users
            .iter()
            .map(|u| Ok((u.name.clone(), crate::secret::Secret::read("broker user", &u.name, &u.password).map_err(crate::kafka_security::SecurityError::from)?)))
            .collect::<Result<Vec<_>, InfraError>>()?;
        let advertise = Some(self.advertise.trim().to_string()).filter(|a| !a.is_empty());
        Ok(crate::broker::BrokerOptions { advertise, users })
    }

    /// The bootstrap servers clients connect to.
    pub fn bootstrap(&self) -> &str {
        if self.embedded() { &self.listen } else { &self.brokers }
    }
}

/// Kafka access shared by every service of one process.
#[derive(Debug, Clone)]
pub struct Bus {
    config: BusConfig,
    topics: Topics,
    /// Consumer groups of this process that have partitions assigned.
    assigned: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The log of the embedded broker of this process, read in-process by its stages.
    embedded_log: Option<crate::broker::EmbeddedLog>,
    /// The stages' producer, one per process (see [`Bus::stage_producer`]).
    stage_producer: SharedProducer,
}

/// A producer made once and shared by the clones of a [`Bus`].
#[derive(Clone, Default)]
struct SharedProducer(std::sync::Arc<std::sync::OnceLock<Producer>>);

impl std::fmt::Debug for SharedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "SharedProducer(created)" } else { "SharedProducer(none yet)" })
    }
}

/// One record read from Kafka, owned.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp, milliseconds since the Unix epoch, when the broker has one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn from_message(m: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        use rdkafka::Message;
        Record {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }
}

impl Bus {
    pub fn new(config: BusConfig) -> Self {
        let topics = Topics::new(&config.topic_prefix);
        Bus { config, topics, assigned: Default::default(), embedded_log: None, stage_producer: Default::default() }
    }

    /// Notes that `group` got its partitions, for [`Bus::assigned_groups`].
    pub fn note_assigned(&self, group: &str) {
        if self.assigned.lock().expect("not poisoned").insert(group.to_string()) {
            debug!(group, "partitions assigned");
        }
    }

    /// The embedded broker's log, when this process runs the broker: its stages read it
    /// in-process (see [`crate::runtime::log_source`]).
    pub fn embedded_log(&self) -> Option<&crate::broker::EmbeddedLog> {
        self.embedded_log.as_ref()
    }

    /// This bus with the log of the embedded broker this process runs.
    pub fn with_embedded_log(mut self, log: crate::broker::EmbeddedLog) -> Self {
        self.embedded_log = Some(log);
        self
    }

    /// Consumer groups of this process that have partitions assigned.
    pub fn assigned_groups(&self) -> usize {
        self.assigned.lock().expect("not poisoned").len()
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// The librdkafka settings every client of this process starts from: the brokers, the
    /// pass-through options, then `[bus.security]` (secrets read now).
    pub fn client_config(&self) -> Result<ClientConfig, InfraError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.config.bootstrap());
        c.set("log_level", "3");
        for (k, v) in &self.config.options {
            if crate::kafka_security::SECRET_OPTIONS.contains(&k.as_str()) {
                return Err(InfraError::KafkaSecurity(crate::kafka_security::SecurityError::Invalid(format!(
                    "the option {k} holds a credential: set it in [bus.security] as {{ env = \"VAR\" }} or {{ file = \"/path\" }}, never as an option (its value is not repeated here)"
                ))));
            }
            c.set(k, v);
        }
        for (k, v) in self.config.security.options()? {
            c.set(k, v);
        }
        Ok(c)
    }

    /// The bearer-token source of SASL/OAUTHBEARER, if that is the mechanism.
    pub fn oauth(&self) -> Option<std::sync::Arc<OAuthSource>> {
        self.config.security.oauth().map(std::sync::Arc::new)
    }

    /// The context every client of this bus is made with.
    pub fn context(&self) -> BusContext {
        BusContext { oauth: self.oauth(), ..Default::default() }
    }

    /// A producer from `config`, holding its first bearer token when OAUTHBEARER is used.
    fn create_producer(&self, config: &ClientConfig) -> Result<Producer, InfraError> {
        let p: Producer = config.create_with_context(self.context()).map_err(InfraError::kafka("creating a producer"))?;
        set_initial_token(rdkafka::producer::Producer::client(&p), self.oauth().as_deref())?;
        Ok(p)
    }

    /// A consumer from `config` (see [`Bus::create_producer`]).
    pub fn create_consumer<C: rdkafka::consumer::ConsumerContext + 'static>(&self, config: &ClientConfig, context: C, what: &str) -> Result<StreamConsumer<C>, InfraError> {
        let c: StreamConsumer<C> = config.create_with_context(context).map_err(InfraError::kafka(format!("creating {what}")))?;
        set_initial_token(c.client(), self.oauth().as_deref())?;
        Ok(c)
    }

    /// Fails at once, with a message saying what to do, when no broker accepts a TCP connection.
    pub async fn check_reachable(&self) -> Result<(), InfraError> {
        let bootstrap = self.config.bootstrap().to_string();
        for hostport in bootstrap.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Ok(addrs) = hostport.to_socket_addrs() else { continue };
            for addr in addrs {
                let connect = tokio::net::TcpStream::connect(addr);
                if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(3), connect).await {
                    // librdkafka, speaking plaintext to a TLS listener or without SASL to a
                    // broker that wants it, only ever says that all brokers are down (after
                    // its message timeout): ask the port first.
                    let security = &self.config.security;
                    if !security.tls() {
                        let refused = |why: String| InfraError::KafkaSecurity(crate::kafka_security::SecurityError::Invalid(why));
                        match crate::kafka_security::probe(stream).await {
                            crate::kafka_security::Probe::Tls => {
                                return Err(refused(format!(
                                    "{hostport} refuses plaintext Kafka (a TLS listener answers so), and this client speaks plaintext: set protocol = \"ssl\" (or \"sasl_ssl\") and `ca` under [bus.security]"
                                )));
                            }
                            crate::kafka_security::Probe::Sasl if !security.sasl() => {
                                return Err(refused(format!(
                                    "{hostport} requires SASL authentication before any request, and this client has none: set protocol = \"sasl_plaintext\" (or \"sasl_ssl\"), mechanism, username and password under [bus.security]"
                                )));
                            }
                            _ => {}
                        }
                    } else if matches!(crate::kafka_security::probe(stream).await, crate::kafka_security::Probe::Kafka | crate::kafka_security::Probe::Sasl) {
                        // A plaintext listener reads a TLS ClientHello as the start of a huge
                        // Kafka frame and waits: librdkafka would only time out.
                        return Err(InfraError::KafkaSecurity(crate::kafka_security::SecurityError::Invalid(format!(
                            "{hostport} speaks plaintext Kafka, and this client speaks TLS: connect to the brokers' TLS listener, or set protocol = \"plaintext\" (or \"sasl_plaintext\") under [bus.security]"
                        ))));
                    }
                    if security.tls() || security.sasl() {
                        return self.check_accepted(hostport).await;
                    }
                    return Ok(());
                }
            }
        }
        Err(InfraError::BrokerUnreachable { brokers: bootstrap })
    }

    /// With TLS or SASL: one metadata round trip, failing within seconds with the cause when
    /// the broker refuses this client (untrusted CA, hostname mismatch, wrong password or
    /// token) — librdkafka alone would only time out a first send after 30 s.
    async fn check_accepted(&self, hostport: &str) -> Result<(), InfraError> {
        let context = self.context();
        let config = self.client_config()?;
        let oauth = self.oauth();
        let host = hostport.to_string();
        let refused = tokio::task::spawn_blocking(move || -> Result<Option<String>, InfraError> {
            let producer: Producer = config.create_with_context(context.clone()).map_err(InfraError::kafka("creating a producer"))?;
            let client = rdkafka::producer::Producer::client(&producer);
            set_initial_token(client, oauth.as_deref())?;
            let deadline = std::time::Instant::now() + ACCEPT_WAIT;
            loop {
                if client.fetch_metadata(None, Duration::from_millis(500)).is_ok() {
                    return Ok(None);
                }
                if let Some(why) = context.refusal() {
                    return Ok(Some(why));
                }
                if std::time::Instant::now() > deadline {
                    // Slow or silent: the clients' own timeouts and messages take over.
                    return Ok(None);
                }
            }
        })
        .await
        .map_err(|e| InfraError::Task(e.to_string()))??;
        let Some(mut why) = refused else { return Ok(()) };
        if let Some(ca) = self.config.security.ca.as_deref().filter(|_| why.contains("certificate verify failed"))
            && let Some(cause) = crate::kafka_tls::diagnose(&host, ca).await
        {
            why = format!("{cause}; librdkafka: {}", why.rsplit_once("librdkafka: ").map_or(why.as_str(), |(_, r)| r));
        }
        Err(InfraError::KafkaSecurity(crate::kafka_security::SecurityError::Invalid(format!("{host} refused this client: {why}"))))
    }

    /// The Kafka cluster id: which log incarnation offsets refer to (a lost and recreated
    /// broker has a new one).
    pub async fn cluster_id(&self) -> Result<String, InfraError> {
        let config = self.client_config()?;
        let bootstrap = self.config.bootstrap().to_string();
        let (context, oauth) = (self.context(), self.oauth());
        tokio::task::spawn_blocking(move || {
            let client: rdkafka::consumer::BaseConsumer<BusContext> =
                config.create_with_context(context).map_err(InfraError::kafka("creating a client to read the cluster id"))?;
            set_initial_token(rdkafka::consumer::Consumer::client(&client), oauth.as_deref())?;
            rdkafka::consumer::Consumer::client(&client)
                .fetch_cluster_id(Duration::from_secs(10))
                .ok_or(InfraError::BrokerUnreachable { brokers: bootstrap })
        })
        .await
        .map_err(|e| InfraError::Task(e.to_string()))?
    }

    /// A producer for bulk sends in order: one request in flight per connection, so records
    /// enqueued one after another (without awaiting each) reach their partition in that order
    /// even when a request is retried; batches of 20 ms carry many records per round trip.
    pub fn ordered_producer(&self) -> Result<Producer, InfraError> {
        self.create_producer(
            self.client_config()?
                .set("acks", "all")
                .set("linger.ms", "20")
                .set("max.in.flight.requests.per.connection", "1")
                .set("queue.buffering.max.messages", "1000000")
                .set("message.timeout.ms", "60000"),
        )
    }

    /// A producer that waits for full acknowledgement of every record.
    pub fn producer(&self) -> Result<Producer, InfraError> {
        self.create_producer(self.client_config()?.set("acks", "all").set("linger.ms", "5").set("message.timeout.ms", "30000"))
    }

    /// The stage runtime's producer: a stage publishes an input's outputs and waits for
    /// their acknowledgement before its next input, so there is nothing to batch and
    /// lingering would only add its 5 ms to every hop (at 100 runs/s it capped a stage at
    /// about one summary per acknowledgement round trip). One is shared by every stage of the
    /// process: each librdkafka producer has a polling thread that wakes ten times a second,
    /// and one per stage cost an idle `trackiq up --brokers` 5 % of a core.
    pub fn stage_producer(&self) -> Result<Producer, InfraError> {
        if let Some(p) = self.stage_producer.0.get() {
            return Ok(p.clone());
        }
        let created = self.create_producer(self.client_config()?.set("acks", "all").set("linger.ms", "0").set("message.timeout.ms", "30000"))?;
        // Two stages starting at once may both create one: the first stored is kept.
        Ok(self.stage_producer.0.get_or_init(|| created).clone())
    }

    /// A consumer in `group`, subscribed to `topics`, reading from the earliest offset when the
    /// group has none; `context` receives librdkafka's statistics every `statistics_ms`.
    /// Offsets are stored by the caller (the stage runtime) after each effect is durable.
    pub fn consumer_with<C: rdkafka::consumer::ConsumerContext + 'static>(
        &self,
        group: &str,
        topics: &[&str],
        context: C,
        statistics_ms: &str,
    ) -> Result<StreamConsumer<C>, InfraError> {
        let mut config = self.client_config()?;
        // Defaults a `[bus] options` entry overrides: prefetch at most 16 MiB per consumer
        // (librdkafka's 64 MiB, times one consumer per stage, dominated the pipeline's memory
        // under load). `fetch.wait.max.ms` stays librdkafka's 500 ms: a broker answers a
        // waiting fetch as soon as records arrive (Kafka does; the embedded broker's own Fetch
        // does, see `broker::fetch`), so the wait costs no latency, only idle requests.
        for (key, value) in [("queued.max.messages.kbytes", "16384")] {
            if !self.config.options.contains_key(key) {
                config.set(key, value);
            }
        }
        if self.config.static_membership {
            config.set("group.instance.id", format!("{group}-{}", self.config.instance()));
        }
        config
            .set("statistics.interval.ms", statistics_ms)
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "250")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        let consumer = self.create_consumer(&config, context, &format!("consumer for group {group}"))?;
        consumer
            .subscribe(topics)
            .map_err(InfraError::kafka(format!("subscribing group {group} to {topics:?}")))?;
        Ok(consumer)
    }

    /// Creates the pipeline's topics if they do not exist (the embedded broker never
    /// auto-creates topics).
    pub async fn ensure_topics(&self) -> Result<(), InfraError> {
        let admin: AdminClient<BusContext> =
            self.client_config()?.create_with_context(self.context()).map_err(InfraError::kafka("creating an admin client"))?;
        // An admin client never polls librdkafka's main queue, where token requests arrive.
        set_initial_token(admin.inner(), self.oauth().as_deref())?;
        // Only the missing ones: the embedded broker logs every "already exists" as an error.
        let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(10)).map_err(InfraError::kafka("reading topic metadata"))?;
        let existing: std::collections::HashSet<&str> = metadata.topics().iter().filter(|t| !t.partitions().is_empty()).map(|t| t.name()).collect();
        let names: Vec<&str> = self.topics.all().into_iter().filter(|t| !existing.contains(t)).collect();
        if names.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|t| NewTopic::new(t, self.config.partitions, TopicReplication::Fixed(self.config.replication)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin.create_topics(&new, &opts).await.map_err(InfraError::kafka("creating topics"))?;
        for r in results {
            match r {
                Ok(topic) => info!(%topic, partitions = self.config.partitions, "created topic"),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => debug!(%topic, "topic exists"),
                Err((topic, code)) => return Err(InfraError::CreateTopic { topic, reason: code.to_string() }),
            }
        }
        Ok(())
    }
}

/// Sends one record and waits for its acknowledgement.
pub async fn send(producer: &Producer, topic: &str, key: &[u8], payload: &[u8]) -> Result<(i32, i64), InfraError> {
    let record = FutureRecord::to(topic).key(key).payload(payload);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|d| (d.partition, d.offset))
        .map_err(|(e, _)| InfraError::Kafka { action: format!("producing to {topic}"), source: e })
}

impl Bus {
    /// Publishes a record that a stage could not process to the dead-letter topic, with the
    /// reason and the original bytes, and waits for the acknowledgement.
    pub async fn dead_letter(&self, publisher: &crate::runtime::publisher::Publisher, record: &Record, stage: &str, reason: &str) -> Result<(), InfraError> {
        tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, stage, reason, "dead-lettering record");
        let letter = trackiq_schemas::DeadLetter {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            stage: stage.to_string(),
            reason: reason.to_string(),
            failed_at: trackiq_schemas::now_us(),
            key: record.key.clone(),
            payload: record.payload.clone(),
        };
        let bytes = trackiq_schemas::registry()
            .encode(&letter)
            .map_err(|e| InfraError::EncodeDeadLetter { topic: self.topics.dlq.clone(), reason: e.to_string() })?;
        let letter = crate::runtime::Outgoing { topic: self.topics.dlq.clone(), key: record.key.clone().unwrap_or_default(), payload: bytes };
        publisher.send_all(std::slice::from_ref(&letter)).await.pop().unwrap_or(Ok(()))
    }
}
