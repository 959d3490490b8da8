package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/smithyext"
)

// finalizeMiddleware runs once per attempt, just inside the SDK's Retry
// middleware. With a budget (WithBudget), it first checks that the
// attempt's token came from that budget's retryer. It is the one
// middleware of this package on every operation it installs on, so it
// also holds the options it was installed with.
type finalizeMiddleware struct{ opts *resolved }

func (*finalizeMiddleware) ID() string { return FinalizeID }

func (m *finalizeMiddleware) HandleFinalize(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (
	out smithymiddleware.FinalizeOutput, md smithymiddleware.Metadata, err error,
) {
	if b := m.opts.budget; b != nil && backoff.UsedBudget(ctx) != b {
		return out, md, errRetryerNotBudget
	}
	out, md, err = next.HandleFinalize(ctx, in)
	if err == nil {
		return out, md, nil
	}
	if se, ok := errorsAsStatus(err); ok {
		if se.RequestID == "" {
			se.RequestID, _ = awsmiddleware.GetRequestIDMetadata(md)
		}
		// The stream failure is the attempt's error: any wrapper around it
		// (an HTTP response error carries the stream's 200) must not hide
		// the mapped status from errors.As or from the retryer.
		err = se
	}
	return out, md, err
}

// errRetryerNotBudget fails a call whose client retryer ignores the budget
// WithBudget gave; it is not retryable (no SDK rule matches it).
var errRetryerNotBudget = errors.New("streamstatus: WithBudget(budget) is set but the client's retryer is not built from that budget; " +
	"set aws.Config.Retryer to func() aws.Retryer { return budget.NewStandard() } (or NewAdaptive), " +
	"or install on Bedrock with middleware.WithBedrock(middleware.WithBudget(budget))")

// innerBodyGuard is the request-body guard as a middleware of its own, for
// guardAfterRequestLogger; it holds no state.
var innerBodyGuard = &bodyGuardMiddleware{}

type bodyGuardMiddleware struct{}

func (*bodyGuardMiddleware) ID() string { return "streamstatus.RequestBodyGuard" }

func (*bodyGuardMiddleware) HandleDeserialize(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
	smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error,
) {
	guardInput(&in)
	return next.HandleDeserialize(ctx, in)
}

// guardInput gives the transport, through in, a request body without
// WriteTo (guardRequestBody).
func guardInput(in *smithymiddleware.DeserializeInput) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		if guarded, err := guardRequestBody(req); err == nil {
			in.Request = guarded
		}
	}
}

// guardRequestBody hands the transport a request stream without a WriteTo
// method. The deserialize middleware calls it for each attempt, after
// signing: the SDK's payload hash copies the stream with io.Copy, which uses
// WriteTo when it can and allocates a 32 KiB buffer when it cannot.
//
// smithy-go closes the request body as soon as client.Do returns; its
// wrapper's WriteTo then answers io.EOF, and net/http's transport, which
// calls WriteTo(io.Discard) once more after the body to look for extra
// bytes, takes that EOF as a write error and closes the connection while the
// response stream is still being read. Without WriteTo, net/http falls back
// to Read, which answers a clean EOF. The bytes sent are the same, Seek
// still works, so signing and the retryer's rewind are unaffected.
func guardRequestBody(req *smithyhttp.Request) (*smithyhttp.Request, error) {
	stream := req.GetStream()
	if stream == nil {
		return req, nil
	}
	if _, ok := stream.(io.WriterTo); !ok {
		return req, nil
	}
	switch s := stream.(type) {
	case *io.PipeReader:
		return req, nil // an input event stream: leave it alone
	case *bytes.Reader:
		return req.SetStream((*bytesReader)(s)) // what the SDK's serializers set: no allocation
	case io.ReadSeeker:
		return req.SetStream(readSeeker{s})
	default:
		return req.SetStream(reader{stream})
	}
}

// readSeeker and reader hide every method but Read (and Seek).
type readSeeker struct{ io.ReadSeeker }

type reader struct{ io.Reader }

// bytesReader is a *bytes.Reader without WriteTo (a pointer conversion, so
// wrapping costs no allocation). Len lets smithy-go size the body without
// seeking, as it does for the *bytes.Reader itself.
type bytesReader bytes.Reader

func (r *bytesReader) Read(p []byte) (int, error) { return (*bytes.Reader)(r).Read(p) }

func (r *bytesReader) Seek(offset int64, whence int) (int64, error) {
	return (*bytes.Reader)(r).Seek(offset, whence)
}

func (r *bytesReader) Len() int { return (*bytes.Reader)(r).Len() }

// errorsAsStatus finds the StatusError in an error chain.
func errorsAsStatus(err error) (*smithyext.StatusError, bool) {
	var se *smithyext.StatusError
	ok := errors.As(err, &se)
	return se, ok
}
