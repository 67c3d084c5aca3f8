//! One FastCGI connection: a reader that demultiplexes records into requests, one task per request,
//! and one writer task that serializes their records onto the socket.
//!
//! ```text
//!             ┌─ PARAMS → (spawn) request task 1 ─┐
//!  socket ──► reader ── STDIN ─► [≤4 records] ──► │ app ──► STDOUT/STDERR/END_REQUEST ─┐
//!             └─ STDIN ─► [≤4 records] ─► request task 2 ─────────────────────────────┤
//!                                                               writer [≤16 msgs] ◄───┘──► socket
//! ```
//!
//! Requests are in one of two states: gathering `PARAMS` ([`Slot::Params`]), then running
//! ([`Slot::Running`]). A request's records reach the writer only while its gate is open; whoever
//! closes the gate first (the request finishing, or an `ABORT_REQUEST`) sends `END_REQUEST`, so it is
//! sent exactly once and nothing of that request follows it.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body::Frame;
use rgi::{Application, ErrorSink, Errors, Input, ServerInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::record::{self, BeginRequest, Header, RecordError};
use super::record::{
    FCGI_ABORT_REQUEST, FCGI_AUTHORIZER, FCGI_BEGIN_REQUEST, FCGI_DATA, FCGI_END_REQUEST,
    FCGI_FILTER, FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_HEADER_LEN, FCGI_MAX_CONNS,
    FCGI_MAX_CONTENT, FCGI_MAX_REQS, FCGI_MPXS_CONNS, FCGI_NULL_REQUEST_ID, FCGI_OVERLOADED,
    FCGI_PARAMS, FCGI_REQUEST_COMPLETE, FCGI_RESPONDER, FCGI_STDERR, FCGI_STDIN, FCGI_STDOUT,
    FCGI_UNKNOWN_ROLE, FCGI_UNKNOWN_TYPE,
};
use super::{Error, FilterData};
use crate::bind::Stream;
use crate::gateway::environ::Split;
use crate::gateway::oneshot::LINGER;
use crate::gateway::response::{self, Head, SendError, Sink};
use crate::pipeline::control::DRAIN_LINGER;
use crate::pipeline::Pipeline;
use crate::report::Report;

/// Records of `STDIN` (or `DATA`) a request may have queued, unread by its application: with
/// ≤ 64 KiB per record, at most 256 KiB per request.
const STDIN_QUEUE: usize = 4;
/// Messages (each whole records) waiting for the writer.
const OUT_QUEUE: usize = 16;
/// `appStatus` of a request ended by `ABORT_REQUEST`.
const APP_STATUS_ABORTED: u32 = 1;

/// What every connection of one server shares.
pub(super) struct Shared<A> {
    pub(super) pipeline: Arc<Pipeline<A>>,
    /// `FCGI_MAX_REQS` permits, over all connections.
    pub(super) requests: Arc<Semaphore>,
}

/// Whether a request may still write: `true` once `END_REQUEST` is queued (by the request or by an
/// abort).
type Gate = Arc<Mutex<bool>>;

enum Slot {
    /// `BEGIN_REQUEST` seen; gathering the `PARAMS` stream.
    Params {
        begin: BeginRequest,
        params: Vec<u8>,
        permit: OwnedSemaphorePermit,
        /// When the `PARAMS` must be complete (`--header-timeout` after `BEGIN_REQUEST`; `None`
        /// when that is off).
        deadline: Option<Instant>,
    },
    /// The application runs in its own task.
    Running {
        stdin: Option<mpsc::Sender<Bytes>>,
        data: Option<mpsc::Sender<Bytes>>,
        task: AbortHandle,
        gate: Gate,
        keep_conn: bool,
    },
}

struct Conn<A> {
    shared: Arc<Shared<A>>,
    slots: HashMap<u16, Slot>,
    tasks: JoinSet<u16>,
    out: mpsc::Sender<Bytes>,
    /// Cancelled to end the connection (a request without `FCGI_KEEP_CONN` finished).
    close: CancellationToken,
    /// The server began draining: requests that still arrive are served, then the connection
    /// closes; an idle one closes after [`DRAIN_LINGER`].
    draining: bool,
}

/// Serve one connection until the web server closes it, a request without `FCGI_KEEP_CONN` ends, a
/// record breaks the protocol, or the server drains. A draining connection serves the requests
/// still coming (closing after them, as if `FCGI_KEEP_CONN` were off), and an idle one waits
/// [`DRAIN_LINGER`] for one more request (a web server may have just sent one), then closes.
///
/// When the web server closes the connection, requests still running are aborted (§5.4: closing the
/// connection is how a non-multiplexing web server aborts).
pub(super) async fn serve_conn<A: Application>(
    stream: Stream,
    shared: Arc<Shared<A>>,
) -> Result<(), Error> {
    let shutdown = shared.pipeline.control.token();
    let (mut rd, wr) = tokio::io::split(stream);
    let close = CancellationToken::new();
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let mut writer = tokio::spawn(write_loop(wr, out_rx, close.clone()));
    let mut writer_done = false;
    let grace = shared.pipeline.config.graceful_timeout;
    let mut conn = Conn {
        shared,
        slots: HashMap::new(),
        tasks: JoinSet::new(),
        out,
        close: close.clone(),
        draining: false,
    };
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut linger = std::pin::pin!(tokio::time::sleep(Duration::MAX));
    let result = loop {
        // The earliest request still gathering its PARAMS must have them all by then (slowloris on
        // the head). An idle kept connection has no such request and is never timed out.
        let params_due = conn.params_deadline();
        match split_record(&mut buf) {
            Err(e) => break Err(Error::Record(e)),
            Ok(Some((header, content))) => {
                if let Err(e) = conn.handle(header, content).await {
                    break Err(e);
                }
                continue;
            }
            Ok(None) => {}
        }
        if close.is_cancelled() {
            break Ok(());
        }
        // Room for the largest record: header, 65535 content bytes, 255 padding bytes.
        buf.reserve(FCGI_HEADER_LEN + FCGI_MAX_CONTENT + 255);
        tokio::select! {
            () = close.cancelled() => break Ok(()),
            () = shutdown.cancelled(), if !conn.draining => {
                conn.draining = true;
                linger.as_mut().reset(tokio::time::Instant::now() + DRAIN_LINGER);
            }
            () = linger.as_mut(), if conn.draining && conn.slots.is_empty() => break Ok(()),
            () = until(params_due), if params_due.is_some() => break Err(conn.params_timeout()),
            Some(done) = conn.tasks.join_next(), if !conn.tasks.is_empty() => conn.reap(done).await,
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                break Ok(()); // the web server stopped reading: nothing more can be answered.
            }
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => break Ok(()),
                Ok(0) => break Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(e) => break Err(Error::Io(e)),
            },
        }
    };
    if matches!(result, Err(Error::Record(_) | Error::ParamsTimeout { .. })) {
        conn.finish_running(grace).await;
    }
    conn.tasks.abort_all();
    drop(conn);
    close.cancel();
    if !writer_done {
        // Queued records (the last END_REQUEST) still go out, unless the peer stopped reading.
        if tokio::time::timeout(grace.max(Duration::from_secs(1)), writer)
            .await
            .is_err()
        {
            return result.and(Err(Error::Io(io::ErrorKind::TimedOut.into())));
        }
        // A request answered before its body was read (a 413): the web server may still be sending
        // it. Closing now would reset the socket under it, and nginx would answer 502 instead of
        // our response; read and discard until it closes its side (bounded).
        if result.is_ok() {
            let mut sink = tokio::io::sink();
            let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rd, &mut sink)).await;
        }
    }
    result
}

/// Wait until `deadline` (forever when `None`).
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Take one whole record off the front of `buf`, if there is one; padding is skipped.
fn split_record(buf: &mut BytesMut) -> Result<Option<(Header, Bytes)>, RecordError> {
    let Some(head) = buf.first_chunk::<FCGI_HEADER_LEN>() else {
        return Ok(None);
    };
    let header = Header::decode(head)?;
    if buf.len() < FCGI_HEADER_LEN + header.body_len() {
        return Ok(None);
    }
    buf.advance(FCGI_HEADER_LEN);
    let content = buf.split_to(usize::from(header.content_length)).freeze();
    buf.advance(usize::from(header.padding_length));
    Ok(Some((header, content)))
}

/// [`split_record`] for tests of reassembly; panics on a bad record.
#[cfg(test)]
pub(super) fn split_record_for_test(buf: &mut BytesMut) -> Option<(Header, Bytes)> {
    split_record(buf).expect("valid records")
}

/// Write queued messages, coalescing what is ready into one write; after `close`, write what is
/// queued and stop.
async fn write_loop(
    mut wr: WriteHalf<Stream>,
    mut rx: mpsc::Receiver<Bytes>,
    close: CancellationToken,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        let next = tokio::select! {
            biased;
            next = rx.recv() => next,
            () = close.cancelled() => None,
        };
        let Some(first) = next else {
            // Everything queued before the close still goes out, in order.
            while let Ok(message) = rx.try_recv() {
                wr.write_all(&message).await?;
            }
            break;
        };
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(message) => batch.extend_from_slice(&message),
                Err(_) => break,
            }
        }
        wr.write_all(&batch).await?;
        wr.flush().await?;
    }
    wr.flush().await?;
    wr.shutdown().await
}

fn end_request(id: u16, app_status: u32, protocol_status: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    record::encode_record(
        &mut out,
        FCGI_END_REQUEST,
        id,
        &record::end_request_body(app_status, protocol_status),
    );
    out
}

impl<A: Application> Conn<A> {
    async fn send(&self, message: Vec<u8>) {
        // A failed send means the writer is gone; the main loop notices that and ends.
        let _ = self.out.send(message.into()).await;
    }

    async fn handle(&mut self, header: Header, content: Bytes) -> Result<(), Error> {
        let id = header.request_id;
        if id == FCGI_NULL_REQUEST_ID {
            return self.management(header.kind, &content).await;
        }
        match header.kind {
            FCGI_BEGIN_REQUEST => self.begin(id, &content).await,
            FCGI_ABORT_REQUEST => {
                self.abort(id).await;
                Ok(())
            }
            FCGI_PARAMS => self.params(id, &content),
            FCGI_STDIN | FCGI_DATA => {
                self.stream(id, header.kind, content).await;
                Ok(())
            }
            // "The Web server sends records of types the application does not expect on a request":
            // not a management record, so no UNKNOWN_TYPE; ignored like records for unknown ids.
            _ => Ok(()),
        }
    }

    /// `GET_VALUES` is answered from the configuration; any other management record gets
    /// `UNKNOWN_TYPE` (§4.2).
    async fn management(&mut self, kind: u8, content: &[u8]) -> Result<(), Error> {
        let mut out = Vec::new();
        if kind == FCGI_GET_VALUES {
            let config = &self.shared.pipeline.config;
            let mut reply = Vec::new();
            for (name, _) in record::decode_pairs(content)? {
                let value = match name {
                    n if n == FCGI_MAX_CONNS.as_bytes() => config.max_connections.max(1),
                    n if n == FCGI_MAX_REQS.as_bytes() => config.max_requests.max(1),
                    n if n == FCGI_MPXS_CONNS.as_bytes() => 1,
                    _ => continue, // "the application … ignores unknown names"
                };
                record::encode_pair(&mut reply, name, value.to_string().as_bytes());
            }
            reply.truncate(FCGI_MAX_CONTENT.min(reply.len()));
            record::encode_record(&mut out, FCGI_GET_VALUES_RESULT, 0, &reply);
        } else {
            record::encode_record(
                &mut out,
                FCGI_UNKNOWN_TYPE,
                0,
                &record::unknown_type_body(kind),
            );
        }
        self.send(out).await;
        Ok(())
    }

    async fn begin(&mut self, id: u16, content: &[u8]) -> Result<(), Error> {
        let mut begin = BeginRequest::decode(content)?;
        // An id is free again once its END_REQUEST is queued (§3.3), and the web server reuses it
        // as soon as that arrives, perhaps before this loop reaped the request's task.
        if let Some(Slot::Running { gate, .. }) = self.slots.get(&id) {
            if *gate.lock().await {
                self.slots.remove(&id);
            }
        }
        if self.slots.contains_key(&id) {
            return Err(RecordError::DuplicateRequest(id).into());
        }
        if self.draining {
            begin.keep_conn = false; // served, then the connection closes
        }
        let refusal = if !matches!(begin.role, FCGI_RESPONDER | FCGI_AUTHORIZER | FCGI_FILTER) {
            Some(FCGI_UNKNOWN_ROLE)
        } else {
            None
        };
        let permit = match refusal {
            None => Arc::clone(&self.shared.requests).try_acquire_owned().ok(),
            Some(_) => None,
        };
        let Some(permit) = permit else {
            let status = refusal.unwrap_or(FCGI_OVERLOADED);
            self.send(end_request(id, 0, status)).await;
            if !begin.keep_conn {
                self.close.cancel();
            }
            return Ok(());
        };
        let params = Vec::new();
        let deadline = (self.shared.pipeline.config.limits.header_timeout())
            .map(|timeout| Instant::now() + timeout);
        self.slots.insert(
            id,
            Slot::Params {
                begin,
                params,
                permit,
                deadline,
            },
        );
        Ok(())
    }

    /// When the earliest request still gathering `PARAMS` runs out of time.
    fn params_deadline(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|slot| match slot {
                Slot::Params { deadline, .. } => *deadline,
                Slot::Running { .. } => None,
            })
            .min()
    }

    /// The error for the request whose `PARAMS` are overdue.
    fn params_timeout(&self) -> Error {
        let now = Instant::now();
        let id = self.slots.iter().find_map(|(id, slot)| match slot {
            Slot::Params {
                deadline: Some(d), ..
            } if *d <= now => Some(*id),
            _ => None,
        });
        Error::ParamsTimeout {
            request_id: id.unwrap_or_default(),
            timeout: self.shared.pipeline.config.limits.header_read_timeout,
        }
    }

    fn params(&mut self, id: u16, content: &[u8]) -> Result<(), Error> {
        let limit = self.shared.pipeline.config.limits.max_head_bytes;
        let Some(Slot::Params { params, .. }) = self.slots.get_mut(&id) else {
            return Ok(()); // "ignore records for unknown request ids"
        };
        if !content.is_empty() {
            if params.len() + content.len() > limit {
                return Err(RecordError::ParamsTooLarge(limit).into());
            }
            params.extend_from_slice(content);
            return Ok(());
        }
        // The empty record ends the stream: the request starts.
        let Some(Slot::Params {
            begin,
            params,
            permit,
            ..
        }) = self.slots.remove(&id)
        else {
            return Ok(());
        };
        record::decode_pairs(&params)?;
        let (stdin, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        let (data, data_rx) = if begin.role == FCGI_FILTER {
            let (tx, rx) = mpsc::channel(STDIN_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let gate: Gate = Arc::new(Mutex::new(false));
        let request = Request {
            shared: Arc::clone(&self.shared),
            id,
            begin,
            params,
            stdin: stdin_rx,
            data: data_rx,
            out: self.out.clone(),
            gate: Arc::clone(&gate),
            close: self.close.clone(),
        };
        let task = self.tasks.spawn(async move {
            request.run().await;
            drop(permit);
            id
        });
        self.slots.insert(
            id,
            Slot::Running {
                stdin: Some(stdin),
                data,
                task,
                gate,
                keep_conn: begin.keep_conn,
            },
        );
        Ok(())
    }

    /// Feed a `STDIN`/`DATA` record to its request. When that request's queue is full this waits for
    /// it (FastCGI has no per-request flow control; see the module doc of `fastcgi`).
    async fn stream(&mut self, id: u16, kind: u8, content: Bytes) {
        let Some(Slot::Running { stdin, data, .. }) = self.slots.get_mut(&id) else {
            return;
        };
        let tx = if kind == FCGI_STDIN { stdin } else { data };
        if content.is_empty() {
            *tx = None; // end of stream
            return;
        }
        let Some(sender) = tx.clone() else {
            return;
        };
        let delivered = tokio::select! {
            sent = sender.send(content) => sent.is_ok(),
            () = self.close.cancelled() => true,
        };
        if !delivered {
            // The application dropped its input: discard the rest of this stream.
            if let Some(Slot::Running { stdin, data, .. }) = self.slots.get_mut(&id) {
                *(if kind == FCGI_STDIN { stdin } else { data }) = None;
            }
        }
    }

    /// `ABORT_REQUEST` (§5.4): drop the application's future and body, answer `END_REQUEST`.
    async fn abort(&mut self, id: u16) {
        match self.slots.remove(&id) {
            None => {}
            Some(Slot::Params { begin, .. }) => {
                self.send(end_request(id, APP_STATUS_ABORTED, FCGI_REQUEST_COMPLETE))
                    .await;
                if !begin.keep_conn {
                    self.close.cancel();
                }
            }
            Some(Slot::Running {
                task,
                gate,
                keep_conn,
                ..
            }) => {
                let mut ended = gate.lock().await;
                if *ended {
                    return; // the request already sent its END_REQUEST
                }
                *ended = true;
                task.abort();
                self.send(end_request(id, APP_STATUS_ABORTED, FCGI_REQUEST_COMPLETE))
                    .await;
                drop(ended);
                if !keep_conn {
                    self.close.cancel();
                }
            }
        }
    }

    /// A record broke the protocol: nothing more is read, but the requests already running are
    /// answered before the connection closes (their input ends where it stopped; at most `grace`),
    /// as HTTP answers the requests pipelined before a bad one.
    async fn finish_running(&mut self, grace: Duration) {
        self.slots
            .retain(|_, slot| matches!(slot, Slot::Running { .. }));
        for slot in self.slots.values_mut() {
            if let Slot::Running { stdin, data, .. } = slot {
                (*stdin, *data) = (None, None);
            }
        }
        let _ = tokio::time::timeout(grace, async {
            while let Some(done) = self.tasks.join_next().await {
                self.reap(done).await;
            }
        })
        .await;
    }

    /// A request task ended: forget its slot (unless an abort did, or the id already serves the
    /// next request: then the slot holds another task).
    async fn reap(&mut self, done: Result<u16, JoinError>) {
        match done {
            Ok(id) => {
                if let Some(Slot::Running { task, .. }) = self.slots.get(&id) {
                    if task.is_finished() {
                        self.slots.remove(&id);
                    }
                }
            }
            Err(e) if e.is_panic() => {
                // Application panics are caught inside the task; this is a bug of ours. Do not leave
                // the web server waiting for the request.
                self.shared
                    .pipeline
                    .server
                    .errors
                    .log("fastcgi: request task panicked");
                let id = self.slots.iter().find_map(|(id, slot)| match slot {
                    Slot::Running { task, .. } if task.id() == e.id() => Some(*id),
                    _ => None,
                });
                if let Some(id) = id {
                    self.abort(id).await;
                }
            }
            Err(_) => {} // aborted by ABORT_REQUEST; its slot is gone already
        }
    }
}

/// One request, run in its own task.
struct Request<A> {
    shared: Arc<Shared<A>>,
    id: u16,
    begin: BeginRequest,
    params: Vec<u8>,
    stdin: mpsc::Receiver<Bytes>,
    data: Option<mpsc::Receiver<Bytes>>,
    out: mpsc::Sender<Bytes>,
    gate: Gate,
    close: CancellationToken,
}

impl<A: Application> Request<A> {
    async fn run(self) {
        let Request {
            shared,
            id,
            begin,
            params,
            stdin,
            data,
            out,
            gate,
            close,
        } = self;
        let pairs = record::decode_pairs(&params).unwrap_or_default();
        let errors = Errors::from_sink(StderrRecords {
            out: out.clone(),
            gate: Arc::clone(&gate),
            id,
        });
        let pipeline = &shared.pipeline;
        let server = Arc::new(ServerInfo {
            errors: errors.clone(),
            ..(*pipeline.server).clone()
        });
        let role = begin.role;
        let make_input = |_| {
            if role == FCGI_AUTHORIZER {
                Input::empty() // an Authorizer gets no body (§6.3)
            } else {
                Input::from_body(QueueBody(stdin))
            }
        };
        let filter_data = |environ: &mut rgi::Environ| {
            if let Some(rx) = data {
                let length = pair_number(&pairs, "FCGI_DATA_LENGTH");
                let mut input = Input::from_body(QueueBody(rx));
                if let Some(len) = length {
                    input = input.with_content_length(len);
                }
                let last_modified = pair_number(&pairs, "FCGI_DATA_LAST_MOD");
                environ
                    .extensions_mut()
                    .insert(FilterData::new(input, last_modified));
            }
        };
        let answer = crate::gateway::answer(
            pipeline,
            &pairs,
            server,
            Split::IfBoth,
            make_input,
            filter_data,
        )
        .await;
        let mut sink = StdoutRecords {
            out: out.clone(),
            gate: Arc::clone(&gate),
            id,
        };
        match response::send(&mut sink, Head::Cgi, answer, pipeline.tokio_files).await {
            Ok(()) => {
                let mut ended = gate.lock().await;
                if !*ended {
                    *ended = true;
                    let mut last = Vec::with_capacity(24);
                    record::encode_record(&mut last, FCGI_STDOUT, id, b""); // end of STDOUT
                    last.extend_from_slice(&end_request(id, 0, FCGI_REQUEST_COMPLETE));
                    let _ = out.send(last.into()).await;
                }
                drop(ended);
                if !begin.keep_conn {
                    close.cancel();
                }
            }
            Err(SendError::Write(_)) => {} // aborted, or the connection is gone
            Err(e @ SendError::Body(_)) => {
                // FastCGI can only say "truncated" by closing the connection without END_REQUEST:
                // the web server then aborts the client's response instead of completing it.
                errors.log(format_args!("fastcgi: request {id}: {}", Report(&e)));
                close.cancel();
            }
        }
    }
}

/// A decimal variable from the params (`FCGI_DATA_LENGTH`).
fn pair_number(pairs: &[(&[u8], &[u8])], name: &str) -> Option<u64> {
    let (_, value) = pairs.iter().rev().find(|(k, _)| *k == name.as_bytes())?;
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A request's queue of `STDIN` (or `DATA`) records as a body for [`Input`].
struct QueueBody(mpsc::Receiver<Bytes>);

impl http_body::Body for QueueBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// The response, as `STDOUT` records of one request.
struct StdoutRecords {
    out: mpsc::Sender<Bytes>,
    gate: Gate,
    id: u16,
}

impl Sink for StdoutRecords {
    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        let mut records = Vec::with_capacity(data.len() + 16 * (data.len() / FCGI_MAX_CONTENT + 1));
        record::encode_stream(&mut records, FCGI_STDOUT, self.id, &data);
        let ended = self.gate.lock().await;
        if *ended {
            return Err(io::Error::other("fastcgi: request aborted"));
        }
        self.out
            .send(records.into())
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(()) // the writer flushes whenever its queue runs dry
    }
}

/// `rgi.errors` of one request: each line becomes a `STDERR` record (nginx logs them as "FastCGI
/// sent in stderr"). When the queue is full or the request has ended, the line goes to the
/// process's stderr instead, so the application never waits for a log line.
struct StderrRecords {
    out: mpsc::Sender<Bytes>,
    gate: Gate,
    id: u16,
}

impl ErrorSink for StderrRecords {
    fn write_line(&self, line: &str) {
        let mut text = Vec::with_capacity(line.len() + 1);
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        let mut records = Vec::with_capacity(text.len() + 16);
        record::encode_stream(&mut records, FCGI_STDERR, self.id, &text);
        let sent = match self.gate.try_lock() {
            Ok(ended) if !*ended => self.out.try_send(records.into()).is_ok(),
            _ => false,
        };
        if !sent {
            eprintln!("{line}");
        }
    }
}
