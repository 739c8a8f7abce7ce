//! The recordings' disk writer: one thread that creates, appends to and closes the
//! files the home streams' recorders describe ([`RecordOp`]), so that no shard
//! ever waits for the disk. The shards queue operations without blocking; what is
//! queued is bounded in bytes (all streams together): a recording whose disk cannot
//! keep up is stopped, the live stream never is. A write error (disk full, a
//! vanished directory) stops that recording: its file keeps what was written, the
//! `failed` flag tells its recorder to stop, and the control plane hears of it.

use crate::link::{EngineEvent, EventSink, RecordingFile, RecordingSummary};
use crate::proto::http::StreamName;
use crate::stream::record::RecordOp;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

enum Job {
    Op {
        stream: StreamName,
        op: RecordOp,
    },
    /// Stop `stream`'s recording with this error (the queue was over its bound).
    Abort {
        stream: StreamName,
        reason: &'static str,
    },
}

/// The shards' handle on the writer thread.
pub struct DiskWriter {
    tx: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    /// Streams whose recording was aborted for a full queue (until their next Open).
    aborted: std::sync::Mutex<std::collections::HashSet<StreamName>>,
}

impl DiskWriter {
    /// Starts the writer thread for recordings under `root`.
    pub fn start(root: PathBuf, limit: usize, events: EventSink) -> std::io::Result<DiskWriter> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        std::thread::Builder::new()
            .name("recording-writer".into())
            .spawn(move || Writer { root, events, files: HashMap::new(), queued: q }.run(rx))?;
        Ok(DiskWriter { tx, queued, limit, aborted: Default::default() })
    }

    /// Queues one operation of `stream`'s recording (never blocks).
    pub fn submit(&self, stream: &StreamName, op: RecordOp) {
        let len = match &op {
            RecordOp::Write { data } => data.len(),
            _ => 0,
        };
        {
            let mut aborted = self.aborted.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(op, RecordOp::Open { .. }) {
                aborted.remove(stream);
            } else if aborted.contains(stream) {
                return;
            }
            if len > 0 && self.queued.load(Ordering::Relaxed) + len > self.limit {
                aborted.insert(stream.clone());
                tracing::warn!(stream = %stream, queued = self.queued.load(Ordering::Relaxed), "recording stopped: the disk is not keeping up");
                let _ = self
                    .tx
                    .send(Job::Abort { stream: stream.clone(), reason: "the disk did not keep up with the stream" });
                return;
            }
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        let _ = self.tx.send(Job::Op { stream: stream.clone(), op });
    }

    /// Bytes waiting for the disk now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

struct OpenFile {
    file: File,
    info: RecordingFile,
    failed: Arc<AtomicBool>,
    bytes: u64,
}

struct Writer {
    root: PathBuf,
    events: EventSink,
    files: HashMap<StreamName, OpenFile>,
    queued: Arc<AtomicUsize>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            match job {
                Job::Op { stream, op } => self.op(stream, op),
                Job::Abort { stream, reason } => {
                    if let Some(f) = self.files.remove(&stream) {
                        self.fail(f, reason.to_string());
                    }
                }
            }
        }
        // The engine is gone: close what is open as it is.
        for (_, f) in std::mem::take(&mut self.files) {
            self.close(f, RecordingSummary { error: Some("the server stopped".into()), ..Default::default() });
        }
    }

    fn op(&mut self, stream: StreamName, op: RecordOp) {
        match op {
            RecordOp::Open { mut file, failed } => {
                if let Some(old) = self.files.remove(&stream) {
                    self.close(old, RecordingSummary::default());
                }
                match create(&self.root, &file.path) {
                    Ok((f, path)) => {
                        file.path = path;
                        tracing::info!(stream = %stream, path = %file.path, "recording to a new file");
                        send(&self.events, EngineEvent::RecordingOpened { file: file.clone() });
                        self.files.insert(stream, OpenFile { file: f, info: file, failed, bytes: 0 });
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        tracing::error!(stream = %stream, path = %file.path, error = %e, "recording not started: cannot create its file");
                        let summary = RecordingSummary {
                            error: Some(format!("cannot create the file: {e}")),
                            ..Default::default()
                        };
                        send(&self.events, EngineEvent::RecordingClosed { file, summary });
                    }
                }
            }
            RecordOp::Write { data } => {
                self.queued.fetch_sub(data.len(), Ordering::Relaxed);
                let Some(f) = self.files.get_mut(&stream) else { return };
                match f.file.write_all(&data) {
                    Ok(()) => f.bytes += data.len() as u64,
                    Err(e) => {
                        let f = self.files.remove(&stream).expect("just found");
                        self.fail(f, format!("write failed: {e}"));
                    }
                }
            }
            RecordOp::Close { summary } => {
                if let Some(f) = self.files.remove(&stream) {
                    self.close(f, summary);
                }
            }
        }
    }

    fn fail(&self, f: OpenFile, error: String) {
        f.failed.store(true, Ordering::Relaxed);
        tracing::error!(stream = %f.info.stream_name, path = %f.info.path, error = %error, "recording stopped; the stream goes on");
        self.close(f, RecordingSummary { error: Some(error), ..Default::default() });
    }

    fn close(&self, f: OpenFile, mut summary: RecordingSummary) {
        if let Err(e) = f.file.sync_data() {
            tracing::warn!(path = %f.info.path, error = %e, "recording: sync at close failed");
        }
        summary.bytes = f.bytes;
        send(&self.events, EngineEvent::RecordingClosed { file: f.info, summary });
    }
}

/// Creates `root/rel` (and its directory) without replacing an existing file: a
/// taken name gets `.1`, `.2`... before its extension. Returns the path used.
fn create(root: &Path, rel: &str) -> std::io::Result<(File, String)> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (stem, ext) = rel.rsplit_once('.').unwrap_or((rel, ""));
    for n in 0..100u32 {
        let candidate = if n == 0 { rel.to_string() } else { format!("{stem}.{n}.{ext}") };
        match std::fs::OpenOptions::new().write(true).create_new(true).open(root.join(&candidate)) {
            Ok(f) => return Ok((f, candidate)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "every name for this file is taken"))
}

/// Recording events must reach the control plane (they are its record of the
/// files): a full link is retried for a while, off the media path.
fn send(events: &EventSink, mut ev: EngineEvent) {
    for _ in 0..200 {
        match events.try_send(ev) {
            Ok(()) => return,
            Err(back) => {
                ev = back;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    tracing::error!(event = ?ev, "control link full for 10 s; recording event dropped");
}
