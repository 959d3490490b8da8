package integration_test

import (
	"archive/zip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// review17Root is the repository root (the library module), seen from
// this package's directory.
func review17Root(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// review17Go runs the go command in dir with env added to the environment
// (GOWORK=off always: a user's build has no go.work of ours).
func review17Go(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// review17Proxy publishes the library module, as `git tag v0.1.0 && git
// push` would (the root module's files; integration/ is another module and
// not in its zip), into a file:// module proxy and returns its URL.
func review17Proxy(t *testing.T) string {
	t.Helper()
	root := review17Root(t)
	const mod, ver = "github.com/streamstatus/streamstatus", "v0.1.0"
	dir := filepath.Join(t.TempDir(), "proxy")
	at := filepath.Join(dir, filepath.FromSlash(mod), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(at, ver+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" || rel == "integration" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(rel, "go.work") {
			return nil
		}
		w, err := zw.Create(mod + "@" + ver + "/" + rel)
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"list":        ver + "\n",
		ver + ".info": `{"Version":"` + ver + `","Time":"2026-11-01T00:00:00Z"}`,
		ver + ".mod":  string(gomod),
	} {
		if err := os.WriteFile(filepath.Join(at, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return "file://" + filepath.ToSlash(dir)
}

// A user adds the library the way the README's Install section says and
// runs `go mod tidy`. The library's go.mod requires
// .../integration/fake at v0.0.0-00010101000000-000000000000 and resolves it
// with a replace directive; replace directives of a dependency are ignored,
// so for every user that requirement points at a version that exists on no
// proxy (proxy.golang.org answers 403 "This module version is not
// available"), and go mod tidy fails because the library's test packages
// (middleware, backoff) import fake and fake/redistest.
func TestDefect_UserGoModTidyFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	proxy := review17Proxy(t)
	app := filepath.Join(t.TempDir(), "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module example.com/app\n\ngo 1.24\n\nrequire github.com/streamstatus/streamstatus v0.1.0\n",
		"main.go": `package main

import (
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/streamstatus/streamstatus/middleware"
)

func main() {
	_ = bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1"}, middleware.WithBedrock())
}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(app, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The SDK modules come from the shared module cache's download
	// directory, read as a file:// proxy, into a private module cache (the
	// shared one never sees v0.1.0); nothing else is consulted. The checksum
	// database is off because v0.1.0 exists only here.
	shared, err := review17Go(t, app, nil, "env", "GOMODCACHE")
	if err != nil {
		t.Fatal(err)
	}
	cache := "file://" + filepath.ToSlash(filepath.Join(strings.TrimSpace(shared), "cache", "download"))
	env := []string{"GOPROXY=" + proxy + "," + cache + ",off", "GOSUMDB=off", "GOFLAGS=-modcacherw",
		"GOMODCACHE=" + filepath.Join(t.TempDir(), "modcache")}
	out, err := review17Go(t, app, env, "mod", "tidy")
	if err != nil {
		t.Errorf("go mod tidy in a user's module that requires %s v0.1.0 fails: %v\n%s",
			"github.com/streamstatus/streamstatus", err, out)
	}
}

// integration/compat.sh floors, the row that proves the go.mod floors
// ("the oldest versions on which the whole suite passes"), compiles every
// test package at the floors (-run '^$': build only). After the merge of
// issue 18 the integration module's tests and cmd/streamcheck use
// bedrockruntime.Options.MeterProvider/TracerProvider, which the floor
// bedrockruntime v1.15.0 does not have: the row, and with it .ci/run,
// fails.
func TestDefect_CompatFloorsDoNotBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs integration/compat.sh")
	}
	root := review17Root(t)
	cmd := exec.Command(filepath.Join(root, "integration", "compat.sh"), "floors")
	cmd.Env = append(os.Environ(), "COMPAT_TESTFLAGS=-run=^$", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "undefined") || strings.HasPrefix(l, "FAIL") || strings.HasPrefix(l, "==") {
				lines = append(lines, l)
			}
		}
		t.Errorf("integration/compat.sh floors (build only) fails: %v\n%s", err, strings.Join(lines, "\n"))
	}
}

// The Compatibility section says the library's go.mod "asks for the oldest
// versions on which every test passes". go-redis is the fleet bucket's
// dependency and its floor was v9.22.0, but every Redis test of backoff
// passes on v9.0.0 (NewScript, UniversalClient, redis.Nil exist since
// v9.0.0): the floor raised users' go-redis by 22 minor versions for
// nothing. Fixed: the floor is v9.0.0; this test fails if it is raised
// while the tests still pass on v9.0.0, or if they stop passing on it.
func TestDefect_GoRedisFloorIsNotTheOldest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("needs redis-server")
	}
	root := review17Root(t)
	cp := filepath.Join(t.TempDir(), "lib")
	tar := exec.Command("sh", "-c", `mkdir -p "$2" && tar -C "$1" --exclude=./.git -cf - . | tar -C "$2" -xf -`, "sh", root, cp)
	if out, err := tar.CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	env := []string{"GOFLAGS=-mod=mod"}
	for _, args := range [][]string{
		{"mod", "edit", "-require=github.com/redis/go-redis/v9@v9.0.0"},
		{"mod", "tidy"},
	} {
		if out, err := review17Go(t, cp, env, args...); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	got, _ := review17Go(t, cp, env, "list", "-m", "-f", "{{.Version}}", "github.com/redis/go-redis/v9")
	if strings.TrimSpace(got) != "v9.0.0" {
		t.Fatalf("go-redis selected %q, want v9.0.0", got)
	}
	// The Redis tests that check behaviour, not timing under load (Paused
	// and KilledAndRestarted measure deadlines and flake on a busy machine
	// whatever the go-redis version; they pass on v9.0.0 when it is idle).
	out, err := review17Go(t, cp, env, "test", "-count=1", "-v", "-run",
		"^(TestRedisBucket(QuotaSemantics|Atomicity|KeyLifetime|WarnsThroughTheSDKLogger)|TestNewRedisBucketRejectsBadConfiguration)$", "./backoff/")
	// The floor the library's go.mod declares (GOWORK=off: the library
	// module alone, as its users see it).
	floor, ferr := review17Go(t, root, []string{"GOFLAGS=-mod=mod"}, "list", "-m", "-f", "{{.Version}}", "github.com/redis/go-redis/v9")
	if ferr != nil {
		t.Fatalf("go list -m go-redis: %v\n%s", ferr, floor)
	}
	floor = strings.TrimSpace(floor)
	if err != nil {
		if floor == "v9.0.0" {
			t.Errorf("go.mod floors go-redis at v9.0.0, but the backoff Redis tests fail on it: %v\n%s", err, out)
		}
		t.Logf("backoff Redis tests fail on go-redis v9.0.0, so a floor above it is justified: %v\n%s", err, out)
		return
	}
	passed := len(regexp.MustCompile(`(?m)^--- PASS: TestRedis`).FindAllString(out, -1))
	if passed == 4 && floor != "v9.0.0" {
		t.Errorf("go.mod floors go-redis at %s, but the backoff Redis tests pass on v9.0.0 (%d TestRedis* passed); the floor is not the oldest", floor, passed)
	}
}

// The Compatibility table lists every floor of the library's go.mod (even
// goleak, tests only) but not go-redis/v9, a dependency of the library's
// backoff package with a floor of v9.22.0.
func TestDefect_CompatibilityTableOmitsGoRedis(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(review17Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n## Compatibility\n")
	if !ok {
		t.Fatal("README has no Compatibility section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var rows []string
	for _, l := range strings.Split(sec, "\n") {
		if strings.HasPrefix(l, "| ") {
			rows = append(rows, l)
		}
	}
	for _, r := range rows {
		if strings.Contains(r, "go-redis") {
			return
		}
	}
	t.Errorf("README Compatibility table has no go-redis row (floor v9.22.0 in go.mod); rows:\n%s", strings.Join(rows, "\n"))
}
