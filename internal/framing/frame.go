package framing

import (
	"encoding/binary"
	"iter"
	"strconv"
)

// MessageType is the value of a frame's :message-type header.
type MessageType uint8

const (
	// MessageTypeNone means the frame has no :message-type header of type
	// string.
	MessageTypeNone MessageType = iota
	// MessageTypeEvent is :message-type "event": an ordinary modeled event.
	MessageTypeEvent
	// MessageTypeException is :message-type "exception": a modeled service
	// exception, named by the :exception-type header.
	MessageTypeException
	// MessageTypeError is :message-type "error": an unmodeled error described
	// by the :error-code and :error-message headers.
	MessageTypeError
	// MessageTypeOther is any other :message-type string value.
	MessageTypeOther
)

// String returns the wire spelling of the message type ("event",
// "exception", "error"), or "none" / "other" for the remaining values.
func (t MessageType) String() string {
	switch t {
	case MessageTypeNone:
		return "none"
	case MessageTypeEvent:
		return "event"
	case MessageTypeException:
		return "exception"
	case MessageTypeError:
		return "error"
	case MessageTypeOther:
		return "other"
	default:
		return "MessageType(" + strconv.Itoa(int(t)) + ")"
	}
}

// HeaderType is the one-byte value type of an event-stream header.
type HeaderType uint8

// Header value types, numbered as on the wire.
const (
	// HeaderBoolTrue is a boolean true; it carries no value bytes.
	HeaderBoolTrue HeaderType = 0
	// HeaderBoolFalse is a boolean false; it carries no value bytes.
	HeaderBoolFalse HeaderType = 1
	// HeaderByte is a signed 8-bit integer (1 value byte).
	HeaderByte HeaderType = 2
	// HeaderInt16 is a big-endian signed 16-bit integer (2 value bytes).
	HeaderInt16 HeaderType = 3
	// HeaderInt32 is a big-endian signed 32-bit integer (4 value bytes).
	HeaderInt32 HeaderType = 4
	// HeaderInt64 is a big-endian signed 64-bit integer (8 value bytes).
	HeaderInt64 HeaderType = 5
	// HeaderBytes is a byte array: a big-endian uint16 length, then the data.
	HeaderBytes HeaderType = 6
	// HeaderString is a UTF-8 string: a big-endian uint16 length, then the
	// data.
	HeaderString HeaderType = 7
	// HeaderTimestamp is a big-endian signed 64-bit count of milliseconds
	// since the Unix epoch (8 value bytes).
	HeaderTimestamp HeaderType = 8
	// HeaderUUID is a 16-byte UUID.
	HeaderUUID HeaderType = 9
)

// String returns a short lower-case name for the header type.
func (t HeaderType) String() string {
	switch t {
	case HeaderBoolTrue:
		return "bool_true"
	case HeaderBoolFalse:
		return "bool_false"
	case HeaderByte:
		return "byte"
	case HeaderInt16:
		return "int16"
	case HeaderInt32:
		return "int32"
	case HeaderInt64:
		return "int64"
	case HeaderBytes:
		return "bytes"
	case HeaderString:
		return "string"
	case HeaderTimestamp:
		return "timestamp"
	case HeaderUUID:
		return "uuid"
	default:
		return "HeaderType(" + strconv.Itoa(int(t)) + ")"
	}
}

// Header is one event-stream header as it appears on the wire. Name and Value
// alias the scanner's buffer and share the lifetime of the [Frame] they came
// from.
type Header struct {
	// Name is the header name (0 to 255 bytes).
	Name []byte
	// Type is the value type byte.
	Type HeaderType
	// Value holds the raw value bytes: big-endian for the integer and
	// timestamp types, the data without its 2-byte length prefix for
	// HeaderBytes and HeaderString, the 16 bytes of a HeaderUUID, and nil for
	// the two boolean types.
	Value []byte
}

// frameSpan locates a header value inside Frame.buf. start == 0 means
// "absent": no value can start inside the prelude.
type frameSpan struct {
	start, end uint32
}

// Frame is one validated event-stream message. A *Frame returned by
// [Scanner.Next], and every slice obtained from it, is valid only until the
// next call to Next; copy what must outlive it. The zero Frame is empty: it
// has no bytes, no headers and no payload.
type Frame struct {
	buf     []byte // the whole frame, prelude to message CRC; with partial, its head
	hdrEnd  uint32 // PreludeLen + headers length
	partial bool   // buf is the head NextHead read: prelude, headers, a payload prefix

	msgType       MessageType
	eventType     frameSpan
	exceptionType frameSpan
	errorCode     frameSpan
	errorMessage  frameSpan
	contentType   frameSpan
}

func (f *Frame) span(sp frameSpan) []byte {
	if sp.start == 0 {
		return nil
	}
	return f.buf[sp.start:sp.end:sp.end]
}

// Bytes returns the whole frame exactly as it was on the wire, from the
// prelude through the message CRC; for a partial frame (Scanner.NextHead),
// the bytes read so far: the prelude, the headers and a payload prefix.
func (f *Frame) Bytes() []byte {
	if len(f.buf) == 0 {
		return nil
	}
	return f.buf[:len(f.buf):len(f.buf)]
}

// Payload returns the frame's payload (possibly empty); for a partial frame,
// the payload prefix read so far.
func (f *Frame) Payload() []byte {
	if f.partial {
		return f.buf[f.hdrEnd:len(f.buf):len(f.buf)]
	}
	if len(f.buf) < MinFrameLen {
		return nil
	}
	end := len(f.buf) - 4
	return f.buf[f.hdrEnd:end:end]
}

// Partial reports whether the frame is the head of a frame Scanner.NextHead
// read in part: its payload is still to be read (Scanner.ReadRest,
// Scanner.Finish) or completed (Scanner.Complete).
func (f *Frame) Partial() bool { return f.partial }

// MessageType reports the frame's :message-type header. Only a string-typed
// header counts; if the header repeats, the last one wins.
func (f *Frame) MessageType() MessageType { return f.msgType }

// EventType returns the value of the string header :event-type, or nil if
// the frame has none. If the header repeats, the last one wins.
func (f *Frame) EventType() []byte { return f.span(f.eventType) }

// ExceptionType returns the value of the string header :exception-type, or
// nil if the frame has none. If the header repeats, the last one wins.
func (f *Frame) ExceptionType() []byte { return f.span(f.exceptionType) }

// ErrorCode returns the value of the string header :error-code, or nil if
// the frame has none. If the header repeats, the last one wins.
func (f *Frame) ErrorCode() []byte { return f.span(f.errorCode) }

// ErrorMessage returns the value of the string header :error-message, or nil
// if the frame has none. If the header repeats, the last one wins.
func (f *Frame) ErrorMessage() []byte { return f.span(f.errorMessage) }

// ContentType returns the value of the string header :content-type, or nil
// if the frame has none. If the header repeats, the last one wins.
func (f *Frame) ContentType() []byte { return f.span(f.contentType) }

// Headers returns an iterator over every header of the frame in wire order,
// duplicates and non-string well-known headers included.
func (f *Frame) Headers() iter.Seq[Header] {
	return func(yield func(Header) bool) {
		if f.hdrEnd < PreludeLen || len(f.buf) < int(f.hdrEnd) {
			return
		}
		end := int(f.hdrEnd)
		for p := PreludeLen; p < end; {
			h, next, bad := frameParseHeader(f.buf, p, end)
			if bad != frameHeaderOK {
				return // unreachable: the scanner validated the block
			}
			var value []byte
			if h.typ != HeaderBoolTrue && h.typ != HeaderBoolFalse {
				value = f.buf[h.valStart:h.valEnd:h.valEnd]
			}
			if !yield(Header{
				Name:  f.buf[h.nameStart:h.nameEnd:h.nameEnd],
				Type:  h.typ,
				Value: value,
			}) {
				return
			}
			p = next
		}
	}
}

// frameHeaderProblem says why a header failed to parse.
type frameHeaderProblem uint8

const (
	frameHeaderOK frameHeaderProblem = iota
	frameHeaderNamePastEnd
	frameHeaderNoType
	frameHeaderBadType
	frameHeaderLenPastEnd
	frameHeaderValuePastEnd
)

// frameRawHeader holds the offsets of one header inside a frame buffer.
type frameRawHeader struct {
	nameStart, nameEnd int
	typ                HeaderType
	valStart, valEnd   int
	wantLen            int // value bytes required, for error messages
}

// frameParseHeader decodes the header that starts at buf[p]; the header block
// ends at buf[end], p < end. It returns the header, the offset of the next
// header and, when the header is malformed, what is wrong with it.
func frameParseHeader(buf []byte, p, end int) (h frameRawHeader, next int, bad frameHeaderProblem) {
	nameLen := int(buf[p])
	p++
	if nameLen > end-p {
		h.nameStart, h.nameEnd, h.wantLen = p, end, nameLen
		return h, end, frameHeaderNamePastEnd
	}
	h.nameStart, h.nameEnd = p, p+nameLen
	p += nameLen
	if p >= end {
		return h, end, frameHeaderNoType
	}
	h.typ = HeaderType(buf[p])
	p++
	var size int
	switch h.typ {
	case HeaderBoolTrue, HeaderBoolFalse:
		size = 0
	case HeaderByte:
		size = 1
	case HeaderInt16:
		size = 2
	case HeaderInt32:
		size = 4
	case HeaderInt64, HeaderTimestamp:
		size = 8
	case HeaderUUID:
		size = 16
	case HeaderBytes, HeaderString:
		if end-p < 2 {
			h.valStart, h.wantLen = p, 2
			return h, end, frameHeaderLenPastEnd
		}
		size = int(binary.BigEndian.Uint16(buf[p:]))
		p += 2
	default:
		h.valStart = p - 1
		return h, end, frameHeaderBadType
	}
	h.valStart, h.wantLen = p, size
	if size > end-p {
		return h, end, frameHeaderValuePastEnd
	}
	h.valEnd = p + size
	return h, h.valEnd, frameHeaderOK
}
