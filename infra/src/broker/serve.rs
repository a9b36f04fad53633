//! The embedded broker's server: tansu's Kafka API services over its SQLite storage, with some
//! of them replaced — Produce tells [`Appends`] what it appended, Fetch is [`WaitingFetch`],
//! Delete(Records|Topics) make the watermarks be asked again, and JoinGroup refuses a group
//! this process reads in-process. tansu's
//! `Broker::listen` builds its own route table, so the accept loop is ours: it sets
//! `TCP_NODELAY` on each connection as tansu does (without it small answers wait for Nagle),
//! runs the storage's maintenance every ten minutes, and stops when told.

use std::time::{Duration, SystemTime};

use rama::layer::{MapErrLayer, MapStateLayer};
use rama::{Context, Layer as _, Service as _};
use tansu_broker::Error;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_broker::coordinator::group::{Coordinator, OffsetCommit};
use tansu_sans_io::join_group_request::JoinGroupRequestProtocol;
use tansu_sans_io::leave_group_request::MemberIdentity;
use tansu_sans_io::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic};
use tansu_sans_io::sync_group_request::SyncGroupRequestAssignment;
use tansu_sans_io::{Body, ErrorCode, JoinGroupResponse};
use tansu_broker::service::{auth, coordinator, storage as routes};
use tansu_sans_io::{ApiKey as _, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse, FetchRequest, ProduceRequest};
use tansu_service::{BytesFrameLayer, FrameRequestLayer, FrameRouteBuilder, FrameRouteService, TcpBytesLayer, TcpContext, TcpContextLayer};
use tansu_storage::{BrokerRegistrationRequest, DeleteRecordsService, DeleteTopicsService, Storage, StorageContainer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::appends::{Appends, WatchedProduce};
use super::fetch::WaitingFetch;

/// How often the storage drops what its retention allows (tansu's default).
const MAINTENANCE: Duration = Duration::from_secs(600);

/// The storage services trackiq takes from tansu as they are: everything but Produce, Fetch,
/// DeleteRecords and DeleteTopics.
type Route = fn(FrameRouteBuilder<(), Error>, StorageContainer) -> Result<FrameRouteBuilder<(), Error>, Error>;
const TANSU_ROUTES: &[Route] = &[
    routes::add_offsets_to_txn,
    routes::add_partitions_to_txn,
    routes::alter_user_scram_credentials,
    routes::consumer_group_describe,
    routes::create_acls,
    routes::create_topics,
    routes::delete_groups,
    routes::describe_acls,
    routes::describe_cluster,
    routes::describe_configs,
    routes::describe_groups,
    routes::describe_topic_partitions,
    routes::describe_user_scram_credentials,
    routes::find_coordinator,
    routes::get_telemetry_subscriptions,
    routes::incremental_alter_configs,
    routes::init_producer_id,
    routes::list_groups,
    routes::list_offsets,
    routes::list_partition_reassignments,
    routes::metadata,
    routes::txn_offset_commit_request,
];

/// A request whose effect on the log makes the known watermarks stale.
#[derive(Debug, Clone)]
struct Forgetting<Svc> {
    inner: Svc,
    appends: Appends,
}

macro_rules! forgetting {
    ($req:ty, $resp:ty) => {
        impl<S: Storage, Svc: rama::Service<S, $req, Response = $resp, Error = tansu_storage::Error>> rama::Service<S, $req> for Forgetting<Svc> {
            type Response = $resp;
            type Error = tansu_storage::Error;

            async fn serve(&self, ctx: Context<S>, req: $req) -> Result<$resp, Self::Error> {
                let r = self.inner.serve(ctx, req).await;
                self.appends.forget();
                r
            }
        }
    };
}
forgetting!(DeleteRecordsRequest, DeleteRecordsResponse);
forgetting!(DeleteTopicsRequest, DeleteTopicsResponse);

/// A route of `service` for requests `Req` over `storage`, layered as tansu layers its own.
macro_rules! route {
    ($builder:expr, $req:ty, $storage:expr, $service:expr) => {{
        let storage = $storage;
        $builder.with_route(
            <$req>::KEY,
            (MapErrLayer::new(Error::from), MapStateLayer::new(move |_| storage), FrameRequestLayer::<$req>::new()).into_layer($service).boxed(),
        )
    }};
}

/// tansu's group coordinator, except that a group this process reads in-process (see
/// [`super::EmbeddedLog::claim`]) has no room for a Kafka member: its join is refused, or two
/// readers would each process every record.
#[derive(Debug, Clone)]
struct ClaimAwareCoordinator {
    inner: Controller<StorageContainer>,
    log: super::EmbeddedLog,
}

#[async_trait::async_trait]
impl Coordinator for ClaimAwareCoordinator {
    async fn join(
        &mut self,
        client_id: Option<&str>,
        group_id: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: Option<i32>,
        member_id: &str,
        group_instance_id: Option<&str>,
        protocol_type: &str,
        protocols: Option<&[JoinGroupRequestProtocol]>,
        reason: Option<&str>,
    ) -> Result<Body, Error> {
        if self.log.claimed(group_id) {
            warn!(group_id, client_id, "refused a Kafka client's join: this process reads the group in-process (run the stage in one place, or give it its own group)");
            return Ok(JoinGroupResponse::default()
                .throttle_time_ms(Some(0))
                .error_code(ErrorCode::GroupAuthorizationFailed.into())
                .generation_id(-1)
                .protocol_type(Some(protocol_type.to_string()))
                .protocol_name(None)
                .leader(String::new())
                .skip_assignment(Some(false))
                .member_id(member_id.to_string())
                .members(Some(Vec::new()))
                .into());
        }
        self.inner.join(client_id, group_id, session_timeout_ms, rebalance_timeout_ms, member_id, group_instance_id, protocol_type, protocols, reason).await
    }

    async fn sync(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Option<&[SyncGroupRequestAssignment]>,
    ) -> Result<Body, Error> {
        self.inner.sync(group_id, generation_id, member_id, group_instance_id, protocol_type, protocol_name, assignments).await
    }

    async fn heartbeat(&mut self, group_id: &str, generation_id: i32, member_id: &str, group_instance_id: Option<&str>) -> Result<Body, Error> {
        self.inner.heartbeat(group_id, generation_id, member_id, group_instance_id).await
    }

    async fn leave(&mut self, group_id: &str, member_id: Option<&str>, members: Option<&[MemberIdentity]>) -> Result<Body, Error> {
        self.inner.leave(group_id, member_id, members).await
    }

    async fn offset_commit(&mut self, detail: OffsetCommit<'_>) -> Result<Body, Error> {
        self.inner.offset_commit(detail).await
    }

    async fn offset_fetch(
        &mut self,
        group_id: Option<&str>,
        topics: Option<&[OffsetFetchRequestTopic]>,
        groups: Option<&[OffsetFetchRequestGroup]>,
        require_stable: Option<bool>,
    ) -> Result<Body, Error> {
        self.inner.offset_fetch(group_id, topics, groups, require_stable).await
    }
}

/// The route table of one connection.
fn routes(storage: &StorageContainer, groups: &ClaimAwareCoordinator, appends: &Appends, records: &super::LogRecords) -> Result<FrameRouteService<(), Error>, Error> {
    let mut b = FrameRouteService::<(), Error>::builder();
    for r in TANSU_ROUTES {
        b = r(b, storage.clone())?;
    }
    b = route!(b, ProduceRequest, storage.clone(), WatchedProduce { appends: appends.clone() })?;
    b = route!(b, FetchRequest, storage.clone(), WaitingFetch::new(appends.clone(), records.clone()))?;
    b = route!(b, DeleteRecordsRequest, storage.clone(), Forgetting { inner: DeleteRecordsService, appends: appends.clone() })?;
    b = route!(b, DeleteTopicsRequest, storage.clone(), Forgetting { inner: DeleteTopicsService, appends: appends.clone() })?;
    b = coordinator::services(b, groups.clone())?;
    auth::services(b)?.build().map_err(Into::into)
}

/// Serves the Kafka API on `listener` until `stop` resolves.
/// With `users`, a connection must pass SASL SCRAM as one of them ([`super::users`]) before
/// any request but ApiVersions and the SASL exchange itself.
pub async fn serve(
    listener: TcpListener,
    log: super::EmbeddedLog,
    cluster_id: &str,
    incarnation: uuid::Uuid,
    users: &[(String, crate::secret::Secret)],
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let authenticate = !users.is_empty();
    let storage = log.storage.clone();
    storage
        .register_broker(BrokerRegistrationRequest { broker_id: tansu_broker::NODE_ID, cluster_id: cluster_id.to_string(), incarnation_id: incarnation, rack: None })
        .await?;
    super::users::store(&storage, users).await?;
    let groups = ClaimAwareCoordinator { inner: Controller::with_storage(storage.clone())?, log: log.clone() };
    // One for every connection: a fetch waits on appends made through any of them.
    let appends = log.appends.clone();
    let mut maintenance = tokio::time::interval(MAINTENANCE);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "the embedded broker could not accept a connection");
                        continue;
                    }
                };
                stream.set_nodelay(true)?;
                let service = (
                    TcpContextLayer::new(TcpContext::default().cluster_id(Some(cluster_id.to_string()))),
                    TcpBytesLayer::default(),
                    BytesFrameLayer::default().with_sasl_config(if authenticate { Some(tansu_auth::configuration(storage.clone())?) } else { None }),
                )
                    .into_layer(routes(&storage, &groups, &appends, &log.records)?);
                connections.spawn(async move {
                    if let Err(e) = service.serve(Context::default(), stream).await {
                        debug!(%peer, error = ?e, "connection ended");
                    }
                });
            }
            _ = maintenance.tick() => {
                let storage = storage.clone();
                connections.spawn(async move {
                    if let Err(e) = storage.maintain(SystemTime::now()).await {
                        debug!(error = ?e, "log maintenance");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => break,
        }
    }
    connections.abort_all();
    Ok(())
}
