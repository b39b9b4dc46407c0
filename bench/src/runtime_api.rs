//! A fake Lambda Runtime API on 127.0.0.1 (std only): spawns a function binary pointed at it,
//! times exec → first `GET /2018-06-01/runtime/invocation/next`, optionally hands it one event and
//! reads the process's peak RSS (VmHWM) once it asks for the next one, then kills it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What one run of a function saw.
pub struct Run {
    /// exec → first `/next` request.
    pub cold_start: Duration,
    /// VmHWM (kB) when the first `/next` arrived: the init phase's peak.
    pub init_hwm_kb: u64,
    /// With an event: VmHWM (kB) after the invocation, and how it ended.
    pub invocation: Option<Invocation>,
}

pub struct Invocation {
    pub peak_hwm_kb: u64,
    /// From handing the event over to the function's response/error POST.
    pub took: Duration,
    /// `response: <body>` or `error: <body>`.
    pub result: String,
}

enum Msg {
    Next(Instant, TcpStream),
    Result(String),
}

/// One function process against a fresh fake Runtime API. `env` is the whole environment (cleared
/// first); stdout/stderr go to `log`.
pub fn run(
    bin: &Path,
    name: &str,
    env: &[(String, String)],
    event: Option<&[u8]>,
    log: &Path,
) -> Result<Run, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let stop = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let tx = tx.clone();
                    thread::spawn(move || serve_connection(conn, tx));
                }
            }
        })
    };
    let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .envs(env.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    let result = drive(&mut child, &rx, t0, name, event);
    let _ = child.kill();
    let _ = child.wait();
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(addr); // wakes the acceptor so it sees `stop`
    let _ = acceptor.join();
    result
}

fn drive(
    child: &mut Child,
    rx: &Receiver<Msg>,
    t0: Instant,
    name: &str,
    event: Option<&[u8]>,
) -> Result<Run, String> {
    let pid = child.id();
    let Msg::Next(first_at, mut conn) = recv(child, rx)? else {
        return Err("a result before any /next".into());
    };
    let cold_start = first_at - t0;
    let init_hwm_kb = vm_hwm_kb(pid)?;
    let Some(event) = event else {
        return Ok(Run {
            cold_start,
            init_hwm_kb,
            invocation: None,
        });
    };
    let handed = Instant::now();
    answer_next(&mut conn, name, event).map_err(|e| format!("answer /next: {e}"))?;
    let result = match recv(child, rx)? {
        Msg::Result(r) => r,
        Msg::Next(..) => return Err("/next again without a result".into()),
    };
    let took = handed.elapsed();
    // The function asks for its next event once it has answered: the invocation is over.
    match recv(child, rx)? {
        Msg::Next(..) => {}
        Msg::Result(_) => return Err("two results for one event".into()),
    }
    Ok(Run {
        cold_start,
        init_hwm_kb,
        invocation: Some(Invocation {
            peak_hwm_kb: vm_hwm_kb(pid)?,
            took,
            result,
        }),
    })
}

/// The next message, failing when the child exits or nothing comes for 15 min (Lambda's limit).
fn recv(child: &mut Child, rx: &Receiver<Msg>) -> Result<Msg, String> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => return Ok(m),
            Err(RecvTimeoutError::Disconnected) => return Err("runtime API closed".into()),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the function exited ({status}); see its log"));
        }
        if Instant::now() > deadline {
            return Err("no request from the function for 15 min".into());
        }
    }
}

fn vm_hwm_kb(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/<pid>/status".into())
}

/// HTTP/1.1 keep-alive: one request at a time per connection (the runtime client never pipelines).
fn serve_connection(conn: TcpStream, tx: Sender<Msg>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let at = Instant::now();
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            // Answered by the driver, when it chooses to.
            let _ = tx.send(Msg::Next(at, conn.try_clone().unwrap()));
        } else if method == "POST" && (path.ends_with("/response") || path.ends_with("/error")) {
            let kind = path.rsplit('/').next().unwrap();
            let body = String::from_utf8_lossy(&body);
            // Queued before the 202: once answered, the function's next /next may come on
            // another connection, whose thread must not overtake this result.
            let _ = tx.send(Msg::Result(format!("{kind}: {body}")));
            let _ = respond(&mut conn, "202 Accepted", &[], br#"{"status":"OK"}"#);
        } else {
            let _ = respond(&mut conn, "404 Not Found", &[], b"{}");
        }
    }
}

fn answer_next(conn: &mut TcpStream, name: &str, event: &[u8]) -> std::io::Result<()> {
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(900);
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
    respond(
        conn,
        "200 OK",
        &[
            (
                "Lambda-Runtime-Aws-Request-Id",
                "bench-request-1".to_owned(),
            ),
            (
                "Lambda-Runtime-Deadline-Ms",
                deadline.as_millis().to_string(),
            ),
            ("Lambda-Runtime-Invoked-Function-Arn", arn),
            (
                "Lambda-Runtime-Trace-Id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0".to_owned(),
            ),
        ],
        event,
    )
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}
