//! A real SMTP server inside the test process: TCP on loopback, the protocol by `mailin` (an
//! SMTP server state machine: greeting, EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA with dot
//! unstuffing), AUTH required before MAIL. Each delivered message is written to
//! `<dir>/NNNN.eml`, so tests read back what a mail client would receive. It needs nothing
//! outside Cargo, so the email channel's tests run on every machine; Python's aiosmtpd, where
//! installed, checks the same channel once more against another implementation
//! ([`crate::alert_endpoints::AiosmtpdServer`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder, response};

/// A running server; dropped, it stops listening and closes its sessions.
pub struct SmtpServer {
    pub port: u16,
    pub dir: PathBuf,
    stop: Arc<AtomicBool>,
    sessions: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

/// One session's state: the credentials it accepts and the message being received.
#[derive(Clone)]
struct Mailbox {
    dir: PathBuf,
    user: String,
    password: String,
    message: Vec<u8>,
}

impl Handler for Mailbox {
    fn auth_plain(&mut self, _authorization_id: &str, authentication_id: &str, password: &str) -> Response {
        self.auth_login(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        if username == self.user && password == self.password { response::AUTH_OK } else { response::INVALID_CREDENTIALS }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> Response {
        self.message.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.message.extend_from_slice(buf);
        Ok(())
    }

    /// The message is complete: written under a temporary name, then renamed, so a reader
    /// never sees half of it.
    fn data_end(&mut self) -> Response {
        static NEXT: Mutex<()> = Mutex::new(());
        let _one_at_a_time = NEXT.lock().unwrap();
        let n = std::fs::read_dir(&self.dir).map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count()).unwrap_or(0);
        let tmp = self.dir.join(".incoming");
        let saved = std::fs::write(&tmp, &self.message).and_then(|_| std::fs::rename(&tmp, self.dir.join(format!("{n:04}.eml"))));
        if saved.is_ok() { response::OK } else { response::INTERNAL_ERROR }
    }
}

impl SmtpServer {
    /// Listens on `127.0.0.1:port` (0: a free one) and requires AUTH with `user`/`password`.
    pub fn start(dir: &Path, port: u16, user: &str, password: &str) -> SmtpServer {
        std::fs::create_dir_all(dir).unwrap();
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("the test SMTP server cannot listen on port {port}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let mut builder = SessionBuilder::new("trackiq-test-smtp");
        // The channel under test connects without TLS (`security = "none"`), as to a relay on
        // the same host; AUTH is still required.
        builder.enable_auth(AuthMechanism::Plain).enable_auth(AuthMechanism::Login).insecure_enable_plaintext_auth();
        let mailbox = Mailbox { dir: dir.to_path_buf(), user: user.into(), password: password.into(), message: Vec::new() };
        let (stop, sessions) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (stop_, sessions_) = (stop.clone(), sessions.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop_.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                if let Ok(copy) = stream.try_clone() {
                    sessions_.lock().unwrap().push(copy);
                }
                let (builder, mailbox) = (builder.clone(), mailbox.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &builder, mailbox);
                });
            }
        });
        SmtpServer { port, dir: dir.to_path_buf(), stop, sessions, accept: Some(accept) }
    }

    /// The delivered messages, raw (RFC 5322), in order.
    pub fn messages(&self) -> Vec<String> {
        read_messages(&self.dir)
    }
}

/// The `NNNN.eml` files of `dir`, in order.
pub fn read_messages(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "eml")).collect();
    names.sort();
    names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

/// One SMTP session: the greeting, then a response to each line the state machine answers.
fn serve(stream: TcpStream, builder: &SessionBuilder, mailbox: Mailbox) -> std::io::Result<()> {
    let remote = stream.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut session = builder.build(remote, mailbox);
    let mut out = stream.try_clone()?;
    session.greeting().write_to(&mut out)?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let res = session.process(&line);
        match res.action {
            Action::NoReply => {}
            Action::Close => {
                res.write_to(&mut out)?;
                return out.flush();
            }
            // No STARTTLS is offered, so no client asks to upgrade.
            Action::Reply | Action::UpgradeTls => res.write_to(&mut out)?,
        }
        out.flush()?;
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, then close every open session.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for s in self.sessions.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// A client's side of a session, for the server's own test.
struct Client {
    conn: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Sends `line` (none when empty) and returns the whole reply: a multi-line reply ends
    /// with the line whose code is followed by a space.
    fn say(&mut self, line: &str) -> String {
        if !line.is_empty() {
            self.conn.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        }
        let mut reply = String::new();
        loop {
            let mut l = String::new();
            self.reader.read_line(&mut l).unwrap();
            reply.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] == b' ' {
                return reply;
            }
        }
    }
}

#[test]
fn the_test_smtp_server_requires_auth_and_keeps_each_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), 0, "u", "p4ss");
    let conn = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut c = Client { reader: BufReader::new(conn.try_clone().unwrap()), conn };
    assert!(c.say("").starts_with("220 "));
    assert!(c.say("EHLO client").contains("AUTH PLAIN LOGIN"));
    let refused = c.say("MAIL FROM:<a@example.com>");
    assert!(refused.starts_with('5'), "mail before AUTH is refused: {refused}");
    // base64("\0u\0wrong") and base64("\0u\0p4ss")
    assert!(c.say("AUTH PLAIN AHUAd3Jvbmc=").starts_with("535 "));
    assert!(c.say("AUTH PLAIN AHUAcDRzcw==").starts_with("235 "));
    assert!(c.say("MAIL FROM:<a@example.com>").starts_with("250 "));
    assert!(c.say("RCPT TO:<b@example.com>").starts_with("250 "));
    assert!(c.say("DATA").starts_with("354 "));
    c.conn.write_all(b"Subject: hi\r\n\r\n..a line that began with a dot\r\n").unwrap();
    assert!(c.say(".").starts_with("250 "));
    assert!(c.say("QUIT").starts_with("221 "));
    assert_eq!(server.messages(), ["Subject: hi\r\n\r\n.a line that began with a dot\r\n"]);
}
