// Package redistest runs a throwaway redis-server for tests and for
// streamcheck fleet: on a free 127.0.0.1 port, without persistence
// (--save "" --appendonly no), in a temporary directory, stopped by Close.
// It also kills, restarts, pauses and resumes that server, for fault tests.
//
// It needs the redis-server binary (Debian package redis-server) on PATH
// or in REDIS_SERVER; .ci/run installs it when it is missing.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned by Start when no redis-server binary is found.
var ErrNotInstalled = errors.New("redistest: redis-server not found on PATH (install it: apt-get install -y redis-server, or set REDIS_SERVER)")

// Server is a running redis-server.
type Server struct {
	bin  string
	dir  string
	addr string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
}

// Binary returns the path of redis-server, or ErrNotInstalled.
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Start starts a redis-server on a free loopback port and waits until it
// answers PING.
func Start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	var lastErr error
	for try := 0; try < 3; try++ { // a free port may be taken between probe and bind
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "",
		"--loglevel", "warning")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.addr, 200*time.Millisecond) == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("redistest: redis-server on %s exited at start: %s", s.addr, bytes.TrimSpace(out.Bytes()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redistest: redis-server on %s did not answer PING within 10s: %s", s.addr, bytes.TrimSpace(out.Bytes()))
		}
	}
	s.mu.Lock()
	s.cmd, s.out = cmd, out
	s.mu.Unlock()
	go func() { <-exited; s.exited(cmd) }()
	return nil
}

// exited forgets cmd once it has ended.
func (s *Server) exited(cmd *exec.Cmd) {
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
}

// Kill kills the server with SIGKILL (its data is lost) and waits until it
// no longer accepts connections.
func (s *Server) Kill() error {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGCONT) // a paused server must die too
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: kill redis-server: %w", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		gone := s.cmd != cmd
		s.mu.Unlock()
		if gone {
			return nil
		}
	}
	return errors.New("redistest: redis-server did not exit within 5s of SIGKILL")
}

// Restart starts a new, empty server on the same address after Kill.
func (s *Server) Restart() error {
	if err := s.Kill(); err != nil {
		return err
	}
	return s.start()
}

// Pause stops the server with SIGSTOP: connections stay open and nothing
// answers, like a server stuck in a long command or a swap storm.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redistest: redis-server is not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Kill()
	os.RemoveAll(s.dir)
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping sends PING in the inline protocol and wants +PONG.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
