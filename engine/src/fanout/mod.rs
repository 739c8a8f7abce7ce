//! Getting a stream's frames to its players on a shard: per-player queues, cohorts
//! of players in step, flush lanes; and the HLS viewer sessions.

pub mod hls_viewers;
pub mod player;
