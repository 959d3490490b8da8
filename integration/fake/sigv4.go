package fake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// WithSigV4Check makes the server verify every request's SigV4 signature
// against the given credentials: it signs the request it received again,
// over the same signed headers, the same time and the SHA-256 of the body it
// received, and compares signatures. A request that does not verify is
// answered 403 InvalidSignatureException. A verified signature proves the
// payload hash the client signed is the hash of the bytes that arrived.
func WithSigV4Check(accessKeyID, secretAccessKey string) Option {
	return func(o *Options) {
		o.Credentials = &aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	}
}

// errBadSignature marks a signature that did not verify.
var errBadSignature = errors.New("signature does not match")

// verifySigV4 re-signs r with creds and compares the signature.
func verifySigV4(r *http.Request, body []byte, bodySHA256 string, creds aws.Credentials) error {
	auth := r.Header.Get("Authorization")
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/") // AKID/date/region/service/aws4_request
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return fmt.Errorf("%w: malformed Authorization header", errBadSignature)
	}
	if scope[0] != creds.AccessKeyID {
		return fmt.Errorf("%w: unknown access key", errBadSignature)
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("%w: bad X-Amz-Date", errBadSignature)
	}

	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	req.Host = r.Host
	req.ContentLength = int64(len(body))
	for _, name := range strings.Split(fields["SignedHeaders"], ";") {
		switch name {
		case "host", "content-length":
			continue // carried by req.Host and req.ContentLength
		}
		for _, v := range r.Header.Values(name) {
			req.Header.Add(name, v)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = false })
	if err := signer.SignHTTP(context.Background(), creds, req, bodySHA256, scope[3], scope[2], signingTime); err != nil {
		return err
	}
	want := req.Header.Get("Authorization")
	if !strings.HasSuffix(want, "Signature="+fields["Signature"]) {
		return fmt.Errorf("%w: the signed payload hash or headers differ from what arrived", errBadSignature)
	}
	return nil
}
