//! Local receivers for notifications: an HTTP receiver (webhooks and the
//! SMS provider) that answers from a script of statuses, and an SMTP sink.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer first, in order; then `status`.
    pub script: Arc<Mutex<VecDeque<u16>>>,
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let r = Receiver {
            url,
            got: Arc::default(),
            script: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
        };
        let state = r.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = state.clone();
            async move {
                s.got.lock().unwrap().push(Received {
                    path: uri.path().to_string(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect(),
                    body: body.to_vec(),
                });
                let code = s
                    .script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| s.status.load(Ordering::Relaxed));
                StatusCode::from_u16(code).unwrap()
            }
        });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        r
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    pub fn then(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses.iter().copied());
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds over what `path` received (at most `within`).
    pub async fn wait_for(
        &self,
        path: &str,
        within: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received(path);
            if pred(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: condition not met; received {:#?}",
                got.iter()
                    .map(|r| String::from_utf8_lossy(&r.body).to_string())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One e-mail as the sink took it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP server: accepts every message.
#[derive(Clone)]
pub struct SmtpSink {
    pub url: String,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let sink = SmtpSink {
            url,
            mails: Arc::default(),
        };
        let mails = sink.mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let mails = mails.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                    let mut to = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("HELO")
                            || upper.starts_with("MAIL")
                            || upper.starts_with("RSET")
                            || upper.starts_with("NOOP")
                        {
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT") {
                            to.push(line[8..].trim().to_string());
                            b"250 OK\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = w.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            mails.lock().unwrap().push(Mail {
                                to: std::mem::take(&mut to),
                                data,
                            });
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"502 not implemented\r\n"
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        sink
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, within: Duration, pred: impl Fn(&[Mail]) -> bool) -> Vec<Mail> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.mails();
            if pred(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "mails: condition not met: {m:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
