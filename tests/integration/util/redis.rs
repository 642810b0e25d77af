//! Redis: private servers and a small RESP client.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- private Redis

/// A throwaway redis-server on a free port (its own 16 dbs), stopped on drop.
pub struct PrivateRedis {
    /// Its port on 127.0.0.1 (the TLS port when started with TLS).
    pub port: u16,
    /// Folder with its files (and TLS certificates).
    pub dir: tempfile::TempDir,
    child: std::process::Child,
    password: Option<String>,
    tls: bool,
}

impl PrivateRedis {
    /// A plain server without a password.
    pub fn start() -> PrivateRedis {
        Self::start_with(&[], None, false)
    }

    /// A server with extra arguments, an optional `requirepass`, and optionally TLS only.
    pub fn start_with(extra: &[&str], password: Option<&str>, tls: bool) -> PrivateRedis {
        let dir = tempfile::Builder::new()
            .prefix("dbkeep-redis-")
            .tempdir()
            .unwrap();
        if tls {
            make_certs(dir.path());
        }
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(extra)
        .stdout(std::process::Stdio::null());
        if tls {
            let p = dir.path();
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(p.join("server.crt"))
            .arg("--tls-key-file")
            .arg(p.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(p.join("ca.crt"));
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        if let Some(pw) = password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd.spawn().expect("redis-server");
        let server = PrivateRedis {
            port,
            dir,
            child,
            password: password.map(str::to_string),
            tls,
        };
        for _ in 0..200 {
            if server.cli(&["PING"]).trim() == "PONG" {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {port}");
    }

    /// Runs one redis-cli command (text output).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.tls {
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(self.dir.path().join("ca.crt"));
        }
        if let Some(pw) = &self.password {
            cmd.env("REDISCLI_AUTH", pw);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A protocol client (plain servers only).
    pub fn client(&self) -> Resp {
        let mut c = Resp::connect(self.port);
        if let Some(pw) = &self.password {
            c.call(&[b"AUTH", pw.as_bytes()]);
        }
        c
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=dbkeep test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

/// A minimal RESP2 client for test setup and checks.
pub struct Resp {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

/// A reply, flattened for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// +status or :int, as text.
    Text(String),
    /// -error.
    Err(String),
    /// $bulk (None for nil).
    Bulk(Option<Vec<u8>>),
    /// *array.
    List(Vec<Val>),
}

impl Resp {
    fn connect(port: u16) -> Resp {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        Resp {
            r: std::io::BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// Queues a command without reading its reply.
    pub fn send(&mut self, args: &[&[u8]]) {
        use std::io::Write;
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).unwrap();
    }

    /// Reads one reply.
    pub fn recv(&mut self) -> Val {
        use std::io::{BufRead, Read};
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' | b':' => Val::Text(text),
            b'-' => Val::Err(text),
            b'$' => {
                let n: i64 = text.parse().unwrap();
                if n < 0 {
                    return Val::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                Val::Bulk(Some(b))
            }
            b'*' => {
                let n: i64 = text.parse().unwrap();
                Val::List((0..n.max(0)).map(|_| self.recv()).collect())
            }
            other => panic!("unexpected reply type {other}"),
        }
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Val {
        self.send(args);
        self.recv()
    }

    /// `call` with text arguments.
    pub fn cmd(&mut self, args: &[&str]) -> Val {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&args)
    }

    /// Every key of `db` with its type, its value in a canonical text form
    /// (members sorted where order does not matter) and its absolute expiry
    /// time (PEXPIRETIME, -1 for none), sorted by key. Pipelined.
    pub fn snapshot(&mut self, db: u32) -> Vec<(Vec<u8>, String, Vec<u8>, i64)> {
        self.cmd(&["SELECT", &db.to_string()]);
        let Val::List(keys) = self.cmd(&["KEYS", "*"]) else {
            panic!()
        };
        let mut keys: Vec<Vec<u8>> = keys
            .into_iter()
            .map(|k| {
                if let Val::Bulk(Some(k)) = k {
                    k
                } else {
                    panic!()
                }
            })
            .collect();
        keys.sort();
        for k in &keys {
            self.send(&[b"TYPE", k]);
        }
        let kinds: Vec<String> = keys
            .iter()
            .map(|_| {
                if let Val::Text(t) = self.recv() {
                    t
                } else {
                    panic!()
                }
            })
            .collect();
        for (k, kind) in keys.iter().zip(&kinds) {
            match kind.as_str() {
                "string" => self.send(&[b"GET", k]),
                "hash" => self.send(&[b"HGETALL", k]),
                "list" => self.send(&[b"LRANGE", k, b"0", b"-1"]),
                "set" => self.send(&[b"SMEMBERS", k]),
                "zset" => self.send(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
                "stream" => {
                    self.send(&[b"XRANGE", k, b"-", b"+"]);
                    self.send(&[b"XINFO", b"GROUPS", k]);
                }
                other => panic!("unexpected type {other}"),
            }
            self.send(&[b"PEXPIRETIME", k]);
        }
        keys.into_iter()
            .zip(kinds)
            .map(|(k, kind)| {
                let value = match kind.as_str() {
                    "hash" => sorted_pairs(self.recv()),
                    "set" => sorted(self.recv()),
                    "stream" => Val::List(vec![self.recv(), self.recv()]),
                    _ => self.recv(),
                };
                let Val::Text(at) = self.recv() else { panic!() };
                (
                    k,
                    kind,
                    format!("{value:?}").into_bytes(),
                    at.parse().unwrap(),
                )
            })
            .collect()
    }
}

fn sorted(v: Val) -> Val {
    let Val::List(mut items) = v else { return v };
    items.sort_by_key(|i| format!("{i:?}"));
    Val::List(items)
}

fn sorted_pairs(v: Val) -> Val {
    let Val::List(items) = v else { return v };
    let mut pairs: Vec<Val> = items.chunks(2).map(|p| Val::List(p.to_vec())).collect();
    pairs.sort_by_key(|i| format!("{i:?}"));
    Val::List(pairs)
}
