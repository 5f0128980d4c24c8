package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// rotateLua sends GET requests whose Authorization header cycles through
// the tokens of a file, one per line, in order: with more tokens than the
// sidecar's cache holds, every request misses the cache. One token makes
// a warm run; every configuration pays the same generator cost.
const rotateLua = `local tokens = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  if #tokens == 0 then error("no tokens in " .. args[1]) end
end
function request()
  i = i % #tokens + 1
  return wrk.format("GET", "/orders/42", {["Authorization"] = tokens[i]})
end
`

// postLua POSTs the same JSON body, with the hook's API key header.
const postLua = `local req
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  req = wrk.format("POST", args[2], {["Content-Type"] = "application/json; charset=UTF-8", [args[3]] = args[4]}, body)
end
function request()
  return req
end
`

// wrkResult is what wrk reported for one run.
type wrkResult struct {
	Requests int64
	Seconds  float64
	RPS      float64
	P50ms    float64
	P99ms    float64
	Non2xx   int64
	Errors   int64 // socket errors: connect, read, write, timeout
}

// wrkRunner runs wrk pinned to a CPU.
type wrkRunner struct {
	cpus    string
	threads int
	conns   int
	dir     string // where the scripts live
}

func newWrkRunner(dir, cpus string, threads, conns int) (*wrkRunner, error) {
	for name, src := range map[string]string{"rotate.lua": rotateLua, "post.lua": postLua} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			return nil, err
		}
	}
	return &wrkRunner{cpus: cpus, threads: threads, conns: conns, dir: dir}, nil
}

// get runs GETs against url for d, tokens rotating from tokenFile.
func (w *wrkRunner) get(url, tokenFile string, d time.Duration) (wrkResult, error) {
	return w.run(d, url, filepath.Join(w.dir, "rotate.lua"), tokenFile)
}

// post POSTs bodyFile to base+path with the header name: value.
func (w *wrkRunner) post(base, path, bodyFile, header, value string, d time.Duration) (wrkResult, error) {
	return w.run(d, base, filepath.Join(w.dir, "post.lua"), bodyFile, path, header, value)
}

func (w *wrkRunner) run(d time.Duration, url, script string, args ...string) (wrkResult, error) {
	argv := []string{"wrk", "-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "5s", "--latency", "-s", script, url, "--"}
	argv = append(argv, args...)
	if w.cpus != "" {
		argv = append([]string{"taskset", "-c", w.cpus}, argv...)
	}
	// wrk stops by itself after d; the context is a backstop.
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v:\n%s", err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, fmt.Errorf("%v:\n%s", err, out)
	}
	return res, nil
}

// parseWrk reads wrk 4's report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var seen50, seen99, seenRPS bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.P50ms, seen50 = parseDur(f[1]), true
		case len(f) == 2 && f[0] == "99%":
			r.P99ms, seen99 = parseDur(f[1]), true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.Requests, _ = strconv.ParseInt(f[0], 10, 64)
			r.Seconds = parseDur(strings.TrimSuffix(f[3], ",")) / 1000
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.RPS, _ = strconv.ParseFloat(f[1], 64)
			seenRPS = true
		case len(f) == 5 && f[0] == "Non-2xx":
			r.Non2xx, _ = strconv.ParseInt(f[4], 10, 64)
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				r.Errors += n
			}
		}
	}
	if !seen50 || !seen99 || !seenRPS || r.Requests == 0 {
		return r, fmt.Errorf("wrk report not understood")
	}
	return r, nil
}

// parseDur turns wrk's "1.23ms", "456.00us", "1.50s", "2.00m" into ms.
func parseDur(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1000}, {"m", 60000}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				return x * u.ms
			}
		}
	}
	return -1
}
