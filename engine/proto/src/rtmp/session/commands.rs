//! The commands a client sends to [`super::ServerSession`] (Adobe RTMP
//! specification 1.0, §7.2.1 NetConnection and §7.2.2 NetStream commands, plus
//! the FMLE commands `releaseStream`, `FCPublish`, `FCUnpublish`, `FCSubscribe`
//! that ffmpeg, OBS and Flash send), and their answers.

use super::super::amf0::Value;
use super::super::error::RtmpError;
use super::super::message::Command;
use super::{NetStream, Phase, PublishType, ServerSession, SessionEvent, StreamStatus};

/// Splits `name?query` (the query is what clients use for tokens).
fn split_query(s: &str) -> (String, Option<String>) {
    match s.split_once('?') {
        Some((n, q)) => (n.to_owned(), Some(q.to_owned())),
        None => (s.to_owned(), None),
    }
}

impl ServerSession {
    fn reply(&mut self, txn: f64, cmd: Command) {
        if txn != 0.0 {
            self.conn.send_command(0, &cmd);
        }
    }

    pub(super) fn status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.conn.send_command(stream_id, &Command::on_status(level, code, description));
    }

    pub(super) fn on_command(&mut self, stream_id: u32, cmd: Command) -> Result<(), RtmpError> {
        let txn = cmd.transaction_id;
        let name_arg = cmd.arg_str(0).unwrap_or_default().to_owned();
        match (self.phase, cmd.name.as_str()) {
            (Phase::WaitConnect, "connect") => self.on_connect(cmd),
            (_, "connect") => {
                self.reply(txn, Command::error(txn, "NetConnection.Connect.Rejected", "already connected"));
                Ok(())
            }
            (Phase::WaitConnect, _) => {
                self.reply(txn, Command::error(txn, "NetConnection.Call.Failed", "not connected"));
                Ok(())
            }
            (_, "createStream") => {
                if self.streams.len() >= self.config.max_streams {
                    let e = Command::error(txn, "NetConnection.Call.Failed", "too many streams");
                    self.reply(txn, e);
                    return Ok(());
                }
                // Ids count up from 1; after a wrap, skip ids still in use (at most
                // `max_streams` of them, so this ends quickly).
                let mut id = self.next_stream_id;
                while self.streams.contains_key(&id) {
                    id = id.checked_add(1).unwrap_or(1);
                }
                self.next_stream_id = id.checked_add(1).unwrap_or(1);
                self.streams.insert(id, NetStream { status: StreamStatus::Idle, name: String::new() });
                let r = Command::result(txn, Value::Null, vec![Value::Number(f64::from(id))]);
                self.reply(txn, r);
                Ok(())
            }
            (_, "publish") => {
                self.on_publish(stream_id, &cmd);
                Ok(())
            }
            (_, "play") => {
                self.on_play(stream_id, &cmd);
                Ok(())
            }
            (_, "deleteStream") => {
                let id = cmd.arg(0).and_then(Value::as_f64).unwrap_or(-1.0);
                if (1.0..=f64::from(u32::MAX)).contains(&id) {
                    self.end_stream(id as u32);
                    self.streams.remove(&(id as u32));
                }
                Ok(())
            }
            (_, "closeStream") => {
                self.end_stream(stream_id);
                Ok(())
            }
            (_, "FCUnpublish") => {
                let (name, _) = split_query(&name_arg);
                let found = self
                    .streams
                    .iter()
                    .find(|(_, s)| s.status == StreamStatus::Publishing && s.name == name)
                    .map(|(id, _)| *id);
                if let Some(id) = found {
                    self.end_stream(id);
                }
                self.reply(txn, Command::result(txn, Value::Null, vec![Value::Undefined]));
                let info = Value::object([
                    ("code", Value::string("NetStream.Unpublish.Success")),
                    ("description", Value::string(name_arg)),
                ]);
                self.conn.send_command(0, &Command::new("onFCUnpublish", 0.0, Value::Null, vec![info]));
                Ok(())
            }
            (_, "FCPublish") => {
                self.reply(txn, Command::result(txn, Value::Null, vec![Value::Undefined]));
                let info = Value::object([
                    ("code", Value::string("NetStream.Publish.Start")),
                    ("description", Value::string(name_arg)),
                ]);
                self.conn.send_command(0, &Command::new("onFCPublish", 0.0, Value::Null, vec![info]));
                Ok(())
            }
            (_, "FCSubscribe") => {
                self.reply(txn, Command::result(txn, Value::Null, vec![Value::Undefined]));
                let info = Value::object([
                    ("code", Value::string("NetStream.Play.Start")),
                    ("description", Value::string(name_arg)),
                ]);
                self.conn.send_command(0, &Command::new("onFCSubscribe", 0.0, Value::Null, vec![info]));
                Ok(())
            }
            (_, "releaseStream" | "FCUnsubscribe" | "_checkbw") => {
                self.reply(txn, Command::result(txn, Value::Null, vec![Value::Undefined]));
                Ok(())
            }
            (_, "getStreamLength") => {
                // Live streams have no length.
                self.reply(txn, Command::result(txn, Value::Null, vec![Value::Number(0.0)]));
                Ok(())
            }
            (_, "pause") => {
                let paused = cmd.arg(0).and_then(Value::as_bool).unwrap_or(true);
                if self.stream_status(stream_id) == Some(StreamStatus::Playing) {
                    let (code, text) = if paused {
                        ("NetStream.Pause.Notify", "Paused live")
                    } else {
                        ("NetStream.Unpause.Notify", "Unpaused live")
                    };
                    self.status(stream_id, "status", code, text);
                    self.events.push_back(SessionEvent::Paused { stream_id, paused });
                }
                Ok(())
            }
            // Answers and notifications from the peer, and per-stream switches
            // that live streaming ignores.
            (_, "_result" | "_error" | "onStatus" | "onBWDone" | "receiveAudio" | "receiveVideo") => Ok(()),
            (_, other) => {
                tracing::debug!(command = other, "unknown RTMP command");
                self.reply(txn, Command::error(txn, "NetConnection.Call.Failed", "unknown command"));
                Ok(())
            }
        }
    }

    /// `connect` (§7.2.1.1).
    fn on_connect(&mut self, cmd: Command) -> Result<(), RtmpError> {
        let obj = &cmd.command_object;
        let raw_app = obj.get_str("app").unwrap_or_default();
        let (app, app_query) = split_query(raw_app);
        self.app = app.trim_end_matches('/').to_owned();
        self.tc_url = obj.get_str("tcUrl").map(str::to_owned);
        self.object_encoding = obj.get_f64("objectEncoding").unwrap_or(0.0);
        self.connect_txn = cmd.transaction_id;
        self.connect_object = Some(cmd.command_object);
        self.phase = Phase::ConnectPending;
        self.events.push_back(SessionEvent::ConnectRequested {
            app: self.app.clone(),
            app_query,
            tc_url: self.tc_url.clone(),
        });
        Ok(())
    }

    /// `publish` (§7.2.2.6).
    fn on_publish(&mut self, stream_id: u32, cmd: &Command) {
        let raw = cmd.arg_str(0).unwrap_or_default();
        let (name, query) = split_query(raw);
        let Some(s) = self.streams.get_mut(&stream_id) else {
            self.status(stream_id, "error", "NetStream.Publish.Failed", "unknown stream id");
            return;
        };
        if s.status != StreamStatus::Idle {
            self.status(stream_id, "error", "NetStream.Publish.BadName", "stream is busy");
            return;
        }
        if name.is_empty() {
            self.status(stream_id, "error", "NetStream.Publish.BadName", "empty stream name");
            return;
        }
        s.status = StreamStatus::PublishPending;
        s.name = name.clone();
        self.events.push_back(SessionEvent::PublishRequested {
            stream_id,
            app: self.app.clone(),
            name,
            query,
            publish_type: PublishType::parse(cmd.arg_str(1)),
        });
    }

    /// `play` (§7.2.2.1).
    fn on_play(&mut self, stream_id: u32, cmd: &Command) {
        let raw = cmd.arg_str(0).unwrap_or_default();
        let (name, query) = split_query(raw);
        let Some(s) = self.streams.get_mut(&stream_id) else {
            self.status(stream_id, "error", "NetStream.Play.Failed", "unknown stream id");
            return;
        };
        if s.status != StreamStatus::Idle {
            self.status(stream_id, "error", "NetStream.Play.Failed", "stream is busy");
            return;
        }
        if name.is_empty() {
            self.status(stream_id, "error", "NetStream.Play.StreamNotFound", "empty stream name");
            return;
        }
        s.status = StreamStatus::PlayPending;
        s.name = name.clone();
        self.events.push_back(SessionEvent::PlayRequested { stream_id, app: self.app.clone(), name, query });
    }
}
