package fake

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// drain waits until the peer has acknowledged every byte written to c (the
// kernel's send queue is empty: SIOCOUTQ is 0), for at most d or until stop
// closes, or the peer reset the connection. Bytes the peer's kernel has acknowledged stay readable there after
// a reset arrives, so a Reset after drain loses nothing that was written
// before it.
func drain(c *net.TCPConn, d time.Duration, stop <-chan struct{}) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(d)
	for {
		queued := 0
		cerr := raw.Control(func(fd uintptr) {
			if soErr, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || soErr != 0 {
				return // the peer is gone: nothing more will be acknowledged
			}
			var n int32
			if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n))); e == 0 {
				queued = int(n)
			}
		})
		if cerr != nil || queued == 0 || time.Now().After(deadline) {
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Microsecond):
		}
	}
}
