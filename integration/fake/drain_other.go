//go:build !linux

package fake

import (
	"net"
	"time"
)

// drain gives the peer a moment to receive what was written to c before a
// reset. Outside Linux the send queue is not inspected, so a Reset may still
// lose bytes the peer had not acknowledged.
func drain(c *net.TCPConn, d time.Duration, stop <-chan struct{}) {
	select {
	case <-stop:
	case <-time.After(min(d, 50*time.Millisecond)):
	}
}
