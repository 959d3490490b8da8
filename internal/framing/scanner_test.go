package framing_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/internal/framing"
)

// ---- helpers (prefixed "scan" to stay clear of other tests in the package) ----

// scanEncode encodes msg with smithy-go's encoder.
func scanEncode(tb testing.TB, msg eventstream.Message) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, msg); err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return buf.Bytes()
}

// scanPrelude returns a 12-byte prelude with the given lengths and a valid
// prelude CRC.
func scanPrelude(total, headersLen uint32) []byte {
	p := binary.BigEndian.AppendUint32(nil, total)
	p = binary.BigEndian.AppendUint32(p, headersLen)
	return binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(p))
}

// scanFrame builds a frame with correct lengths and CRCs around a raw header
// block and payload, so tests can hand-craft malformed header blocks.
func scanFrame(headerBlock, payload []byte) []byte {
	total := uint32(framing.MinFrameLen + len(headerBlock) + len(payload))
	f := scanPrelude(total, uint32(len(headerBlock)))
	f = append(f, headerBlock...)
	f = append(f, payload...)
	return binary.BigEndian.AppendUint32(f, crc32.ChecksumIEEE(f))
}

// scanHdr encodes one raw header; for bytes and string types it adds the
// 2-byte length prefix.
func scanHdr(name string, typ framing.HeaderType, value []byte) []byte {
	h := append([]byte{byte(len(name))}, name...)
	h = append(h, byte(typ))
	if typ == framing.HeaderBytes || typ == framing.HeaderString {
		h = binary.BigEndian.AppendUint16(h, uint16(len(value)))
	}
	return append(h, value...)
}

func scanStr(name, value string) []byte {
	return scanHdr(name, framing.HeaderString, []byte(value))
}

func scanCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// scanClaimHeaders is the smallest headers length that keeps a frame of
// the given total within MaxPayloadLen (0 for all but the largest frames).
func scanClaimHeaders(total uint32) uint32 {
	if total > framing.MinFrameLen+framing.MaxPayloadLen && total <= framing.MaxFrameLen {
		return total - framing.MinFrameLen - framing.MaxPayloadLen
	}
	return 0
}

// scanTimeFromMillis mirrors smithy-go's timeFromEpochMilli.
func scanTimeFromMillis(ms int64) time.Time {
	return time.Unix(ms/1e3, (ms%1e3)*int64(time.Millisecond)).UTC()
}

// scanSmithyValue converts a scanned header value into the typed value
// smithy-go's decoder would produce for it.
func scanSmithyValue(tb testing.TB, h framing.Header) eventstream.Value {
	tb.Helper()
	v := h.Value
	switch h.Type {
	case framing.HeaderBoolTrue:
		return eventstream.BoolValue(true)
	case framing.HeaderBoolFalse:
		return eventstream.BoolValue(false)
	case framing.HeaderByte:
		return eventstream.Int8Value(int8(v[0]))
	case framing.HeaderInt16:
		return eventstream.Int16Value(int16(binary.BigEndian.Uint16(v)))
	case framing.HeaderInt32:
		return eventstream.Int32Value(int32(binary.BigEndian.Uint32(v)))
	case framing.HeaderInt64:
		return eventstream.Int64Value(int64(binary.BigEndian.Uint64(v)))
	case framing.HeaderBytes:
		return eventstream.BytesValue(bytes.Clone(v))
	case framing.HeaderString:
		return eventstream.StringValue(string(v))
	case framing.HeaderTimestamp:
		return eventstream.TimestampValue(scanTimeFromMillis(int64(binary.BigEndian.Uint64(v))))
	case framing.HeaderUUID:
		var u eventstream.UUIDValue
		copy(u[:], v)
		return u
	}
	tb.Fatalf("scanner yielded header %q of unknown type %d", h.Name, h.Type)
	return nil
}

// scanValueEqual compares two smithy-go header values by type and content
// (bytes values compare nil == empty, timestamps by instant).
func scanValueEqual(a, b eventstream.Value) bool {
	switch av := a.(type) {
	case eventstream.BytesValue:
		bv, ok := b.(eventstream.BytesValue)
		return ok && bytes.Equal(av, bv)
	case eventstream.TimestampValue:
		bv, ok := b.(eventstream.TimestampValue)
		return ok && time.Time(av).Equal(time.Time(bv))
	case eventstream.BoolValue, eventstream.Int8Value, eventstream.Int16Value,
		eventstream.Int32Value, eventstream.Int64Value, eventstream.StringValue,
		eventstream.UUIDValue:
		return a == b
	}
	return false
}

// scanHeadersEqual reports the first difference between two header lists,
// or "" if they are equal.
func scanHeadersEqual(want, got eventstream.Headers) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d headers, want %d (got %v, want %v)", len(got), len(want), got, want)
	}
	for i := range want {
		if want[i].Name != got[i].Name {
			return fmt.Sprintf("header %d name %q, want %q", i, got[i].Name, want[i].Name)
		}
		if !scanValueEqual(want[i].Value, got[i].Value) {
			return fmt.Sprintf("header %d %q value %T(%v), want %T(%v)", i, want[i].Name,
				got[i].Value, got[i].Value, want[i].Value, want[i].Value)
		}
	}
	return ""
}

// scanAllHeaders lists a frame's headers in wire order as smithy-go values.
func scanAllHeaders(tb testing.TB, f *framing.Frame) eventstream.Headers {
	tb.Helper()
	var hs eventstream.Headers
	for h := range f.Headers() {
		hs = append(hs, eventstream.Header{Name: string(h.Name), Value: scanSmithyValue(tb, h)})
	}
	return hs
}

// scanErrReader returns data (in reads of at most chunk bytes, 0 = all at
// once), then err. With together set, the last data comes back in the same
// Read call as err.
type scanErrReader struct {
	data     []byte
	chunk    int
	err      error
	together bool
}

func (r *scanErrReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := len(p)
	if r.chunk > 0 && n > r.chunk {
		n = r.chunk
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	if r.together && len(r.data) == 0 {
		return n, r.err
	}
	return n, nil
}

// scanRepeatReader repeats frame forever.
type scanRepeatReader struct {
	frame []byte
	pos   int
}

func (r *scanRepeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.frame[r.pos:])
		n += c
		r.pos = (r.pos + c) % len(r.frame)
	}
	return n, nil
}

// scanBedrockChunk is a typical Bedrock InvokeModelWithResponseStream
// "chunk" event.
func scanBedrockChunk() eventstream.Message {
	inner := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`
	payload := `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(inner)) + `","p":"abcd"}`
	return eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: []byte(payload),
	}
}

var scanErrBoom = errors.New("boom: connection reset by peer")

// ---- tests ----

func TestScannerHeaderTypes(t *testing.T) {
	ts := time.UnixMilli(8675309).UTC()
	uuid := eventstream.UUIDValue{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	cases := []struct {
		name     string
		value    eventstream.Value
		wantType framing.HeaderType
		wantRaw  []byte
	}{
		{"bool_true_has_no_value", eventstream.BoolValue(true), framing.HeaderBoolTrue, nil},
		{"bool_false_has_no_value", eventstream.BoolValue(false), framing.HeaderBoolFalse, nil},
		{"byte_is_one_raw_byte", eventstream.Int8Value(-49), framing.HeaderByte, []byte{0xcf}},
		{"int16_is_big_endian", eventstream.Int16Value(-2), framing.HeaderInt16, []byte{0xff, 0xfe}},
		{"int32_is_big_endian", eventstream.Int32Value(40972), framing.HeaderInt32, []byte{0, 0, 0xa0, 0x0c}},
		{"int64_is_big_endian", eventstream.Int64Value(0x0102030405060708), framing.HeaderInt64, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"bytes_without_length_prefix", eventstream.BytesValue("I'm a little teapot!"), framing.HeaderBytes, []byte("I'm a little teapot!")},
		{"empty_bytes_is_empty_not_nil", eventstream.BytesValue{}, framing.HeaderBytes, []byte{}},
		{"string_without_length_prefix", eventstream.StringValue("application/json"), framing.HeaderString, []byte("application/json")},
		{"empty_string_is_empty_not_nil", eventstream.StringValue(""), framing.HeaderString, []byte{}},
		{"max_length_string", eventstream.StringValue(strings.Repeat("x", 1<<15-1)), framing.HeaderString, []byte(strings.Repeat("x", 1<<15-1))},
		{"timestamp_is_epoch_millis", eventstream.TimestampValue(ts), framing.HeaderTimestamp, []byte{0, 0, 0, 0, 0, 0x84, 0x5f, 0xed}},
		{"uuid_is_16_raw_bytes", uuid, framing.HeaderUUID, uuid[:]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := scanEncode(t, eventstream.Message{Headers: eventstream.Headers{{Name: "h", Value: tc.value}}})
			f, err := framing.NewScanner(bytes.NewReader(in)).Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			var got []framing.Header
			for h := range f.Headers() {
				got = append(got, h)
			}
			if len(got) != 1 {
				t.Fatalf("got %d headers, want 1", len(got))
			}
			h := got[0]
			if string(h.Name) != "h" || h.Type != tc.wantType {
				t.Errorf("header %q type %v, want %q type %v", h.Name, h.Type, "h", tc.wantType)
			}
			if (h.Value == nil) != (tc.wantRaw == nil) || !bytes.Equal(h.Value, tc.wantRaw) {
				t.Errorf("raw value %#v, want %#v", h.Value, tc.wantRaw)
			}
			if v := scanSmithyValue(t, h); !scanValueEqual(tc.value, v) {
				t.Errorf("as smithy value %v, want %v", v, tc.value)
			}
			if len(f.Payload()) != 0 {
				t.Errorf("payload %q, want empty", f.Payload())
			}
		})
	}
}

func TestScannerHeaderTypeString(t *testing.T) {
	want := []string{"bool_true", "bool_false", "byte", "int16", "int32", "int64", "bytes", "string", "timestamp", "uuid", "HeaderType(10)"}
	for i, w := range want {
		if got := framing.HeaderType(i).String(); got != w {
			t.Errorf("HeaderType(%d).String() = %q, want %q", i, got, w)
		}
	}
	wantMT := []string{"none", "event", "exception", "error", "other", "MessageType(5)"}
	for i, w := range wantMT {
		if got := framing.MessageType(i).String(); got != w {
			t.Errorf("MessageType(%d).String() = %q, want %q", i, got, w)
		}
	}
}

func TestScannerRoundTripsSmithyEncoder(t *testing.T) {
	cases := []struct {
		name string
		msg  eventstream.Message
	}{
		{"empty_message", eventstream.Message{}},
		{"payload_no_headers", eventstream.Message{Payload: []byte(`{'foo':'bar'}`)}},
		{"headers_no_payload", eventstream.Message{Headers: eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		}}},
		{"bedrock_chunk_event", scanBedrockChunk()},
		{"every_header_type_and_payload", eventstream.Message{
			Headers: eventstream.Headers{
				{Name: "t", Value: eventstream.BoolValue(true)},
				{Name: "f", Value: eventstream.BoolValue(false)},
				{Name: "i8", Value: eventstream.Int8Value(-128)},
				{Name: "i16", Value: eventstream.Int16Value(-32768)},
				{Name: "i32", Value: eventstream.Int32Value(-1 << 31)},
				{Name: "i64", Value: eventstream.Int64Value(-1 << 63)},
				{Name: "bytes", Value: eventstream.BytesValue{0, 1, 2, 0xff}},
				{Name: "str", Value: eventstream.StringValue("héllo")},
				{Name: "ts", Value: eventstream.TimestampValue(time.UnixMilli(1700000000123).UTC())},
				{Name: "uuid", Value: eventstream.UUIDValue{0xde, 0xad, 0xbe, 0xef}},
			},
			Payload: []byte("payload"),
		}},
		{"255_byte_header_name", eventstream.Message{Headers: eventstream.Headers{
			{Name: strings.Repeat("n", 255), Value: eventstream.StringValue("v")},
		}}},
		{"1_MiB_payload", eventstream.Message{Payload: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := scanEncode(t, tc.msg)
			s := framing.NewScanner(bytes.NewReader(in))
			f, err := s.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if !bytes.Equal(f.Bytes(), in) {
				t.Errorf("Bytes() differs from the encoded frame")
			}
			if !bytes.Equal(f.Payload(), tc.msg.Payload) {
				t.Errorf("payload %q, want %q", f.Payload(), tc.msg.Payload)
			}
			if d := scanHeadersEqual(tc.msg.Headers, scanAllHeaders(t, f)); d != "" {
				t.Error(d)
			}
			if s.Offset() != int64(len(in)) {
				t.Errorf("Offset() = %d, want %d", s.Offset(), len(in))
			}
			if f, err := s.Next(); f != nil || err != io.EOF {
				t.Errorf("after the frame: (%v, %v), want (nil, io.EOF)", f, err)
			}
		})
	}
}

func TestScannerWellKnownHeaders(t *testing.T) {
	cases := []struct {
		name          string
		headers       []byte
		msgType       framing.MessageType
		eventType     []byte
		exceptionType []byte
		errorCode     []byte
		errorMessage  []byte
		contentType   []byte
	}{
		{
			name:    "no_headers_means_none_and_nil",
			msgType: framing.MessageTypeNone,
		},
		{
			name:        "bedrock_chunk_event",
			headers:     scanCat(scanStr(":event-type", "chunk"), scanStr(":content-type", "application/json"), scanStr(":message-type", "event")),
			msgType:     framing.MessageTypeEvent,
			eventType:   []byte("chunk"),
			contentType: []byte("application/json"),
		},
		{
			name:          "exception_frame_exposes_exception_type",
			headers:       scanCat(scanStr(":message-type", "exception"), scanStr(":exception-type", "throttlingException"), scanStr(":content-type", "application/json")),
			msgType:       framing.MessageTypeException,
			exceptionType: []byte("throttlingException"),
			contentType:   []byte("application/json"),
		},
		{
			name:         "error_frame_exposes_error_code_and_message",
			headers:      scanCat(scanStr(":message-type", "error"), scanStr(":error-code", "InternalFailure"), scanStr(":error-message", "We encountered an internal error. Please try again.")),
			msgType:      framing.MessageTypeError,
			errorCode:    []byte("InternalFailure"),
			errorMessage: []byte("We encountered an internal error. Please try again."),
		},
		{
			name:    "unknown_message_type_is_other",
			headers: scanStr(":message-type", "initial-response"),
			msgType: framing.MessageTypeOther,
		},
		{
			name:    "message_type_is_case_sensitive",
			headers: scanStr(":message-type", "Event"),
			msgType: framing.MessageTypeOther,
		},
		{
			name:    "empty_message_type_is_other",
			headers: scanStr(":message-type", ""),
			msgType: framing.MessageTypeOther,
		},
		{
			name:      "empty_event_type_is_empty_not_nil",
			headers:   scanStr(":event-type", ""),
			eventType: []byte{},
		},
		{
			name: "well_known_headers_with_non_string_type_are_ignored",
			headers: scanCat(
				scanHdr(":message-type", framing.HeaderBytes, []byte("event")),
				scanHdr(":event-type", framing.HeaderInt32, []byte{0, 0, 0xa0, 0x0c}),
				scanHdr(":exception-type", framing.HeaderBoolTrue, nil),
				scanHdr(":error-code", framing.HeaderUUID, make([]byte, 16)),
				scanHdr(":error-message", framing.HeaderBytes, []byte("msg")),
				scanHdr(":content-type", framing.HeaderInt64, make([]byte, 8)),
			),
			msgType: framing.MessageTypeNone,
		},
		{
			name:      "names_without_colon_are_not_well_known",
			headers:   scanCat(scanStr("event-type", "chunk"), scanStr("message-type", "event")),
			msgType:   framing.MessageTypeNone,
			eventType: nil,
		},
		{
			name:      "duplicate_header_last_wins",
			headers:   scanCat(scanStr(":message-type", "exception"), scanStr(":event-type", "first"), scanStr(":message-type", "event"), scanStr(":event-type", "second")),
			msgType:   framing.MessageTypeEvent,
			eventType: []byte("second"),
		},
		{
			name:      "later_non_string_duplicate_does_not_override",
			headers:   scanCat(scanStr(":event-type", "chunk"), scanHdr(":event-type", framing.HeaderBytes, []byte("other"))),
			eventType: []byte("chunk"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := scanFrame(tc.headers, []byte(`{}`))
			f, err := framing.NewScanner(bytes.NewReader(in)).Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if f.MessageType() != tc.msgType {
				t.Errorf("MessageType() = %v, want %v", f.MessageType(), tc.msgType)
			}
			for _, c := range []struct {
				what      string
				got, want []byte
			}{
				{"EventType", f.EventType(), tc.eventType},
				{"ExceptionType", f.ExceptionType(), tc.exceptionType},
				{"ErrorCode", f.ErrorCode(), tc.errorCode},
				{"ErrorMessage", f.ErrorMessage(), tc.errorMessage},
				{"ContentType", f.ContentType(), tc.contentType},
			} {
				if (c.got == nil) != (c.want == nil) || !bytes.Equal(c.got, c.want) {
					t.Errorf("%s() = %#v, want %#v", c.what, c.got, c.want)
				}
			}
			// Headers() still yields every header, in wire order.
			n := 0
			for range f.Headers() {
				n++
			}
			var walk []byte
			for h := range f.Headers() {
				walk = append(walk, scanHdr(string(h.Name), h.Type, h.Value)...)
			}
			if !bytes.Equal(walk, tc.headers) {
				t.Errorf("re-encoding Headers() (%d headers) gives % x, want % x", n, walk, tc.headers)
			}
			if string(f.Payload()) != `{}` {
				t.Errorf("payload %q", f.Payload())
			}
		})
	}
}

func TestScannerHeadersIteratorStopsEarly(t *testing.T) {
	in := scanFrame(scanCat(scanStr("a", "1"), scanStr("b", "2"), scanStr("c", "3")), nil)
	f, err := framing.NewScanner(bytes.NewReader(in)).Next()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for h := range f.Headers() {
		names = append(names, string(h.Name))
		if len(names) == 2 {
			break
		}
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("names %v, want [a b]", names)
	}
}

func TestScannerZeroFrame(t *testing.T) {
	var f framing.Frame
	if f.Bytes() != nil || f.Payload() != nil || f.EventType() != nil || f.MessageType() != framing.MessageTypeNone {
		t.Error("zero Frame is not empty")
	}
	for range f.Headers() {
		t.Error("zero Frame yields headers")
	}
}

func TestScannerStream(t *testing.T) {
	one := scanEncode(t, scanBedrockChunk())
	two := scanEncode(t, eventstream.Message{})
	three := scanEncode(t, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
		{Name: ":exception-type", Value: eventstream.StringValue("throttlingException")},
	}, Payload: []byte(`{"message":"slow down"}`)})
	stream := scanCat(one, two, three)

	readers := []struct {
		name string
		r    func() io.Reader
	}{
		{"bytes_reader", func() io.Reader { return bytes.NewReader(stream) }},
		{"one_byte_reads", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{"half_reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
		{"eof_returned_with_last_data", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
		{"eof_with_data_in_7_byte_reads", func() io.Reader {
			return &scanErrReader{data: stream, chunk: 7, err: io.EOF, together: true}
		}},
	}
	for _, rc := range readers {
		t.Run(rc.name, func(t *testing.T) {
			s := framing.NewScanner(rc.r())
			var offset int64
			for i, want := range [][]byte{one, two, three} {
				f, err := s.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(f.Bytes(), want) {
					t.Fatalf("frame %d bytes differ", i)
				}
				offset += int64(len(want))
				if s.Offset() != offset {
					t.Errorf("frame %d: Offset() = %d, want %d", i, s.Offset(), offset)
				}
			}
			for range 2 { // clean EOF, and it stays EOF
				if f, err := s.Next(); f != nil || err != io.EOF {
					t.Fatalf("at end: (%v, %v), want (nil, io.EOF)", f, err)
				}
			}
		})
	}
}

func TestScannerCleanEOF(t *testing.T) {
	s := framing.NewScanner(bytes.NewReader(nil))
	if f, err := s.Next(); f != nil || err != io.EOF {
		t.Fatalf("empty stream: (%v, %v), want (nil, io.EOF)", f, err)
	}
	if s.Offset() != 0 {
		t.Errorf("Offset() = %d", s.Offset())
	}
}

func TestScannerReadErrorBetweenFramesIsUnchanged(t *testing.T) {
	frame := scanEncode(t, scanBedrockChunk())
	cases := []struct {
		name   string
		data   []byte
		err    error
		frames int
	}{
		{"before_any_byte", nil, scanErrBoom, 0},
		{"net_err_closed_before_any_byte", nil, net.ErrClosed, 0},
		{"after_a_whole_frame", frame, scanErrBoom, 1},
		{"after_a_whole_frame_returned_with_its_last_bytes", frame, scanErrBoom, 1},
		{"unexpected_eof_from_reader_before_any_byte", nil, io.ErrUnexpectedEOF, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &scanErrReader{data: tc.data, err: tc.err, together: strings.Contains(tc.name, "returned_with")}
			s := framing.NewScanner(r)
			for i := range tc.frames {
				if _, err := s.Next(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			for range 2 {
				f, err := s.Next()
				if f != nil || err != tc.err {
					t.Fatalf("Next() = (%v, %#v), want the reader's error unchanged (%#v)", f, err, tc.err)
				}
			}
		})
	}
}

func TestScannerRejects(t *testing.T) {
	good := scanEncode(t, scanBedrockChunk())
	small := scanEncode(t, eventstream.Message{Payload: []byte("abc")})

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return b
	}
	payloadHdr := scanStr(":event-type", "chunk")

	cases := []struct {
		name       string
		r          func() io.Reader // default: bytes.NewReader(input)
		input      []byte
		skip       int // frames to read successfully first
		want       error
		wantCause  error
		wantOffset int64
		wantDetail string
	}{
		// truncation
		{name: "eof_mid_prelude", input: good[:5], want: framing.ErrTruncated, wantCause: io.ErrUnexpectedEOF,
			wantDetail: "stream ended after 5 of 12 prelude bytes"},
		{name: "eof_after_prelude", input: good[:12], want: framing.ErrTruncated, wantCause: io.ErrUnexpectedEOF,
			wantDetail: fmt.Sprintf("stream ended after 12 of %d frame bytes", len(good))},
		{name: "eof_mid_headers", input: good[:30], want: framing.ErrTruncated, wantCause: io.ErrUnexpectedEOF},
		{name: "eof_mid_payload", input: good[:len(good)-20], want: framing.ErrTruncated, wantCause: io.ErrUnexpectedEOF,
			wantDetail: fmt.Sprintf("stream ended after %d of %d frame bytes", len(good)-20, len(good))},
		{name: "eof_mid_message_crc", input: good[:len(good)-1], want: framing.ErrTruncated, wantCause: io.ErrUnexpectedEOF},
		{name: "eof_mid_second_frame_reports_its_offset", input: scanCat(good, small[:15]), skip: 1,
			want: framing.ErrTruncated, wantCause: io.ErrUnexpectedEOF, wantOffset: int64(len(good))},
		{name: "read_error_mid_prelude_keeps_cause", r: func() io.Reader {
			return &scanErrReader{data: good[:3], err: scanErrBoom}
		}, want: framing.ErrTruncated, wantCause: scanErrBoom, wantDetail: "read failed after 3 of 12 prelude bytes"},
		{name: "read_error_mid_payload_keeps_cause", r: func() io.Reader {
			return &scanErrReader{data: good[:len(good)-10], err: net.ErrClosed}
		}, want: framing.ErrTruncated, wantCause: net.ErrClosed},
		{name: "read_error_returned_with_data_mid_frame_keeps_cause", r: func() io.Reader {
			return &scanErrReader{data: good[:50], chunk: 9, err: scanErrBoom, together: true}
		}, want: framing.ErrTruncated, wantCause: scanErrBoom},
		{name: "timeout_mid_frame_keeps_cause", r: func() io.Reader {
			return iotest.TimeoutReader(&scanErrReader{data: good, chunk: 20})
		}, want: framing.ErrTruncated, wantCause: iotest.ErrTimeout},

		// prelude lengths
		{name: "total_zero", input: scanPrelude(0, 0), want: framing.ErrPreludeLength,
			wantDetail: "total length 0 is below the minimum 16"},
		{name: "total_15", input: scanCat(scanPrelude(15, 0), make([]byte, 8)), want: framing.ErrPreludeLength,
			wantDetail: "total length 15 is below the minimum 16"},
		{name: "total_above_max_frame", input: scanPrelude(framing.MaxFrameLen+1, 0), want: framing.ErrPreludeLength,
			wantDetail: "total length 25296913 exceeds 25296912"},
		{name: "payload_above_24_MiB", input: scanPrelude(framing.MinFrameLen+framing.MaxPayloadLen+1, 0), want: framing.ErrPreludeLength,
			wantDetail: "payload length 25165825 exceeds the event-stream limit of 25165824 bytes"},
		{name: "headers_above_128_KiB", input: scanPrelude(framing.MinFrameLen+framing.MaxHeadersLen+1, framing.MaxHeadersLen+1), want: framing.ErrPreludeLength,
			wantDetail: "headers length 131073 exceeds the event-stream limit of 131072 bytes"},
		{name: "total_4_GiB", input: scanPrelude(0xffffffff, 0), want: framing.ErrPreludeLength},
		{name: "headers_len_above_total_minus_16", input: scanCat(scanPrelude(40, 25), make([]byte, 28)), want: framing.ErrPreludeLength,
			wantDetail: "headers length 25 exceeds the 24 bytes a 40-byte frame has room for"},
		{name: "headers_len_huge", input: scanPrelude(100, 0xffffffff), want: framing.ErrPreludeLength},
		{name: "length_check_precedes_prelude_crc", input: flip(scanPrelude(15, 0), 11), want: framing.ErrPreludeLength},

		// CRCs
		{name: "bad_prelude_crc", input: flip(good, 9), want: framing.ErrPreludeCRC, wantDetail: "prelude CRC mismatch (computed 0x"},
		{name: "corrupted_total_length", input: flip(good, 3), want: framing.ErrPreludeCRC},
		{name: "bad_message_crc", input: flip(good, len(good)-1), want: framing.ErrMessageCRC, wantDetail: "message CRC mismatch (computed 0x"},
		{name: "corrupted_payload", input: flip(good, len(good)-10), want: framing.ErrMessageCRC},
		{name: "corrupted_header", input: flip(good, 20), want: framing.ErrMessageCRC},
		{name: "bad_second_frame_reports_its_offset", input: scanCat(good, flip(small, 14)), skip: 1,
			want: framing.ErrMessageCRC, wantOffset: int64(len(good))},

		// header block
		{name: "header_type_10", input: scanFrame(scanCat(payloadHdr, []byte{1, 'x', 10, 0, 0}), nil), want: framing.ErrHeaders,
			wantDetail: `header 1 "x" at frame byte 32: unknown value type 10`},
		{name: "header_type_255", input: scanFrame([]byte{1, 'x', 255}, nil), want: framing.ErrHeaders},
		{name: "string_value_past_block", input: scanFrame(scanCat([]byte{1, 'x', 7, 0, 10}, []byte("abc")), []byte("payload...")),
			want: framing.ErrHeaders, wantDetail: `10-byte string value runs past the end of the header block (3 bytes left)`},
		{name: "bytes_length_prefix_past_block", input: scanFrame([]byte{1, 'x', 6, 0}, []byte("payload")), want: framing.ErrHeaders,
			wantDetail: "bytes length prefix runs past"},
		{name: "int32_value_past_block", input: scanFrame([]byte{1, 'x', 4, 0, 0}, []byte("pp")), want: framing.ErrHeaders},
		{name: "uuid_value_past_block", input: scanFrame(scanCat([]byte{1, 'x', 9}, make([]byte, 15)), nil), want: framing.ErrHeaders},
		{name: "name_past_block", input: scanFrame([]byte{5, 'a', 'b'}, []byte("payload")), want: framing.ErrHeaders,
			wantDetail: "5-byte name runs past the end of the header block (2 bytes left)"},
		{name: "missing_type_byte", input: scanFrame(scanCat(payloadHdr, []byte{1, 'x'}), nil), want: framing.ErrHeaders,
			wantDetail: "no type byte"},
		{name: "dangling_name_length_byte", input: scanFrame(scanCat(payloadHdr, []byte{4}), []byte("p")), want: framing.ErrHeaders},
		{name: "zero_name_length_byte_alone", input: scanFrame([]byte{0}, nil), want: framing.ErrHeaders},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader
			if tc.r != nil {
				r = tc.r()
			} else {
				r = bytes.NewReader(tc.input)
			}
			s := framing.NewScanner(r)
			for i := range tc.skip {
				if _, err := s.Next(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			f, err := s.Next()
			if f != nil {
				t.Fatalf("Next() returned a frame, want an error")
			}
			var fe *framing.FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("Next() error %#v is not a *FrameError", err)
			}
			if !errors.Is(err, tc.want) || fe.Err != tc.want {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if tc.wantCause != nil {
				if !errors.Is(err, tc.wantCause) || fe.Cause != tc.wantCause {
					t.Errorf("cause %v, want %v reachable with errors.Is", fe.Cause, tc.wantCause)
				}
			} else if fe.Cause != nil {
				t.Errorf("cause %v, want nil", fe.Cause)
			}
			if fe.Offset != tc.wantOffset {
				t.Errorf("Offset %d, want %d", fe.Offset, tc.wantOffset)
			}
			if !strings.Contains(fe.Detail, tc.wantDetail) {
				t.Errorf("Detail %q, want it to contain %q", fe.Detail, tc.wantDetail)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, fmt.Sprintf("event stream: frame at offset %d: ", tc.wantOffset)) ||
				!strings.Contains(msg, fe.Detail) || strings.Contains(msg, "\n") {
				t.Errorf("Error() = %q", msg)
			}
			if f2, err2 := s.Next(); f2 != nil || err2 != err {
				t.Errorf("second Next() = (%v, %v), want the same error again", f2, err2)
			}
		})
	}
}

func TestFrameErrorMessage(t *testing.T) {
	cases := []struct {
		name string
		err  *framing.FrameError
		want string
	}{
		{"prelude_crc", &framing.FrameError{Offset: 1234, Err: framing.ErrPreludeCRC, Detail: "prelude CRC mismatch (computed 0x00000001, frame carries 0x00000002)"},
			"event stream: frame at offset 1234: prelude CRC mismatch (computed 0x00000001, frame carries 0x00000002): the stream is corrupt"},
		{"truncated_names_cause", &framing.FrameError{Offset: 7, Err: framing.ErrTruncated, Detail: "read failed after 3 of 12 prelude bytes", Cause: net.ErrClosed},
			"event stream: frame at offset 7: read failed after 3 of 12 prelude bytes: the stream was cut off mid-frame: use of closed network connection"},
		{"no_detail_falls_back_to_sentinel", &framing.FrameError{Err: framing.ErrHeaders},
			"event stream: frame at offset 0: malformed header block: the frame is malformed"},
		{"length", &framing.FrameError{Err: framing.ErrPreludeLength, Detail: "total length 17000000 exceeds 16777216"},
			"event stream: frame at offset 0: total length 17000000 exceeds 16777216: the stream is corrupt or is not an AWS event stream"},
		{"message_crc", &framing.FrameError{Err: framing.ErrMessageCRC},
			"event stream: frame at offset 0: message CRC mismatch: the frame was corrupted in transit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() =\n%q, want\n%q", got, tc.want)
			}
		})
	}
	e := &framing.FrameError{Err: framing.ErrTruncated, Cause: io.ErrUnexpectedEOF}
	if !errors.Is(e, framing.ErrTruncated) || !errors.Is(e, io.ErrUnexpectedEOF) || errors.Is(e, framing.ErrHeaders) {
		t.Error("errors.Is does not see exactly Err and Cause")
	}
	if got := (&framing.FrameError{Err: framing.ErrHeaders}).Unwrap(); len(got) != 1 {
		t.Errorf("Unwrap() without Cause = %v, want only Err", got)
	}
}

// A prelude claiming a huge frame is rejected before anything is allocated
// for the frame body.
func TestScannerOversizedPreludeDoesNotAllocate(t *testing.T) {
	for _, total := range []uint32{framing.MaxFrameLen + 1, 1 << 30, 0xffffffff} {
		t.Run(fmt.Sprint(total), func(t *testing.T) {
			in := scanPrelude(total, 0)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s := framing.NewScanner(bytes.NewReader(in))
			_, err := s.Next()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, framing.ErrPreludeLength) {
				t.Fatalf("error %v, want ErrPreludeLength", err)
			}
			if c := framing.ScannerBufCap(s); c != 0 {
				t.Errorf("frame buffer grew to %d bytes", c)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
				t.Errorf("rejecting the prelude allocated %d bytes", d)
			}
		})
	}
	// A bad prelude CRC is also caught before allocating.
	in := scanPrelude(framing.MaxFrameLen, framing.MaxHeadersLen)
	in[11] ^= 1
	s := framing.NewScanner(bytes.NewReader(in))
	if _, err := s.Next(); !errors.Is(err, framing.ErrPreludeCRC) || framing.ScannerBufCap(s) != 0 {
		t.Errorf("bad-CRC prelude: error %v, buffer %d bytes", err, framing.ScannerBufCap(s))
	}
}

// A valid prelude allocates at most the declared length (up to the
// allocator's size-class rounding), even when the body never arrives.
func TestScannerAllocatesOnlyDeclaredLength(t *testing.T) {
	for _, total := range []uint32{100, 5000, framing.MaxFrameLen} {
		s := framing.NewScanner(bytes.NewReader(scanPrelude(total, scanClaimHeaders(total))))
		if _, err := s.Next(); !errors.Is(err, framing.ErrTruncated) {
			t.Fatalf("total %d: error %v, want ErrTruncated", total, err)
		}
		// Up to MaxPooledLen a pooled buffer of the next power of two (at
		// least 1 KiB); above it, exactly the declared length.
		c := framing.ScannerBufCap(s)
		limit := int(total)
		if total <= framing.MaxPooledLen {
			limit = max(1024, 2*int(total)-1)
		}
		if c < int(total) || c > limit || c > framing.MaxFrameLen {
			t.Errorf("total %d: buffer capacity %d, want %d to %d", total, c, total, limit)
		}
	}
}

func TestScannerSteadyStateZeroAllocs(t *testing.T) {
	frame := scanEncode(t, scanBedrockChunk())
	s := framing.NewScanner(&scanRepeatReader{frame: frame})
	if _, err := s.Next(); err != nil { // warm-up grows the buffer once
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		f, err := s.Next()
		if err != nil || len(f.EventType()) == 0 || f.MessageType() != framing.MessageTypeEvent {
			panic(fmt.Sprint("Next: ", err))
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame, want 0", allocs)
	}
}

// ---- smithy-go test vectors ----

type scanVector struct {
	TotalLength   int64 `json:"total_length"`
	HeadersLength int64 `json:"headers_length"`
	PreludeCRC    int64 `json:"prelude_crc"`
	Headers       []struct {
		Name  string          `json:"name"`
		Type  int             `json:"type"`
		Value json.RawMessage `json:"value"`
	} `json:"headers"`
	Payload    []byte `json:"payload"`
	MessageCRC int64  `json:"message_crc"`
}

// raw returns the wire bytes of a decoded JSON header value.
func (v *scanVector) raw(tb testing.TB, i int) []byte {
	tb.Helper()
	h := v.Headers[i]
	num := func() int64 {
		var n int64
		if err := json.Unmarshal(h.Value, &n); err != nil {
			tb.Fatalf("header %q: %v", h.Name, err)
		}
		return n
	}
	switch framing.HeaderType(h.Type) {
	case framing.HeaderBoolTrue, framing.HeaderBoolFalse:
		return nil
	case framing.HeaderByte:
		return []byte{byte(num())}
	case framing.HeaderInt16:
		return binary.BigEndian.AppendUint16(nil, uint16(num()))
	case framing.HeaderInt32:
		return binary.BigEndian.AppendUint32(nil, uint32(num()))
	case framing.HeaderInt64, framing.HeaderTimestamp:
		return binary.BigEndian.AppendUint64(nil, uint64(num()))
	default:
		var b []byte // base64 in JSON
		if err := json.Unmarshal(h.Value, &b); err != nil {
			tb.Fatalf("header %q: %v", h.Name, err)
		}
		return b
	}
}

func scanReadVectors(tb testing.TB, class string) map[string][]byte {
	tb.Helper()
	dir := filepath.Join("testdata", "eventstream", class)
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out[e.Name()] = b
	}
	if len(out) == 0 {
		tb.Fatalf("no vectors in %s", dir)
	}
	return out
}

func TestScannerVectors(t *testing.T) {
	for name, in := range scanReadVectors(t, "positive") {
		t.Run("positive/"+name, func(t *testing.T) {
			js, err := os.ReadFile(filepath.Join("testdata", "eventstream", "decoded", "positive", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want scanVector
			if err := json.Unmarshal(js, &want); err != nil {
				t.Fatal(err)
			}
			s := framing.NewScanner(bytes.NewReader(in))
			f, err := s.Next()
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			b := f.Bytes()
			if int64(len(b)) != want.TotalLength {
				t.Errorf("total length %d, want %d", len(b), want.TotalLength)
			}
			if hl := int64(len(b) - framing.MinFrameLen - len(f.Payload())); hl != want.HeadersLength {
				t.Errorf("headers length %d, want %d", hl, want.HeadersLength)
			}
			if got := binary.BigEndian.Uint32(b[8:]); got != uint32(want.PreludeCRC) {
				t.Errorf("prelude CRC %#x, want %#x", got, uint32(want.PreludeCRC))
			}
			if got := binary.BigEndian.Uint32(b[len(b)-4:]); got != uint32(want.MessageCRC) {
				t.Errorf("message CRC %#x, want %#x", got, uint32(want.MessageCRC))
			}
			if !bytes.Equal(f.Payload(), want.Payload) {
				t.Errorf("payload %q, want %q", f.Payload(), want.Payload)
			}
			i := 0
			for h := range f.Headers() {
				if i >= len(want.Headers) {
					t.Fatalf("extra header %q", h.Name)
				}
				w := want.Headers[i]
				if string(h.Name) != w.Name || int(h.Type) != w.Type || !bytes.Equal(h.Value, want.raw(t, i)) {
					t.Errorf("header %d = %q %v % x, want %q %v % x", i, h.Name, h.Type, h.Value,
						w.Name, framing.HeaderType(w.Type), want.raw(t, i))
				}
				i++
			}
			if i != len(want.Headers) {
				t.Errorf("%d headers, want %d", i, len(want.Headers))
			}
			if _, err := s.Next(); err != io.EOF {
				t.Errorf("after the vector: %v, want io.EOF", err)
			}
		})
	}
	sentinels := map[string]error{
		"Prelude checksum mismatch": framing.ErrPreludeCRC,
		"Message checksum mismatch": framing.ErrMessageCRC,
	}
	for name, in := range scanReadVectors(t, "negative") {
		t.Run("negative/"+name, func(t *testing.T) {
			txt, err := os.ReadFile(filepath.Join("testdata", "eventstream", "decoded", "negative", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			want, ok := sentinels[strings.TrimSpace(string(txt))]
			if !ok {
				t.Fatalf("unknown expected error %q", txt)
			}
			f, err := framing.NewScanner(bytes.NewReader(in)).Next()
			if f != nil || !errors.Is(err, want) {
				t.Errorf("Next() = (%v, %v), want %v", f, err, want)
			}
		})
	}
}

// ---- benchmark ----

func BenchmarkScannerNext(b *testing.B) {
	frame := scanEncode(b, scanBedrockChunk())
	s := framing.NewScanner(&scanRepeatReader{frame: frame})
	if _, err := s.Next(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		f, err := s.Next()
		if err != nil {
			b.Fatal(err)
		}
		if f.MessageType() != framing.MessageTypeEvent {
			b.Fatal("not an event")
		}
	}
	b.ReportMetric(float64(len(frame)), "frame-bytes")
}
