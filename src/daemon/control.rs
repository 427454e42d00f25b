// SPDX-License-Identifier: GPL-2.0-or-later
//! The control socket: a root-only Unix stream socket per instance. A client
//! writes one request line and reads one JSON reply, then the server closes.
//!
//! Root-only twice over: the socket lives in a 0700 directory with mode
//! 0600, and the server checks the peer's uid (SO_PEERCRED) so a socket
//! exposed by a wrong umask still refuses strangers.

use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

/// Default directory for control sockets.
pub const RUN_DIR: &str = "/run/ldirector";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the director is not running (no control socket at {0})")]
    NotRunning(PathBuf),
    #[error("permission denied on {0}: the control socket is root-only")]
    PermissionDenied(PathBuf),
    #[error("bad reply from the director: {0}")]
    BadReply(String),
}

/// Requests a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    /// The full status report.
    Status,
    /// Reload the config now; the reply says whether it was accepted.
    Reload,
}

impl Request {
    fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "status" => Some(Request::Status),
            "reload" => Some(Request::Reload),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Reload => "reload",
        }
    }
}

/// The socket path of the instance running `config`.
pub fn socket_path(run_dir: &Path, config: &Path) -> PathBuf {
    let base = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ldirectord.cf".to_owned());
    run_dir.join(format!("{base}.sock"))
}

/// Binds the socket, replacing a stale one left by a crash.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    if StdUnixStream::connect(path).is_ok() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another director answers on this socket",
        )));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Serves requests until `stop` is cancelled. `handle` produces the JSON
/// reply for a request; it runs on the server task, so it must be quick
/// (read shared state, or hand off and await).
pub async fn serve<F, Fut>(listener: UnixListener, stop: CancellationToken, handle: F)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let our_uid = nix::unistd::geteuid().as_raw();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let allowed = stream
            .peer_cred()
            .map(|c| c.uid() == 0 || c.uid() == our_uid)
            .unwrap_or(false);
        if !allowed {
            continue;
        }
        let (rd, mut wr) = stream.into_split();
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(2),
            AsyncBufReader::new(rd.take(256)).read_line(&mut line),
        )
        .await;
        let reply = match (read, Request::parse(&line)) {
            (Ok(Ok(_)), Some(req)) => handle(req).await,
            _ => "{\"error\":\"unknown request\"}".to_owned(),
        };
        let _ = wr.write_all(reply.as_bytes()).await;
        let _ = wr.write_all(b"\n").await;
        let _ = wr.shutdown().await;
    }
}

/// Sends one request and returns the raw JSON reply (blocking; for CLIs).
pub fn request(path: &Path, req: Request, timeout: Duration) -> Result<String, ControlError> {
    let mut stream = StdUnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ControlError::NotRunning(path.to_owned())
        }
        std::io::ErrorKind::PermissionDenied => ControlError::PermissionDenied(path.to_owned()),
        _ => ControlError::Io {
            path: path.to_owned(),
            source: e,
        },
    })?;
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream
        .write_all(format!("{}\n", req.as_str()).as_bytes())
        .map_err(io)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .take(64 << 20)
        .read_to_string(&mut reply)
        .map_err(io)?;
    if reply.trim().is_empty() {
        return Err(ControlError::BadReply("empty reply".into()));
    }
    Ok(reply)
}

/// Reads the status report of the instance behind `path`.
pub fn status(path: &Path) -> Result<super::status::StatusReport, ControlError> {
    let reply = request(path, Request::Status, Duration::from_secs(5))?;
    serde_json::from_str(reply.trim()).map_err(|e| ControlError::BadReply(e.to_string()))
}

/// Every control socket in `run_dir` (one per running instance).
pub fn sockets(run_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_permissions() {
        let dir = std::env::temp_dir().join(format!("ldir-ctl-{}", std::process::id()));
        let path = socket_path(&dir, Path::new("/etc/ha.d/web.cf"));
        assert!(path.ends_with("web.cf.sock"));
        let listener = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, stop.clone(), |req| async move {
            format!("{{\"got\":\"{}\"}}", req.as_str())
        }));
        let p = path.clone();
        let reply = tokio::task::spawn_blocking(move || {
            request(&p, Request::Reload, Duration::from_secs(2))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(reply.trim(), "{\"got\":\"reload\"}");
        assert_eq!(sockets(&dir), vec![path.clone()]);
        // A second director on the same socket is refused while one answers.
        assert!(bind(&path).is_err());
        stop.cancel();
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let gone = request(&path, Request::Status, Duration::from_secs(1));
        assert!(matches!(gone, Err(ControlError::NotRunning(_))));
    }
}
