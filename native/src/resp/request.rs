//! Requests: client bytes → commands, exactly like Redis 7 reads a query buffer
//! (networking.c `processMultibulkBuffer` / `processInlineBuffer`), checked against a real
//! redis-server 7.0.
//!
//! ```text
//! multibulk   *<count>\r\n  then count times  $<len>\r\n<len bytes>\r\n
//! inline      a line split like sdssplitargs:  SET "a b" 'c'\r\n
//! ```
//!
//! `*0`, `*-1` (any count ≤ 0) and blank inline lines are skipped. Redis quirks kept on
//! purpose: the byte after a header's `\r` and the two bytes after a bulk are skipped
//! unchecked; a NUL before a header's `\r` or an inline `\n` hides it (Redis uses `strchr`),
//! so such a line waits until it is too big. Whether a long line is "too big" depends, as in
//! Redis, on how much had arrived when it was looked at.
//!
//! A client that is not authenticated gets Redis' tighter limits (a multibulk count over 10,
//! a bulk over 16384 bytes are protocol errors: `authRequired` in `processMultibulkBuffer`).
//!
//! The owner may refuse a long bulk by its header, before it is buffered: a bulk over
//! [`CHECKED_BULK_LEN`] whose header is read while the bulk is not wholly buffered yet is shown
//! to the check passed to [`RequestReader::next`] (jshost refuses a too big library LOAD so).
//!
//! A protocol error is sticky, as in Redis (which stops reading a client once it has one):
//! nothing is consumed, and every later call returns the same error.

use std::ops::Range;

use memchr::memchr;

use super::buffer::InputBuffer;
use super::RespError;

/// Longest inline request, and longest header line (`PROTO_INLINE_MAX_SIZE`).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Longest bulk argument (`proto-max-bulk-len`).
pub const PROTO_MAX_BULK_LEN: i64 = 512 * 1024 * 1024;
/// Most arguments in a command: Redis 7 accepts up to INT_MAX (the 1M cap was Redis ≤ 6.2).
pub const MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;
/// Most bytes held for commands not returned yet (`client-query-buffer-limit`).
pub const CLIENT_QUERY_BUFFER_LIMIT: usize = 1 << 30;
/// Most arguments in a command before the client is authenticated.
pub const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;
/// Longest bulk argument before the client is authenticated.
pub const UNAUTH_MAX_BULK_LEN: i64 = 16384;
/// Bulks longer than this are shown to the check of [`RequestReader::next`] by their header
/// (when they are not wholly buffered yet).
pub const CHECKED_BULK_LEN: i64 = 64 * 1024;

/// The limits a reader enforces (settable per parser).
pub struct Limits {
    pub max_bulk_len: i64,
    pub max_multibulk_len: i64,
    pub max_inline_size: usize,
    pub query_buffer_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: PROTO_MAX_BULK_LEN,
            max_multibulk_len: MAX_MULTIBULK_LEN,
            max_inline_size: PROTO_INLINE_MAX_SIZE,
            query_buffer_limit: CLIENT_QUERY_BUFFER_LIMIT,
        }
    }
}

/// A multibulk command read in part: its arguments so far and where the reading stopped.
struct Partial {
    /// Copied out of the buffer, so a big command arriving slowly is not copied again and again.
    args: Vec<Vec<u8>>,
    /// Arguments still to read.
    remaining: i64,
    /// Length of the argument being read; -1 while its header is not read yet.
    bulklen: i64,
}

/// What [`RequestReader::next`] found.
pub enum Next {
    /// A command: these arguments, then those whose ranges were pushed (in the buffer).
    Command(Vec<Vec<u8>>),
    /// No complete command is buffered.
    NeedData,
}

/// Why [`RequestReader::next`] stopped with no command.
#[derive(Debug)]
pub enum Failure<E> {
    /// Malformed input, or a bulk the check refused (sticky).
    Protocol(RespError),
    /// The check itself failed (not sticky: the next call asks it again).
    Check(E),
}

impl<E> From<RespError> for Failure<E> {
    fn from(err: RespError) -> Self {
        Self::Protocol(err)
    }
}

/// A long bulk whose header was just read, as the check sees it: the command's arguments so
/// far (`earlier`, then these `ranges` of `data`) and the bulk's announced length.
pub struct LongBulk<'a> {
    pub earlier: &'a [Vec<u8>],
    pub data: &'a [u8],
    pub ranges: &'a [Range<usize>],
    pub length: i64,
}

/// The request state machine: a buffer, a partly read command, the limits.
#[derive(Default)]
pub struct RequestReader {
    pub input: InputBuffer,
    partial: Option<Partial>,
    /// Bytes of the partly read command already consumed (they count against the limit).
    pub partial_len: usize,
    pub limits: Limits,
    /// Apply Redis' pre-authentication limits.
    pub unauthenticated: bool,
    /// The protocol error found, returned again by every later call.
    failed: Option<RespError>,
}

impl RequestReader {
    pub fn new(limits: Limits, unauthenticated: bool) -> Self {
        Self { limits, unauthenticated, ..Self::default() }
    }

    /// Append received bytes; `Err(held)` when more than the query buffer limit is held.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), usize> {
        self.input.feed(data);
        let held = self.held();
        if held > self.limits.query_buffer_limit {
            return Err(held);
        }
        Ok(())
    }

    /// Bytes held for commands not returned yet: unparsed, and consumed by a partial command.
    pub fn held(&self) -> usize {
        self.input.unparsed() + self.partial_len
    }

    /// Parse the next command. Its arguments are those of `Next::Command`, then the ranges of
    /// `self.input.buf` pushed to `ranges` (cleared first), valid until the next call.
    ///
    /// `check` is asked about each bulk over [`CHECKED_BULK_LEN`] whose header is read while
    /// the bulk is not wholly buffered: `Ok(Some(text))` refuses it (a protocol error with
    /// that text, before the bulk is buffered).
    pub fn next<E>(
        &mut self,
        ranges: &mut Vec<Range<usize>>,
        check: &mut impl FnMut(LongBulk<'_>) -> Result<Option<String>, E>,
    ) -> Result<Next, Failure<E>> {
        ranges.clear();
        if let Some(err) = &self.failed {
            return Err(Failure::Protocol(err.clone()));
        }
        let result = self.parse(ranges, check);
        if let Err(Failure::Protocol(err)) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn parse<E>(
        &mut self,
        ranges: &mut Vec<Range<usize>>,
        check: &mut impl FnMut(LongBulk<'_>) -> Result<Option<String>, E>,
    ) -> Result<Next, Failure<E>> {
        if !self.input.ready() {
            return Ok(Next::NeedData);
        }
        let data: &[u8] = &self.input.buf;
        let end = data.len();
        let mut pos = self.input.pos;
        let max_inline = self.limits.max_inline_size;
        let (mut remaining, mut bulklen) = match &self.partial {
            Some(partial) => (partial.remaining, partial.bulklen),
            None => loop {
                // Skip empty commands (*0, *-1, blank inline lines).
                if pos >= end {
                    return Ok(self.need_data(pos, 1));
                }
                if data[pos] != b'*' {
                    match inline(data, pos, max_inline)? {
                        None => return Ok(self.need_data(pos, end - pos + 1)),
                        Some((args, next)) => {
                            pos = next;
                            if !args.is_empty() {
                                self.consumed(pos);
                                return Ok(Next::Command(args));
                            }
                            continue;
                        }
                    }
                }
                let cr = find_cr(data, pos);
                // Redis wants one byte after the '\r' and never checks it.
                let count = match cr {
                    Some(cr) if cr < end - 1 => {
                        string2ll(&data[pos + 1..cr]).filter(|&count| count <= self.limits.max_multibulk_len)
                    }
                    _ => None,
                };
                let (Some(count), Some(cr)) = (count, cr) else {
                    header_error(data, pos, cr, false, max_inline)?;
                    return Ok(self.need_data(pos, end - pos + 1));
                };
                if count > UNAUTH_MAX_MULTIBULK_LEN && self.unauthenticated {
                    return Err(RespError::UnauthMbulkCount.into());
                }
                pos = cr + 2;
                if count > 0 {
                    break (count, -1);
                }
            },
        };
        let start = self.input.pos;
        let mut need = 0;
        while remaining > 0 {
            if bulklen < 0 {
                let cr = find_cr(data, pos);
                if let Some(cr) = cr {
                    if cr < end - 1 && data[pos] == b'$' {
                        bulklen = bulk_length(&data[pos + 1..cr]);
                    }
                }
                match cr {
                    Some(cr) if bulklen >= 0 && bulklen <= self.limits.max_bulk_len => {
                        if bulklen > UNAUTH_MAX_BULK_LEN && self.unauthenticated {
                            return Err(RespError::UnauthBulkLength.into());
                        }
                        pos = cr + 2;
                        // Not wholly buffered (data and CRLF): the owner may refuse it now.
                        if bulklen > CHECKED_BULK_LEN && pos + bulklen as usize + 2 > end {
                            let earlier = self.partial.as_ref().map_or(&[][..], |p| &p.args);
                            let bulk = LongBulk { earlier, data, ranges, length: bulklen };
                            if let Some(text) = check(bulk).map_err(Failure::Check)? {
                                return Err(RespError::Refused(text).into());
                            }
                        }
                    }
                    _ => {
                        header_error(data, pos, cr, true, max_inline)?;
                        bulklen = -1;
                        need = end - pos + 1;
                        break;
                    }
                }
            }
            // bulklen <= max_bulk_len <= i64::MAX: no overflow on a 64-bit target.
            let stop = pos + bulklen as usize;
            if stop + 2 > end {
                need = stop + 2 - pos;
                break;
            }
            ranges.push(pos..stop);
            pos = stop + 2; // the CRLF is skipped unchecked, as in Redis
            bulklen = -1;
            remaining -= 1;
        }
        if remaining == 0 {
            let earlier = match self.partial.take() {
                Some(partial) => partial.args,
                None => Vec::new(),
            };
            self.partial_len = 0;
            self.consumed(pos);
            return Ok(Next::Command(earlier));
        }
        // Incomplete: keep the arguments read so far and where the reading stopped.
        let partial = self.partial.get_or_insert(Partial { args: Vec::new(), remaining, bulklen });
        partial.args.extend(ranges.drain(..).map(|r| data[r].to_vec()));
        partial.remaining = remaining;
        partial.bulklen = bulklen;
        self.partial_len += pos - start;
        Ok(self.need_data(pos, need))
    }

    /// A command ended just before `pos`.
    fn consumed(&mut self, pos: usize) {
        self.input.pos = pos;
        self.input.start = pos;
        // What was needed before this command was found is met: without this reset, a command
        // following a big one split across reads would wait for bytes it does not need.
        self.input.need = 0;
    }

    fn need_data(&mut self, pos: usize, need: usize) -> Next {
        self.input.pos = pos;
        self.input.start = pos;
        self.input.need = need;
        Next::NeedData
    }
}

fn find_cr(data: &[u8], pos: usize) -> Option<usize> {
    memchr(b'\r', &data[pos..]).map(|i| pos + i)
}

/// An inline command's arguments, and the position after its line.
type Inline = (Vec<Vec<u8>>, usize);

/// Parse one inline line at `pos`, or None while it is incomplete.
fn inline(data: &[u8], pos: usize, max_inline: usize) -> Result<Option<Inline>, RespError> {
    let line = &data[pos..];
    match memchr(b'\n', line) {
        // A NUL before the newline hides it from Redis' strchr.
        Some(nl) if memchr(0, &line[..nl]).is_none() => {
            // A final '\r' is a blank to split_args: no need to cut it.
            let args = split_args(&line[..nl]).ok_or(RespError::UnbalancedQuotes)?;
            Ok(Some((args, pos + nl + 1)))
        }
        _ if line.len() > max_inline => Err(RespError::TooBigInline),
        _ => Ok(None),
    }
}

/// Redis' error for the bad or incomplete header line at `pos`, or Ok when more data may
/// still complete it. `cr` is the first CR at or after `pos`; Redis finds it with strchr,
/// which stops at a NUL.
fn header_error(
    data: &[u8],
    pos: usize,
    cr: Option<usize>,
    bulk: bool,
    max_inline: usize,
) -> Result<(), RespError> {
    let cr = cr.filter(|&cr| memchr(0, &data[pos..cr]).is_none());
    let end = data.len();
    match cr {
        None if end - pos > max_inline => {
            Err(if bulk { RespError::TooBigBulkCount } else { RespError::TooBigMbulkCount })
        }
        None => Ok(()),
        Some(cr) if cr >= end - 1 => Ok(()),
        Some(_) if !bulk => Err(RespError::InvalidMultibulkLength),
        Some(_) if data[pos] != b'$' => Err(RespError::ExpectedDollar(data[pos])),
        Some(_) => Err(RespError::InvalidBulkLength),
    }
}

/// A bulk length as Redis' `string2ll` reads it here: digits, no sign, no leading zero;
/// -1 when it is not one (or does not fit).
fn bulk_length(digits: &[u8]) -> i64 {
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return -1;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return -1;
        }
        match n.checked_mul(10).and_then(|n| n.checked_add(i64::from(d - b'0'))) {
            Some(next) => n = next,
            None => return -1,
        }
    }
    n
}

/// Redis `string2ll`: an optional `-`, no `+`, no spaces, no leading zeros, fits an int64.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // -(2**63) fits; its absolute value does not.
        (n <= 1 << 63).then(|| (n as i64).wrapping_neg())
    } else {
        i64::try_from(n).ok()
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Split an inline request line like Redis `sdssplitargs`; None for unbalanced quotes.
///
/// `set "a\x41" 'it\'s'` → `set`, `aA`, `it's`. In double quotes `\xHH`, `\n`, `\r`, `\t`,
/// `\b`, `\a` and `\<any>` are escapes; in single quotes only `\'`. A closing quote must be
/// followed by a blank or the end. As in C, a NUL byte ends the line.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = match memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    if !line.iter().any(|&c| matches!(c, b'"' | b'\'' | 0x0b | 0x0c)) {
        // No quotes: the separators are exactly " \t\r\n".
        let words = line.split(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
        return Some(words.filter(|w| !w.is_empty()).map(<[u8]>::to_vec).collect());
    }
    split_args_quoted(line)
}

fn split_args_quoted(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let n = line.len();
    let at = |i: usize| if i < n { line[i] } else { 0 }; // C's *(p+i): the end reads the NUL
    let hex = |c: u8| (c as char).to_digit(16);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < n && is_c_space(line[p]) {
            p += 1;
        }
        if p >= n {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(p);
            if in_dq {
                if let (b'\\', b'x', Some(hi), Some(lo)) = (c, at(p + 1), hex(at(p + 2)), hex(at(p + 3))) {
                    current.push((hi * 16 + lo) as u8);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0) {
                break; // only these end an unquoted word (not \v \f)
            } else if c == b'"' {
                in_dq = true;
            } else if c == b'\'' {
                in_sq = true;
            } else {
                current.push(c);
            }
            p += 1;
        }
        args.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(LongBulk<'_>) -> Result<Option<String>, ()>;

    fn no_check(_: LongBulk<'_>) -> Result<Option<String>, ()> {
        Ok(None)
    }

    fn next(reader: &mut RequestReader, check: Check) -> Result<Next, Failure<()>> {
        reader.next(&mut Vec::new(), &mut { check })
    }

    fn parse(data: &[u8]) -> (Vec<Vec<Vec<u8>>>, Option<RespError>) {
        let mut reader = RequestReader::new(Limits::default(), false);
        reader.feed(data).unwrap();
        let mut ranges = Vec::new();
        let mut out = Vec::new();
        loop {
            match reader.next(&mut ranges, &mut no_check) {
                Ok(Next::Command(mut args)) => {
                    args.extend(ranges.iter().map(|r| reader.input.buf[r.clone()].to_vec()));
                    out.push(args);
                }
                Ok(Next::NeedData) => return (out, None),
                Err(Failure::Protocol(e)) => return (out, Some(e)),
                Err(Failure::Check(())) => unreachable!(),
            }
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let (cmds, err) = parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING x\r\n*0\r\n");
        assert_eq!(cmds, vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec(), b"x".to_vec()]]);
        assert_eq!(err, None);
    }

    #[test]
    fn errors_keep_the_position() {
        let (cmds, err) = parse(b"*1\r\n$4\r\nPING\r\n*1\r\n:1\r\n");
        assert_eq!(cmds.len(), 1);
        assert_eq!(err, Some(RespError::ExpectedDollar(b':')));
    }

    #[test]
    fn string2ll_is_redis_string2ll() {
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-0", b"01", b"+1", b" 1", b"-"] {
            assert_eq!(string2ll(bad), None);
        }
    }

    #[test]
    fn unauthenticated_limits() {
        let mut reader = RequestReader::new(Limits::default(), true);
        reader.feed(b"*11\r\n").unwrap();
        assert!(matches!(next(&mut reader, no_check), Err(Failure::Protocol(RespError::UnauthMbulkCount))));
        let mut reader = RequestReader::new(Limits::default(), true);
        reader.feed(b"*1\r\n$16385\r\n").unwrap();
        assert!(matches!(next(&mut reader, no_check), Err(Failure::Protocol(RespError::UnauthBulkLength))));
    }

    #[test]
    fn long_bulks_not_wholly_buffered_are_checked_and_a_refusal_is_sticky() {
        fn refuse(bulk: LongBulk<'_>) -> Result<Option<String>, ()> {
            let argv: Vec<&[u8]> = bulk.ranges.iter().map(|r| &bulk.data[r.clone()]).collect();
            assert_eq!((argv, bulk.length), (vec![&b"LOAD"[..]], 65537));
            Ok(Some("ERR no".into()))
        }
        let mut reader = RequestReader::default();
        reader.feed(b"*2\r\n$4\r\nLOAD\r\n$65537\r\n").unwrap();
        let refused = |r| matches!(r, Err(Failure::Protocol(RespError::Refused(t))) if t == "ERR no");
        assert!(refused(next(&mut reader, refuse)));
        reader.feed(&[b'x'; 65539]).unwrap();
        assert!(refused(next(&mut reader, no_check)));
        // Wholly buffered: not checked.
        let mut reader = RequestReader::default();
        reader.feed(&[&b"*1\r\n$65537\r\n"[..], &[b'x'; 65539]].concat()).unwrap();
        assert!(matches!(next(&mut reader, |_| Err(())), Ok(Next::Command(_))));
        // A failing check is asked again.
        let mut reader = RequestReader::default();
        reader.feed(b"*1\r\n$65537\r\n").unwrap();
        assert!(matches!(next(&mut reader, |_| Err(())), Err(Failure::Check(()))));
        assert!(matches!(next(&mut reader, no_check), Ok(Next::NeedData)));
    }
}
