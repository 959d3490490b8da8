package framing

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Reading a frame in parts, for a reader that passes a large frame's
// payload straight on instead of copying it out of the scanner's buffer:
//
//	f, err := s.NextHead(whole, prefix) // prelude, headers, a payload prefix
//	if f.Partial() {
//		// hand on f.Bytes(), then
//		n, err := s.ReadRest(p) // until PayloadLeft() is 0: payload bytes straight into p
//		crc, err := s.Finish()  // the 4 message-CRC bytes, once the CRC matched
//	}
//
// or, to have the frame whole after all (an exception, say), s.Complete().
// The message CRC is computed once, over the bytes as they pass; Finish
// withholds the CRC bytes of a damaged frame, so a reader that hands on
// nothing after an error never hands on a whole damaged frame.

// NextHead reads the next frame like Next, except that a frame longer than
// whole bytes is read only up to its header block and the first prefix
// bytes of its payload: the returned frame is then Partial, its headers
// validated and parsed, its Payload the prefix. The rest of a partial frame
// must be read with ReadRest and Finish, or Complete, before the next call
// to NextHead or Next. The prelude is validated (lengths, CRC) as by Next.
func (s *Scanner) NextHead(whole, prefix int) (*Frame, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.partial {
		return nil, s.fail(fmt.Errorf("framing: NextHead called before the rest of the frame at offset %d was read", s.start))
	}
	total, headersLen, preCRC, err := s.prelude()
	if err != nil {
		return nil, s.fail(err)
	}
	if int(total) <= whole {
		f, err := s.rest(total, headersLen, preCRC)
		if err != nil {
			return nil, s.fail(err)
		}
		return f, nil
	}
	payload := int(total) - MinFrameLen - int(headersLen)
	head := PreludeLen + int(headersLen) + min(max(prefix, 0), payload)
	buf := s.grow(head)
	copy(buf, s.pre[:])
	n, err := io.ReadFull(s.r, buf[PreludeLen:])
	s.off += int64(n)
	if err != nil {
		return nil, s.fail(s.truncated(s.start, "frame", PreludeLen+n, int(total), err))
	}
	s.crc = crc32.Update(preCRC, crc32.IEEETable, buf[8:])
	s.payload = int(total) - 4 - head
	s.partial = true
	f, err := s.parseHeaders(buf, headersLen, true)
	if err != nil {
		// Next checks a frame's CRC before its headers: read the frame
		// whole so that it fails as Next would (truncated, damaged, or
		// malformed, in that order).
		if f, err = s.complete(head, headersLen); err == nil {
			err = fmt.Errorf("framing: header block of the frame at offset %d parsed whole but not in part", s.start)
		}
		return nil, s.fail(err)
	}
	return f, nil
}

// rest reads the rest of the frame whose prelude is in s.pre, whole: a
// frame whose head is its prelude alone, completed.
func (s *Scanner) rest(total, headersLen, preCRC uint32) (*Frame, error) {
	copy(s.grow(int(total)), s.pre[:])
	s.crc = crc32.Update(preCRC, crc32.IEEETable, s.pre[8:])
	return s.complete(PreludeLen, headersLen)
}

// fail makes err sticky and drops the current frame.
func (s *Scanner) fail(err error) error {
	s.err = err
	s.frame = Frame{}
	s.partial, s.leave = false, false
	return err
}

// LeaveCRC leaves the message CRC of the current partial frame to the
// reader the frame is handed to, which checks it itself (the SDK's
// event-stream decoder does): ReadRest then computes no CRC, and Finish
// returns the frame's CRC bytes unchecked. Call it after NextHead returned
// a partial frame and before ReadRest. The prelude's CRC is checked
// either way.
func (s *Scanner) LeaveCRC() {
	if s.partial {
		s.leave = true
	}
}

// PayloadLeft returns the number of payload bytes of the current partial
// frame not yet read by ReadRest: 0 when there is no partial frame.
func (s *Scanner) PayloadLeft() int {
	if !s.partial {
		return 0
	}
	return s.payload
}

// ReadRest reads payload bytes of the current partial frame into p: at most
// PayloadLeft, with one Read of the underlying reader, so that it returns as
// soon as some bytes arrived. The bytes count towards the frame's CRC. It
// returns 0, nil when no payload is left; the stream ending or failing
// inside the frame yields a *FrameError with Err ErrTruncated (sticky, as
// every error of the scanner).
func (s *Scanner) ReadRest(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.partial || s.payload == 0 || len(p) == 0 {
		return 0, nil
	}
	p = p[:min(len(p), s.payload)]
	n, err := s.r.Read(p)
	if n > 0 {
		if !s.leave {
			s.crc = crc32.Update(s.crc, crc32.IEEETable, p[:n])
		}
		s.payload -= n
		s.off += int64(n)
		return n, nil // an error with the bytes comes again on the next call
	}
	if err == nil {
		return 0, nil
	}
	total := int(binary.BigEndian.Uint32(s.pre[0:4]))
	return 0, s.fail(s.truncated(s.start, "frame", int(s.off-s.start), total, err))
}

// Finish reads the message CRC of the current partial frame once its whole
// payload was read, and checks it against the bytes that passed (unless
// LeaveCRC left it to the reader). It returns
// the 4 CRC bytes as they were on the wire (valid until the next call to
// NextHead or Next), or a *FrameError: ErrMessageCRC for a damaged frame,
// ErrTruncated when the stream ends or fails first.
func (s *Scanner) Finish() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.partial || s.payload != 0 {
		return nil, s.fail(fmt.Errorf("framing: Finish called with %d payload bytes of the frame at offset %d unread", s.payload, s.start))
	}
	n, err := io.ReadFull(s.r, s.trailer[:])
	s.off += int64(n)
	total := int(binary.BigEndian.Uint32(s.pre[0:4]))
	if err != nil {
		return nil, s.fail(s.truncated(s.start, "frame", total-4+n, total, err))
	}
	if wire := binary.BigEndian.Uint32(s.trailer[:]); wire != s.crc && !s.leave {
		return nil, s.fail(crcMismatch(s.start, s.crc, wire))
	}
	s.partial, s.leave = false, false
	s.frame = Frame{}
	return s.trailer[:], nil
}

// Complete reads the rest of the current partial frame, none of whose
// payload ReadRest has read, and returns the frame whole, as Next would
// have: for a frame the reader must see whole after all (an exception, an
// error message, an event to inspect).
func (s *Scanner) Complete() (*Frame, error) {
	if s.err != nil {
		return nil, s.err
	}
	f := &s.frame
	if !s.partial || !f.partial {
		return nil, s.fail(fmt.Errorf("framing: Complete called without a partial frame, or after ReadRest (offset %d)", s.start))
	}
	total := int(binary.BigEndian.Uint32(s.pre[0:4]))
	head := len(f.buf)
	if head+s.payload+4 != total {
		return nil, s.fail(fmt.Errorf("framing: Complete called after ReadRest read %d payload bytes (offset %d)", total-4-head-s.payload, s.start))
	}
	f, err := s.complete(head, f.hdrEnd-PreludeLen)
	if err != nil {
		return nil, s.fail(err)
	}
	return f, nil
}

// complete reads the rest of the partial frame whose first head bytes are
// in s.buf, checks its CRC and parses its headers.
func (s *Scanner) complete(head int, headersLen uint32) (*Frame, error) {
	total := int(binary.BigEndian.Uint32(s.pre[0:4]))
	if cap(s.buf) < total {
		old := s.buf
		oldp := s.bufp
		s.buf, s.bufp = nil, nil
		buf := s.grow(total)
		copy(buf, old[:head])
		if oldp != nil {
			poison(*oldp)
			bufPools[poolClass(cap(*oldp))].Put(oldp)
		}
	}
	buf := s.buf[:total]
	s.buf = buf
	n, err := io.ReadFull(s.r, buf[head:])
	s.off += int64(n)
	if err != nil {
		return nil, s.truncated(s.start, "frame", head+n, total, err)
	}
	msgCRC := crc32.Update(s.crc, crc32.IEEETable, buf[head:total-4])
	if wire := binary.BigEndian.Uint32(buf[total-4:]); wire != msgCRC {
		return nil, crcMismatch(s.start, msgCRC, wire)
	}
	s.partial = false
	return s.parseHeaders(buf, headersLen, false)
}

// FrameOffset returns the stream offset of the frame read last (or being
// read), for errors about it found outside the scanner.
func (s *Scanner) FrameOffset() int64 { return s.start }

// crcMismatch is the error of a frame at offset start whose message CRC,
// computed, differs from the one it carries.
func crcMismatch(start int64, computed, wire uint32) *FrameError {
	return &FrameError{Offset: start, Err: ErrMessageCRC,
		Detail: fmt.Sprintf("message CRC mismatch (computed 0x%08x, frame carries 0x%08x)", computed, wire)}
}
