package fake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a [Server].
type Options struct {
	// Addr is the host:port to listen on. It must be a loopback address
	// (127.0.0.0/8, ::1 or "localhost"). Empty means "127.0.0.1:0", an
	// ephemeral port on 127.0.0.1.
	Addr string

	// ResponseDelay is how long the server waits after reading a request
	// body before it answers; 0 (the default) answers at once.
	//
	// A delay stands in for the service's latency. A few milliseconds also
	// sidestep a client-side race in the bare SDK, which tests of the bare
	// SDK need (streamstatus's finalize middleware removes the race): after
	// the response headers arrive, smithy-go closes the request body, and if
	// net/http's transport has not yet finished its final read of that body
	// (the WriteTo after the Content-Length copy), the closed body's WriteTo
	// returns io.EOF, the transport treats that as a write error and closes
	// the connection under the streaming response ("use of closed network
	// connection").
	ResponseDelay time.Duration

	// Credentials, when set (see [WithSigV4Check]), make the server verify
	// each request's SigV4 signature.
	Credentials *aws.Credentials

	// MaxRecordedCalls bounds how many calls [Server.Calls] keeps (the most
	// recent ones), so a long-running server's memory stays bounded. 0, the
	// default, keeps every call. [Server.CallCount] counts them all.
	MaxRecordedCalls int

	// MaxBodyBytes bounds a request body; a larger one is answered 413
	// without being read whole. 0 means [DefaultMaxBodyBytes].
	MaxBodyBytes int64

	// WithoutBodies makes the server record each call's BodySHA256 but not
	// its Body (see [WithoutBodies]).
	WithoutBodies bool

	// ReadTimeout bounds reading a request's headers and, separately, its
	// body; a client slower than that is disconnected. 0 means
	// [DefaultReadTimeout]. Responses are not bounded: a stream may run as
	// long as its steps say.
	ReadTimeout time.Duration

	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. 0 means [DefaultIdleTimeout].
	IdleTimeout time.Duration

	// CallHook, when set, is called once for every request, rejected ones
	// included, with the call and the response chosen for it, before the
	// response is written. It runs on the handler goroutine without the
	// server's lock held.
	CallHook func(Call, Response)
}

// Defaults of the server's bounds.
const (
	DefaultMaxBodyBytes = 32 << 20
	DefaultReadTimeout  = 10 * time.Second
	DefaultIdleTimeout  = 30 * time.Second
)

// WithMaxBodyBytes sets [Options.MaxBodyBytes].
func WithMaxBodyBytes(n int64) Option {
	return func(o *Options) { o.MaxBodyBytes = n }
}

// WithoutBodies sets [Options.WithoutBodies]: [Server.Calls] then holds
// each body's hash, not its bytes, so a long-running server's memory is
// bounded by calls, not by what clients send.
func WithoutBodies() Option {
	return func(o *Options) { o.WithoutBodies = true }
}

// WithReadTimeout sets [Options.ReadTimeout].
func WithReadTimeout(d time.Duration) Option {
	return func(o *Options) { o.ReadTimeout = d }
}

// WithIdleTimeout sets [Options.IdleTimeout].
func WithIdleTimeout(d time.Duration) Option {
	return func(o *Options) { o.IdleTimeout = d }
}

// WithCallHook sets [Options.CallHook].
func WithCallHook(fn func(Call, Response)) Option {
	return func(o *Options) { o.CallHook = fn }
}

// WithMaxRecordedCalls sets [Options.MaxRecordedCalls].
func WithMaxRecordedCalls(n int) Option {
	return func(o *Options) { o.MaxRecordedCalls = n }
}

// Option modifies [Options]; pass options to [NewServer].
type Option func(*Options)

// WithAddr sets [Options.Addr], the loopback host:port to listen on.
func WithAddr(addr string) Option {
	return func(o *Options) { o.Addr = addr }
}

// WithResponseDelay sets [Options.ResponseDelay]; 0 disables the delay.
func WithResponseDelay(d time.Duration) Option {
	return func(o *Options) { o.ResponseDelay = d }
}

// Call is a copy of one request received by a [Server].
type Call struct {
	// N is the 1-based sequence number of the call across all operations.
	N int
	// Method is the HTTP method.
	Method string
	// Path is the request path as sent on the wire (still percent-encoded).
	Path string
	// Operation is the operation the path routed to ("ConverseStream",
	// "InvokeModelWithResponseStream", "InvokeModel", "Converse"), or "" when
	// the path matched no known operation.
	Operation string
	// ModelID is the URL-unescaped {modelId} path segment, or "".
	ModelID string
	// Header holds the request headers.
	Header http.Header
	// Body is the complete request body (nil with [WithoutBodies], or when
	// the body was over [Options.MaxBodyBytes]).
	Body []byte
	// BodySHA256 is the lowercase hex SHA-256 of Body.
	BodySHA256 string
	// RequestID is the x-amzn-RequestId the server answered with.
	RequestID string
	// SignatureVerified reports whether the request's SigV4 signature was
	// verified (only with [WithSigV4Check]; a request that fails the check
	// is answered 403).
	SignatureVerified bool
	// Rejected is why the server answered the request itself (missing
	// Authorization, unknown path, a body over the limit, ...) instead of
	// from the queue, script or default; "" when it did not.
	Rejected string
}

// clone returns a deep copy of c.
func (c Call) clone() Call {
	c.Header = c.Header.Clone()
	c.Body = bytes.Clone(c.Body)
	return c
}

// Response is one scripted answer of a [Server].
type Response struct {
	// Status is the HTTP status code; 0 means 200.
	Status int
	// Header holds extra response headers. They replace the server's
	// defaults for the same name, so Header can override Content-Type or
	// x-amzn-RequestId.
	Header http.Header
	// ErrorType, for a non-2xx Status, is sent as the x-amzn-ErrorType header
	// the way the real service reports modeled errors (for example
	// "ThrottlingException").
	ErrorType string
	// ErrorMessage, for a non-2xx Status, is sent as the JSON body
	// {"message": ErrorMessage}.
	ErrorMessage string
	// Body, when non-nil, is sent as-is (Content-Type application/json) and
	// overrides the ErrorMessage body. A 2xx Response without Steps also
	// sends Body, which is how non-streaming operations (InvokeModel,
	// Converse) are scripted.
	Body []byte
	// Steps is the event stream of a 2xx response, sent with Content-Type
	// application/vnd.amazon.eventstream and flushed after every step.
	// A 2xx Response with neither Steps nor Body is an empty event stream.
	Steps []Step
}

// Server is a fake Bedrock Runtime HTTP endpoint on a loopback address.
// Create one with [NewServer] and stop it with [Server.Close]. All methods
// are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, "http://127.0.0.1:port"; use it as
	// the SDK client's BaseEndpoint.
	URL string

	delay    time.Duration
	creds    *aws.Credentials
	hs       *http.Server
	serveErr chan error
	done     chan struct{} // closed when Close starts

	mu        sync.Mutex
	closing   bool
	conns     map[net.Conn]struct{}
	active    sync.WaitGroup // open connections and running handlers
	queue     []Response
	script    func(Call) Response
	def       *Response
	calls     []Call // the most recent maxCalls calls (all when maxCalls is 0)
	nCalls    int
	maxCalls  int
	maxBody   int64
	noBodies  bool
	readTO    time.Duration
	hook      func(Call, Response)
	closeOnce sync.Once
}

// NewServer starts a Server listening on 127.0.0.1:0 (or [Options.Addr],
// which must be a loopback address). Stop it with [Server.Close].
func NewServer(opts ...Option) (*Server, error) {
	o := Options{}
	for _, opt := range opts {
		opt(&o)
	}
	addr, err := loopbackAddr(o.Addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake: listen on %s: %w", addr, err)
	}
	s := &Server{
		URL:      "http://" + ln.Addr().String(),
		serveErr: make(chan error, 1),
		done:     make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
		delay:    o.ResponseDelay,
		creds:    o.Credentials,
		maxCalls: max(o.MaxRecordedCalls, 0),
		maxBody:  o.MaxBodyBytes,
		noBodies: o.WithoutBodies,
		readTO:   o.ReadTimeout,
		hook:     o.CallHook,
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.readTO <= 0 {
		s.readTO = DefaultReadTimeout
	}
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ConnState:         s.connState,
		ReadHeaderTimeout: s.readTO,
		IdleTimeout:       idle,
		// Hijacked and reset connections make net/http log; keep tests quiet.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { s.serveErr <- s.hs.Serve(ln) }()
	return s, nil
}

// loopbackAddr validates addr and fills in the default.
func loopbackAddr(addr string) (string, error) {
	if addr == "" {
		return "127.0.0.1:0", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("fake: invalid listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("fake: listen address %q is not a loopback address; the fake server only listens on loopback (e.g. 127.0.0.1:0)", addr)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// Close stops the server: it stops accepting connections, closes all
// connections, which ends every in-flight response abruptly (including
// responses in a [Pause] or [Hang] step; clients see a truncated body, not a
// clean end), and waits until every connection and handler goroutine has
// finished. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()

		// Closing the connections first makes every in-flight response end
		// abruptly (no terminating chunk), as when a real server goes away;
		// closing done then wakes any handler still in a Pause, Hang or
		// response delay.
		_ = s.hs.Close()
		close(s.done)
		<-s.serveErr
		s.active.Wait()
	})
}

// connState tracks connections so Close can wait for their goroutines.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		if s.closing {
			// Accepted while Close was running: http.Server.Close may
			// already have snapshotted its connections, so close it here.
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.active.Add(1)
	case http.StateHijacked, http.StateClosed:
		if _, ok := s.conns[c]; ok {
			delete(s.conns, c)
			s.active.Done()
		}
	}
}

// Enqueue appends scripted responses. Each call that passes validation
// consumes the next queued response, in order, across all operations.
func (s *Server) Enqueue(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, rs...)
}

// SetDefault sets the response used when the queue is empty and no script
// is set. Without a default such calls get HTTP 500 with the JSON body
// {"message":"fake: no scripted response for call N"}.
func (s *Server) SetDefault(r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = &r
}

// SetScript sets a function that computes the response for a call when the
// queue is empty; it takes precedence over the default. fn receives a copy
// of the call and runs on the handler goroutine without the server's lock
// held, so it may call other Server methods. nil removes the script.
func (s *Server) SetScript(fn func(call Call) Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = fn
}

// Calls returns copies of the recorded requests (every one, or the most
// recent [Options.MaxRecordedCalls]), in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.clone()
	}
	return out
}

// CallCount returns the number of requests received so far.
func (s *Server) CallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nCalls
}

// serveHTTP handles every request: read, record, validate, answer.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		abort(http.NewResponseController(w), false)
		return
	}
	s.active.Add(1)
	s.mu.Unlock()
	defer s.active.Done()

	// The body gets its own deadline (the header's is the http.Server's
	// ReadHeaderTimeout); it is lifted before the response, which may
	// stream for as long as its steps say.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.readTO))
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if readErr == nil {
		_ = rc.SetReadDeadline(time.Time{})
	} else {
		// The rest of the body is never read: end the connection after
		// the answer instead of waiting for it.
		w.Header().Set("Connection", "close")
	}
	sum := sha256.Sum256(body)
	call := Call{
		Method:     r.Method,
		Path:       r.URL.EscapedPath(),
		Header:     r.Header.Clone(),
		Body:       body,
		BodySHA256: hex.EncodeToString(sum[:]),
	}
	tooLarge := false
	if readErr != nil {
		var mbe *http.MaxBytesError
		tooLarge = errors.As(readErr, &mbe)
		call.Body = nil
	}
	rt, params, verr := route(r.Method, call.Path)
	if rt != nil {
		call.Operation = rt.Operation
		call.ModelID = params["modelId"]
	}
	if readErr != nil && (verr == nil || tooLarge) {
		verr = fmt.Errorf("reading request body: %v", readErr)
		if tooLarge {
			verr = fmt.Errorf("request body over the fake server's limit of %d bytes (WithMaxBodyBytes)", s.maxBody)
		}
	}
	if verr == nil {
		verr = validateAuth(r.Header)
	}
	if verr == nil && rt.Validate != nil {
		verr = rt.Validate(r.Header, body)
	}
	var sigErr error
	if verr == nil && s.creds != nil {
		sigErr = verifySigV4(r, body, call.BodySHA256, *s.creds)
		call.SignatureVerified = sigErr == nil
	}

	switch {
	case sigErr != nil:
		call.Rejected = sigErr.Error()
	case verr != nil:
		call.Rejected = verr.Error()
	}
	recorded := call.clone()
	if s.noBodies {
		recorded.Body = nil
	}

	s.mu.Lock()
	s.nCalls++
	call.N = s.nCalls
	call.RequestID = fmt.Sprintf("fake-%08d", call.N)
	recorded.N, recorded.RequestID = call.N, call.RequestID
	if s.maxCalls > 0 && len(s.calls) >= s.maxCalls {
		copy(s.calls, s.calls[1:])
		s.calls[len(s.calls)-1] = Call{}
		s.calls = s.calls[:len(s.calls)-1]
	}
	s.calls = append(s.calls, recorded)
	var (
		resp   Response
		found  bool
		script func(Call) Response
	)
	switch {
	case sigErr != nil:
		resp = Response{
			Status:       http.StatusForbidden,
			ErrorType:    "InvalidSignatureException",
			ErrorMessage: "fake: " + sigErr.Error(),
		}
		found = true
	case verr != nil && tooLarge:
		resp = Response{
			Status:       http.StatusRequestEntityTooLarge,
			ErrorType:    "ValidationException",
			ErrorMessage: "fake: " + verr.Error(),
		}
		found = true
	case verr != nil:
		resp = Response{
			Status:       http.StatusBadRequest,
			ErrorType:    "ValidationException",
			ErrorMessage: "fake: " + verr.Error(),
		}
		found = true
	case len(s.queue) > 0:
		resp = s.queue[0]
		s.queue[0] = Response{}
		s.queue = s.queue[1:]
		found = true
	case s.script != nil:
		script = s.script
	case s.def != nil:
		resp = *s.def
		found = true
	}
	s.mu.Unlock()

	if script != nil {
		resp = script(call.clone())
		found = true
	}
	if !found {
		resp = Response{
			Status:       http.StatusInternalServerError,
			ErrorType:    "InternalServerException",
			ErrorMessage: fmt.Sprintf("fake: no scripted response for call %d", call.N),
		}
	}
	if id := headerValue(resp.Header, "X-Amzn-Requestid"); id != "" && id != call.RequestID {
		call.RequestID = id
		s.setRequestID(call.N, id)
	} else {
		w.Header().Set("X-Amzn-Requestid", call.RequestID)
	}
	if s.hook != nil {
		s.hook(call.clone(), resp)
	}
	if !sleep(s.delay, s.done, r.Context().Done()) {
		abort(http.NewResponseController(w), false)
		return
	}
	s.write(w, r, resp)
}

// setRequestID records the scripted request id of call n, if the call is
// still recorded (with MaxRecordedCalls the oldest are gone, and the record
// is not indexed by call number).
func (s *Server) setRequestID(n int, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.calls) - 1; i >= 0; i-- {
		if s.calls[i].N == n {
			s.calls[i].RequestID = id
			return
		}
		if s.calls[i].N < n {
			return
		}
	}
}

// headerValue is h.Get(name) that also finds non-canonical keys, as in
// http.Header{"x-amzn-RequestId": ...} literals.
func headerValue(h http.Header, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// write sends resp, running its steps for a streaming 2xx response.
func (s *Server) write(w http.ResponseWriter, r *http.Request, resp Response) {
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	ok := status >= 200 && status < 300
	var body []byte
	switch {
	case ok && len(resp.Steps) > 0:
		h.Set("Content-Type", "application/vnd.amazon.eventstream")
	case resp.Body != nil:
		h.Set("Content-Type", "application/json")
		body = resp.Body
	case ok:
		h.Set("Content-Type", "application/vnd.amazon.eventstream")
	default:
		h.Set("Content-Type", "application/json")
		body, _ = json.Marshal(map[string]string{"message": resp.ErrorMessage})
	}
	if !ok && resp.ErrorType != "" {
		h.Set("X-Amzn-Errortype", resp.ErrorType)
	}
	for k, v := range resp.Header {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	if body != nil {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	if ok {
		s.runSteps(w, r, rc, resp.Steps)
	}
}

// runSteps writes the event stream, stopping at the first failure, client
// disconnect or server Close. A response stopped by a disconnect or Close is
// aborted rather than finished, so it never looks complete.
func (s *Server) runSteps(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, steps []Step) {
	ctx := r.Context()
	for _, st := range steps {
		select {
		case <-s.done:
			abort(rc, false)
			return
		case <-ctx.Done():
			abort(rc, false)
			return
		default:
		}
		switch st.kind {
		case stepBytes:
			if _, err := w.Write(st.data); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case stepPause:
			if !sleep(st.d, s.done, ctx.Done()) {
				abort(rc, false)
				return
			}
		case stepHang:
			select {
			case <-s.done:
			case <-ctx.Done():
			}
			abort(rc, false)
			return
		case stepReset, stepCut:
			if st.kind == stepReset {
				s.reset(rc)
			} else {
				abort(rc, false)
			}
			return
		case stepRepeat:
			for i := 0; i < st.n; i++ {
				if _, err := w.Write(st.data); err != nil {
					return
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// resetDrain bounds how long a Reset waits for the client to acknowledge
// what was written before it: a client reading a long stream on a loaded
// machine may take seconds to take in what the server wrote ahead (2 s lost
// frames in a 64 × 3000-event run); the wait also ends when the client goes
// away or the server closes.
const resetDrain = time.Minute

// reset is abort with a TCP RST, after waiting (up to resetDrain, or until
// the server closes or the client resets) until the client's kernel has
// acknowledged every byte written: then the client reads every frame sent
// before the reset, and only then "connection reset by peer". Without the
// wait, SO_LINGER 0 discards what is still in the send queue.
func (s *Server) reset(rc *http.ResponseController) {
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		drain(tc, resetDrain, s.done)
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// abort hijacks the connection (after flushing what was written) and closes
// it, with SO_LINGER 0 (a TCP RST) when reset is true, otherwise with a
// normal FIN that leaves the chunked body unterminated.
func abort(rc *http.ResponseController, reset bool) {
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// routeEntry is one entry of the routing table.
type routeEntry struct {
	Method    string
	Pattern   string // path with {name} placeholders for whole segments
	Operation string
	// Validate checks the headers and body of an authenticated request.
	Validate func(h http.Header, body []byte) error
}

// routes is the routing table. Add entries here to fake more operations or
// services; patterns are matched against the escaped request path, one
// placeholder per segment.
var routes = []routeEntry{
	{Method: http.MethodPost, Pattern: "/model/{modelId}/converse-stream", Operation: "ConverseStream", Validate: validateConverse},
	{Method: http.MethodPost, Pattern: "/model/{modelId}/invoke-with-response-stream", Operation: "InvokeModelWithResponseStream"},
	{Method: http.MethodPost, Pattern: "/model/{modelId}/invoke", Operation: "InvokeModel"},
	{Method: http.MethodPost, Pattern: "/model/{modelId}/converse", Operation: "Converse", Validate: validateConverse},
	// Amazon SageMaker Runtime.
	{Method: http.MethodPost, Pattern: "/endpoints/{EndpointName}/invocations-response-stream", Operation: "InvokeEndpointWithResponseStream"},
	{Method: http.MethodPost, Pattern: "/endpoints/{EndpointName}/invocations", Operation: "InvokeEndpoint"},
	// Agents for Amazon Bedrock Runtime.
	{Method: http.MethodPost, Pattern: "/agents/{agentId}/agentAliases/{agentAliasId}/sessions/{sessionId}/text", Operation: "InvokeAgent", Validate: validateJSON},
	// AWS STS (query protocol), for tests of non-streaming clients.
	{Method: http.MethodPost, Pattern: "/", Operation: "GetCallerIdentity", Validate: validateQueryAction("GetCallerIdentity")},
}

// route finds the entry for path. It returns the matched entry (nil if
// none) with its unescaped placeholder values, and an error when the path
// or method is not acceptable.
func route(method, path string) (*routeEntry, map[string]string, error) {
	for i := range routes {
		rt := &routes[i]
		params, ok, err := matchPattern(rt.Pattern, path)
		if !ok {
			continue
		}
		if err != nil {
			return rt, params, fmt.Errorf("%s: %v", rt.Operation, err)
		}
		if method != rt.Method {
			return rt, params, fmt.Errorf("method %s not allowed for %s %s, want %s", method, rt.Operation, path, rt.Method)
		}
		return rt, params, nil
	}
	return nil, nil, fmt.Errorf("unknown operation path %s %s", method, path)
}

// matchPattern matches an escaped path against pattern. ok reports whether
// the shape matched; err reports a bad placeholder value.
func matchPattern(pattern, path string) (params map[string]string, ok bool, err error) {
	ps := strings.Split(pattern, "/")
	xs := strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false, nil
	}
	params = map[string]string{}
	for i, p := range ps {
		if !strings.HasPrefix(p, "{") || !strings.HasSuffix(p, "}") {
			if p != xs[i] {
				return nil, false, nil
			}
			continue
		}
		name := p[1 : len(p)-1]
		v, uerr := url.PathUnescape(xs[i])
		if uerr != nil && err == nil {
			err = fmt.Errorf("invalid escaping in {%s} %q: %v", name, xs[i], uerr)
		}
		if v == "" && err == nil {
			err = fmt.Errorf("empty {%s} in path", name)
		}
		params[name] = v
	}
	return params, true, err
}

// validateAuth requires a SigV4 Authorization header.
func validateAuth(h http.Header) error {
	auth := h.Get("Authorization")
	if auth == "" {
		return errors.New("missing Authorization header (requests must be SigV4-signed)")
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return fmt.Errorf("Authorization header is not SigV4 (want prefix %q)", "AWS4-HMAC-SHA256 ")
	}
	return nil
}

// validateConverse checks a Converse/ConverseStream request body.
func validateConverse(h http.Header, body []byte) error {
	ct := h.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var req struct {
		Messages json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("body is not a JSON object: %v", err)
	}
	var msgs []json.RawMessage
	if len(req.Messages) == 0 || json.Unmarshal(req.Messages, &msgs) != nil || msgs == nil {
		return errors.New(`body has no "messages" array`)
	}
	return nil
}
