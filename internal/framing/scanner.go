package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Frame size limits of the AWS event-stream wire format.
const (
	// PreludeLen is the number of bytes in a frame prelude: total length,
	// headers length and prelude CRC, each a big-endian uint32.
	PreludeLen = 12
	// MinFrameLen is the smallest valid frame: a prelude and a message CRC,
	// with no headers and no payload.
	MinFrameLen = 16
	// MaxPayloadLen is the largest payload of a frame, 25,165,824 bytes
	// (24 MiB), and MaxHeadersLen the largest encoded header block,
	// 131,072 bytes (128 KiB): the limits of the format (smithy, "Amazon
	// Event Stream Specification"). The specification asks services to
	// enforce them and clients not to enforce lower ones; the scanner
	// enforces exactly these, so every frame a service may send is accepted
	// and a frame's memory stays bounded.
	MaxPayloadLen = 24 << 20
	MaxHeadersLen = 128 << 10
	// MaxFrameLen is the largest frame the scanner accepts: a prelude, the
	// largest header block, the largest payload and the message CRC.
	MaxFrameLen = MinFrameLen + MaxHeadersLen + MaxPayloadLen
)

// Sentinel errors carried in [FrameError.Err]; test for them with
// [errors.Is].
var (
	// ErrPreludeLength means the prelude declared an impossible size: a total
	// length below MinFrameLen or above MaxFrameLen, a headers length
	// larger than the total length leaves room for, or a header block or
	// payload above the format's limits (MaxHeadersLen, MaxPayloadLen).
	ErrPreludeLength = errors.New("event stream: invalid length in frame prelude")
	// ErrPreludeCRC means the prelude's CRC32 does not match its first 8
	// bytes.
	ErrPreludeCRC = errors.New("event stream: prelude CRC mismatch")
	// ErrMessageCRC means the message CRC32 does not match the frame's bytes.
	ErrMessageCRC = errors.New("event stream: message CRC mismatch")
	// ErrHeaders means the header block is malformed: an unknown value type,
	// or a name, length prefix or value that runs past the end of the block.
	ErrHeaders = errors.New("event stream: malformed header block")
	// ErrTruncated means the stream ended, or a read failed, inside a frame.
	// The [FrameError] carries the cause: io.ErrUnexpectedEOF or the read
	// error.
	ErrTruncated = errors.New("event stream: truncated frame")
)

// FrameError reports a frame the scanner rejected.
type FrameError struct {
	// Offset is the stream offset of the frame's first byte.
	Offset int64
	// Err is one of ErrPreludeLength, ErrPreludeCRC, ErrMessageCRC,
	// ErrHeaders or ErrTruncated.
	Err error
	// Detail describes the failure, for example
	// "payload length 25165825 exceeds the event-stream limit of 25165824 bytes".
	Detail string
	// Cause is the underlying read error when Err is ErrTruncated
	// (io.ErrUnexpectedEOF when the stream simply ended), else nil.
	Cause error
}

// Error returns a one-line description of what failed and what it means.
func (e *FrameError) Error() string {
	var b strings.Builder
	b.WriteString("event stream: frame at offset ")
	fmt.Fprintf(&b, "%d: ", e.Offset)
	detail := e.Detail
	if detail == "" && e.Err != nil {
		detail = strings.TrimPrefix(e.Err.Error(), "event stream: ")
	}
	b.WriteString(detail)
	b.WriteString(": ")
	switch e.Err {
	case ErrPreludeLength:
		b.WriteString("the stream is corrupt or is not an AWS event stream")
	case ErrPreludeCRC:
		b.WriteString("the stream is corrupt")
	case ErrMessageCRC:
		b.WriteString("the frame was corrupted in transit")
	case ErrHeaders:
		b.WriteString("the frame is malformed")
	case ErrTruncated:
		b.WriteString("the stream was cut off mid-frame")
	default:
		b.WriteString("the frame was rejected")
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns Err and, when set, Cause, so that errors.Is matches both the
// sentinel and the underlying read error (io.ErrUnexpectedEOF,
// net.ErrClosed, ...).
func (e *FrameError) Unwrap() []error {
	switch {
	case e.Err != nil && e.Cause != nil:
		return []error{e.Err, e.Cause}
	case e.Err != nil:
		return []error{e.Err}
	case e.Cause != nil:
		return []error{e.Cause}
	}
	return nil
}

// Scanner reads AWS event-stream frames from an io.Reader, one per call to
// [Scanner.Next]. It validates lengths, both CRCs and the header block of
// every frame, and in steady state allocates nothing: frames of up to
// MaxPooledLen bytes are read into buffers from a pool shared by all
// scanners, taken when a frame's prelude has arrived. A buffer of up to
// KeepLen bytes stays with the scanner for the next frames (no pool
// traffic per frame); a larger one goes back when the next call begins, so
// a scanner waiting for a frame holds at most KeepLen bytes. A frame above
// MaxPooledLen gets a buffer of exactly its size, which the scanner keeps
// for later frames. Release gives everything back. A Scanner is not safe
// for concurrent use.
type Scanner struct {
	r     io.Reader
	off   int64
	err   error
	buf   []byte
	bufp  *[]byte // buf's pool entry (pool.go), nil when buf is not pooled
	pre   [PreludeLen]byte
	frame Frame

	// A frame read by NextHead whose rest has not been read yet.
	start   int64   // the frame's offset
	payload int     // payload bytes still to read (ReadRest)
	partial bool    // the frame's message CRC is still to read (Finish)
	leave   bool    // LeaveCRC: the partial frame's CRC is the reader's to check
	crc     uint32  // the message CRC of the bytes read so far
	trailer [4]byte // the message CRC, once Finish read it
}

// NewScanner returns a Scanner that reads frames from r. The Scanner makes two
// reads per frame (the 12-byte prelude, then the rest); wrap r in a
// bufio.Reader if small reads on it are expensive (a raw net.Conn, say).
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: r}
}

// Reset makes s read frames from r as if it were new, keeping the buffer it
// has grown. The zero Scanner is ready for Reset.
func (s *Scanner) Reset(r io.Reader) {
	*s = Scanner{r: r, buf: s.buf[:0], bufp: s.bufp}
}

// Release returns the scanner's frame buffer to the shared pool and makes
// s a zero Scanner. The frame Next returned last, and every slice of it, must
// not be used afterwards.
func (s *Scanner) Release() {
	s.putBuf()
	*s = Scanner{}
}

// Offset returns the number of bytes consumed from the reader so far.
func (s *Scanner) Offset() int64 { return s.off }

// Next reads and validates exactly one frame.
//
// At a clean end of stream (io.EOF before any byte of a new frame) it returns
// (nil, io.EOF). A read error before any byte of a frame is returned
// unchanged, not wrapped, so callers can classify transport errors. EOF or a
// read error inside a frame yields a *FrameError with Err ErrTruncated and
// Cause io.ErrUnexpectedEOF or the read error; a frame that fails validation
// yields a *FrameError with the matching sentinel.
//
// The prelude is validated before anything else is read or allocated, so the
// scanner never allocates more than the declared frame length, nor more than
// MaxFrameLen.
//
// The returned *Frame, and every slice obtained from it, is valid only until
// the next call to Next. After any error, further calls return the same
// error.
func (s *Scanner) Next() (*Frame, error) {
	if s.err != nil {
		return nil, s.err
	}
	f, err := s.next()
	if err != nil {
		return nil, s.fail(err)
	}
	return f, nil
}

func (s *Scanner) next() (*Frame, error) {
	if s.partial {
		return nil, fmt.Errorf("framing: Next called before the rest of the frame at offset %d was read", s.start)
	}
	total, headersLen, preCRC, err := s.prelude()
	if err != nil {
		return nil, err
	}
	return s.rest(total, headersLen, preCRC)
}

// prelude gives the buffer of the previous frame back, then reads and
// validates the next frame's prelude into s.pre. It returns the frame's
// total and headers lengths and the prelude's CRC; s.start is the frame's
// offset.
func (s *Scanner) prelude() (total, headersLen, preCRC uint32, err error) {
	if s.bufp != nil && cap(s.buf) > KeepLen {
		s.putBuf() // the previous frame is done with: a large pooled buffer is not held while waiting
	}
	s.frame = Frame{}
	start := s.off
	s.start = start
	n, err := io.ReadFull(s.r, s.pre[:])
	s.off += int64(n)
	if err != nil {
		if n == 0 {
			return 0, 0, 0, err // clean io.EOF, or a transport error between frames
		}
		return 0, 0, 0, s.truncated(start, "prelude", n, PreludeLen, err)
	}

	total = binary.BigEndian.Uint32(s.pre[0:4])
	headersLen = binary.BigEndian.Uint32(s.pre[4:8])
	switch {
	case total < MinFrameLen:
		return 0, 0, 0, &FrameError{Offset: start, Err: ErrPreludeLength,
			Detail: fmt.Sprintf("total length %d is below the minimum %d", total, MinFrameLen)}
	case total > MaxFrameLen:
		return 0, 0, 0, &FrameError{Offset: start, Err: ErrPreludeLength,
			Detail: fmt.Sprintf("total length %d exceeds %d", total, MaxFrameLen)}
	case headersLen > total-MinFrameLen:
		return 0, 0, 0, &FrameError{Offset: start, Err: ErrPreludeLength,
			Detail: fmt.Sprintf("headers length %d exceeds the %d bytes a %d-byte frame has room for",
				headersLen, total-MinFrameLen, total)}
	case headersLen > MaxHeadersLen:
		return 0, 0, 0, &FrameError{Offset: start, Err: ErrPreludeLength,
			Detail: fmt.Sprintf("headers length %d exceeds the event-stream limit of %d bytes", headersLen, MaxHeadersLen)}
	case total-MinFrameLen-headersLen > MaxPayloadLen:
		return 0, 0, 0, &FrameError{Offset: start, Err: ErrPreludeLength,
			Detail: fmt.Sprintf("payload length %d exceeds the event-stream limit of %d bytes", total-MinFrameLen-headersLen, MaxPayloadLen)}
	}
	preCRC = crc32.ChecksumIEEE(s.pre[:8])
	if wire := binary.BigEndian.Uint32(s.pre[8:12]); wire != preCRC {
		return 0, 0, 0, &FrameError{Offset: start, Err: ErrPreludeCRC,
			Detail: fmt.Sprintf("prelude CRC mismatch (computed 0x%08x, frame carries 0x%08x)", preCRC, wire)}
	}

	return total, headersLen, preCRC, nil
}

// parseHeaders makes s.frame the frame in buf (a whole frame, or with
// partial set the head NextHead read), parsing its header block.
func (s *Scanner) parseHeaders(buf []byte, headersLen uint32, partial bool) (*Frame, error) {
	start := s.start
	f := &s.frame
	*f = Frame{buf: buf, hdrEnd: uint32(PreludeLen) + headersLen, partial: partial}
	end := int(f.hdrEnd)
	for i, p := 0, PreludeLen; p < end; i++ {
		h, next, bad := frameParseHeader(buf, p, end)
		if bad != frameHeaderOK {
			return nil, &FrameError{Offset: start, Err: ErrHeaders, Detail: scanHeaderDetail(buf, i, p, end, h, bad)}
		}
		p = next
		if h.typ != HeaderString || h.nameEnd == h.nameStart || buf[h.nameStart] != ':' {
			continue
		}
		sp := frameSpan{start: uint32(h.valStart), end: uint32(h.valEnd)}
		switch string(buf[h.nameStart:h.nameEnd]) {
		case ":message-type":
			switch string(buf[h.valStart:h.valEnd]) {
			case "event":
				f.msgType = MessageTypeEvent
			case "exception":
				f.msgType = MessageTypeException
			case "error":
				f.msgType = MessageTypeError
			default:
				f.msgType = MessageTypeOther
			}
		case ":event-type":
			f.eventType = sp
		case ":exception-type":
			f.exceptionType = sp
		case ":error-code":
			f.errorCode = sp
		case ":error-message":
			f.errorMessage = sp
		case ":content-type":
			f.contentType = sp
		}
	}
	return f, nil
}

// truncated builds the ErrTruncated error for a frame starting at start of
// which got of want bytes (of the named part) arrived before err.
func (s *Scanner) truncated(start int64, part string, got, want int, err error) error {
	what := "stream ended"
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = io.ErrUnexpectedEOF
	} else {
		what = "read failed"
	}
	return &FrameError{Offset: start, Err: ErrTruncated, Cause: err,
		Detail: fmt.Sprintf("%s after %d of %d %s bytes", what, got, want, part)}
}

// scanHeaderDetail describes header number i, which starts at frame byte p of
// a header block ending at end and failed to parse.
func scanHeaderDetail(buf []byte, i, p, end int, h frameRawHeader, bad frameHeaderProblem) string {
	name := buf[h.nameStart:h.nameEnd]
	switch bad {
	case frameHeaderNamePastEnd:
		return fmt.Sprintf("header %d at frame byte %d: %d-byte name runs past the end of the header block (%d bytes left)",
			i, p, h.wantLen, end-h.nameStart)
	case frameHeaderNoType:
		return fmt.Sprintf("header %d %q at frame byte %d: no type byte before the end of the header block", i, name, p)
	case frameHeaderBadType:
		return fmt.Sprintf("header %d %q at frame byte %d: unknown value type %d", i, name, p, buf[h.valStart])
	case frameHeaderLenPastEnd:
		return fmt.Sprintf("header %d %q at frame byte %d: %s length prefix runs past the end of the header block",
			i, name, p, h.typ)
	default:
		return fmt.Sprintf("header %d %q at frame byte %d: %d-byte %s value runs past the end of the header block (%d bytes left)",
			i, name, p, h.wantLen, h.typ, end-h.valStart)
	}
}
