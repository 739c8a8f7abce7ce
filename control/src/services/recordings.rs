//! Recordings: which broadcasts are recorded (a room's `record`), the quotas, the
//! files' rows (from the engine's RecordingOpened/Closed events), their HLS VOD
//! playlists and deleting them. The engine writes the files; this side keeps their
//! record true through crashes: at start-up a file still marked "recording" is
//! scanned and closed with what it really holds.

use super::store_err;
use crate::app::AppState;
use crate::config::RecordFormat;
use crate::error::{AppError, AppResult};
use crate::store::{Recording, RecordingEnd, Room, RoomStatus};
use engine::link::{RecordSpec, RecordingFile, RecordingSummary, RoomId};
use engine::proto::mp4::Scan;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The placeholder for the media URI in a stored playlist (each request puts its
/// own URI there, with its token when the room is private).
const URI_MARK: &str = "{{uri}}";

pub fn recording_json(r: &Recording) -> Value {
    json!({
        "id": r.id,
        "room_id": r.room_id,
        "broadcast_id": r.broadcast_id,
        "format": r.format,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration_secs": r.duration_ms as f64 / 1000.0,
        "size_bytes": r.size_bytes,
        "codecs": r.codecs,
        "error": r.error,
        "file": format!("/api/v1/recordings/{}/media.{}", r.id, r.format),
        "playlist": (r.format == "mp4").then(|| format!("/api/v1/recordings/{}/index.m3u8", r.id)),
    })
}

/// A limit in MiB as bytes; 0 is no limit.
fn limit_bytes(mb: u64) -> u64 {
    if mb == 0 { u64::MAX } else { mb.saturating_mul(1 << 20) }
}

impl AppState {
    fn recording_root(&self) -> Option<PathBuf> {
        (!self.cfg.recording.path.is_empty()).then(|| PathBuf::from(&self.cfg.recording.path))
    }

    /// The file of a recording on disk (its path is ours: stream name and label).
    pub fn recording_file(&self, r: &Recording) -> AppResult<PathBuf> {
        let root = self.recording_root().ok_or_else(|| AppError::not_found("recording is off on this server"))?;
        if r.path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(AppError::internal(format!("recording {} has a bad path", r.id)));
        }
        Ok(root.join(&r.path))
    }

    /// Sets whether the room records; a live room starts or stops recording now.
    pub async fn set_record(&self, id: i64, user_id: i64, record: bool) -> AppResult<Room> {
        self.owned_room(id, user_id).await?;
        if record && self.recording_root().is_none() {
            return Err(AppError::field("record", "recording is off on this server (recording.path is empty)"));
        }
        let room = self
            .store
            .set_room_record(id, record)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::not_found("room not found"))?;
        if room.status == RoomStatus::Live {
            self.apply_recording(&room).await;
        }
        Ok(room)
    }

    /// Tells the engine whether to record the live room's stream (a recording of
    /// the same broadcast goes on untouched).
    pub async fn apply_recording(&self, room: &Room) {
        let Some(engine) = &self.engine else { return };
        let Some(stream) = engine::proto::http::StreamName::parse(&room.stream_name) else { return };
        let spec = match (room.record, room.broadcast_id) {
            (true, Some(broadcast_id)) => self.record_spec(room, broadcast_id).await,
            _ => None,
        };
        engine.record(stream, spec);
    }

    async fn record_spec(&self, room: &Room, broadcast_id: i64) -> Option<RecordSpec> {
        self.recording_root()?;
        let rc = &self.cfg.recording;
        // What is left of the room's and the server's quotas.
        let used = |r: Option<i64>| async move { self.store.recording_bytes(r).await.map(|b| b.max(0) as u64) };
        let (room_used, all_used) = match (used(Some(room.id)).await, used(None).await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(room = room.id, error = %e, "recording not started: quotas unreadable");
                return None;
            }
        };
        let budget = limit_bytes(rc.room_quota_mb)
            .saturating_sub(room_used)
            .min(limit_bytes(rc.total_quota_mb).saturating_sub(all_used));
        if budget == 0 {
            tracing::warn!(room = room.id, "recording not started: the recording quota is used up");
            return None;
        }
        let start = room.started_at.unwrap_or_else(chrono::Utc::now);
        Some(RecordSpec {
            room_id: RoomId(room.id),
            broadcast_id,
            label: start.format("%Y%m%dT%H%M%SZ").to_string(),
            format: match rc.format {
                RecordFormat::Mp4 => engine::link::RecordFormat::Mp4,
                RecordFormat::Flv => engine::link::RecordFormat::Flv,
            },
            max_file_duration: Duration::from_secs(rc.max_file_secs),
            max_file_bytes: limit_bytes(rc.max_file_mb),
            budget_bytes: budget,
        })
    }

    /// The engine created a recording file.
    pub async fn recording_opened(&self, file: &RecordingFile) -> AppResult<()> {
        let format = file.format.extension();
        let res = self
            .store
            .create_recording(file.room_id.0, Some(file.broadcast_id), file.stream_name.as_str(), &file.path, format)
            .await;
        match res {
            Ok(_) | Err(crate::store::StoreError::Duplicate(_)) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// The engine closed a recording file: its row gets what it holds, and an MP4
    /// gets its playlist beside it.
    pub async fn recording_closed(&self, file: &RecordingFile, summary: &RecordingSummary) -> AppResult<()> {
        if let (Some(index), Ok(root)) = (&summary.index, self.recording_root().ok_or(())) {
            write_playlist(root.join(&file.path), index.clone()).await;
        }
        let end = RecordingEnd {
            status: if summary.error.is_some() { "failed" } else { "ready" }.into(),
            duration_ms: summary.duration_ms as i64,
            size_bytes: summary.bytes as i64,
            codecs: summary.codecs.clone(),
            error: summary.error.clone(),
        };
        // A file that failed before its row was made (it could not be created).
        let mut row = self.store.finish_recording(&file.path, &end).await.map_err(store_err)?;
        if row.is_none() {
            self.recording_opened(file).await?;
            row = self.store.finish_recording(&file.path, &end).await.map_err(store_err)?;
        }
        tracing::info!(room = file.room_id.0, path = %file.path, bytes = summary.bytes, duration_ms = summary.duration_ms, error = ?summary.error, "recording file closed");
        // `recording.ready` for every closed file, a failed one too (its `status`
        // and `error` say so; what it holds plays).
        if let Some(rec) = &row {
            self.hooks.emit(file.room_id.0, "recording.ready", json!({ "recording": recording_json(rec) }));
        }
        if let Some(root) = self.recording_root() {
            let app = self.cfg.rtmp.apps.first().map(String::as_str).unwrap_or("live");
            // Absolute, as nginx-rtmp sends it (the receiver runs elsewhere).
            let path = root.join(&file.path);
            let path = std::path::absolute(&path).unwrap_or(path);
            self.hooks.record_done(app, file.stream_name.as_str(), &path.to_string_lossy());
        }
        Ok(())
    }

    /// At start-up: files a crash left "recording" are scanned and closed with
    /// what they hold (an MP4 plays up to its last complete fragment).
    pub async fn reconcile_recordings(&self) {
        let Some(root) = self.recording_root() else { return };
        let rows = match self.store.unfinished_recordings().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read unfinished recordings");
                return;
            }
        };
        for r in rows {
            // In a cluster another node may be writing it (its room is live there).
            if self.cluster.is_some()
                && matches!(self.store.room_by_id(r.room_id).await, Ok(Some(room)) if room.status == RoomStatus::Live)
            {
                continue;
            }
            let path = root.join(&r.path);
            let mp4 = r.format == "mp4";
            let scanned = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Option<Scan>)> {
                let data = std::fs::read(&path)?;
                let scan = if mp4 { engine::proto::mp4::scan(&data).ok() } else { None };
                let mut size = data.len() as u64;
                if let Some(s) = &scan {
                    // A fragment cut by the crash goes: players refuse a file whose
                    // last box is incomplete.
                    if s.valid_len < size {
                        std::fs::OpenOptions::new().write(true).open(&path)?.set_len(s.valid_len)?;
                        size = s.valid_len;
                    }
                    std::fs::write(playlist_path(&path), playlist_template(s))?;
                }
                Ok((size, scan))
            })
            .await;
            let end = match scanned {
                Ok(Ok((size, scan))) => RecordingEnd {
                    status: "ready".into(),
                    duration_ms: scan.as_ref().map_or(0, |s| s.fragments.iter().map(|f| f.duration_ms).sum::<u64>())
                        as i64,
                    size_bytes: size as i64,
                    codecs: None,
                    error: Some("the server stopped while recording; the file holds what was written".into()),
                },
                Ok(Err(e)) => RecordingEnd {
                    status: "failed".into(),
                    error: Some(format!("file unreadable after a restart: {e}")),
                    ..Default::default()
                },
                Err(e) => {
                    tracing::warn!(error = %e, "recording scan did not finish");
                    continue;
                }
            };
            match self.store.finish_recording(&r.path, &end).await {
                Ok(_) => {
                    tracing::warn!(recording = r.id, path = %r.path, duration_ms = end.duration_ms, "recording left open by an earlier run closed")
                }
                Err(e) => tracing::warn!(recording = r.id, error = %e, "cannot close a recording left open"),
            }
        }
    }

    pub async fn recording(&self, id: i64) -> AppResult<Recording> {
        self.store
            .recording_by_id(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::not_found("recording not found"))
    }

    pub async fn recordings(&self, room_id: i64, page: u32, page_size: u32) -> AppResult<(Vec<Recording>, i64)> {
        self.store.list_recordings(room_id, page, page_size).await.map_err(store_err)
    }

    /// Every file of a room's recordings (media and playlists), for deleting the room.
    pub async fn room_recording_files(&self, room_id: i64) -> AppResult<Vec<PathBuf>> {
        let mut out = vec![];
        for page in 1.. {
            let (items, total) = self.recordings(room_id, page, 100).await?;
            for r in &items {
                if let Ok(p) = self.recording_file(r) {
                    out.push(playlist_path(&p));
                    out.push(p);
                }
            }
            if items.is_empty() || (page as i64) * 100 >= total {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes a finished recording (file, playlist, row). One being written is a 409.
    pub async fn delete_recording(&self, r: &Recording) -> AppResult<()> {
        if r.status == "recording" {
            return Err(AppError::conflict("the recording is still being written; stop it first (record: false)"));
        }
        let path = self.recording_file(r)?;
        for p in [playlist_path(&path), path] {
            if let Err(e) = tokio::fs::remove_file(&p).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(AppError::internal(format!("cannot delete {}: {e}", p.display())));
            }
        }
        self.store.delete_recording(r.id).await.map_err(store_err)?;
        Ok(())
    }

    /// An MP4 recording's HLS VOD playlist, its media at `uri`.
    pub async fn recording_playlist(&self, r: &Recording, uri: &str) -> AppResult<String> {
        if r.format != "mp4" {
            return Err(AppError::not_found("only MP4 recordings have a playlist"));
        }
        if r.status == "recording" {
            return Err(AppError::conflict("the recording is still being written"));
        }
        let path = playlist_path(&self.recording_file(r)?);
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|_| AppError::not_found("this recording has no playlist (it holds no complete fragment)"))?;
        Ok(text.replace(URI_MARK, uri))
    }
}

fn playlist_path(file: &std::path::Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".m3u8");
    PathBuf::from(p)
}

fn playlist_template(index: &Scan) -> String {
    engine::proto::mp4::vod_playlist(index, URI_MARK)
}

async fn write_playlist(file: PathBuf, index: Scan) {
    if index.fragments.is_empty() {
        return;
    }
    let res =
        tokio::task::spawn_blocking(move || std::fs::write(playlist_path(&file), playlist_template(&index))).await;
    if let Ok(Err(e)) = res {
        tracing::warn!(error = %e, "cannot write a recording's playlist");
    }
}
