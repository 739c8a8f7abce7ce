//! The shell's own system calls (`sys`) and the players' input watch (an epoll set
//! swept by the flush tick).

pub mod input_watch;
pub mod sys;
