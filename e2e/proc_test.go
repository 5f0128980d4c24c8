package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a process may take to become ready.
	readyTimeout = 30 * time.Second
	// hydraReadyTimeout bounds Hydra's start, key generation included.
	hydraReadyTimeout = 90 * time.Second
	// stopTimeout bounds how long a process may take to exit after SIGTERM.
	stopTimeout = 20 * time.Second
	// logTailLines is how much of a process log a failing test prints.
	logTailLines = 80
)

// proc is a child process whose output goes to a log file. It is killed when
// the test ends, and its log tail is printed when the test failed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	mu      sync.Mutex
	waitErr error
	stopped bool
}

// baseEnv is the environment of every child process: enough to run, and no
// proxy or issuer settings inherited from the developer's shell (Hydra reads
// its whole configuration from environment variables too).
func baseEnv(extra ...string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// startProc starts bin with args and env (see baseEnv), its stdout and stderr
// in a log file named after name. It is killed when t ends.
func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	return startOwned(t, t, name, env, bin, args...)
}

// startOwned is startProc for a process that outlives the (sub)test t that
// starts it: it is killed when owner ends, and its log lives in owner's
// folder. Failures to start are reported on t.
func startOwned(t, owner *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	dir := logDir(owner)
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("open log of %s: %v", name, err)
	}
	fmt.Fprintf(f, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	owner.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				owner.Errorf("%s: still running after SIGKILL", name)
			}
		}
		if owner.Failed() {
			owner.Logf("--- last lines of %s (%s):\n%s", name, logPath, p.tail(logTailLines))
		}
	})
	return p
}

// logDir is a per-test folder for process logs; EMBEDTOKEN_E2E_LOGS keeps
// them in a folder of the user's choice instead of a temporary one.
func logDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("EMBEDTOKEN_E2E_LOGS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("log dir: %v", err)
	}
	return dir
}

// exited reports whether the process has exited, and its Wait error.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.waitErr
	default:
		return false, nil
	}
}

// tail returns the last n lines of the process log.
func (p *proc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// log returns the whole process log.
func (p *proc) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// stop sends SIGTERM and requires a clean exit (status 0) within stopTimeout.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.terminate(); err != nil {
		t.Fatalf("%s: %v (log: %s)", p.name, err, p.logPath)
	}
}

// terminate sends SIGTERM and waits for exit 0; SIGKILL past stopTimeout.
func (p *proc) terminate() error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if done, err := p.exited(); done {
		return fmt.Errorf("exited before SIGTERM: %v", exitText(err))
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("no exit within %s of SIGTERM (killed)", stopTimeout)
	}
	if _, err := p.exited(); err != nil {
		return fmt.Errorf("exit after SIGTERM: %v, want status 0", exitText(err))
	}
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// waitHTTP polls url until it answers 200, the process exits (fatal, with
// its log tail) or readyTimeout passes (fatal).
func (p *proc) waitHTTP(t *testing.T, url string) {
	t.Helper()
	if err := p.waitReady(url, readyTimeout); err != nil {
		t.Fatalf("%s not ready: %v (log: %s)", p.name, err, p.logPath)
	}
}

func (p *proc) waitReady(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	var last string
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("exited (%s) while waiting for %s", exitText(err), url)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: no 200 within %s (last: %s)", url, timeout, last)
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
