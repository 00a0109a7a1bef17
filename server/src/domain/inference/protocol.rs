//! What the web server and an inference worker process say to each other, and how it is framed.
//!
//! Every message is one frame: a 4-byte big-endian length, then that many bytes. A message is JSON; the
//! images of a question follow its `Submit` as one raw frame each (RGB, row by row, 3 bytes a pixel),
//! so an image is not inflated by base64. A length is checked against [`MAX_FRAME_BYTES`] before
//! anything is allocated for it.
//!
//! A connection opens with the worker's `Challenge` (a random nonce); the server answers `Hello` with
//! HMAC-SHA256(shared secret, nonce). A worker that is not answered correctly closes the connection
//! before it reads anything else. Then the worker says `Loading`, and `Ready` or `LoadFailed`; the server
//! sends questions (`Submit`) and cancellations (`Cancel`), the worker sends each decoding step's
//! pieces (`Step`, also its sign of life), then `Done` or `Failed` for each question. Back-pressure is
//! the server's: it sends a worker no more questions than the worker's slots.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use hmac::{Hmac, Mac};
use models::generate::{GenerateOptions, Generation};
use models::prompt::Turn;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Failure, ModelInfo, Priority};

/// Bumped when a message changes shape; a worker and a server of different versions refuse each other.
pub const VERSION: u32 = 2;

/// The largest frame either side accepts: a 4096 × 4096 RGB image is 48 MiB.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// The largest image side a question may carry (the model sees 896 pixels).
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// From the web server to a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// HMAC-SHA256(secret, the challenge's nonce), hex.
    Hello { version: u32, proof: String },
    /// A question; `images` raw frames follow, in order.
    Submit { id: u64, job: Box<Job> },
    /// Stop this answer before its next token (the worker ends it with `Done`, stopped early).
    Cancel { id: u64 },
}

/// From a worker to the web server.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    Challenge {
        version: u32,
        nonce: String,
    },
    Loading,
    Ready {
        info: ModelInfo,
    },
    LoadFailed {
        reason: String,
    },
    /// The question's prompt has run; its tokens follow in `Step`s.
    Started {
        id: u64,
    },
    /// One decoding step of every answer in progress: the text each has settled (ids without text are left out).
    Step {
        pieces: Vec<Piece>,
    },
    Done {
        id: u64,
        generation: Box<Generation>,
        history_turns: usize,
        queued_ms: f64,
    },
    Failed {
        id: u64,
        failure: Failure,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Piece {
    pub id: u64,
    pub text: String,
}

/// A question as the worker needs it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub system: String,
    pub history: Vec<Turn>,
    pub turn: Turn,
    pub options: GenerateOptions,
    pub schema: Option<serde_json::Value>,
    /// Width and height of each image frame that follows.
    pub images: Vec<[u32; 2]>,
    /// How long the question waited in the web server's queue.
    pub queued_ms: f64,
    /// The worker, too, puts a watched answer first.
    pub priority: Priority,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("a frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unreadable message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("{0}")]
    Refused(String),
}

/// Writes one frame.
pub fn write_frame(out: &mut impl Write, bytes: &[u8]) -> Result<(), ProtocolError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge(bytes.len()));
    }
    out.write_all(&(bytes.len() as u32).to_be_bytes())?;
    out.write_all(bytes)?;
    Ok(())
}

/// Reads one frame; `None` when the other side closed the connection between frames.
pub fn read_frame(input: &mut impl Read) -> Result<Option<Vec<u8>>, ProtocolError> {
    let mut length = [0u8; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge(length));
    }
    let mut bytes = vec![0u8; length];
    input.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

pub fn send(out: &mut impl Write, message: &impl Serialize) -> Result<(), ProtocolError> {
    write_frame(out, &serde_json::to_vec(message)?)
}

pub fn receive<T: DeserializeOwned>(input: &mut impl Read) -> Result<Option<T>, ProtocolError> {
    match read_frame(input)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Sends a question and its images, in one write each.
pub fn send_job(out: &mut impl Write, id: u64, job: Box<Job>, images: &[image::RgbImage]) -> Result<(), ProtocolError> {
    send(out, &ToWorker::Submit { id, job })?;
    for rgb in images {
        write_frame(out, rgb.as_raw())?;
    }
    out.flush()?;
    Ok(())
}

/// Reads the image frames announced by a `Submit`, checking each size before reading it.
pub fn receive_images(input: &mut impl Read, sizes: &[[u32; 2]]) -> Result<Vec<image::RgbImage>, ProtocolError> {
    sizes
        .iter()
        .map(|&[width, height]| {
            if width == 0 || height == 0 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
                return Err(ProtocolError::Refused(format!("an image of {width} × {height} pixels")));
            }
            let bytes = read_frame(input)?.ok_or_else(|| ProtocolError::Refused("the images did not follow".into()))?;
            image::RgbImage::from_raw(width, height, bytes).ok_or_else(|| {
                ProtocolError::Refused(format!("an image frame does not hold {width} × {height} RGB pixels"))
            })
        })
        .collect()
}

/// The answer to a challenge.
pub fn proof(secret: &[u8], nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(nonce.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `proof` answers the challenge (compared in constant time).
pub fn proves(secret: &[u8], nonce: &str, proof: &str) -> bool {
    let Ok(proof) = hex::decode(proof) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(nonce.as_bytes());
    mac.verify_slice(&proof).is_ok()
}

/// 32 random bytes, hex: a nonce, or a secret for the local workers of one server start.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

/// Where a worker listens: `unix:/path/to.sock` or `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(Endpoint::Unix(path.into()));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Endpoint::Tcp(text.into())),
            _ => Err(format!("`{text}`: expected unix:/path/to.sock or host:port")),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(address) => f.write_str(address),
        }
    }
}

/// One connection, over a Unix socket (a worker of this machine) or TCP (a worker elsewhere).
pub enum Connection {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Connection {
    pub fn connect(endpoint: &Endpoint) -> io::Result<Connection> {
        Ok(match endpoint {
            Endpoint::Unix(path) => Connection::Unix(UnixStream::connect(path)?),
            Endpoint::Tcp(address) => {
                let stream = TcpStream::connect(address)?;
                stream.set_nodelay(true)?;
                Connection::Tcp(stream)
            }
        })
    }

    pub fn try_clone(&self) -> io::Result<Connection> {
        Ok(match self {
            Connection::Unix(s) => Connection::Unix(s.try_clone()?),
            Connection::Tcp(s) => Connection::Tcp(s.try_clone()?),
        })
    }

    /// Ends the connection for both directions and every clone (a blocked read returns).
    pub fn shutdown(&self) {
        let _ = match self {
            Connection::Unix(s) => s.shutdown(Shutdown::Both),
            Connection::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Connection::Unix(s) => s.set_read_timeout(timeout),
            Connection::Tcp(s) => s.set_read_timeout(timeout),
        }
    }

    pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Connection::Unix(s) => s.set_write_timeout(timeout),
            Connection::Tcp(s) => s.set_write_timeout(timeout),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Unix(s) => s.read(buf),
            Connection::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Unix(s) => s.write(buf),
            Connection::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Unix(s) => s.flush(),
            Connection::Tcp(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_images_cross_a_socket_pair_in_order() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let image = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let job = Job {
            system: "sys".into(),
            history: vec![],
            turn: Turn { role: models::prompt::Role::User, text: "描述".into(), images: 1, image_captions: vec![] },
            options: GenerateOptions { max_new_tokens: 5, ..GenerateOptions::default() },
            schema: Some(serde_json::json!({"type": "object"})),
            images: vec![[3, 2]],
            queued_ms: 1.5,
            priority: Priority::Background,
        };
        send_job(&mut a, 9, Box::new(job), std::slice::from_ref(&image)).unwrap();
        send(&mut a, &ToWorker::Cancel { id: 9 }).unwrap();
        drop(a);
        let Some(ToWorker::Submit { id, job }) = receive(&mut b).unwrap() else { panic!("not a submit") };
        assert_eq!((id, job.turn.text.as_str(), job.options.max_new_tokens), (9, "描述", 5));
        assert_eq!(job.priority, Priority::Background);
        assert_eq!(receive_images(&mut b, &job.images).unwrap(), vec![image]);
        assert!(matches!(receive(&mut b).unwrap(), Some(ToWorker::Cancel { id: 9 })));
        assert!(receive::<ToWorker>(&mut b).unwrap().is_none(), "a clean end reads as None");
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocation() {
        let mut bytes = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(matches!(read_frame(&mut bytes.as_slice()), Err(ProtocolError::TooLarge(_))));
        // A frame cut short is an error, not a clean end.
        let mut cut = 10u32.to_be_bytes().to_vec();
        cut.extend_from_slice(b"{\"ty");
        assert!(matches!(read_frame(&mut cut.as_slice()), Err(ProtocolError::Io(_))));
    }

    #[test]
    fn image_frames_must_match_their_announced_size() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        write_frame(&mut a, &[0u8; 10]).unwrap();
        assert!(matches!(receive_images(&mut b, &[[2, 2]]), Err(ProtocolError::Refused(_))));
        assert!(matches!(receive_images(&mut b, &[[5000, 1]]), Err(ProtocolError::Refused(_))));
    }

    #[test]
    fn only_the_secret_answers_the_challenge() {
        let nonce = random_hex();
        let answer = proof(b"secret", &nonce);
        assert!(proves(b"secret", &nonce, &answer));
        assert!(!proves(b"other", &nonce, &answer));
        assert!(!proves(b"secret", &random_hex(), &answer));
        assert!(!proves(b"secret", &nonce, "not hex"));
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!("unix:/run/w.sock".parse(), Ok(Endpoint::Unix("/run/w.sock".into())));
        assert_eq!("10.0.0.5:7070".parse(), Ok(Endpoint::Tcp("10.0.0.5:7070".into())));
        assert!("10.0.0.5".parse::<Endpoint>().is_err());
        assert!(":7070".parse::<Endpoint>().is_err());
    }
}
