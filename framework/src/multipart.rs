//! [`Multipart`]: `multipart/form-data` bodies, streamed field by field (multer), with per-field and
//! total limits; file fields read into memory or streamed to a temporary file.

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use http::StatusCode;
use rgi::{Input, SharedExecutor};

use crate::extract::{FromRequest, Request};
use crate::Error;

/// A streamed `multipart/form-data` body (last argument of a handler).
///
/// Limits come from [`Limits`](crate::Limits): a field over `multipart_field` or a body over
/// `multipart_total` is `413` naming the limit; another content type is `415`; a malformed body `400`.
///
/// ```
/// use rgi_framework::{post, App, Multipart};
/// async fn upload(mut form: Multipart) -> Result<String, rgi_framework::Error> {
///     let mut out = String::new();
///     while let Some(field) = form.next_field().await? {
///         let name = field.name().unwrap_or("").to_owned();
///         let bytes = field.bytes().await?;
///         out += &format!("{name}={} ", bytes.len());
///     }
///     Ok(out)
/// }
/// let app = App::new().route("/upload", post(upload)).build().unwrap();
/// let body = "--X\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--X--\r\n";
/// let r = rgi::testing::TestClient::new(app).post("/upload")
///     .header("content-type", "multipart/form-data; boundary=X").body(body).send_blocking();
/// assert_eq!(r.text(), "a=5 ");
/// ```
pub struct Multipart {
    inner: multer::Multipart<'static>,
    temp_dir: PathBuf,
    executor: SharedExecutor,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multipart")
            .field("temp_dir", &self.temp_dir)
            .finish_non_exhaustive()
    }
}

/// A multer error as a response: limits are 413, the rest 400.
fn reject(error: multer::Error) -> Error {
    match error {
        multer::Error::FieldSizeExceeded { limit, field_name } => Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "multipart field `{}` is larger than {limit} bytes",
                field_name.unwrap_or_default()
            ),
        ),
        multer::Error::StreamSizeExceeded { limit } => Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the multipart body is larger than {limit} bytes"),
        ),
        multer::Error::StreamReadFailed(cause) if crate::error::is_too_large(&*cause) => {
            Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
        }
        other => Error::bad_request(format!("malformed multipart body: {other}")),
    }
}

impl FromRequest for Multipart {
    async fn from_request(mut request: Request) -> Result<Self, Error> {
        let content_type = request
            .environ()
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: multipart/form-data with a boundary",
            )
        })?;
        let limits = &request.shared.limits;
        let constraints = multer::Constraints::new().size_limit(
            multer::SizeLimit::new()
                .per_field(limits.multipart_field)
                .whole_stream(limits.multipart_total),
        );
        let temp_dir = limits.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let executor = request.environ().executor().clone();
        let input = request.environ_mut().take_input();
        let stream = futures_util::stream::unfold(input, |mut input: Input| async move {
            let chunk = input.chunk().await?;
            Some((chunk, input))
        });
        Ok(Multipart {
            inner: multer::Multipart::with_constraints(stream, boundary, constraints),
            temp_dir,
            executor,
        })
    }
}

impl Multipart {
    /// The next field, or `None` after the last.
    ///
    /// # Errors
    ///
    /// `400` for a malformed body, `413` over a limit.
    pub async fn next_field(&mut self) -> Result<Option<Field<'_>>, Error> {
        let field = self.inner.next_field().await.map_err(reject)?;
        Ok(field.map(|inner| Field {
            inner,
            multipart: self,
        }))
    }
}

/// One field of a [`Multipart`] body.
pub struct Field<'a> {
    inner: multer::Field<'static>,
    multipart: &'a Multipart,
}

impl std::fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field")
            .field("name", &self.name())
            .field("file_name", &self.file_name())
            .finish()
    }
}

/// A file field saved to a temporary file (deleted when this is dropped, unless persisted).
#[derive(Debug)]
pub struct SavedFile {
    /// The temporary file; `file.persist(path)` keeps it.
    pub file: tempfile::NamedTempFile,
    /// The file name the client gave, if any (untrusted: never use it as a path as is).
    pub file_name: Option<String>,
    /// The content type the client gave, if any.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

impl Field<'_> {
    /// The field's name.
    pub fn name(&self) -> Option<&str> {
        self.inner.name()
    }

    /// The file name the client gave (file fields).
    pub fn file_name(&self) -> Option<&str> {
        self.inner.file_name()
    }

    /// The content type the client gave.
    pub fn content_type(&self) -> Option<&str> {
        self.inner.content_type().map(|m| m.essence_str())
    }

    /// The next chunk of the field's data.
    ///
    /// # Errors
    ///
    /// As [`Multipart::next_field`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.inner.chunk().await.map_err(reject)
    }

    /// The whole field, in memory (bounded by the per-field limit).
    ///
    /// # Errors
    ///
    /// As [`Multipart::next_field`].
    pub async fn bytes(self) -> Result<Bytes, Error> {
        self.inner.bytes().await.map_err(reject)
    }

    /// The whole field as UTF-8 text; not UTF-8 is `400`.
    ///
    /// # Errors
    ///
    /// As [`Multipart::next_field`].
    pub async fn text(self) -> Result<String, Error> {
        let name = self.name().unwrap_or("").to_owned();
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::bad_request(format!("multipart field `{name}` is not UTF-8")))
    }

    /// Stream the field into a new temporary file in [`Limits::temp_dir`](crate::Limits), writing on
    /// the environ's blocking executor (never on the async worker).
    ///
    /// # Errors
    ///
    /// As [`Multipart::next_field`]; `500` when the file cannot be written.
    pub async fn save(mut self) -> Result<SavedFile, Error> {
        let file_name = self.file_name().map(str::to_owned);
        let content_type = self.content_type().map(str::to_owned);
        let executor = self.multipart.executor.clone();
        let dir = self.multipart.temp_dir.clone();
        let mut file =
            on_executor(&executor, move || tempfile::NamedTempFile::new_in(dir)).await??;
        let mut size = 0;
        while let Some(chunk) = self.chunk().await? {
            size += chunk.len() as u64;
            file = on_executor(&executor, move || file.write_all(&chunk).map(|()| file)).await??;
        }
        Ok(SavedFile {
            file,
            file_name,
            content_type,
            size,
        })
    }
}

/// Run `job` on `executor` and wait for its result.
async fn on_executor<T: Send + 'static>(
    executor: &SharedExecutor,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    executor
        .spawn_blocking(Box::new(move || {
            let _ = tx.send(job());
        }))
        .map_err(|_| Error::new(StatusCode::SERVICE_UNAVAILABLE, "the server is busy"))?;
    rx.await
        .map_err(|_| Error::internal("a blocking job ended without a result"))
}
