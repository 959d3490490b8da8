package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamstatus/streamstatus/integration/fake"
)

// This file is the fault-injecting endpoint: the fake Bedrock Runtime
// server of package fake, answering each request from a fault SPEC. The
// check runs one per side; serve runs one on its own.

// callHeader lets a client number its calls itself (see specHelp).
const callHeader = "X-Streamcheck-Call"

// maxTracked bounds how many calls serve's endpoint remembers for counting
// attempts; the oldest are forgotten first, so a long serve run stays small.
// The check's endpoints remember every call of the run (a few counts per
// call, O(calls)), so [server calls] is checked for all of them.
const maxTracked = 1 << 16

// endpointConfig configures an endpoint.
type endpointConfig struct {
	addr   string // loopback host:port; "" = 127.0.0.1:0
	spec   *faultSpec
	seed   int64
	events int           // content events per healthy stream
	delay  time.Duration // wait before each answer
	// forgetAfter, when above 0, is how many calls the endpoint remembers
	// (serve: maxTracked); 0 remembers every call (the check).
	forgetAfter int
	// log, when set, gets one line per request: call, attempt, operation,
	// model and the fault injected. Never headers or bodies.
	log io.Writer
}

// endpoint is a running fault-injecting fake Bedrock Runtime endpoint.
type endpoint struct {
	srv *fake.Server
	cfg endpointConfig

	mu      sync.Mutex
	calls   map[string]*callState // by call key
	order   []string              // keys in first-arrival order, for forgetting
	numbers int                   // calls numbered by arrival so far
	byNum   map[int]*callState    // calls numbered by the client (callHeader)
	logMu   sync.Mutex
}

// callState is what the endpoint remembers about one call.
type callState struct {
	num      int
	attempts int
	faults   []string // the fault of each attempt, "" for none
	// requestID is the x-amzn-RequestId the fake server answered the last
	// attempt with.
	requestID string
}

// checkLoopback rejects an address that is not host:port on a loopback
// interface, with an error that says why.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080): %v", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address: the endpoint answers anyone without checking credentials, "+
			"so it only listens on loopback (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	return nil
}

// startEndpoint starts an endpoint. Stop it with Close.
func startEndpoint(cfg endpointConfig) (*endpoint, error) {
	if cfg.addr != "" {
		if err := checkLoopback(cfg.addr); err != nil {
			return nil, err
		}
	}
	if cfg.spec == nil {
		cfg.spec = &faultSpec{}
	}
	e := &endpoint{cfg: cfg, calls: map[string]*callState{}, byNum: map[int]*callState{}}
	srv, err := fake.NewServer(fake.WithAddr(cfg.addr), fake.WithResponseDelay(cfg.delay), fake.WithMaxRecordedCalls(1024),
		fake.WithoutBodies(), fake.WithCallHook(e.logRejected))
	if err != nil {
		return nil, err
	}
	e.srv = srv
	srv.SetScript(e.answer)
	return e, nil
}

// URL is the endpoint's base URL, http://127.0.0.1:PORT.
func (e *endpoint) URL() string { return e.srv.URL }

// Close stops the endpoint and ends every response still streaming.
func (e *endpoint) Close() { e.srv.Close() }

// ServerCalls is the number of requests the endpoint received.
func (e *endpoint) ServerCalls() int { return e.srv.CallCount() }

// Attempts returns the faults each attempt of call n saw ("" = none), or
// nil when the endpoint does not know call n.
func (e *endpoint) Attempts(n int) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.byNum[n]; st != nil {
		return append([]string(nil), st.faults...)
	}
	return nil
}

// RequestID returns the x-amzn-RequestId the fake server answered call n's
// last attempt with, or "" when the endpoint does not know call n.
func (e *endpoint) RequestID(n int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.byNum[n]; st != nil {
		return st.requestID
	}
	return ""
}

// answer is the fake server's script: it recognises the call, counts the
// attempt, and answers with the call's healthy stream and its faults.
func (e *endpoint) answer(c fake.Call) fake.Response {
	num, attempt, err := e.track(c)
	if err != nil {
		if e.cfg.log != nil {
			e.logf("rejected %s %q: HTTP %d %q", c.Method, c.Path, http.StatusBadRequest, err.Error())
		}
		return fake.Response{Status: http.StatusBadRequest, ErrorType: "ValidationException", ErrorMessage: "streamcheck: " + err.Error()}
	}
	p := e.cfg.spec.choose(e.cfg.seed, num).forAttempt(c.Operation, attempt)
	var resp fake.Response
	switch c.Operation {
	case opConverseStream, opInvokeStream:
		resp = healthyStream(c.Operation, num, e.cfg.events, c.ModelID).response(p)
	case "Converse", "InvokeModel":
		if p.ending != nil && p.ending.kind.http {
			resp = httpFault(p.ending.status)
		} else {
			resp = fake.Response{Body: nonStreamingAnswer(c.Operation, num, c.ModelID)}
		}
	default:
		p = pick{}
		resp = fake.Response{Status: http.StatusBadRequest, ErrorType: "ValidationException",
			ErrorMessage: fmt.Sprintf("streamcheck: operation %s is not scripted (streamcheck answers ConverseStream, "+
				"InvokeModelWithResponseStream, Converse and InvokeModel)", c.Operation)}
	}
	desc := describePick(p)
	e.mu.Lock()
	if st := e.byNum[num]; st != nil {
		if len(st.faults) < 64 {
			st.faults = append(st.faults, desc)
		}
		st.requestID = c.RequestID
	}
	e.mu.Unlock()
	if e.cfg.log != nil {
		if desc == "" {
			desc = "healthy"
		}
		e.logf("call %d attempt %d %s %q: %s", num, attempt, c.Operation, c.ModelID, desc)
	}
	return resp
}

// logRejected logs the requests the fake server answered itself (no
// Authorization, an unknown path, a body over the limit), so the log has a
// line for every request.
func (e *endpoint) logRejected(c fake.Call, r fake.Response) {
	if c.Rejected == "" || e.cfg.log == nil {
		return
	}
	e.logf("rejected %s %q: HTTP %d %q", c.Method, c.Path, r.Status, c.Rejected)
}

// logf writes one log line. Every field a client controls is quoted with
// %q, so it cannot forge a line or reach the terminal as an escape.
func (e *endpoint) logf(format string, args ...any) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(e.cfg.log, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// describePick names the faults of one attempt, e.g. "throttling@0:p=0.15".
func describePick(p pick) string {
	var parts []string
	if p.ending != nil {
		parts = append(parts, p.ending.text)
	}
	for _, r := range p.slows {
		parts = append(parts, r.text)
	}
	return strings.Join(parts, " + ")
}

// track finds the call a request belongs to and returns its number and
// which attempt this is (see specHelp for how calls are recognised).
func (e *endpoint) track(c fake.Call) (num, attempt int, err error) {
	num = 0
	key := ""
	if v := c.Header.Get(callHeader); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			return 0, 0, fmt.Errorf("header %s: %q is not a call number (1 or more)", callHeader, v)
		}
		num, key = n, "n:"+v
	} else if v := c.Header.Get("Amz-Sdk-Invocation-Id"); v != "" {
		key = "id:" + v
	} else {
		h := sha256.Sum256([]byte(c.Method + " " + c.Path + "\n" + c.BodySHA256))
		key = fmt.Sprintf("req:%x", h[:16])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.calls[key]
	if st == nil {
		if num == 0 {
			e.numbers++
			num = e.numbers
		}
		st = &callState{num: num}
		e.calls[key] = st
		e.byNum[num] = st
		if e.cfg.forgetAfter > 0 {
			e.order = append(e.order, key)
		}
		if e.cfg.forgetAfter > 0 && len(e.order) > e.cfg.forgetAfter {
			old := e.order[0]
			e.order = e.order[1:]
			if gone := e.calls[old]; gone != nil && e.byNum[gone.num] == gone {
				delete(e.byNum, gone.num)
			}
			delete(e.calls, old)
		}
	}
	st.attempts++
	return st.num, st.attempts, nil
}
