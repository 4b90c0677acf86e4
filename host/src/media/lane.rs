//! A lane: one output's thread and the bounded queue of decoded frames that feeds it.
//! The decode sends each frame to every lane that wants it, as a new reference to the
//! same buffers; the lane's sink filters, encodes and muxes it on its own thread.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::filters::share;
use super::sink::{Flow, Sink};

/// Frames waiting per lane. Enough to ride out an encoder's bursts (x264 takes several
/// frames before it gives one back) while bounding memory.
pub(super) const LANE_DEPTH: usize = 8;

enum Message {
    Video(frame::Video),
    Audio(frame::Audio),
    /// A frame of another audio track, by its stream index.
    Track(usize, frame::Audio),
    /// The input has ended: finish the output.
    End,
    /// The input broke or the job was cancelled: give up with this error.
    Abort(MediaError),
}

/// A sink's thread and the sending end of its frame queue.
pub(super) struct Lane<T> {
    sender: Option<SyncSender<Message>>,
    handle: Option<JoinHandle<Result<T, MediaError>>>,
    pub wants_video: bool,
    pub wants_audio: bool,
    /// The other audio tracks it takes, by stream index.
    wants_tracks: Vec<usize>,
}

impl<T: Send + 'static> Lane<T> {
    /// Start `sink` on a thread of its own; `report` sees its result on that thread.
    pub fn spawn(
        name: String,
        sink: Box<dyn Sink<Done = T>>,
        report: Box<dyn FnOnce(&Result<T, MediaError>) + Send>,
    ) -> Result<Self, MediaError> {
        let (sender, receiver) = sync_channel(LANE_DEPTH);
        let (wants_video, wants_audio, wants_tracks) = (sink.wants_video(), sink.wants_audio(), sink.tracks());
        let span = tracing::Span::current();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _span = span.enter();
                let result = run_lane(sink, receiver);
                report(&result);
                result
            })
            .map_err(|err| MediaError::Unsupported(format!("cannot start a thread for the output: {err}")))?;
        Ok(Lane { sender: Some(sender), handle: Some(handle), wants_video, wants_audio, wants_tracks })
    }

    /// Whether the lane still takes frames.
    pub fn open(&self) -> bool {
        self.sender.is_some()
    }

    pub fn send_video(&mut self, frame: &frame::Video) {
        if self.wants_video {
            self.send(share(frame, frame::Video::empty()).map(Message::Video));
        }
    }

    pub fn send_audio(&mut self, frame: &frame::Audio) {
        if self.wants_audio {
            self.send(share(frame, frame::Audio::empty()).map(Message::Audio));
        }
    }

    pub fn send_track(&mut self, stream: usize, frame: &frame::Audio) {
        if self.wants_tracks.contains(&stream) {
            self.send(share(frame, frame::Audio::empty()).map(|f| Message::Track(stream, f)));
        }
    }

    /// Queue a message; a lane that has stopped listening (done or failed) is closed.
    fn send(&mut self, message: Result<Message, MediaError>) {
        let Some(sender) = &self.sender else { return };
        if sender.send(message.unwrap_or_else(Message::Abort)).is_err() {
            self.sender = None;
        }
    }

    /// No more frames: finish normally, or give up with `error`.
    pub fn close(&mut self, error: Option<MediaError>) {
        if let Some(sender) = self.sender.take() {
            // Waits for room if the queue is full: the lane is working through it.
            let _ = sender.send(error.map_or(Message::End, Message::Abort));
        }
    }

    /// Wait for the lane's result.
    pub fn join(mut self) -> Result<T, MediaError> {
        match self.handle.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| Err(MediaError::Unsupported("the output's thread panicked".into()))),
            None => Err(MediaError::Cancelled),
        }
    }
}

fn run_lane<T>(mut sink: Box<dyn Sink<Done = T>>, receiver: Receiver<Message>) -> Result<T, MediaError> {
    loop {
        let flow = match receiver.recv() {
            Ok(Message::Video(frame)) => sink.video(&frame)?,
            Ok(Message::Audio(frame)) => sink.audio(&frame)?,
            Ok(Message::Track(stream, frame)) => sink.track(stream, &frame)?,
            Ok(Message::End) => return sink.finish(),
            Ok(Message::Abort(err)) => return Err(err),
            // The engine went away without a word: it was cancelled.
            Err(_) => return Err(MediaError::Cancelled),
        };
        if flow == Flow::Done {
            // Hang up first so the decoder stops queueing frames for this output.
            drop(receiver);
            return sink.finish();
        }
    }
}
