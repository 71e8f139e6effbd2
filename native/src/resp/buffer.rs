//! The input buffer shared by both parsers.
//!
//! `buf[pos..]` is not parsed yet; `buf[start..pos]` is the part of an item (a command or a
//! reply) already read, kept only when the parser needs its bytes again (the raw bytes of a
//! reply). Bytes fed while unparsed bytes remain wait in `pending`, unjoined, until they may
//! complete the next item (`need` bytes from `pos`): a big value arriving in many small reads
//! is joined once, not once per read. When everything was consumed, a new chunk simply becomes
//! the buffer.

/// Capacity kept across chunks; a bigger allocation (a big value went through) is given back.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Default)]
pub struct InputBuffer {
    pub buf: Vec<u8>,
    /// First byte that must survive a compaction (≤ `pos`).
    pub start: usize,
    /// First unparsed byte.
    pub pos: usize,
    pending: Vec<u8>,
    /// Bytes needed from `pos` before parsing can make progress (set when it could not).
    pub need: usize,
}

impl InputBuffer {
    /// Append received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.pending.is_empty() || self.start < self.buf.len() {
            self.pending.extend_from_slice(data);
        } else {
            if self.buf.capacity() > KEEP_CAPACITY && data.len() <= KEEP_CAPACITY {
                self.buf = Vec::new();
            }
            self.buf.clear();
            self.buf.extend_from_slice(data);
            self.start = 0;
            self.pos = 0;
        }
    }

    /// Unparsed bytes, joined or not.
    pub fn unparsed(&self) -> usize {
        self.buf.len() - self.pos + self.pending.len()
    }

    /// Bytes fed but not joined yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Join the pending bytes if they may complete the next item; false if they cannot yet
    /// (then parsing would only find again what it found last time).
    pub fn ready(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        if self.unparsed() < self.need {
            return false;
        }
        self.buf.drain(..self.start);
        self.pos -= self.start;
        self.start = 0;
        self.buf.extend_from_slice(&self.pending);
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
        self.need = 0;
        true
    }
}
