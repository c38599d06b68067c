//! A three-node nats-server JetStream cluster on loopback, for tests that kill and restart
//! nodes: each node is a [`NatsServer`] (random client port, temporary store) with its own
//! `server_name`, a random route port with routes to the other two, and a monitoring port whose
//! `/jsz` tells which node leads a stream and how far each node's copy has got.

use std::time::Duration;

use serde_json::Value;

use crate::{NatsServer, free_port, wait_for};

/// Nodes in the cluster: the smallest JetStream cluster that survives the loss of one.
pub const NODES: usize = 3;

/// The `--cluster_name` of every node.
pub const CLUSTER_NAME: &str = "sdash-test";

struct Node {
    server: NatsServer,
    name: String,
    monitor_port: u16,
    running: bool,
}

/// The cluster, killed on drop. Nodes are addressed by index, `0..NODES`.
pub struct NatsCluster {
    nodes: Vec<Node>,
    logs: tempfile::TempDir,
}

/// A stream as the cluster sees it: who leads it and how far each node's copy has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReplicas {
    /// The node leading the stream.
    pub leader: usize,
    /// Per node: whether the leader counts its copy as current (the leader's own is).
    pub current: [bool; NODES],
    /// Per node: the last sequence of its own copy (`None`: the node is down or holds none).
    pub last_seq: [Option<u64>; NODES],
}

impl StreamReplicas {
    /// Every node's copy is current and at the leader's last sequence.
    pub fn in_sync(&self) -> bool {
        let leader_seq = self.last_seq[self.leader];
        self.current.iter().all(|c| *c) && self.last_seq.iter().all(|s| *s == leader_seq)
    }
}

impl NatsCluster {
    /// Starts three nodes and waits until they have elected a JetStream meta leader (only then
    /// can a stream be created).
    pub async fn start() -> NatsCluster {
        let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for node logs: {e}"));
        let route_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let mut nodes = Vec::with_capacity(NODES);
        for (i, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let monitor_port = free_port();
            let routes: Vec<String> = route_ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("nats://127.0.0.1:{p}"))
                .collect();
            let log = logs.path().join(format!("{name}.log"));
            let args = [
                "--server_name".to_owned(),
                name.clone(),
                "--cluster_name".to_owned(),
                CLUSTER_NAME.to_owned(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{route_port}"),
                "--routes".to_owned(),
                routes.join(","),
                "-m".to_owned(),
                monitor_port.to_string(),
                "-l".to_owned(),
                log.display().to_string(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(Node {
                server: NatsServer::start_with(&args),
                name,
                monitor_port,
                running: true,
            });
        }
        let cluster = NatsCluster { nodes, logs };
        for node in 0..NODES {
            cluster.wait_for_meta_leader(node).await;
        }
        cluster
    }

    /// Every node's client URL, comma separated (the services' `--nats-url`).
    pub fn urls(&self) -> String {
        (0..NODES)
            .map(|n| self.url(n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's client URL.
    pub fn url(&self, node: usize) -> String {
        self.nodes[node].server.url()
    }

    /// One node's `server_name` (`n1`, `n2`, `n3`).
    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The node whose client port is `port` (to tell which node a client is connected to).
    pub fn node_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.server.port() == port)
    }

    pub fn is_running(&self, node: usize) -> bool {
        self.nodes[node].running
    }

    /// Kills one node with SIGKILL; its store stays for [`NatsCluster::restart`].
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].server.kill();
        self.nodes[node].running = false;
    }

    /// Starts a node again with the same ports and store, and waits until it accepts clients
    /// and, when a majority of the nodes runs, until it is back in the cluster (it knows the
    /// meta leader; alone it cannot).
    pub async fn restart(&mut self, node: usize) {
        self.nodes[node].server.restart();
        self.nodes[node].running = true;
        if self.nodes.iter().filter(|n| n.running).count() > NODES / 2 {
            self.wait_for_meta_leader(node).await;
        }
    }

    /// The end of one node's log (for failure messages).
    pub fn log_tail(&self, node: usize, lines: usize) -> String {
        let path = self
            .logs
            .path()
            .join(format!("{}.log", self.nodes[node].name));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The node leading `stream` now, if one does.
    pub async fn leader_of(&self, stream: &str) -> Option<usize> {
        self.stream(stream).await.map(|s| s.leader)
    }

    /// `stream` as the running nodes report it on `/jsz`: `None` while no node (or more than
    /// one) says it leads the stream.
    pub async fn stream(&self, stream: &str) -> Option<StreamReplicas> {
        let mut leaders = Vec::new();
        let mut current = [false; NODES];
        let mut last_seq = [None; NODES];
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.running {
                continue;
            }
            let Some(detail) = self.stream_detail(i, stream).await else {
                continue;
            };
            last_seq[i] = detail["state"]["last_seq"].as_u64();
            if detail["cluster"]["leader"].as_str() != Some(node.name.as_str()) {
                continue;
            }
            // Only the leader knows whether the others keep up.
            leaders.push(i);
            current = [false; NODES];
            current[i] = true;
            for replica in detail["cluster"]["replicas"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let Some(j) = self
                    .nodes
                    .iter()
                    .position(|n| replica["name"].as_str() == Some(n.name.as_str()))
                else {
                    continue;
                };
                current[j] = replica["current"].as_bool() == Some(true)
                    && replica["offline"].as_bool() != Some(true);
            }
        }
        match leaders.as_slice() {
            [leader] => Some(StreamReplicas {
                leader: *leader,
                current,
                last_seq,
            }),
            _ => None,
        }
    }

    /// Waits until `stream` has a leader and every node's copy is current and at the leader's
    /// last sequence; returns the last state seen, as the error when it never got there.
    pub async fn wait_until_in_sync(
        &self,
        stream: &str,
        timeout: Duration,
    ) -> Result<StreamReplicas, Option<StreamReplicas>> {
        let synced = wait_for(timeout, || async {
            self.stream(stream).await.filter(StreamReplicas::in_sync)
        })
        .await;
        match synced {
            Some(s) => Ok(s),
            None => Err(self.stream(stream).await),
        }
    }

    /// Waits until `stream` has a leader among the running nodes.
    pub async fn wait_for_leader(&self, stream: &str, timeout: Duration) -> Option<usize> {
        wait_for(timeout, || self.leader_of(stream)).await
    }

    /// The `stream_detail` entry of `stream` in one node's `/jsz`.
    async fn stream_detail(&self, node: usize, stream: &str) -> Option<Value> {
        let jsz = self.jsz(node, "accounts=true&streams=true").await?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|s| s["name"].as_str() == Some(stream))
            .cloned()
    }

    async fn wait_for_meta_leader(&self, node: usize) {
        let known = wait_for(Duration::from_secs(20), || async {
            let jsz = self.jsz(node, "").await?;
            let leader = jsz["meta_cluster"]["leader"].as_str()?;
            (!leader.is_empty()).then_some(())
        })
        .await;
        assert!(
            known.is_some(),
            "node {} found no JetStream meta leader within 20 s; its log:\n{}",
            self.name(node),
            self.log_tail(node, 30)
        );
    }

    /// One node's `/jsz?<query>`, parsed.
    async fn jsz(&self, node: usize, query: &str) -> Option<Value> {
        let port = self.nodes[node].monitor_port;
        let body = tokio::time::timeout(
            Duration::from_secs(2),
            http_get(port, &format!("/jsz?{query}")),
        )
        .await
        .ok()??;
        serde_json::from_slice(&body).ok()
    }
}

/// The body of `GET <path>` on 127.0.0.1:`port` (HTTP/1.0: the server closes after the body).
async fn http_get(port: u16, path: &str) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = response.split(|b| *b == b' ').nth(1)?;
    (status == b"200").then(|| response[head_end + 4..].to_vec())
}
