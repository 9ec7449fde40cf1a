//! A request-response codec: a 4-byte big-endian length, then the postcard encoding.
//!
//! The length is checked against the protocol's limit before a single byte of the body is
//! read, so a peer cannot make a node allocate more than the limit. An inbound request that
//! is too large or does not decode is handed to the event loop as `Err(reason)` rather than
//! as a stream error, so that the event loop knows which peer sent it: that is
//! misbehaviour, and the peer is dropped ([`super::faults`]). A request *truncated* by the
//! stream closing early (a requester that gave up, a reset under load) is an ordinary
//! stream error (`UnexpectedEof`): a mishap, counted but not held against an honest peer.
//! (A bad *response* fails the request with `InvalidData`, which is misbehaviour too; a
//! truncated one is a mishap.)

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::marker::PhantomData;

/// A request as read from the wire: the request, or why its bytes were refused.
pub type Inbound<Req> = Result<Req, String>;

/// Postcard with a length prefix and per-direction size limits.
pub struct PostcardCodec<Req, Resp> {
    max_request: usize,
    max_response: usize,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> std::fmt::Debug for PostcardCodec<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostcardCodec")
            .field("max_request", &self.max_request)
            .field("max_response", &self.max_response)
            .finish()
    }
}

impl<Req, Resp> Clone for PostcardCodec<Req, Resp> {
    fn clone(&self) -> Self {
        PostcardCodec {
            max_request: self.max_request,
            max_response: self.max_response,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> PostcardCodec<Req, Resp> {
    /// A codec refusing requests over `max_request` and responses over `max_response` bytes.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        PostcardCodec {
            max_request,
            max_response,
            _types: PhantomData,
        }
    }
}

/// Decodes one framed message body; the single place arbitrary bytes are parsed.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> io::Result<T> {
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {} bytes over the limit of {max}", bytes.len()),
        ));
    }
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if !rest.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "trailing bytes after the message",
        ));
    }
    Ok(value)
}

async fn read_frame<T, V>(io: &mut T, max: usize) -> io::Result<V>
where
    T: AsyncRead + Unpin + Send,
    V: DeserializeOwned,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes over the limit of {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    decode(&buf, max)
}

fn encode_frame<V: Serialize>(value: &V) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

async fn write_frame<T>(io: &mut T, bytes: io::Result<Vec<u8>>, max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let bytes = bytes?;
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes over the limit of {max}", bytes.len()),
        ));
    }
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.flush().await?;
    io.close().await
}

impl<Req, Resp> libp2p::request_response::Codec for PostcardCodec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + 'static,
    Resp: Serialize + DeserializeOwned + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Inbound<Req>;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Inbound<Req>>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io, self.max_request).await {
            Ok(request) => Ok(Ok(request)),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Err(e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Inbound<Req>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = match &req {
            Ok(req) => encode_frame(req),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e.clone())),
        };
        write_frame(io, bytes, self.max_request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, encode_frame(&res), self.max_response).await
    }
}
