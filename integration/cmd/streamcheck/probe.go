package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// This file is the probe command: one real ConverseStream call through the
// plugin, with the default AWS credential chain.

// probeConfig is what probe's flags say.
type probeConfig struct {
	region      string
	model       string
	profile     string
	prompt      string
	maxTokens   int
	endpointURL string
	maxAttempts int
	maxBackoff  time.Duration
	timeout     time.Duration
	credTimeout time.Duration
}

// probeFlags defines probe's flags on a new FlagSet.
func probeFlags(cfg *probeConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("streamcheck probe", flag.ContinueOnError)
	fs.StringVar(&cfg.region, "region", "", "AWS region (default: AWS_REGION or the profile's region; us-east-1 for a loopback --endpoint-url)")
	fs.StringVar(&cfg.model, "model", "", "Bedrock model id or inference profile id to call (required), e.g. us.anthropic.claude-3-5-haiku-20241022-v1:0")
	fs.StringVar(&cfg.profile, "profile", "", "shared config profile (default: AWS_PROFILE, else default)")
	fs.StringVar(&cfg.prompt, "prompt", "In one sentence: why do streaming APIs report errors inside the stream?", "the user message")
	fs.IntVar(&cfg.maxTokens, "max-tokens", 128, "maxTokens of the call (keeps the probe cheap)")
	fs.StringVar(&cfg.endpointURL, "endpoint-url", "", "send the call here instead of AWS, e.g. the URL of streamcheck serve (a loopback URL needs no AWS credentials)")
	fs.IntVar(&cfg.maxAttempts, "max-attempts", 3, "attempts of the SDK's standard retryer")
	fs.DurationVar(&cfg.maxBackoff, "max-backoff", 20*time.Second, "longest wait between attempts (the SDK's default is 20s)")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "limit on the whole call, retries and stream included")
	fs.DurationVar(&cfg.credTimeout, "cred-timeout", 5*time.Second, "limit on finding credentials before the call")
	return fs
}

// credentialsHelp says what to do when no credentials were found.
const credentialsHelp = "configure credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " +
	"(with AWS_SESSION_TOKEN for temporary ones), or run aws configure (aws sso login for SSO profiles)"

// runProbe runs the probe command.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var pc probeConfig
	fs := probeFlags(&pc)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	name := fs.Name()
	switch {
	case pc.model == "":
		return usageError(stderr, name, "--model is required: a Bedrock model id or inference profile id your account can use, "+
			"e.g. us.anthropic.claude-3-5-haiku-20241022-v1:0")
	case pc.maxAttempts < 1:
		return usageError(stderr, name, fmt.Sprintf("--max-attempts %d: want 1 or more", pc.maxAttempts))
	case pc.maxTokens < 1:
		return usageError(stderr, name, fmt.Sprintf("--max-tokens %d: want 1 or more", pc.maxTokens))
	case pc.timeout <= 0 || pc.credTimeout <= 0 || pc.maxBackoff < 0:
		return usageError(stderr, name, "--timeout and --cred-timeout must be above 0, --max-backoff 0 or more")
	}

	// The SDK's own buildable HTTP client, so the config loader can apply
	// AWS_CA_BUNDLE (it needs WithTransportOptions); its connections are
	// tracked, so every one is closed when the probe ends.
	var conns connTracker
	defer conns.closeAll()
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = conns.dialContext(tr.DialContext)
	})
	cfg, err := probeConfigFor(ctx, pc, httpClient)
	if err != nil {
		fmt.Fprintf(stderr, "%s: load the AWS configuration: %v\n  check AWS_PROFILE, AWS_CONFIG_FILE, AWS_CA_BUNDLE and ~/.aws/config; %s\n", name, err, credentialsHelp)
		return exitFailed
	}
	local := isLoopbackURL(pc.endpointURL)
	if cfg.Region == "" {
		return usageError(stderr, name, "no region: pass --region, or set AWS_REGION or a region in your profile")
	}

	// Find credentials before the call, with a deadline: on a machine that is
	// not EC2, the chain's last resort (the instance metadata service) would
	// otherwise spend its own retries and timeouts before giving up.
	source := "made-up static credentials (the endpoint is local)"
	if !local {
		if source, err = checkCredentials(ctx, cfg, pc.credTimeout); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n  %s\n  (no call was made)\n", name, err, credentialsHelp)
			return exitFailed
		}
	}
	endpoint := "AWS"
	if pc.endpointURL != "" {
		endpoint = pc.endpointURL
	}
	fmt.Fprintf(stdout, "probe: ConverseStream to %s in %s via %s, credentials from %s, through streamstatus\n", pc.model, cfg.Region, endpoint, source)

	log := &retryLog{w: stdout}
	cfg.Retryer = func() aws.Retryer {
		log.RetryerV2 = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = pc.maxAttempts
			o.MaxBackoff = pc.maxBackoff
		})
		return log
	}
	optFns := []func(*bedrockruntime.Options){middleware.WithBedrock()}
	if pc.endpointURL != "" {
		// The call number lets serve's log lines ("call N attempt M") be
		// matched with this probe's attempts.
		log.call = probeCallNumber()
		fmt.Fprintf(stdout, "the endpoint logs this call as call %d (header %s)\n", log.call, probeCallHeader)
		optFns = append(optFns, func(o *bedrockruntime.Options) {
			o.BaseEndpoint = aws.String(pc.endpointURL)
			o.APIOptions = append(o.APIOptions, withCallNumber(log.call))
		})
	}
	client := bedrockruntime.NewFromConfig(cfg, optFns...)
	callCtx, cancel := context.WithTimeout(ctx, pc.timeout)
	defer cancel()
	return probeCall(callCtx, client, pc, log, stdout, stderr)
}

// probeConfigFor returns the AWS configuration of the probe.
//
// A local endpoint (streamcheck serve) accepts any signature: the probe
// signs with made-up static credentials, never with the machine's real
// ones (the credential chain, and its last resort, the instance metadata
// service, are not consulted at all). Unless --profile names a profile, it
// reads no shared config either: a loopback endpoint needs no AWS setup, and
// an AWS_PROFILE naming a profile this machine lacks must not stop it. The
// region is then --region, AWS_REGION, AWS_DEFAULT_REGION or us-east-1.
func probeConfigFor(ctx context.Context, pc probeConfig, httpClient aws.HTTPClient) (aws.Config, error) {
	local := isLoopbackURL(pc.endpointURL)
	dummy := credentials.NewStaticCredentialsProvider(dummyAccessKey, dummySecretKey, "")
	if local && pc.profile == "" {
		region := pc.region
		if region == "" {
			region = cmp.Or(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), localRegion)
		}
		return aws.Config{Region: region, Credentials: dummy, HTTPClient: httpClient}, nil
	}
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(httpClient)}
	if pc.region != "" {
		opts = append(opts, config.WithRegion(pc.region))
	}
	if pc.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(pc.profile))
	}
	if local {
		opts = append(opts, config.WithCredentialsProvider(dummy), config.WithDefaultRegion(localRegion))
	}
	// Loading reads files and the environment only; bound it all the same.
	loadCtx, cancel := context.WithTimeout(ctx, pc.credTimeout)
	defer cancel()
	return config.LoadDefaultConfig(loadCtx, opts...)
}

// checkCredentials retrieves credentials within timeout and returns where
// they came from (never the keys themselves).
func checkCredentials(ctx context.Context, cfg aws.Config, timeout time.Duration) (string, error) {
	if cfg.Credentials == nil {
		return "", errors.New("no AWS credentials provider is configured")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	creds, err := cfg.Credentials.Retrieve(ctx)
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded:
		return "", fmt.Errorf("no AWS credentials found within %v: the default chain was still searching "+
			"(outside EC2, set AWS_EC2_METADATA_DISABLED=true to skip the instance metadata service)\n  cause: %v", timeout, err)
	case err != nil:
		return "", fmt.Errorf("no AWS credentials: the default chain (environment, shared config and credentials files, "+
			"SSO, web identity, container and EC2 roles) found none\n  cause: %v", err)
	case !creds.HasKeys():
		return "", errors.New("no AWS credentials: the credential chain returned an empty key")
	}
	if creds.Source == "" {
		return "an unnamed provider", nil
	}
	return creds.Source, nil
}

// probeCall makes the call, streams the reply to stdout, and reports.
func probeCall(ctx context.Context, client *bedrockruntime.Client, pc probeConfig, log *retryLog, stdout, stderr io.Writer) int {
	start := time.Now()
	out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(pc.model),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: pc.prompt}}}},
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(min(pc.maxTokens, 1<<20)))},
	})
	if err != nil {
		return probeFailed(stderr, log, "the call failed before the stream started", err, 0)
	}
	attempts := 1
	if res, ok := retry.GetAttemptResults(out.ResultMetadata); ok {
		attempts = len(res.Results)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	fmt.Fprintf(stdout, "stream opened on attempt %d after %v (request id %s)\nreply: ", attempts, roundDuration(time.Since(start)), reqID)

	st := out.GetStream()
	defer st.Close()
	var events int
	var first time.Duration
	var stop string
	var usage *types.TokenUsage
	for ev := range st.Events() {
		if events == 0 {
			first = time.Since(start)
		}
		events++
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				fmt.Fprint(stdout, d.Value)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			stop = string(v.Value.StopReason)
		case *types.ConverseStreamOutputMemberMetadata:
			usage = v.Value.Usage
		}
	}
	fmt.Fprintln(stdout)
	if err := st.Err(); err != nil {
		return probeFailed(stderr, log, fmt.Sprintf("the stream failed after %d events (not retried: the reply had started)", events), err, events)
	}
	fmt.Fprintf(stdout, "done: %d events, first after %v, total %v, stop reason %s", events,
		roundDuration(first), roundDuration(time.Since(start)), stop)
	if usage != nil {
		fmt.Fprintf(stdout, ", tokens %d in / %d out", aws.ToInt32(usage.InputTokens), aws.ToInt32(usage.OutputTokens))
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, log.summary())
	return exitOK
}

// probeFailed reports a failed probe call with its typed status and a hint.
func probeFailed(stderr io.Writer, log *retryLog, what string, err error, events int) int {
	r := classify.Classify(err)
	fmt.Fprintf(stderr, "probe: %s: %s\n", what, describeError(err))
	fmt.Fprintf(stderr, "  status %d, code %s, retryable %t, throttle %t, source %s, request id %s\n",
		r.Status, r.Code, r.Retryable, r.Throttle, r.Source, orNone(r.RequestID))
	if h := hint(r); h != "" {
		fmt.Fprintln(stderr, "  "+h)
	}
	fmt.Fprintln(stderr, "  "+log.summary())
	return exitFailed
}

// hint says what to do about the common failures of a first call.
func hint(r classify.Result) string {
	switch {
	case r.Code == "AccessDeniedException":
		return "the credentials may not call bedrock:InvokeModelWithResponseStream on this model, or the model is not enabled for the account in this region (Bedrock console, Model access)"
	case r.Code == "ResourceNotFoundException" || (r.Code == "ValidationException" && strings.Contains(strings.ToLower(r.Message), "model")):
		return "check the model id; many models are called through an inference profile id such as us.anthropic.<model>"
	case r.Code == "UnrecognizedClientException" || r.Code == "InvalidSignatureException" || r.Code == "ExpiredTokenException":
		return "the credentials were rejected; " + credentialsHelp
	case r.Throttle:
		return "throttled even after the retries: try again later, or raise --max-attempts"
	case r.Source == classify.SourceTransport:
		return "the endpoint could not be reached: check the region, --endpoint-url and the network"
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// describeError is a one-line account of an error: a StatusError's own
// line, else code, status and message.
func describeError(err error) string {
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		return se.Error()
	}
	r := classify.Classify(err)
	if r.Code == "" {
		return err.Error()
	}
	status := "no HTTP status"
	if r.Status != 0 {
		status = fmt.Sprintf("HTTP %d", r.Status)
	}
	return fmt.Sprintf("%s (%s): %s", r.Code, status, r.Message)
}

// retryLog is the client's retryer with a log: it prints each failed
// attempt with the reason and the retryer's decision, as it happens.
type retryLog struct {
	aws.RetryerV2
	w    io.Writer
	call int // the call number sent to a streamcheck endpoint; 0 if none

	mu      sync.Mutex
	attempt int
	retried []string // the codes of the attempts that were retried
}

// GetAttemptToken counts the attempts.
func (l *retryLog) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	l.mu.Lock()
	l.attempt++
	l.mu.Unlock()
	return l.RetryerV2.GetAttemptToken(ctx)
}

// IsErrorRetryable logs the failed attempt and the retryer's verdict.
func (l *retryLog) IsErrorRetryable(err error) bool {
	ok := l.RetryerV2.IsErrorRetryable(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	verdict := "the retryer gives up: not retryable"
	if ok {
		verdict = "the retryer retries it"
		if l.attempt >= l.MaxAttempts() {
			verdict = "the retryer gives up: that was the last attempt"
		}
	}
	fmt.Fprintf(l.w, "%s failed: %s; %s\n", l.attemptName(), describeError(err), verdict)
	return ok
}

// attemptName names the current attempt the way serve's log does ("call N
// attempt M") when the call is numbered. l.mu must be held.
func (l *retryLog) attemptName() string {
	if l.call != 0 {
		return fmt.Sprintf("call %d attempt %d", l.call, l.attempt)
	}
	return fmt.Sprintf("attempt %d", l.attempt)
}

// RetryDelay logs the wait before the next attempt.
func (l *retryLog) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := l.RetryerV2.RetryDelay(attempt, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	if derr == nil {
		code := classify.Classify(err).Code
		if code == "" {
			code = "an error"
		}
		l.retried = append(l.retried, code)
		fmt.Fprintf(l.w, "  retrying in %v (attempt %d of %d)\n", roundDuration(d), attempt+1, l.MaxAttempts())
	}
	return d, derr
}

// roundDuration rounds d for people: to the millisecond, or to the
// microsecond under a millisecond.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// summary is one line about the retries.
func (l *retryLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.retried) == 0 {
		return fmt.Sprintf("retries: none (%d attempt)", l.attempt)
	}
	return fmt.Sprintf("retries: %d, by the SDK's retryer (%s); %d attempts", len(l.retried), strings.Join(l.retried, ", "), l.attempt)
}

// Made-up credentials for a local endpoint, recognisable in any log.
const (
	dummyAccessKey = "AKIDSTREAMCHECKPROBE"
	dummySecretKey = "streamcheck-probe-not-a-secret"
	localRegion    = "us-east-1"
)

// isLoopbackURL reports whether u names a loopback host (127.0.0.0/8, ::1,
// localhost).
func isLoopbackURL(u string) bool {
	if u == "" {
		return false
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// probeCallHeader is the header a streamcheck endpoint numbers calls by.
const probeCallHeader = "X-Streamcheck-Call"

// probeCallNumber picks the number of the probe's call: large, so it does
// not collide with the endpoint's own numbering of unnumbered calls, and
// different on every run, so each probe is a new call to the endpoint.
func probeCallNumber() int { return 1_000_000 + rand.IntN(9_000_000) }

// withCallNumber sends n in the probeCallHeader on every attempt.
func withCallNumber(n int) func(*smithymiddleware.Stack) error {
	mw := smithymiddleware.BuildMiddlewareFunc("streamcheck.ProbeCallNumber",
		func(ctx context.Context, in smithymiddleware.BuildInput, next smithymiddleware.BuildHandler) (smithymiddleware.BuildOutput, smithymiddleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				req.Header.Set(probeCallHeader, strconv.Itoa(n))
			}
			return next.HandleBuild(ctx, in)
		})
	return func(s *smithymiddleware.Stack) error { return s.Build.Add(mw, smithymiddleware.After) }
}

// connTracker remembers the connections a transport dials, so they can all
// be closed at the end.
type connTracker struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (t *connTracker) dialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			t.mu.Lock()
			t.conns = append(t.conns, c)
			t.mu.Unlock()
		}
		return c, err
	}
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		_ = c.Close()
	}
	t.conns = nil
}
