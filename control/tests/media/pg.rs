//! A PostgreSQL server of a test's own, for tests that run inside a network
//! namespace of their own (`unshare -n`), where the machine's server at
//! 127.0.0.1:5432 cannot be reached. `initdb` into a temporary directory and
//! `postgres` on 127.0.0.1:`port`, both as the `postgres` system user (PostgreSQL
//! refuses to run as root), trust auth, a database `test`; stopped by its PID on drop.
#![allow(dead_code)]

use std::os::unix::fs::chown;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OwnPostgres {
    child: Child,
    _dir: tempfile::TempDir,
}

/// The newest installed server's bin directory (Debian: /usr/lib/postgresql/<v>/bin).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries are needed (/usr/lib/postgresql): run scripts/setup")
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().expect("no PostgreSQL version under /usr/lib/postgresql").1
}

/// The uid and gid of the `postgres` system user.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "postgres"]).output().expect("run id");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a `postgres` system user")
    };
    (id("-u"), id("-g"))
}

fn as_postgres(program: PathBuf) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]).arg(program);
    c
}

impl OwnPostgres {
    pub fn start(port: u16) -> OwnPostgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = postgres_ids();
        chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let init = as_postgres(bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let child = as_postgres(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .arg("-k")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("postgres.log")).unwrap()))
            .spawn()
            .unwrap();
        // Stopped (by its PID) on drop, whatever happens below.
        let pg = OwnPostgres { child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let created = Command::new(bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-qc", "CREATE DATABASE test"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if created {
                return pg;
            }
            assert!(Instant::now() < deadline, "our PostgreSQL on port {port} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // A fast shutdown (SIGINT) lets the server take its backends down with it.
        // SAFETY: kill has no memory preconditions; the PID is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
